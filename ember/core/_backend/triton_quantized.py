"""Fused Triton kernels for affine quantized matmul on CUDA.

Imported only from the CUDA branch of the quantized_matmul kernel. Three kernels:
- `_gemv`: decode (M <= 4, w transposed, the usual (N, K) weight; 2, 4 and 8 bits). Each
  program owns BLOCK_N rows and walks K in steps of KSPLIT slices (one or more warps per
  slice); a thread reads 16-byte runs of packed words and holds the same words of many
  rows, so each x value it loads serves all of them. Element p of each word is peeled off
  with one shift and one LOP3 (inline PTX) straight into a float's bit pattern (no
  int->float conversion): 1 + q / 2^BITS for half x (the affine terms then factor per
  group as S * sum(f * x) + (b - S) * sum(x), S = 2^BITS * scale), 2^23 + q minus 2^23
  (exact) for float32 x. A weight costs a shift, a LOP3 and an FMA (plus an add for
  float32). The decode kernel is ALU-bound at 4 bits (the bytes go by faster than the
  codes can be unpacked) and close to the memory bound at 8 bits.
- `_gemv_odd`: the same product for 3, 5 and 6 bits, whose 32 values span BITS words and
  may straddle two of them (simple strided loads: correct, not tuned).
- `_qmm`: everything else (2, 4, 8 bits). A tiled GEMM with tl.dot; each K step loads the
  packed words, scales and biases of a (BLOCK_N, BLOCK_K) tile once, dequantizes in
  registers and feeds the tensor cores. M <= 16 uses BLOCK_M = 16.
The whole matrix is never dequantized in memory.

Launch cost: Triton's `fn[grid](...)` binds and specializes the arguments on every call.
The first call of each (shape, strides, dtypes, alignment) goes through it; later ones
call the compiled kernel's launcher directly with the cached grid and constants.

Packed words are uint32 held as int64 in storage; the kernels read int32 words, kept in a
cache per weight tensor (invalidated by in-place writes through torch's version counter).
"""

import os
import weakref

import torch

from ember.core._backend import cuda_qmv
from ember.core._backend.triton_launch import Launcher, aligned

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CUDA builds ship Triton
    triton = None


_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def available():
    return triton is not None


_WORDS = {}


def words32(w):
    """The packed words of `w` (int64 holding uint32) as an int32 tensor, cached."""
    key = id(w)
    # inference tensors (made by Ember's kernels) have no version counter (asking raises,
    # which costs microseconds); Ember never writes into an evaluated array's tensor
    version = -1 if w.is_inference() else w._version
    hit = _WORDS.get(key)
    if hit is not None and hit[1] == version and hit[0]() is w:
        return hit[2]
    w32 = w.to(torch.int32).contiguous()  # truncating cast: the low 32 bits
    _WORDS[key] = (weakref.ref(w, lambda _, k=key: _WORDS.pop(k, None)), version, w32)
    return w32


if triton is not None:

    @triton.jit
    def _unpack(wq, BITS: tl.constexpr):
        # (R, C) int32 words -> (R, C, PACK) float32 codes, element p of a word in bits
        # [p * BITS, (p + 1) * BITS)
        PACK: tl.constexpr = 32 // BITS
        MASK: tl.constexpr = (1 << BITS) - 1
        shifts = tl.arange(0, PACK) * BITS
        q = ((wq[:, :, None] >> shifts[None, None, :]) & MASK) | 0x4B000000
        return q.to(tl.float32, bitcast=True) - 8388608.0

    @triton.jit
    def _gemv_load(w_ptr, s_ptr, b_ptr, k0, w_off, s_off, w_k, s_k, n_ok, K,
                   PACK: tl.constexpr, GS: tl.constexpr, MASKED: tl.constexpr):
        # the packed words (KSPLIT, BLOCK_N, BKW), scales and biases (KSPLIT, BLOCK_N, G)
        # of the K step starting at k0 (w_k, s_k: each slice's word and group offsets)
        kw0 = k0 // PACK
        g0 = k0 // GS
        if MASKED:
            wmask = n_ok[None, :, None] & ((kw0 + w_k) < K // PACK)
            smask = n_ok[None, :, None] & ((g0 + s_k) < K // GS)
            wq = tl.load(w_ptr + kw0 + w_off, mask=wmask, other=0)
            sc = tl.load(s_ptr + g0 + s_off, mask=smask, other=0.0)
            bi = tl.load(b_ptr + g0 + s_off, mask=smask, other=0.0)
        else:
            wq = tl.load(w_ptr + kw0 + w_off)
            sc = tl.load(s_ptr + g0 + s_off)
            bi = tl.load(b_ptr + g0 + s_off)
        return wq, sc, bi

    @triton.jit
    def _gemv(x_ptr, w_ptr, s_ptr, b_ptr, o_ptr, M, N, K, sxm, swr, ssr, som,
              BITS: tl.constexpr, GS: tl.constexpr, MROWS: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
              KSPLIT: tl.constexpr, MASKED: tl.constexpr, PREFETCH: tl.constexpr,
              EXACT: tl.constexpr, TOP: tl.constexpr, ASM: tl.constexpr = ""):
        # A step covers KSPLIT slices of BLOCK_K columns of BLOCK_N rows: tiles are
        # (KSPLIT, BLOCK_N, BKW). Triton lays threads along the words (16-byte runs),
        # then along the slices, then along the rows, so each thread holds the same few
        # words of all BLOCK_N rows: each x value it loads serves BLOCK_N weights, and
        # the slices spread K over the warps.
        PACK: tl.constexpr = 32 // BITS
        BKW: tl.constexpr = BLOCK_K // PACK  # packed words per row and slice
        WPG: tl.constexpr = GS // PACK  # packed words per group
        G: tl.constexpr = BLOCK_K // GS  # groups per row and slice
        STEP: tl.constexpr = KSPLIT * BLOCK_K
        # Codes become floats without a conversion instruction. Half x (TOP = 23 - BITS):
        # a code q moved into the top BITS bits of the mantissa of 1.0 is the float
        # f = 1 + q / 2^BITS (one shift and one LOP3); per group
        # sum(q * x) = 2^BITS * (sum(f * x) - sum(x)), so
        # sum((s * q + b) * x) = S * sum(f * x) + (b - S) * sum(x) with S = s * 2^BITS
        # (the subtraction costs a few bits, far below half precision). EXACT (float32
        # x, TOP = 0): q in the low bits of 2^23 is 2^23 + q, minus 2^23 gives q exactly,
        # one more instruction per weight.
        FMASK: tl.constexpr = ((1 << BITS) - 1) << TOP
        pid = tl.program_id(0)
        rn = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        rs = tl.arange(0, KSPLIT)
        rw = tl.arange(0, BKW)
        rg = tl.arange(0, G)
        n_ok = rn < N
        w_k = rs[:, None, None] * BKW + rw[None, None, :]  # (KSPLIT, 1, BKW)
        s_k = rs[:, None, None] * G + rg[None, None, :]  # (KSPLIT, 1, G)
        w_off = rn[None, :, None] * swr + w_k
        s_off = rn[None, :, None] * ssr + s_k
        x_k = rs[:, None] * BLOCK_K + rw[None, :] * PACK  # (KSPLIT, BKW): element 0 of words
        rm = tl.arange(0, BLOCK_M)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        acc1 = tl.zeros((KSPLIT, BLOCK_N, G), dtype=tl.float32)  # MROWS == 1: partials
        if PREFETCH:
            wq, sc, bi = _gemv_load(w_ptr, s_ptr, b_ptr, 0, w_off, s_off, w_k, s_k, n_ok, K,
                                    PACK, GS, MASKED)
        for k0 in range(0, K, STEP):
            if PREFETCH:
                # the next step's tile is requested before this step's arithmetic (the
                # last step wraps to the start: valid addresses, result unused)
                wq1, sc1, bi1 = _gemv_load(w_ptr, s_ptr, b_ptr, (k0 + STEP) % K, w_off,
                                           s_off, w_k, s_k, n_ok, K, PACK, GS, MASKED)
            else:
                wq, sc, bi = _gemv_load(w_ptr, s_ptr, b_ptr, k0, w_off, s_off, w_k, s_k,
                                        n_ok, K, PACK, GS, MASKED)
            wu = wq.to(tl.uint32, bitcast=True)
            if ASM != "":  # one shift and one LOP3 per code, as written (see _unpack_asm)
                if PACK == 4:
                    fs = tl.inline_asm_elementwise(
                        ASM, "=r,=r,=r,=r,r", [wu], dtype=(tl.float32, tl.float32, tl.float32,
                                                          tl.float32), is_pure=True, pack=1)
                elif PACK == 8:
                    fs = tl.inline_asm_elementwise(
                        ASM, "=r,=r,=r,=r,=r,=r,=r,=r,r", [wu],
                        dtype=(tl.float32, tl.float32, tl.float32, tl.float32, tl.float32,
                               tl.float32, tl.float32, tl.float32), is_pure=True, pack=1)
                else:
                    fs = tl.inline_asm_elementwise(
                        ASM, "=r,=r,=r,=r,=r,=r,=r,=r,=r,=r,=r,=r,=r,=r,=r,=r,r", [wu],
                        dtype=(tl.float32, tl.float32, tl.float32, tl.float32, tl.float32,
                               tl.float32, tl.float32, tl.float32, tl.float32, tl.float32,
                               tl.float32, tl.float32, tl.float32, tl.float32, tl.float32,
                               tl.float32), is_pure=True, pack=1)
            if EXACT:
                s2 = sc.to(tl.float32)
                b2 = bi.to(tl.float32)
            else:
                s2 = sc.to(tl.float32) * (1 << BITS)
                b2 = bi.to(tl.float32) - s2
            x_ok = (k0 + x_k) < K
            for mi in tl.static_range(MROWS):
                xb = x_ptr + mi * sxm + k0 + x_k
                t = tl.zeros((KSPLIT, BLOCK_N, BKW), dtype=tl.float32)
                xs = tl.zeros((KSPLIT, BKW), dtype=tl.float32)
                for p in tl.static_range(PACK):
                    if MASKED:
                        xp = tl.load(xb + p, mask=x_ok, other=0.0).to(tl.float32)
                    else:
                        xp = tl.load(xb + p).to(tl.float32)
                    if ASM != "":
                        f = fs[p]
                        if EXACT:
                            f = f - 8388608.0
                    else:
                        if p * BITS > TOP:
                            v = wu >> (p * BITS - TOP)
                        elif p * BITS < TOP:
                            v = wu << (TOP - p * BITS)
                        else:
                            v = wu
                        if EXACT:
                            f = ((v & FMASK) | 0x4B000000).to(tl.float32, bitcast=True)
                            f = f - 8388608.0
                        else:
                            f = ((v & FMASK) | 0x3F800000).to(tl.float32, bitcast=True)
                    t += f * xp[:, None, :]
                    xs += xp
                tg = tl.sum(tl.reshape(t, (KSPLIT, BLOCK_N, G, WPG)), axis=3)
                xg = tl.sum(tl.reshape(xs, (KSPLIT, G, WPG)), axis=2)
                contrib = tg * s2 + b2 * xg[:, None, :]
                if MROWS == 1:
                    acc1 += contrib
                else:
                    part = tl.sum(tl.sum(contrib, axis=2), axis=0)
                    acc += tl.where(rm[:, None] == mi, part[None, :], 0.0)
            if PREFETCH:
                wq, sc, bi = wq1, sc1, bi1
        if MROWS == 1:
            acc += tl.sum(tl.sum(acc1, axis=2), axis=0)[None, :]
        tl.store(o_ptr + rm[:, None] * som + rn[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=(rm < MROWS)[:, None] & n_ok[None, :])

    @triton.jit
    def _gemv_odd(x_ptr, w_ptr, s_ptr, b_ptr, o_ptr, M, N, K, sxm, swr, ssr, som,
                  BITS: tl.constexpr, GS: tl.constexpr, MROWS: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        # 3, 5, 6 bits: 32 values fill BITS words exactly, value j in bits
        # [j * BITS, (j + 1) * BITS) of that run (it may straddle two words)
        MASK: tl.constexpr = (1 << BITS) - 1
        PPG: tl.constexpr = GS // 32  # runs of 32 values per group
        G: tl.constexpr = BLOCK_K // GS
        pid = tl.program_id(0)
        rn = pid * BLOCK_N + tl.arange(0, BLOCK_N)
        rg = tl.arange(0, G)
        rp = tl.arange(0, PPG)
        n_ok = rn < N
        KG = K // GS
        w_off = rn[:, None, None] * swr + (rg[None, :, None] * PPG + rp[None, None, :]) * BITS
        s_off = rn[:, None] * ssr + rg[None, :]
        x_off = rg[:, None] * GS + rp[None, :] * 32
        rm = tl.arange(0, BLOCK_M)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            g0 = k0 // GS
            g_ok = (g0 + rg) < KG
            m2 = n_ok[:, None] & g_ok[None, :]
            m3 = m2[:, :, None]
            wp = w_ptr + g0 * PPG * BITS + w_off
            sc = tl.load(s_ptr + g0 + s_off, mask=m2, other=0.0).to(tl.float32)
            bi = tl.load(b_ptr + g0 + s_off, mask=m2, other=0.0).to(tl.float32)
            for mi in tl.static_range(MROWS):
                xb = x_ptr + mi * sxm + k0 + x_off
                t = tl.zeros((BLOCK_N, G, PPG), dtype=tl.float32)
                xs = tl.zeros((G, PPG), dtype=tl.float32)
                for j in tl.static_range(32):
                    # value j: bits (j * BITS) % 32 on of word (j * BITS) // 32, and the
                    # low bits of the next word when it straddles
                    lo = tl.load(wp + (j * BITS) // 32, mask=m3, other=0)
                    if (j * BITS) % 32 + BITS > 32:
                        hi = tl.load(wp + (j * BITS) // 32 + 1, mask=m3, other=0)
                        q = (((lo >> ((j * BITS) % 32)) & ((1 << (32 - (j * BITS) % 32)) - 1))
                             | (hi << (32 - (j * BITS) % 32)))
                    else:
                        q = lo >> ((j * BITS) % 32)
                    q = (q & MASK) | 0x4B000000
                    xj = tl.load(xb + j, mask=g_ok[:, None], other=0.0).to(tl.float32)
                    t += (q.to(tl.float32, bitcast=True) - 8388608.0) * xj[None, :, :]
                    xs += xj
                contrib = tl.sum(t, axis=2) * sc + bi * tl.sum(xs, axis=1)[None, :]
                acc += tl.where(rm[:, None] == mi, tl.sum(contrib, axis=1)[None, :], 0.0)
        tl.store(o_ptr + rm[:, None] * som + rn[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=(rm < MROWS)[:, None] & n_ok[None, :])

    @triton.jit
    def _qmm(x_ptr, w_ptr, s_ptr, b_ptr, o_ptr, M, N, K, sxm, swr, ssr, som,
             BITS: tl.constexpr, GS: tl.constexpr, TRANS: tl.constexpr,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
             PRECISION: tl.constexpr = "tf32"):
        PACK: tl.constexpr = 32 // BITS
        pid_m = tl.program_id(1)
        pid_n = tl.program_id(0)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rk = tl.arange(0, BLOCK_K)
        m_ok = rm < M
        n0 = pid_n * BLOCK_N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + rk
            k_ok = kk < K
            xv = tl.load(x_ptr + rm[:, None] * sxm + kk[None, :],
                         mask=m_ok[:, None] & k_ok[None, :], other=0.0)
            if TRANS:  # w is (N, K / PACK), groups along K: tile (BLOCK_N, BLOCK_K)
                rn = n0 + tl.arange(0, BLOCK_N)
                n_ok = rn < N
                kw = k0 // PACK + tl.arange(0, BLOCK_K // PACK)
                wq = tl.load(w_ptr + rn[:, None] * swr + kw[None, :],
                             mask=n_ok[:, None] & (kw < K // PACK)[None, :], other=0)
                kg = k0 // GS + tl.arange(0, BLOCK_K // GS)
                sp = rn[:, None] * ssr + kg[None, :]
                smask = n_ok[:, None] & (kg < K // GS)[None, :]
                sc = tl.load(s_ptr + sp, mask=smask, other=0.0).to(tl.float32)
                bi = tl.load(b_ptr + sp, mask=smask, other=0.0).to(tl.float32)
                q = tl.reshape(_unpack(wq, BITS), (BLOCK_N, BLOCK_K // GS, GS))
                wv = q * sc[:, :, None] + bi[:, :, None]
                wt = tl.trans(tl.reshape(wv, (BLOCK_N, BLOCK_K)).to(xv.dtype))
            else:  # w is (K, N / PACK), groups along N: tile (BLOCK_K, BLOCK_N)
                nw = n0 // PACK + tl.arange(0, BLOCK_N // PACK)
                wq = tl.load(w_ptr + kk[:, None] * swr + nw[None, :],
                             mask=k_ok[:, None] & (nw < N // PACK)[None, :], other=0)
                ng = n0 // GS + tl.arange(0, BLOCK_N // GS)
                sp = kk[:, None] * ssr + ng[None, :]
                smask = k_ok[:, None] & (ng < N // GS)[None, :]
                sc = tl.load(s_ptr + sp, mask=smask, other=0.0).to(tl.float32)
                bi = tl.load(b_ptr + sp, mask=smask, other=0.0).to(tl.float32)
                q = tl.reshape(_unpack(wq, BITS), (BLOCK_K, BLOCK_N // GS, GS))
                wv = q * sc[:, :, None] + bi[:, :, None]
                wt = tl.reshape(wv, (BLOCK_K, BLOCK_N)).to(xv.dtype)
            acc = tl.dot(xv, wt, acc, input_precision=PRECISION)
        rn = n0 + tl.arange(0, BLOCK_N)
        tl.store(o_ptr + rm[:, None] * som + rn[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=m_ok[:, None] & (rn < N)[None, :])


def _unpack_asm(bits, exact):
    """PTX taking a packed word to its 32 / bits codes as floats 1 + q / 2^bits, or
    2^23 + q when `exact` (see `_gemv`): per code a shift and one LOP3 (mask | exponent),
    which Triton's own lowering of the same expression does not reach (it splits the
    mask and the or)."""
    pack, top = 32 // bits, 0 if exact else 23 - bits
    mask = ((1 << bits) - 1) << top
    magic = 0x4B000000 if exact else 0x3F800000
    src = f"${pack}"
    body = []
    for p in range(pack):
        sh = p * bits - top
        op = (f"shr.b32 t{p}, {src}, {sh};" if sh > 0 else
              f"shl.b32 t{p}, {src}, {-sh};" if sh < 0 else f"mov.b32 t{p}, {src};")
        body.append(op + f" lop3.b32 ${p}, t{p}, {mask}, {magic}, 0xEA;")
    return "{ .reg .b32 t<%d>; %s }" % (pack, " ".join(body))


# -- launch configuration --------------------------------------------------------------

GEMV_MAX_M = 4  # rows of x the decode kernel takes (more: the GEMM, on tensor cores)
_SMEM_BUDGET = 180 * 1024  # of the H100's 227 KB per block, leaving room for scratch
# prefill tiles by M bucket: (BLOCK_M, BLOCK_N, BLOCK_K, num_warps)
_QMM_TILES = ((16, 64, 128, 4), (32, 64, 128, 4), (64, 128, 64, 4), (128, 128, 64, 8))


def qmm_smem(bm, bn, bk, stages, elt, bits, gs):
    """Bytes of shared memory the pipelined `_qmm` needs (an upper estimate): per stage
    the x tile and the packed words, scales and biases of the w tile; once, the
    dequantized w tile handed to the tensor cores. (Checked against Triton 3.5's sm_90
    compiles: 37-123 KB for the table below.)"""
    per_stage = bm * bk * elt + bn * bk * bits // 8 + 2 * bn * max(bk // gs, 1) * 4
    return stages * per_stage + bk * bn * elt


def qmm_config(m, elt, bits, gs, transpose):
    """(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) for the prefill kernel."""
    for bm, bn, bk, warps in _QMM_TILES:
        if m <= bm:
            break
    if elt == 4:  # float32 (TF32) tiles are twice the bytes: halve K
        bk //= 2
    if transpose and bk < gs:  # a K step holds whole groups; keep the tile's size
        bn, bk = bn * bk // gs, gs
    elif not transpose and bn < gs:
        bn = gs
    stages = 4
    while stages > 1 and qmm_smem(bm, bn, bk, stages, elt, bits, gs) > _SMEM_BUDGET:
        stages -= 1
    return bm, bn, bk, warps, stages


GEMV_OVERRIDE = None  # a configuration forced on every decode product (benchmarks)


def gemv_config(m, n, k, bits, gs):
    """(BLOCK_N, BLOCK_K, KSPLIT, num_warps, num_stages, PREFETCH) for the decode kernel.

    Tuned on an H100 at 1x4096 @ 4096x4096 (benchmarks/quantized_matmul.py --sweep):
    slices of 128 packed words (256 for 8 bits), four (two) of them per step on as many
    warps, and as many rows per thread as registers allow (16 rows per program; 8 for
    8 bits): the whole of K=4096 in one or two steps. Prefetching the next step in
    registers doubles them and lost; Triton's software pipelining did nothing here."""
    if GEMV_OVERRIDE is not None:
        return GEMV_OVERRIDE
    pack = 32 // bits
    if bits == 8:
        bn, words, ks, warps = 8, 256, 2, 4
    else:
        bn, words, ks, warps = 16, 128, 4, 8
    bk = words * pack
    bn = max(2, bn // triton_next_pow2(m))  # rows of x multiply the live registers
    kp = triton_next_pow2(k)
    # fewer slices where K is short, or where that makes whole steps (no masks)
    while ks > 1 and (bk * ks > kp or k % (bk * ks) and k % bk == 0):
        ks //= 2
        warps = max(warps // 2, 1)
    while bk > gs and bk > kp:
        bk //= 2
    return bn, max(bk, gs), ks, warps, 1, 0


def triton_next_pow2(m):
    p = 1
    while p < m:
        p *= 2
    return p


_ELT = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4}


def _plan(m, n, k, dtype, transpose, bits, gs, cfg=None):
    """(kernel, grid, constexpr keyword arguments, launch options) for a product."""
    if m <= GEMV_MAX_M and transpose:
        bm = triton_next_pow2(m)
        if 32 % bits:
            bn = 16 if n >= 2048 else 4
            bk = max(gs, 256)
            return (_gemv_odd, (triton.cdiv(n, bn), 1, 1),
                    dict(BITS=bits, GS=gs, MROWS=m, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk),
                    dict(num_warps=4))
        bn, bk, ks, warps, stages, prefetch = cfg or gemv_config(m, n, k, bits, gs)
        exact = dtype is torch.float32
        masked = bool(n % bn or k % (bk * ks))
        return (_gemv, (triton.cdiv(n, bn), 1, 1),
                dict(BITS=bits, GS=gs, MROWS=m, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                     KSPLIT=ks, MASKED=masked, PREFETCH=prefetch,
                     EXACT=exact, TOP=0 if exact else 23 - bits,
                     ASM="" if _INTERPRET else _unpack_asm(bits, exact)),
                dict(num_warps=warps, num_stages=stages))
    bm, bn, bk, warps, stages = qmm_config(m, _ELT[dtype], bits, gs, transpose)
    # float32 products in full precision unless TF32 is on (MLX_ENABLE_TF32)
    ieee = dtype is torch.float32 and not torch.backends.cuda.matmul.allow_tf32
    return (_qmm, (triton.cdiv(n, bn), triton.cdiv(m, bm), 1),
            dict(BITS=bits, GS=gs, TRANS=transpose, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                 PRECISION="ieee" if ieee else "tf32"),
            dict(num_warps=warps, num_stages=stages))


# per launch key: (launcher of the kernel, grid[0], BLOCK_M of the GEMM or 0, meta, options)
_PLANS = {}
_LAUNCHERS = {}


def quantized_matmul(x, w, scales, biases, transpose, group_size, bits, cfg=None):
    """x (..., K) times the dequantized 2-D w (transposed or not), fused. `cfg` forces
    the decode kernel's configuration (see gemv_config; for tuning)."""
    k = x.shape[-1]
    x2 = x if x.dim() == 2 else x.reshape(-1, k)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    m = x2.shape[0]
    w32 = words32(w)
    if not scales.is_contiguous():
        scales = scales.contiguous()
    if not biases.is_contiguous():
        biases = biases.contiguous()
    n = w.shape[0] if transpose else w.shape[1] * 32 // bits
    if cfg is None and cuda_qmv.usable(x2, scales, biases, m, bits, group_size, transpose):
        out = cuda_qmv.quantized_matmul(x2, w32, scales, biases, group_size)
        return out if x.dim() == 2 else out.reshape(x.shape[:-1] + (n,))
    if cfg is None and cuda_qmv.gemv_usable(x2, w32, scales, biases, m, bits, group_size,
                                            transpose):
        out = cuda_qmv.gemv(x2, w32, scales, biases, group_size)
        return out if x.dim() == 2 else out.reshape(x.shape[:-1] + (n,))
    dev = x.device.index
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    sxm = x2.stride(0)
    args = (x2, w32, scales, biases, out, m, n, k, sxm, w32.stride(0), scales.stride(0), n)
    # everything Triton specializes on: m exactly up to 16 (then its bucket and
    # divisibility), the other sizes and strides, dtypes, pointer alignment
    mkey = m if m <= 16 else (-(m > 64) - (m > 32) - 3, m % 16 == 0)
    key = (mkey, n, k, sxm, x.dtype, scales.dtype, biases.dtype, transpose, bits, group_size,
           aligned(x2), aligned(scales), aligned(biases), dev, cfg)
    plan = _PLANS.get(key)
    if plan is None:
        fn, grid, meta, opts = _plan(m, n, k, x.dtype, transpose, bits, group_size, cfg)
        launcher = _LAUNCHERS.get(fn)
        if launcher is None:
            launcher = _LAUNCHERS[fn] = Launcher(fn)
        plan = _PLANS[key] = (launcher, grid[0], meta["BLOCK_M"] if fn is _qmm else 0,
                              meta, opts)
    launcher, g0, bm, meta, opts = plan
    launcher(key, (g0, -(-m // bm) if bm else 1, 1), args, meta, opts, dev)
    return out if x.dim() == 2 else out.reshape(x.shape[:-1] + (n,))
