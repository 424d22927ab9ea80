"""Decode-shape quantized matmul: achieved bandwidth of the fused kernels.

For x (M, K) @ dequantize(w (N, K))ᵀ, affine quantization: the Triton kernel alone in
CUDA-graph replay (host launch cost excluded; the graph's own gap between kernels is
not), both with one weight replayed (it stays in the H100's 50 MB L2: "warm", the
`graph_us`/`GBps` columns) and rotating over enough weight copies to overflow L2
("cold": every byte from HBM); the per-call host cost of the kernel wrapper and of the
whole eager Ember op (mx.quantized_matmul + eval; `ember_op_us` per call in a loop with
one sync at the end, `ember_op_sync_us` with a sync per call); torch's dense matmul on
the dequantized weight (in x's dtype, float16 for float32 x; graph and eager). With
upstream MLX's CUDA build on the path, "upstream" lines follow: `kernel_us` and
`mlx_kernel_us` are Ember's and upstream's GPU time per eager op under torch's profiler
(kernel durations, no gaps), `vs_mlx` their ratio, and `mlx_op_us` upstream's host time
per op like `ember_op_us`. Bandwidth
is bytes over kernel time: `GBps` counts the packed weights alone, `GBps_all` adds scales
and biases; `frac` is GBps over the H100's ~3350 GB/s. For 2-8 rows of x,
`triton_graph_us` times the Triton kernels alone (4 bits: the tensor-core kernel of
`cuda_qmv` takes those products).

    python -m benchmarks.quantized_matmul [--shapes 1x4096x4096] [--bits 4 8]
        [--dtypes bfloat16 float16 float32] [--old MODULE]
    python -m benchmarks.quantized_matmul --sweep [--then-bench]   # tune the Triton GEMV
    python -m benchmarks.quantized_matmul --sweep-decode ...   # tune the CUDA C decode kernel

`--old` names a copy of an earlier `triton_quantized` module to time beside the current
one (e.g. saved as benchmarks/_qmm_old.py).
"""

import argparse
import statistics
import time

import numpy as np

PEAK_GBPS = 3350.0
L2_BYTES = 50 * 2**20


def _cuda_time(torch, fn, repeats, warmup=10, inner=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(inner):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / inner)
    return statistics.median(times)


def _graph_time(torch, fns, repeats, count=40):
    """Microseconds per call of the callables `fns` (used in turn), replayed `count` at a
    time from one CUDA graph."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(count):
            fns[i % len(fns)]()
    return _cuda_time(torch, g.replay, repeats, warmup=3, inner=1) / count


def _wall_time(fn, repeats, warmup=5, inner=20, sync=None):
    """Host microseconds per call (median of `repeats` runs of `inner` calls; `sync`,
    when given, runs after each batch and is counted)."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t) * 1e6 / inner)
    return statistics.median(times)


def _setup(m, n, k, bits, gs, dtype, copies=1, seed=0):
    import torch

    import ember.core as mx
    from ember.core._backend import kernels_quantized as KQ
    rng = np.random.default_rng(seed)
    dt = getattr(mx, dtype)
    x = rng.standard_normal((m, k)).astype(np.float32)
    with mx.stream(mx.gpu):
        xe = mx.array(x).astype(dt)
        ws = []
        for c in range(copies):
            w = mx.array(rng.standard_normal((n, k)).astype(np.float32))
            ws.append(mx.quantize(w.astype(dt), gs, bits))
        mx.eval(xe, *ws)
    ts = [tuple(a._data for a in wq) for wq in ws]
    tw, tsc, tb = ts[0]
    wd = KQ.affine_dequantize(tw, tsc.float(), tb.float(), gs, bits, torch.float32)
    return xe, ws, xe._data, ts, wd


def bench(m, n, k, bits, gs, dtype, repeats, old=None):
    import torch

    import ember.core as mx
    from ember.core._backend import triton_quantized as T

    wbytes = n * k * bits / 8
    xe, ws, tx, ts, wd = _setup(m, n, k, bits, gs, dtype)
    tw, tsc, tb = ts[0]
    sbytes = 2 * tsc.numel() * tsc.element_size()
    row = {"shape": f"{m}x{k}@{n}x{k}", "x": dtype, "bits": bits, "gs": gs}

    ref = tx.double() @ wd.double().T
    out = T.quantized_matmul(tx, tw, tsc, tb, True, gs, bits)
    row["rel_err"] = ((out.double() - ref).abs().max() / ref.abs().max()).item()

    def kernel():
        T.quantized_matmul(tx, tw, tsc, tb, True, gs, bits)

    row["graph_us"] = _graph_time(torch, [kernel], repeats)
    from ember.core._backend import cuda_qmv
    if bits == 4 and dtype != "float32":  # the Triton kernels alone, where CUDA C takes over
        cuda_qmv.ENABLED = False
        row["triton_graph_us"] = _graph_time(torch, [kernel], repeats)
        cuda_qmv.ENABLED = True
    row["GBps"] = wbytes / row["graph_us"] / 1e3
    row["GBps_all"] = (wbytes + sbytes) / row["graph_us"] / 1e3
    row["frac"] = row["GBps"] / PEAK_GBPS
    copies = int(2 * L2_BYTES // (wbytes + sbytes)) + 1
    _, _, _, tsets, _ = _setup(m, n, k, bits, gs, dtype, copies=copies, seed=1)
    cold = [lambda t=t: T.quantized_matmul(tx, t[0], t[1], t[2], True, gs, bits)
            for t in tsets]
    row["cold_us"] = _graph_time(torch, cold, repeats, count=2 * copies)
    row["cold_GBps"] = wbytes / row["cold_us"] / 1e3
    del tsets, cold
    # host cost: the wrapper alone (no sync: the GPU is faster than the host here), and
    # the whole eager Ember op, without and with a synchronization per call
    row["wrapper_us"] = _wall_time(kernel, repeats)
    if old is not None:
        def old_kernel():
            old.quantized_matmul(tx, tw, tsc, tb, True, gs, bits)
        row["old_graph_us"] = _graph_time(torch, [old_kernel], repeats)
        row["old_GBps"] = wbytes / row["old_graph_us"] / 1e3
        row["old_wrapper_us"] = _wall_time(old_kernel, repeats)
    wq = ws[0]

    def op():
        mx.eval(mx.quantized_matmul(xe, *wq, group_size=gs, bits=bits))

    row["ember_op_us"] = _wall_time(op, repeats, sync=torch.cuda.synchronize)
    row["ember_op_sync_us"] = _wall_time(lambda: (op(), torch.cuda.synchronize()), repeats,
                                         inner=1)
    # torch's dense matmul at x's dtype (float16 for the reference row of float32 x)
    tdt = torch.float16 if dtype == "float32" else tx.dtype
    dense = wd.to(tdt)
    xd = tx.to(tdt)

    def tmm():
        torch.matmul(xd, dense.T)

    row["torch_dense_us"] = _graph_time(torch, [tmm], repeats)
    row["torch_dense_GBps"] = n * k * 2 / row["torch_dense_us"] / 1e3
    row["torch_eager_us"] = _wall_time(tmm, repeats, sync=torch.cuda.synchronize)
    return row


def versus_upstream(m, n, k, bits, gs, dtype, repeats):
    """GPU time per eager op under the profiler, the same way for Ember's op and
    upstream's, and upstream's host time per op; None without upstream's CUDA build. Run
    after every `bench`: the profiler slows CUDA-graph replays that follow it."""
    import torch

    import ember.core as mx
    up = _upstream_op(m, n, k, bits, gs, dtype)
    if up is None:
        return None
    xe, ws, _, _, _ = _setup(m, n, k, bits, gs, dtype)

    def op():
        mx.eval(mx.quantized_matmul(xe, *ws[0], group_size=gs, bits=bits))
    row = {"shape": f"{m}x{k}@{n}x{k}", "x": dtype, "bits": bits,
           "kernel_us": _kernel_us(torch, op), "mlx_kernel_us": _kernel_us(torch, up),
           "mlx_op_us": _wall_time(up, repeats, sync=torch.cuda.synchronize)}
    row["vs_mlx"] = row["kernel_us"] / row["mlx_kernel_us"]
    return row


def _kernel_us(torch, step, calls=50):
    """Microseconds of GPU kernels per call of `step`: the sum of the durations of every
    kernel torch's profiler records (CUPTI sees the whole process: upstream MLX's
    kernels too), over `calls` calls. Launch gaps are not counted."""
    from torch.profiler import ProfilerActivity, profile
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            step()
        torch.cuda.synchronize()
    return sum(e.device_time_total for e in prof.key_averages()) / calls


def _upstream_op(m, n, k, bits, gs, dtype):
    """Upstream MLX's quantized_matmul on the GPU with the same x and weights as
    `_setup`, as a callable (evaluated per call); None without upstream's CUDA build."""
    try:
        import mlx.core as mlx
    except ImportError:
        return None
    if not mlx.is_available(mlx.gpu):
        return None
    rng = np.random.default_rng(0)
    dt = getattr(mlx, dtype)
    with mlx.stream(mlx.gpu):
        x = mlx.array(rng.standard_normal((m, k)).astype(np.float32)).astype(dt)
        w = mlx.array(rng.standard_normal((n, k)).astype(np.float32)).astype(dt)
        wq = mlx.quantize(w, gs, bits)
        mlx.eval(x, *wq)

    def op():
        with mlx.stream(mlx.gpu):
            mlx.eval(mlx.quantized_matmul(x, *wq, group_size=gs, bits=bits))
    return op


def sweep(m, n, k, bits, gs, dtype, configs, repeats):
    """Decode-kernel configurations (see _configs) ->
    graph-replay µs, GB/s of packed weights, registers and spills, error."""
    import torch

    from ember.core._backend import triton_quantized as T
    _, _, tx, ts, wd = _setup(m, n, k, bits, gs, dtype)
    tw, tsc, tb = ts[0]
    w32 = T.words32(tw)
    ref = tx.double() @ wd.double().T
    rows = []
    for cfg in configs:
        fn, grid, meta, opts = T._plan(m, n, k, tx.dtype, True, bits, gs, cfg)
        out = torch.empty((m, n), dtype=tx.dtype, device=tx.device)
        args = (tx, w32, tsc, tb, out, m, n, k, tx.stride(0), w32.stride(0), tsc.stride(0), n)
        try:
            kern = fn[grid](*args, **meta, **opts)
        except Exception as e:  # noqa: BLE001 - a configuration that does not compile
            print(f"  {cfg}: {type(e).__name__}: {str(e)[:80]}", flush=True)
            continue
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        us = _graph_time(torch, [lambda: fn[grid](*args, **meta, **opts)], repeats)
        gbps = n * k * bits / 8 / us / 1e3
        rows.append((us, cfg, gbps, kern.n_regs, kern.n_spills, err))
        print(f"  {cfg}: {us:6.2f} us {gbps:7.0f} GB/s regs={kern.n_regs} "
              f"spills={kern.n_spills} err={err:.1e}", flush=True)
    rows.sort(key=lambda r: r[0])
    return rows


def _configs(bits, k, n=4096):
    """Decode-kernel candidates (BLOCK_N, BLOCK_K, KSPLIT, warps, stages, PREFETCH): a
    warp's threads cover 128 packed words of a slice; slices spread K over the warps."""
    pack = 32 // bits
    out = []
    for ks in (1, 2, 4, 8):
        for bk in (64 * pack, 128 * pack):
            for warps in (ks, 2 * ks, 4 * ks):
                for bn in (2, 4, 8, 16, 32):
                    words = bn * bk * ks // pack // (32 * warps)  # per thread and step
                    if (warps > 8 or ks * bk > k or not 8 <= words <= 32 or n // bn < 132
                            or warps * 32 > bn * bk * ks // pack // 4):
                        continue
                    for pre in (0, 1):
                        out.append((bn, bk, ks, warps, 1, pre))
    return out


def sweep_decode(n, k, gs, dtype, repeats):
    """Configurations of the CUDA C decode kernel (cuda_qmv.gemv_config: rows per warp,
    warps per program, words per float16 sum) -> graph-replay µs, GB/s of packed
    weights, error."""
    import torch

    from ember.core._backend import cuda_qmv
    from ember.core._backend import triton_quantized as T
    _, _, tx, ts, wd = _setup(1, n, k, 4, gs, dtype)
    tw, tsc, tb = ts[0]
    w32 = T.words32(tw)
    ref = tx.double() @ wd.double().T
    rows = []
    for cfg in [(r, w, pw) for r in (2, 4, 8) for w in (4, 8, 16) for pw in (1, 2)
                if r * -(-k // 1024) <= 32]:  # (a lane's codes in registers)
        out = cuda_qmv.gemv(tx, w32, tsc, tb, gs, cfg)
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        us = _graph_time(torch, [lambda c=cfg: cuda_qmv.gemv(tx, w32, tsc, tb, gs, c)], repeats)
        rows.append((us, cfg, n * k / 2 / us / 1e3, err))
    rows.sort(key=lambda r: r[0])
    for us, cfg, gbps, err in rows:
        print(f"  decode {dtype} {k}x{n} {cfg}: {us:6.2f} us {gbps:7.0f} GB/s "
              f"({gbps / PEAK_GBPS:.0%}) err={err:.1e}", flush=True)
    return rows


def _fmt(r):
    return "  ".join(f"{key}={v:.3g}" if isinstance(v, float) else f"{key}={v}"
                     for key, v in r.items())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="1x4096x4096")
    p.add_argument("--bits", type=int, nargs="+", default=[4, 8])
    p.add_argument("--dtypes", nargs="+", default=["bfloat16", "float16", "float32"])
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--sweep", action="store_true", help="tune the decode kernel instead")
    p.add_argument("--then-bench", action="store_true",
                   help="after --sweep, benchmark with the best configurations")
    p.add_argument("--old", help="module path of a previous triton_quantized, compared")
    p.add_argument("--sweep-decode", action="store_true",
                   help="tune the CUDA C decode kernel (4 bits, one row of x) first")
    a = p.parse_args(argv)
    if a.sweep_decode:
        for sh in a.shapes.split(","):
            m, k, n = (int(v) for v in sh.split("x"))
            for dtype in a.dtypes:
                if dtype != "float32" and m == 1:
                    sweep_decode(n, k, a.group_size, dtype, a.repeats)
    old = None
    if a.old:
        import importlib
        old = importlib.import_module(a.old)
    for sh in a.shapes.split(","):
        m, k, n = (int(v) for v in sh.split("x"))
        best = {}
        if a.sweep:
            best = _sweep_all(m, n, k, a)
            if not a.then_bench:
                continue
        from ember.core._backend import triton_quantized as T
        for bits in a.bits:
            for dtype in a.dtypes:
                # (--then-bench: the whole op with the best configuration found, set as
                # the decode kernel's default for this run)
                T.GEMV_OVERRIDE = best.get((bits, dtype), best.get((bits, a.dtypes[0])))
                T._PLANS.clear()
                T._LAUNCHERS.clear()
                print(_fmt(bench(m, n, k, bits, a.group_size, dtype, a.repeats, old)),
                      flush=True)
    for sh in a.shapes.split(","):
        m, k, n = (int(v) for v in sh.split("x"))
        for bits in a.bits:
            for dtype in a.dtypes:
                row = versus_upstream(m, n, k, bits, a.group_size, dtype, a.repeats)
                if row is not None:
                    print("upstream", _fmt(row), flush=True)


def _sweep_all(m, n, k, a):
    """All candidate configurations (no prefetch) for the first bits and dtype, then the
    best ten with prefetch; the best dozen (K scaled to the same bytes) for the other
    bit widths; the best few for the other dtypes. Returns {(bits, dtype): best}."""
    bits0, dt0 = a.bits[0], a.dtypes[0]
    print(f"sweep {m}x{k}@{n}x{k} bits={bits0} {dt0}", flush=True)
    cands = [c for c in _configs(bits0, k, n) if not c[-1]]
    rows = sweep(m, n, k, bits0, a.group_size, dt0, cands, a.repeats)
    rows += sweep(m, n, k, bits0, a.group_size, dt0, [r[1][:-1] + (1,) for r in rows[:10]],
                  a.repeats)
    rows.sort(key=lambda r: r[0])
    for r in rows[:8]:
        print(f"  best {r[1]}: {r[0]:.2f} us {r[2]:.0f} GB/s", flush=True)
    best = {(bits0, dt0): rows[0][1]}
    top = [r[1] for r in rows[:12]]
    for bits in a.bits[1:]:
        cfgs = list(dict.fromkeys(top + [(c[0], c[1] * bits0 // bits) + c[2:] for c in top]))
        print(f"sweep bits={bits} {dt0}", flush=True)
        rb = sweep(m, n, k, bits, a.group_size, dt0, cfgs, a.repeats)
        for r in rb[:5]:
            print(f"  best {r[1]}: {r[0]:.2f} us {r[2]:.0f} GB/s", flush=True)
        best[(bits, dt0)] = rb[0][1]
    for dt in a.dtypes[1:]:
        print(f"sweep bits={bits0} {dt}", flush=True)
        rd = sweep(m, n, k, bits0, a.group_size, dt, top[:6], a.repeats)
        for r in rd[:3]:
            print(f"  best {r[1]}: {r[0]:.2f} us {r[2]:.0f} GB/s", flush=True)
        best[(bits0, dt)] = rd[0][1]
    return best


if __name__ == "__main__":
    main()
