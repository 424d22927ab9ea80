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
# an additive mask value at or below VANISH (such as upstream's causal masks' lowest
# float) leaves exp(score + value - row max) exactly 0 in a row whose max is above
# ROW_SEEN (for scores below 1e29 in magnitude)
VANISH = tl.constexpr(-1e30)
ROW_SEEN = tl.constexpr(-1e29)


@triton.jit
def _max(x, axis: tl.constexpr):
    return tl.reduce(x, axis, tl.standard._elementwise_max)


@triton.jit
def _min(x, axis: tl.constexpr):
    return tl.reduce(x, axis, tl.standard._elementwise_min)


@triton.jit
def _sum(x, axis: tl.constexpr):
    return tl.reduce(x, axis, tl.standard._sum_combine)


@triton.jit
def _scores(q, kt, Mb, rows, cols, smm, smn, LQ, LK, scale, how,
            MASK: tl.constexpr, CAUSAL: tl.constexpr, PRED: tl.constexpr):
    """scale * q @ kt plus the mask; -inf where a key is hidden or out of range.
    `rows` and `cols` broadcast against each other in either orientation. `how` the
    block takes the mask (`_how`): 0 not at all, 1 read, 2 as a causal mask. It is read
    by a load under a predicate (PRED: faster in the forward, on an H100) or in a branch
    (faster in the backward kernels)."""
    s = tl.dot(q, kt) * scale
    vis = (rows < LQ) & (cols < LK)
    if CAUSAL:
        vis = vis & (cols <= rows + (LK - LQ))
    if PRED and MASK != 0:
        pick = vis & ((cols * 0 + how) == 1)
        if MASK == 1:
            s = s + tl.load(Mb + rows * smm + cols * smn, mask=pick, other=0.0)
        if MASK == 2:
            vis = vis & (tl.load(Mb + rows * smm + cols * smn, mask=pick, other=1) != 0)
        vis = vis & ((cols <= rows + (LK - LQ)) | ((cols * 0 + how) != 2))
    elif not PRED and MASK != 0:
        if how == 1:
            if MASK == 1:
                s = s + tl.load(Mb + rows * smm + cols * smn, mask=vis, other=0.0)
            if MASK == 2:
                vis = vis & (tl.load(Mb + rows * smm + cols * smn, mask=vis, other=0) != 0)
        if how == 2:
            vis = vis & (cols <= rows + (LK - LQ))
    return tl.where(vis, s, NEG)


@triton.jit
def _how(Tb, i, j, NBN, exact, MASK: tl.constexpr):
    """How query block i, key block j takes the mask (`_scores`), from its class
    (`_mask_blocks`): not at all where it changes nothing, as a causal mask where it is
    one (unless `exact`: rows that see only vanishing values need those read), read
    otherwise."""
    if MASK == 0:
        h = 0
    else:
        c = tl.load(Tb + i * NBN + j).to(tl.int32)
        h = tl.where(c == 1, 0, tl.where((c == 2) & (exact == 0), 2, 1))
    return h


@triton.jit
def _span(T0, step, n, lo_cls, hi_cls, SPAN: tl.constexpr):
    """(first, one past the last) block of class lo_cls to hi_cls in a row or column of
    the mask's table: its `n` classes at T0, T0 + step, ... Loops run over these bounds,
    with no test per block around their loads (which would keep Triton from pipelining
    them); any other block inside them is computed like a mixed one, to the same result."""
    i = tl.arange(0, SPAN)
    c = tl.load(T0 + i * step, mask=i < n, other=0)
    take = (c >= lo_cls) & (c <= hi_cls)
    return _min(tl.where(take, i, n), 0), _max(tl.where(take, i + 1, 0), 0)


@triton.jit
def _flag(F, MASK: tl.constexpr):
    """1 where some row of the forward saw only vanishing values (its flag F), else 0:
    the backward then takes vanishing blocks (class 4) and reads causal ones."""
    if MASK == 1:
        f = (tl.load(F) != 0).to(tl.int32)
    else:
        f = 0
    return f


@triton.jit
def _mask_blocks(Mk, T, F, smb, smh, smm, smn, NH, LQ, LK, NBN,
                 MASK: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """The class of one (BLOCK_M, BLOCK_N) block of the mask, for the attention kernels:
    0 hides every score (-inf or False: skipped), 1 changes none (additive 0.0, or all
    True: the mask is not read), 2 is a causal mask (lower right aligned, as CAUSAL's:
    0.0 or True up to the diagonal, -inf, False or values at or below VANISH beyond; not
    read, as upstream's additive causal masks need not be), 3 anything else (NaN
    included), 4 additive values at or below VANISH only (skipped unless a row sees
    nothing else). One table per (batch, head) the mask varies over: T is contiguous (B',
    NH, blocks of queries, NBN). F holds two flags, cleared by the caller: the forward
    sets F[0] when a row needs class 4; this kernel sets F[1] where the mask is not a
    causal one (a block that is neither class 2 nor hidden above the diagonal nor
    unchanged below it), and the forward reads no mask where it stays clear."""
    i = tl.program_id(0)
    j = tl.program_id(1)
    z = tl.program_id(2)
    rows = i * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = j * BLOCK_N + tl.arange(0, BLOCK_N)
    inb = (rows[:, None] < LQ) & (cols[None, :] < LK)
    m = tl.load(Mk + (z // NH) * smb + (z % NH) * smh + rows[:, None] * smm
                + cols[None, :] * smn, mask=inb)
    tri = cols[None, :] <= rows[:, None] + (LK - LQ)
    if MASK == 1:
        live = inb & ((m > NEG) | (m != m))
        zero = inb & (m == 0.0)
        small = inb & (m <= VANISH)
    else:
        live = inb & (m != 0)
        zero = live
        small = inb & (m != m)  # (never)
    causal = (tri & zero) | (~tri & (small | (inb & ~live)))
    n_live = _sum(_sum(live.to(tl.int32), 1), 0)
    n_in = _sum(_sum(inb.to(tl.int32), 1), 0)
    n_zero = _sum(_sum(zero.to(tl.int32), 1), 0)
    n_small = _sum(_sum(small.to(tl.int32), 1), 0)
    n_causal = _sum(_sum(causal.to(tl.int32), 1), 0)
    cls = tl.where(n_live == 0, 0, tl.where(n_zero == n_in, 1, tl.where(
        n_small == n_in, 4, tl.where(n_causal == n_in, 2, 3))))
    n_tri = _sum(_sum((inb & tri).to(tl.int32), 1), 0)
    causal_block = (cls == 2) | ((cls == 1) & (n_tri == n_in)) | (
        ((cls == 0) | (cls == 4)) & (n_tri == 0))
    if not causal_block:
        tl.store(F + 1, 1)
    tl.store(T + (z * tl.num_programs(0) + i) * NBN + j, cls.to(tl.int8))


@triton.jit
def _key_scores(q, Kb, Mb, rows, cols, skn, skd, smm, smn, LQ, LK, D, dq, scale, how,
                MASK: tl.constexpr, CAUSAL: tl.constexpr, PRED: tl.constexpr):
    """The key tile at `cols`, transposed, and the scores of the query `rows` against it."""
    kt = tl.load(Kb + cols[None, :] * skn + dq[:, None] * skd,
                 mask=(cols[None, :] < LK) & (dq[:, None] < D), other=0.0)
    s = _scores(q, kt, Mb, rows[:, None], cols[None, :], smm, smn, LQ, LK, scale, how,
                MASK, CAUSAL, PRED)
    return kt, s


@triton.jit
def _key_span(Tb, start_m, NBN, lo_cls, hi_cls, BLOCK_M: tl.constexpr,
              BLOCK_N: tl.constexpr, LQ, LK, MASK: tl.constexpr, CAUSAL: tl.constexpr,
              SPAN: tl.constexpr):
    """(first key, one past the last key) of the blocks of class lo_cls to hi_cls that a
    query block starting at `start_m` sees."""
    start = 0
    stop = LK
    if CAUSAL:
        stop = tl.minimum(LK, start_m + BLOCK_M + LK - LQ)
    if MASK != 0:
        lo, hi = _span(Tb + (start_m // BLOCK_M) * NBN, 1, NBN, lo_cls, hi_cls, SPAN)
        start = lo * BLOCK_N
        stop = tl.minimum(stop, hi * BLOCK_N)
    return start, stop


@triton.jit
def _fwd_blocks(q, Kb, Vb, Mb, Tb, rows, dq, dv, m_i, l_i, acc, start, stop,
                skn, skd, svn, svd, smm, smn, NBN, LQ, LK, D, DV, scale, exact,
                MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_N: tl.constexpr):
    """The online softmax of the forward over the key blocks from `start` to `stop`."""
    for start_n in range(start, stop, BLOCK_N):
        cols = start_n + tl.arange(0, BLOCK_N)
        how = _how(Tb, tl.program_id(0), start_n // BLOCK_N, NBN, exact, MASK)
        kt, s = _key_scores(q, Kb, Mb, rows, cols, skn, skd, smm, smn, LQ, LK, D, dq,
                            scale, how, MASK, CAUSAL, True)
        m_new = tl.maximum(m_i, _max(s, 1))
        base = tl.where(m_new == NEG, 0.0, m_new)  # rows that see no key yet
        p = tl.exp(s - base[:, None])
        alpha = tl.exp(m_i - base)
        l_i = l_i * alpha + _sum(p, 1)
        vb = tl.load(Vb + cols[:, None] * svn + dv[None, :] * svd,
                     mask=(cols[:, None] < LK) & (dv[None, :] < DV), other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p, vb)
        m_i = m_new
    return m_i, l_i, acc


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
def _fwd(Q, K, V, Mk, T, F, O, LSE,
         sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
         smb, smh, smm, smn, stb, sth, NBN, sob, soh, som, sod,
         H, G, LQ, LK, D, DV, scale,
         MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
         BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
         SPAN: tl.constexpr, FIXUP: tl.constexpr):
    """Attention of one query block of one head over the key blocks the mask's table
    leaves live (classes 1 to 3). Rows that see only vanishing scores that way need the
    vanishing blocks too (upstream's softmax over equal lowest-float scores): they set the
    flag F, and a second launch (FIXUP), after this one with an additive mask, redoes
    their blocks with every live class (its code apart from the first launch's, which
    stays as lean as without it)."""
    if FIXUP:  # (the flag first: most launches end here, before reading anything else)
        top = 4
        redo = tl.load(F) != 0
    else:
        top = 3
        redo = True
    if redo:
        if FIXUP:
            rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
            m_row = tl.load(LSE + 2 * tl.program_id(1) * LQ + rows, mask=rows < LQ, other=0.0)
            odd = (rows < LQ) & ((m_row <= ROW_SEEN) | (m_row == INF))
            redo = _max(odd.to(tl.int32), 0) > 0
    if redo:
        start_m, bh, b, h, hk, rows, dq, q = _query_tile(Q, sqb, sqh, sqm, sqd, H, G, LQ, D,
                                                         BLOCK_M, BLOCK_D)
        _fwd_rows(K, V, Mk, T, F, O, LSE, skb, skh, skn, skd, svb, svh, svn, svd,
                  smb, smh, smm, smn, stb, sth, NBN, sob, soh, som, sod, LQ, LK, D, DV,
                  scale, start_m, bh, b, h, hk, rows, dq, q, top, MASK, CAUSAL, BLOCK_M,
                  BLOCK_N, BLOCK_DV, SPAN, FIXUP)


@triton.jit
def _fwd_rows(K, V, Mk, T, F, O, LSE, skb, skh, skn, skd, svb, svh, svn, svd,
              smb, smh, smm, smn, stb, sth, NBN, sob, soh, som, sod, LQ, LK, D, DV,
              scale, start_m, bh, b, h, hk, rows, dq, q, top, MASK: tl.constexpr,
              CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
              BLOCK_DV: tl.constexpr, SPAN: tl.constexpr, FIXUP: tl.constexpr):
    dv = tl.arange(0, BLOCK_DV)
    Kb = K + b * skb + hk * skh
    Vb = V + b * svb + hk * svh
    Mb = Mk + b * smb + h * smh
    Tb = T + b * stb + h * sth
    m_i = tl.full((BLOCK_M,), NEG, tl.float32)
    l_i = tl.full((BLOCK_M,), 0.0, tl.float32)
    acc = tl.full((BLOCK_M, BLOCK_DV), 0.0, tl.float32)
    causal_mask = False
    if MASK != 0 and not FIXUP:
        causal_mask = tl.load(F + 1) == 0
    if causal_mask:  # (a mask that is a causal one: its code, which reads no mask)
        start, stop = _key_span(Tb, start_m, NBN, 1, top, BLOCK_M, BLOCK_N, LQ, LK, 0,
                                True, SPAN)
        m_i, l_i, acc = _fwd_blocks(q, Kb, Vb, Mb, Tb, rows, dq, dv, m_i, l_i, acc, start,
                                    stop, skn, skd, svn, svd, smm, smn, NBN, LQ, LK, D, DV,
                                    scale, FIXUP, 0, True, BLOCK_N)
    else:
        start, stop = _key_span(Tb, start_m, NBN, 1, top, BLOCK_M, BLOCK_N, LQ, LK, MASK,
                                CAUSAL, SPAN)
        m_i, l_i, acc = _fwd_blocks(q, Kb, Vb, Mb, Tb, rows, dq, dv, m_i, l_i, acc, start,
                                    stop, skn, skd, svn, svd, smm, smn, NBN, LQ, LK, D, DV,
                                    scale, FIXUP, MASK, CAUSAL, BLOCK_N)
    if MASK == 1 and not FIXUP:
        # (-inf: rows that saw no key, which may have vanishing blocks)
        if _min(tl.where(rows < LQ, m_i, INF), 0) <= ROW_SEEN:
            tl.store(F, 1)
    seen = l_i > 0
    out = acc / tl.where(seen, l_i, 1.0)[:, None]
    tl.store(O + b * sob + h * soh + rows[:, None] * som + dv[None, :] * sod, out,
             mask=(rows[:, None] < LQ) & (dv[None, :] < DV))
    # the row's max and log-sum-exp below it, apart: their sum rounds to the max for rows
    # at the lowest float. A row that sees no key has output 0 and, in the backward, no
    # probabilities (max +inf)
    tl.store(LSE + 2 * bh * LQ + rows, tl.where(seen, m_i, INF), mask=rows < LQ)
    tl.store(LSE + (2 * bh + 1) * LQ + rows, tl.log(tl.where(seen, l_i, 1.0)), mask=rows < LQ)


@triton.jit
def _probs(s, LSE, bh, rows, LQ, AXIS: tl.constexpr):
    """exp(s - max - log-sum-exp) of the forward's rows `rows`, along AXIS of s."""
    m = tl.load(LSE + 2 * bh * LQ + rows, mask=rows < LQ, other=INF)
    lg = tl.load(LSE + (2 * bh + 1) * LQ + rows, mask=rows < LQ, other=0.0)
    if AXIS == 1:
        p = tl.exp((s - m[:, None]) - lg[:, None])
    else:
        p = tl.exp((s - m[None, :]) - lg[None, :])
    return p


@triton.jit
def _bwd_kv(Q, K, V, Mk, T, F, DO, LSE, DELTA, DK, DV_,
            sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
            smb, smh, smm, smn, stb, sth, NBN, sdb, sdh, sdm, sdd,
            H, G, LQ, LK, D, DV, scale, GS, sokb, sokh, soks, sokn, sovb, sovh, sovs, sovn,
            MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
            BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
            SPAN: tl.constexpr):
    """dK and dV of one key block of one kv head, summed over GS heads of its group (the
    program's share of them); dK and dV are (B, HK, G / GS, LK, D) through their strides
    (the last one 1)."""
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
    flag = _flag(F, MASK)
    if CAUSAL:  # the first query that sees this block's first key
        lo = tl.maximum(start_n - (LK - LQ), 0) // BLOCK_M * BLOCK_M
    for g in range(0, GS):
        h = hk * G + share * GS + g
        Qb = Q + b * sqb + h * sqh
        DOb = DO + b * sdb + h * sdh
        Mb = Mk + b * smb + h * smh
        Tb = T + b * stb + h * sth
        start = lo
        stop = LQ
        if MASK != 0:  # the query blocks the mask leaves this key block
            qlo, qhi = _span(Tb + tl.program_id(0), NBN, (LQ + BLOCK_M - 1) // BLOCK_M, 1,
                             3 + flag, SPAN)
            start = tl.maximum(start, qlo * BLOCK_M)
            stop = tl.minimum(stop, qhi * BLOCK_M)
        for start_m in range(start, stop, BLOCK_M):
            rows = start_m + offs_m
            how = _how(Tb, start_m // BLOCK_M, tl.program_id(0), NBN, flag, MASK)
            qt = tl.load(Qb + rows[None, :] * sqm + dq[:, None] * sqd,
                         mask=(rows[None, :] < LQ) & (dq[:, None] < D), other=0.0)
            # scores transposed: (keys, queries)
            st = _scores(k, qt, Mb, rows[None, :], cols[:, None], smm, smn, LQ, LK,
                         scale, how, MASK, CAUSAL, False)
            pt = _probs(st, LSE, b * H + h, rows, LQ, 0)
            do = tl.load(DOb + rows[:, None] * sdm + dv[None, :] * sdd,
                         mask=(rows[:, None] < LQ) & (dv[None, :] < DV), other=0.0)
            dvacc += tl.dot(pt, do)
            dpt = tl.dot(v, tl.trans(do))
            delta = tl.load(DELTA + (b * H + h) * LQ + rows, mask=rows < LQ, other=0.0)
            dst = pt * (dpt - delta[None, :])
            dk += tl.dot(dst, tl.trans(qt))
    tl.store(DK + b * sokb + hk * sokh + share * soks + cols[:, None] * sokn + dq[None, :],
             dk * scale, mask=kmask)
    tl.store(DV_ + b * sovb + hk * sovh + share * sovs + cols[:, None] * sovn + dv[None, :],
             dvacc, mask=vmask)


@triton.jit
def _bwd_q(Q, K, V, Mk, T, F, DO, LSE, DELTA, DQ,
           sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
           smb, smh, smm, smn, stb, sth, NBN, sdb, sdh, sdm, sdd,
           H, G, LQ, LK, D, DV, scale, soqb, soqh, soqm,
           MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
           BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
           SPAN: tl.constexpr):
    """dQ of one query block of one head, (B, H, LQ, D) through its strides (the last
    one 1)."""
    start_m, bh, b, h, hk, rows, dq, q = _query_tile(Q, sqb, sqh, sqm, sqd, H, G, LQ, D,
                                                     BLOCK_M, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    dv = tl.arange(0, BLOCK_DV)
    qmask = (rows[:, None] < LQ) & (dq[None, :] < D)
    do = tl.load(DO + b * sdb + h * sdh + rows[:, None] * sdm + dv[None, :] * sdd,
                 mask=(rows[:, None] < LQ) & (dv[None, :] < DV), other=0.0)
    delta = tl.load(DELTA + bh * LQ + rows, mask=rows < LQ, other=0.0)
    Kb = K + b * skb + hk * skh
    Vb = V + b * svb + hk * svh
    Mb = Mk + b * smb + h * smh
    Tb = T + b * stb + h * sth
    acc = tl.full((BLOCK_M, BLOCK_D), 0.0, tl.float32)
    flag = _flag(F, MASK)
    start, stop = _key_span(Tb, start_m, NBN, 1, 3 + flag, BLOCK_M, BLOCK_N, LQ, LK, MASK,
                            CAUSAL, SPAN)
    for start_n in range(start, stop, BLOCK_N):
        cols = start_n + offs_n
        how = _how(Tb, tl.program_id(0), start_n // BLOCK_N, NBN, flag, MASK)
        kt, s = _key_scores(q, Kb, Mb, rows, cols, skn, skd, smm, smn, LQ, LK, D, dq,
                            scale, how, MASK, CAUSAL, False)
        p = _probs(s, LSE, bh, rows, LQ, 1)
        vt = tl.load(Vb + cols[None, :] * svn + dv[:, None] * svd,
                     mask=(cols[None, :] < LK) & (dv[:, None] < DV), other=0.0)
        ds = p * (tl.dot(do, vt) - delta[:, None])
        acc += tl.dot(ds, tl.trans(kt))
    tl.store(DQ + b * soqb + h * soqh + rows[:, None] * soqm + dq[None, :], acc * scale,
             mask=qmask)


@triton.jit
def _delta(O, DO, DELTA, sob, soh, som, sod, sdb, sdh, sdm, sdd, H, LQ, DV,
           BLOCK_M: tl.constexpr, BLOCK_DV: tl.constexpr):
    """rowsum(O * dO) of one query block of one head."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    dv = tl.arange(0, BLOCK_DV)
    m = (rows[:, None] < LQ) & (dv[None, :] < DV)
    o = tl.load(O + b * sob + h * soh + rows[:, None] * som + dv[None, :] * sod, mask=m,
                other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + rows[:, None] * sdm + dv[None, :] * sdd, mask=m,
                 other=0.0)
    tl.store(DELTA + bh * LQ + rows, _sum(o * do, 1), mask=rows < LQ)
