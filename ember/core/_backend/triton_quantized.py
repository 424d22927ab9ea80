"""Fused Triton kernels for affine 4- and 8-bit quantized matmul on CUDA.

Imported only from the CUDA branch of the quantized_matmul kernel. Two kernels:
- `_qmv_t` (and `_qmv` for transpose=False): decode shapes (M <= 8). Each program owns
  BLOCK_N output columns and streams their packed words once, dequantizing in registers
  (GEMV style, many rows per program, no split-K so no atomics or zero-fill).
- `_qmm`: prefill shapes. Output tiles with tl.dot; each K step dequantizes a
  (BLOCK_K, BLOCK_N) tile of w in registers.
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
    version = _version(w)
    hit = _WORDS.get(key)
    if hit is not None and hit[0]() is w and hit[1] == version:
        return hit[2]
    w32 = w.to(torch.int32).contiguous()  # truncating cast: the low 32 bits
    _WORDS[key] = (weakref.ref(w, lambda _, k=key: _WORDS.pop(k, None)), version, w32)
    return w32


def _version(t):
    # inference tensors (made by Ember's kernels) have no version counter; Ember never
    # writes into an evaluated array's tensor, so they cannot change in place
    try:
        return t._version
    except RuntimeError:
        return -1


if triton is not None:

    @triton.jit
    def _qmv_t(x_ptr, w_ptr, s_ptr, b_ptr, o_ptr, N, KW, sxm, swr, ssr, som,
               BITS: tl.constexpr, GS: tl.constexpr, BLOCK_N: tl.constexpr,
               BLOCK_KW: tl.constexpr):
        # one row of x against BLOCK_N rows of w (N, K / PACK): each packed word is loaded
        # once and unpacked along a third axis; per word, the affine terms factor as
        # scale * sum(x * q) + bias * sum(x)
        PACK: tl.constexpr = 32 // BITS
        MASK: tl.constexpr = (1 << BITS) - 1
        pid_n = tl.program_id(0)
        m = tl.program_id(1)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rw = tl.arange(0, BLOCK_KW)
        shifts = tl.arange(0, PACK) * BITS
        n_ok = rn < N
        acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for kw0 in range(0, KW, BLOCK_KW):
            kw = kw0 + rw
            kw_ok = kw < KW
            msk = n_ok[:, None] & kw_ok[None, :]
            wq = tl.load(w_ptr + rn[:, None] * swr + kw[None, :], mask=msk, other=0)
            q = ((wq[:, :, None] >> shifts[None, None, :]) & MASK).to(tl.float32)
            kk = kw[:, None] * PACK + tl.arange(0, PACK)[None, :]
            xv = tl.load(x_ptr + m * sxm + kk, mask=kw_ok[:, None], other=0.0).to(tl.float32)
            sp = rn[:, None] * ssr + ((kw * PACK) // GS)[None, :]
            sc = tl.load(s_ptr + sp, mask=msk, other=0.0).to(tl.float32)
            bi = tl.load(b_ptr + sp, mask=msk, other=0.0).to(tl.float32)
            xq = tl.sum(q * xv[None, :, :], axis=2)
            xs = tl.sum(xv, axis=1)
            acc += tl.sum(sc * xq + bi * xs[None, :], axis=1)
        tl.store(o_ptr + m * som + rn, acc.to(o_ptr.dtype.element_ty), mask=n_ok)

    @triton.jit
    def _qmv(x_ptr, w_ptr, s_ptr, b_ptr, o_ptr, M, N, K, sxm, swr, ssr, som,
             BITS: tl.constexpr, GS: tl.constexpr, TRANS: tl.constexpr,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        PACK: tl.constexpr = 32 // BITS
        MASK: tl.constexpr = (1 << BITS) - 1
        pid_n = tl.program_id(0)
        pid_m = tl.program_id(1)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rk = tl.arange(0, BLOCK_K)
        m_ok = rm < M
        n_ok = rn < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + rk
            k_ok = kk < K
            xv = tl.load(x_ptr + rm[:, None] * sxm + kk[None, :],
                         mask=m_ok[:, None] & k_ok[None, :], other=0.0).to(tl.float32)
            msk = n_ok[:, None] & k_ok[None, :]
            if TRANS:  # w is (N, K / PACK), groups along K
                wp = w_ptr + rn[:, None] * swr + (kk // PACK)[None, :]
                shift = ((kk % PACK) * BITS)[None, :]
                sp = rn[:, None] * ssr + (kk // GS)[None, :]
            else:  # w is (K, N / PACK), groups along N
                wp = w_ptr + kk[None, :] * swr + (rn // PACK)[:, None]
                shift = ((rn % PACK) * BITS)[:, None]
                sp = kk[None, :] * ssr + (rn // GS)[:, None]
            wq = tl.load(wp, mask=msk, other=0)
            q = ((wq >> shift) & MASK).to(tl.float32)
            sc = tl.load(s_ptr + sp, mask=msk, other=0.0).to(tl.float32)
            bi = tl.load(b_ptr + sp, mask=msk, other=0.0).to(tl.float32)
            wv = q * sc + bi  # (BLOCK_N, BLOCK_K)
            acc += tl.sum(xv[:, None, :] * wv[None, :, :], axis=2)
        tl.store(o_ptr + rm[:, None] * som + rn[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=m_ok[:, None] & n_ok[None, :])

    @triton.jit
    def _qmm(x_ptr, w_ptr, s_ptr, b_ptr, o_ptr, M, N, K, sxm, swr, ssr, som,
             BITS: tl.constexpr, GS: tl.constexpr, TRANS: tl.constexpr,
             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        PACK: tl.constexpr = 32 // BITS
        MASK: tl.constexpr = (1 << BITS) - 1
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rk = tl.arange(0, BLOCK_K)
        m_ok = rm < M
        n_ok = rn < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            kk = k0 + rk
            k_ok = kk < K
            xv = tl.load(x_ptr + rm[:, None] * sxm + kk[None, :],
                         mask=m_ok[:, None] & k_ok[None, :], other=0.0)
            msk = k_ok[:, None] & n_ok[None, :]
            if TRANS:  # tile (BLOCK_K, BLOCK_N) of w's transpose
                wp = w_ptr + rn[None, :] * swr + (kk // PACK)[:, None]
                shift = ((kk % PACK) * BITS)[:, None]
                sp = rn[None, :] * ssr + (kk // GS)[:, None]
            else:
                wp = w_ptr + kk[:, None] * swr + (rn // PACK)[None, :]
                shift = ((rn % PACK) * BITS)[None, :]
                sp = kk[:, None] * ssr + (rn // GS)[None, :]
            wq = tl.load(wp, mask=msk, other=0)
            q = ((wq >> shift) & MASK).to(tl.float32)
            sc = tl.load(s_ptr + sp, mask=msk, other=0.0).to(tl.float32)
            bi = tl.load(b_ptr + sp, mask=msk, other=0.0).to(tl.float32)
            wv = (q * sc + bi).to(xv.dtype)
            acc = tl.dot(xv, wv, acc)
        tl.store(o_ptr + rm[:, None] * som + rn[None, :], acc.to(o_ptr.dtype.element_ty),
                 mask=m_ok[:, None] & n_ok[None, :])


def _qmv_blocks(m):
    bm = 1
    while bm < m:
        bm *= 2
    # keep the (BLOCK_M, BLOCK_N, BLOCK_K) product at 8192 values per program
    return bm, 16, 512 // bm


def quantized_matmul(x, w, scales, biases, transpose, group_size, bits):
    """x (..., K) times the dequantized 2-D w (transposed or not), fused."""
    lead = x.shape[:-1]
    k = x.shape[-1]
    x2 = x.reshape(-1, k)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    m = x2.shape[0]
    w32 = words32(w)
    scales = scales.contiguous()
    biases = biases.contiguous()
    n = w.shape[0] if transpose else w.shape[1] * 32 // bits
    out = torch.empty((m, n), dtype=x.dtype, device=x.device)
    args = (x2, w32, scales, biases, out, m, n, k, x2.stride(0), w32.stride(0),
            scales.stride(0), out.stride(0))
    if m <= 8 and transpose:
        bn, bkw = 8, 16 * bits  # 512 values of K per step
        grid = (triton.cdiv(n, bn), m)
        _qmv_t[grid](x2, w32, scales, biases, out, n, k * bits // 32, x2.stride(0), w32.stride(0),
                     scales.stride(0), out.stride(0), BITS=bits, GS=group_size,
                     BLOCK_N=bn, BLOCK_KW=bkw, num_warps=4)
    elif m <= 8:
        bm, bn, bk = _qmv_blocks(m)
        grid = (triton.cdiv(n, bn), triton.cdiv(m, bm))
        _qmv[grid](*args, BITS=bits, GS=group_size, TRANS=transpose,
                   BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, num_warps=4)
    else:
        bm = 16 if m <= 16 else 32 if m <= 32 else 64
        bn, bk = 128, 64
        grid = (triton.cdiv(m, bm), triton.cdiv(n, bn))
        _qmm[grid](*args, BITS=bits, GS=group_size, TRANS=transpose,
                   BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, num_warps=4, num_stages=3)
    return out.reshape(lead + (n,))
