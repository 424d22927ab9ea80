"""The Triton kernels of float32 flash attention (see `triton_attention`, which launches
them); imported at the first use, as importing Triton is slow.

They call no jitted library function (`tl.zeros`, `tl.max`, `tl.sum`): Triton's
interpreter, which runs them in the tests, cannot call those when Triton was first
imported to compile. Reductions go through `tl.reduce` with the library's own combine
functions, which the interpreter runs as numpy reductions."""

import triton
import triton.language as tl

NEG = tl.constexpr(float("-inf"))
INF = tl.constexpr(float("inf"))


@triton.jit
def _max(x, axis: tl.constexpr):
    return tl.reduce(x, axis, tl.standard._elementwise_max)


@triton.jit
def _sum(x, axis: tl.constexpr):
    return tl.reduce(x, axis, tl.standard._sum_combine)


@triton.jit
def _scores(q, kt, Mb, rows, cols, smm, smn, LQ, LK, scale,
            MASK: tl.constexpr, CAUSAL: tl.constexpr):
    """scale * q @ kt plus the mask; -inf where a key is hidden or out of range.
    `rows` and `cols` broadcast against each other in either orientation."""
    s = tl.dot(q, kt) * scale
    vis = (rows < LQ) & (cols < LK)
    if CAUSAL:
        vis = vis & (cols <= rows + (LK - LQ))
    if MASK == 1:
        s = s + tl.load(Mb + rows * smm + cols * smn, mask=vis, other=0.0)
    if MASK == 2:
        vis = vis & (tl.load(Mb + rows * smm + cols * smn, mask=vis, other=0) != 0)
    return tl.where(vis, s, NEG)


@triton.jit
def _live(Mb, rows, cols, smm, smn, LQ, LK, MASK: tl.constexpr):
    """Whether the mask leaves any score of this block visible (always, without one)."""
    if MASK == 0:
        return True
    inb = (rows < LQ) & (cols < LK)
    if MASK == 1:
        m = tl.load(Mb + rows * smm + cols * smn, mask=inb, other=NEG)
        return _max(_max(m, 1), 0) > NEG
    else:
        m = tl.load(Mb + rows * smm + cols * smn, mask=inb, other=0).to(tl.int32)
        return _max(_max(m, 1), 0) > 0


@triton.jit
def _key_scores(q, Kb, Mb, rows, cols, skn, skd, smm, smn, LQ, LK, D, dq, scale,
                MASK: tl.constexpr, CAUSAL: tl.constexpr):
    """The key tile at `cols`, transposed, and the scores of the query `rows` against it."""
    kt = tl.load(Kb + cols[None, :] * skn + dq[:, None] * skd,
                 mask=(cols[None, :] < LK) & (dq[:, None] < D), other=0.0)
    s = _scores(q, kt, Mb, rows[:, None], cols[None, :], smm, smn, LQ, LK, scale, MASK, CAUSAL)
    return kt, s


@triton.jit
def _causal_end(start_m, BLOCK_M: tl.constexpr, LQ, LK, CAUSAL: tl.constexpr):
    """One past the last key a query block starting at `start_m` sees."""
    if CAUSAL:
        return tl.minimum(LK, start_m + BLOCK_M + LK - LQ)
    return LK


@triton.jit
def _query_tile(Q, sqb, sqh, sqm, sqd, H, G, LQ, D, BLOCK_M: tl.constexpr,
                BLOCK_D: tl.constexpr):
    """This program's query block: (first row, batch * heads + head, batch, head, kv
    head, rows, head-dim offsets, the (BLOCK_M, BLOCK_D) tile of q)."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows = start_m + tl.arange(0, BLOCK_M)
    dq = tl.arange(0, BLOCK_D)
    q = tl.load(Q + b * sqb + h * sqh + rows[:, None] * sqm + dq[None, :] * sqd,
                mask=(rows[:, None] < LQ) & (dq[None, :] < D), other=0.0)
    return start_m, bh, b, h, h // G, rows, dq, q


@triton.jit
def _fwd(Q, K, V, Mk, O, LSE,
         sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
         smb, smh, smm, smn, sob, soh, som, sod,
         H, G, LQ, LK, D, DV, scale,
         MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
         BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    start_m, bh, b, h, hk, rows, dq, q = _query_tile(Q, sqb, sqh, sqm, sqd, H, G, LQ, D,
                                                     BLOCK_M, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    dv = tl.arange(0, BLOCK_DV)
    Kb = K + b * skb + hk * skh
    Vb = V + b * svb + hk * svh
    Mb = Mk + b * smb + h * smh
    m_i = tl.full((BLOCK_M,), NEG, tl.float32)
    l_i = tl.full((BLOCK_M,), 0.0, tl.float32)
    acc = tl.full((BLOCK_M, BLOCK_DV), 0.0, tl.float32)
    for start_n in range(0, _causal_end(start_m, BLOCK_M, LQ, LK, CAUSAL), BLOCK_N):
        cols = start_n + offs_n
        if _live(Mb, rows[:, None], cols[None, :], smm, smn, LQ, LK, MASK):
            kt, s = _key_scores(q, Kb, Mb, rows, cols, skn, skd, smm, smn, LQ, LK, D, dq,
                                scale, MASK, CAUSAL)
            m_new = tl.maximum(m_i, _max(s, 1))
            base = tl.where(m_new == NEG, 0.0, m_new)  # rows that see no key yet
            p = tl.exp(s - base[:, None])
            alpha = tl.exp(m_i - base)
            l_i = l_i * alpha + _sum(p, 1)
            vb = tl.load(Vb + cols[:, None] * svn + dv[None, :] * svd,
                         mask=(cols[:, None] < LK) & (dv[None, :] < DV), other=0.0)
            acc = acc * alpha[:, None] + tl.dot(p, vb)
            m_i = m_new
    seen = l_i > 0
    out = acc / tl.where(seen, l_i, 1.0)[:, None]
    tl.store(O + b * sob + h * soh + rows[:, None] * som + dv[None, :] * sod, out,
             mask=(rows[:, None] < LQ) & (dv[None, :] < DV))
    # a row that sees no key has output 0 and, in the backward, no probabilities
    lse = tl.where(seen, m_i + tl.log(tl.where(seen, l_i, 1.0)), INF)
    tl.store(LSE + bh * LQ + rows, lse, mask=rows < LQ)


@triton.jit
def _bwd_kv(Q, K, V, Mk, DO, LSE, DELTA, DK, DV_,
            sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
            smb, smh, smm, smn, sdb, sdh, sdm, sdd,
            H, G, LQ, LK, D, DV, scale, GS,
            MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
            BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    """dK and dV of one key block of one kv head, summed over GS heads of its group (the
    program's share of them); dK and dV are contiguous (B, HK, G / GS, LK, D)."""
    start_n = tl.program_id(0) * BLOCK_N
    NS = G // GS
    bhk = tl.program_id(1) // NS
    share = tl.program_id(1) % NS
    HK = H // G
    b = bhk // HK
    hk = bhk % HK
    cols = start_n + tl.arange(0, BLOCK_N)
    offs_m = tl.arange(0, BLOCK_M)
    dq = tl.arange(0, BLOCK_D)
    dv = tl.arange(0, BLOCK_DV)
    kmask = (cols[:, None] < LK) & (dq[None, :] < D)
    vmask = (cols[:, None] < LK) & (dv[None, :] < DV)
    k = tl.load(K + b * skb + hk * skh + cols[:, None] * skn + dq[None, :] * skd,
                mask=kmask, other=0.0)
    v = tl.load(V + b * svb + hk * svh + cols[:, None] * svn + dv[None, :] * svd,
                mask=vmask, other=0.0)
    dk = tl.full((BLOCK_N, BLOCK_D), 0.0, tl.float32)
    dvacc = tl.full((BLOCK_N, BLOCK_DV), 0.0, tl.float32)
    lo = 0
    if CAUSAL:  # the first query that sees this block's first key
        lo = tl.maximum(start_n - (LK - LQ), 0) // BLOCK_M * BLOCK_M
    for g in range(0, GS):
        h = hk * G + share * GS + g
        Qb = Q + b * sqb + h * sqh
        DOb = DO + b * sdb + h * sdh
        Mb = Mk + b * smb + h * smh
        for start_m in range(lo, LQ, BLOCK_M):
            rows = start_m + offs_m
            if _live(Mb, rows[None, :], cols[:, None], smm, smn, LQ, LK, MASK):
                qt = tl.load(Qb + rows[None, :] * sqm + dq[:, None] * sqd,
                             mask=(rows[None, :] < LQ) & (dq[:, None] < D), other=0.0)
                # scores transposed: (keys, queries)
                st = _scores(k, qt, Mb, rows[None, :], cols[:, None], smm, smn, LQ, LK,
                             scale, MASK, CAUSAL)
                lse = tl.load(LSE + (b * H + h) * LQ + rows, mask=rows < LQ,
                              other=INF)
                pt = tl.exp(st - lse[None, :])
                do = tl.load(DOb + rows[:, None] * sdm + dv[None, :] * sdd,
                             mask=(rows[:, None] < LQ) & (dv[None, :] < DV), other=0.0)
                dvacc += tl.dot(pt, do)
                dpt = tl.dot(v, tl.trans(do))
                delta = tl.load(DELTA + (b * H + h) * LQ + rows, mask=rows < LQ, other=0.0)
                dst = pt * (dpt - delta[None, :])
                dk += tl.dot(dst, tl.trans(qt))
    out = tl.program_id(1) * LK
    tl.store(DK + (out + cols[:, None]) * D + dq[None, :], dk * scale, mask=kmask)
    tl.store(DV_ + (out + cols[:, None]) * DV + dv[None, :], dvacc, mask=vmask)


@triton.jit
def _bwd_q(Q, K, V, Mk, DO, LSE, DELTA, DQ,
           sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
           smb, smh, smm, smn, sdb, sdh, sdm, sdd,
           H, G, LQ, LK, D, DV, scale,
           MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
           BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr):
    """dQ of one query block of one head; dQ is contiguous (B, H, LQ, D)."""
    start_m, bh, b, h, hk, rows, dq, q = _query_tile(Q, sqb, sqh, sqm, sqd, H, G, LQ, D,
                                                     BLOCK_M, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    dv = tl.arange(0, BLOCK_DV)
    qmask = (rows[:, None] < LQ) & (dq[None, :] < D)
    do = tl.load(DO + b * sdb + h * sdh + rows[:, None] * sdm + dv[None, :] * sdd,
                 mask=(rows[:, None] < LQ) & (dv[None, :] < DV), other=0.0)
    lse = tl.load(LSE + bh * LQ + rows, mask=rows < LQ, other=INF)
    delta = tl.load(DELTA + bh * LQ + rows, mask=rows < LQ, other=0.0)
    Kb = K + b * skb + hk * skh
    Vb = V + b * svb + hk * svh
    Mb = Mk + b * smb + h * smh
    acc = tl.full((BLOCK_M, BLOCK_D), 0.0, tl.float32)
    for start_n in range(0, _causal_end(start_m, BLOCK_M, LQ, LK, CAUSAL), BLOCK_N):
        cols = start_n + offs_n
        if _live(Mb, rows[:, None], cols[None, :], smm, smn, LQ, LK, MASK):
            kt, s = _key_scores(q, Kb, Mb, rows, cols, skn, skd, smm, smn, LQ, LK, D, dq,
                                scale, MASK, CAUSAL)
            p = tl.exp(s - lse[:, None])
            vt = tl.load(Vb + cols[None, :] * svn + dv[:, None] * svd,
                         mask=(cols[None, :] < LK) & (dv[:, None] < DV), other=0.0)
            ds = p * (tl.dot(do, vt) - delta[:, None])
            acc += tl.dot(ds, tl.trans(kt))
    tl.store(DQ + (bh * LQ + rows[:, None]) * D + dq[None, :], acc * scale, mask=qmask)


@triton.jit
def _delta(O, DO, DELTA, sdb, sdh, sdm, sdd, H, LQ, DV,
           BLOCK_M: tl.constexpr, BLOCK_DV: tl.constexpr):
    """rowsum(O * dO) of one query block of one head (O contiguous (B, H, LQ, DV))."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    dv = tl.arange(0, BLOCK_DV)
    m = (rows[:, None] < LQ) & (dv[None, :] < DV)
    o = tl.load(O + (bh * LQ + rows[:, None]) * DV + dv[None, :], mask=m, other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + rows[:, None] * sdm + dv[None, :] * sdd, mask=m,
                 other=0.0)
    tl.store(DELTA + bh * LQ + rows, _sum(o * do, 1), mask=rows < LQ)
