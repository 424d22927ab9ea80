"""Fused Triton kernels for affine 4- and 8-bit quantized matmul on CUDA.

Imported only from the CUDA branch of the quantized_matmul kernel. Two kernels:
- `_qmv`: decode (M <= 4, w transposed, the usual (N, K) weight). A GEMV: each program
  owns BLOCK_N rows of w and streams them once in coalesced tiles of BLOCK_N * BLOCK_K /
  PACK packed words (the next tile is requested before this one's arithmetic: Triton does
  not pipeline such loads), unpacking in registers. Per group the affine terms factor as
  scale * sum(x * q) + bias * sum(x), so a weight costs one multiply-add after unpacking;
  codes become floats through the exponent trick (q | 0x4B000000 is the float 2^23 + q),
  which avoids the slow int->float conversion.
- `_qmm`: everything else. A tiled GEMM with tl.dot; each K step loads the packed words,
  scales and biases of a (BLOCK_N, BLOCK_K) tile once (no duplicated addresses, so the
  pipeline's shared-memory buffers hold only packed data), dequantizes in registers and
  feeds the tensor cores. M <= 16 uses BLOCK_M = 16.
The whole matrix is never dequantized in memory.

Packed words are uint32 held as int64 in storage; the kernels read int32 words, kept in a
cache per weight tensor (invalidated by in-place writes through torch's version counter).
"""

import weakref

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CUDA builds ship Triton
    triton = None


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
    def _qmv_load(w_ptr, s_ptr, b_ptr, rn, n_ok, rw, rg, k0, K, swr, ssr,
                  PACK: tl.constexpr, GS: tl.constexpr):
        kw = k0 // PACK + rw
        wq = tl.load(w_ptr + rn[:, None] * swr + kw[None, :],
                     mask=n_ok[:, None] & (kw < K // PACK)[None, :], other=0)
        kg = k0 // GS + rg
        smask = n_ok[:, None] & (kg < K // GS)[None, :]
        sp = rn[:, None] * ssr + kg[None, :]
        return wq, tl.load(s_ptr + sp, mask=smask, other=0.0), tl.load(b_ptr + sp, mask=smask,
                                                                          other=0.0)

    @triton.jit
    def _qmv(x_ptr, w_ptr, s_ptr, b_ptr, o_ptr, M, N, K, sxm, swr, ssr, som,
             BITS: tl.constexpr, GS: tl.constexpr, BLOCK_M: tl.constexpr,
             BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        PACK: tl.constexpr = 32 // BITS
        BKW: tl.constexpr = BLOCK_K // PACK
        G: tl.constexpr = BLOCK_K // GS
        pid_n = tl.program_id(0)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rw = tl.arange(0, BKW)
        rg = tl.arange(0, G)
        re = tl.arange(0, GS)
        rm = tl.arange(0, BLOCK_M)
        n_ok = rn < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        wq, sc, bi = _qmv_load(w_ptr, s_ptr, b_ptr, rn, n_ok, rw, rg, 0, K, swr, ssr,
                               PACK, GS)
        for k0 in range(0, K, BLOCK_K):
            # the next step's words are requested before this step's arithmetic, so each
            # program keeps two tiles in flight (Triton does not pipeline these loads)
            wq1, sc1, bi1 = _qmv_load(w_ptr, s_ptr, b_ptr, rn, n_ok, rw, rg, k0 + BLOCK_K, K,
                                      swr, ssr, PACK, GS)
            q = tl.reshape(_unpack(wq, BITS), (BLOCK_N, G, GS))
            scf = sc.to(tl.float32)
            bif = bi.to(tl.float32)
            xo = k0 + rg[:, None] * GS + re[None, :]
            for mi in tl.static_range(BLOCK_M):
                xv = tl.load(x_ptr + mi * sxm + xo, mask=(xo < K) & (mi < M),
                             other=0.0).to(tl.float32)
                t = tl.sum(q * xv[None, :, :], axis=2)
                xs = tl.sum(xv, axis=1)
                part = tl.sum(t * scf + bif * xs[None, :], axis=1)
                acc += tl.where(rm[:, None] == mi, part[None, :], 0.0)
            wq, sc, bi = wq1, sc1, bi1
        tl.store(o_ptr + rm[:, None] * som + rn[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=(rm < M)[:, None] & n_ok[None, :])

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


# -- launch configuration --------------------------------------------------------------

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


def qmv_config(m, n, k, bits):
    """(BLOCK_M, BLOCK_N, BLOCK_K) for the decode kernel (4 warps): 64 values per thread
    and step (fewer when several rows of x share it, to stay near 128 registers); rows
    before length, as each program reads its slice of x once per step for all its rows."""
    bm = 1
    while bm < m:
        bm *= 2
    elems = 8192 // bm
    bk = 128
    while bk < k and bk < 1024 and bk * 2 <= elems:
        bk *= 2
    bn = max(elems // bk, 1)
    # enough programs to cover the 132 SMs a few times over
    while bn > 1 and -(-n // bn) < 512:
        bn //= 2
    return bm, bn, bk


_CONFIGS = {}
_ELT = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4}


def _launch(m, n, k, dtype, transpose, bits, gs):
    key = (m if m <= 16 else -(m > 64) - (m > 32) - 3, n, k, dtype, transpose, bits, gs)
    cfg = _CONFIGS.get(key)
    if cfg is None:
        if m <= 4 and transpose:
            bm, bn, bk = qmv_config(m, n, k, bits)
            cfg = (_qmv, (triton.cdiv(n, bn),), dict(BITS=bits, GS=gs, BLOCK_M=bm, BLOCK_N=bn,
                                                     BLOCK_K=bk, num_warps=4), 0)
        else:
            bm, bn, bk, warps, stages = qmm_config(m, _ELT[dtype], bits, gs, transpose)
            # float32 products in full precision unless TF32 is on (MLX_ENABLE_TF32)
            ieee = dtype is torch.float32 and not torch.backends.cuda.matmul.allow_tf32
            cfg = (_qmm, (triton.cdiv(n, bn),), dict(BITS=bits, GS=gs, TRANS=transpose,
                                                     BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                                                     PRECISION="ieee" if ieee else "tf32",
                                                     num_warps=warps, num_stages=stages), bm)
        _CONFIGS[key] = cfg
    return cfg


def quantized_matmul(x, w, scales, biases, transpose, group_size, bits):
    """x (..., K) times the dequantized 2-D w (transposed or not), fused."""
    k = x.shape[-1]
    x2 = x.reshape(-1, k)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    m = x2.shape[0]
    w32 = words32(w)
    if not scales.is_contiguous():
        scales = scales.contiguous()
    if not biases.is_contiguous():
        biases = biases.contiguous()
    n = w.shape[0] if transpose else w.shape[1] * 32 // bits
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    fn, grid, meta, bm = _launch(m, n, k, x.dtype, transpose, bits, group_size)
    if bm:
        grid = (grid[0], triton.cdiv(m, bm))
    fn[grid](x2, w32, scales, biases, out, m, n, k, x2.stride(0), w32.stride(0),
             scales.stride(0), out.stride(0), **meta)
    return out.reshape(x.shape[:-1] + (n,))
