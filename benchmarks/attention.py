"""scaled_dot_product_attention forward and forward+backward: Ember vs torch vs upstream MLX.

Ember runs `mx.fast.scaled_dot_product_attention` and `mx.vjp` of it (the forward, then
the q, k and v cotangents through torch's fused backward); torch runs
`F.scaled_dot_product_attention` (with `enable_gqa` for grouped heads) and
`torch.autograd.grad` with the same cotangent; upstream MLX runs `mlx.vjp` where it has
the device. Figures are milliseconds per step (median of repeats of `--iters` steps,
CUDA-synchronised around each repeat) and ratios against torch.

    python -m benchmarks.attention [--device gpu|cpu] [--dtypes bfloat16,float16] [--iters 20]
"""

import argparse
import statistics
import time

# (name, B, Hq, Hkv, Tq, Tkv, D, mask)
CONFIGS = [
    ("mha 2k d128", 4, 32, 32, 2048, 2048, 128, None),
    ("mha 2k d128 causal", 4, 32, 32, 2048, 2048, 128, "causal"),
    ("gqa 32/8 4k d128 causal", 2, 32, 8, 4096, 4096, 128, "causal"),
    ("mha 1k d64", 8, 16, 16, 1024, 1024, 64, None),
    ("gqa 32/8 1k d128 additive mask", 2, 32, 8, 1024, 1024, 128, "additive"),
    ("decode 1 x 4k gqa 32/8 d128", 8, 32, 8, 1, 4096, 128, "causal"),
]
SMALL = [("small mha 128 d64", 2, 4, 4, 128, 128, 64, None),
         ("small gqa 128 d64 causal", 2, 4, 2, 128, 128, 64, "causal")]


def _median_time(step, sync, iters, repeats, warmup=3):
    for _ in range(warmup):
        step()
    sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        sync()
        ts.append((time.perf_counter() - t0) / iters)
    return statistics.median(ts)


def _inputs(cfg, seed=0):
    import numpy as np
    _, b, hq, hk, tq, tk, d, mask = cfg
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, hq, tq, d)).astype(np.float32)
    k = rng.standard_normal((b, hk, tk, d)).astype(np.float32)
    v = rng.standard_normal((b, hk, tk, d)).astype(np.float32)
    cot = rng.standard_normal((b, hq, tq, d)).astype(np.float32)
    m = None
    if mask == "additive":
        m = (rng.standard_normal((1, 1, tq, tk)) * 0.5).astype(np.float32)
    return q, k, v, cot, m


def bench_ember(cfg, device, dtype, iters, repeats):
    import torch

    import ember.core as mx
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    d, kind = cfg[6], cfg[7]
    dt = getattr(mx, dtype)
    q, k, v, c, m = _inputs(cfg)
    q, k, v, c = (mx.array(a).astype(dt) for a in (q, k, v, c))
    mask = "causal" if kind == "causal" else None if m is None else mx.array(m).astype(dt)
    mx.eval(q, k, v, c, mask if mask is not None and mask != "causal" else q)
    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)

    def f(q, k, v):
        return [mx.fast.scaled_dot_product_attention(q, k, v, scale=d ** -0.5, mask=mask)]

    def fwd():
        mx.eval(f(q, k, v))

    def fwd_bwd():
        out, grads = mx.vjp(f, [q, k, v], [c])
        mx.eval(out, grads)

    return (_median_time(fwd, sync, iters, repeats),
            _median_time(fwd_bwd, sync, iters, repeats))


def bench_torch(cfg, device, dtype, iters, repeats):
    import torch
    import torch.nn.functional as F
    dev = "cuda" if device == "gpu" else "cpu"
    dt = getattr(torch, dtype)
    _, _, hq, hk, tq, tk, d, kind = cfg
    q, k, v, c, m = (None if a is None else torch.from_numpy(a).to(dev, dt)
                     for a in _inputs(cfg))
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    kw = {"scale": d ** -0.5}
    if hq != hk:
        kw["enable_gqa"] = True
    if kind == "causal":
        if tq == tk:
            kw["is_causal"] = True
        elif tq > 1:  # MLX aligns the causal mask to the lower right
            from torch.nn.attention.bias import causal_lower_right
            kw["attn_mask"] = causal_lower_right(tq, tk)
    elif m is not None:
        kw["attn_mask"] = m
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def fwd():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, **kw)

    def fwd_bwd():
        y = F.scaled_dot_product_attention(q, k, v, **kw)
        torch.autograd.grad(y, (q, k, v), c)

    return (_median_time(fwd, sync, iters, repeats),
            _median_time(fwd_bwd, sync, iters, repeats))


def bench_mlx(cfg, device, dtype, iters, repeats):
    try:
        import mlx.core as mlx
    except ImportError:
        return None
    if device == "gpu" and not mlx.is_available(mlx.gpu):
        return None
    mlx.set_default_device(mlx.gpu if device == "gpu" else mlx.cpu)
    d, kind = cfg[6], cfg[7]
    dt = getattr(mlx, dtype)
    q, k, v, c, m = _inputs(cfg)
    q, k, v, c = (mlx.array(a).astype(dt) for a in (q, k, v, c))
    mask = "causal" if kind == "causal" else None if m is None else mlx.array(m).astype(dt)
    mlx.eval(q, k, v, c)

    def f(q, k, v):
        return [mlx.fast.scaled_dot_product_attention(q, k, v, scale=d ** -0.5, mask=mask)]

    def fwd():
        mlx.eval(f(q, k, v))

    def fwd_bwd():
        out, grads = mlx.vjp(f, [q, k, v], [c])
        mlx.eval(out, grads)

    return (_median_time(fwd, lambda: None, iters, repeats),
            _median_time(fwd_bwd, lambda: None, iters, repeats))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, choices=["cpu", "gpu"])
    ap.add_argument("--dtypes", default="bfloat16,float16")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--configs", default=None, help="substring filter on config names")
    ap.add_argument("--no-mlx", action="store_true", help="skip upstream MLX")
    args = ap.parse_args(argv)
    import torch
    device = args.device or ("gpu" if torch.cuda.is_available() else "cpu")
    configs = CONFIGS if device == "gpu" else SMALL
    if args.configs:
        configs = [c for c in CONFIGS + SMALL if args.configs in c[0]]
    if device == "gpu":
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    ms = 1e3
    print("| config | dtype | ember fwd ms | torch fwd ms | ember/torch fwd | ember f+b ms | "
          "torch f+b ms | ember/torch f+b | mlx f+b ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        for dtype in args.dtypes.split(","):
            ef, eb = bench_ember(cfg, device, dtype, args.iters, args.repeats)
            tf, tb = bench_torch(cfg, device, dtype, args.iters, args.repeats)
            m = None if args.no_mlx else bench_mlx(cfg, device, dtype, args.iters, args.repeats)
            mtxt = f"{m[1] * ms:.3f}" if m else "n/a"
            print(f"| {cfg[0]} | {dtype} | {ef * ms:.3f} | {tf * ms:.3f} | {ef / tf:.2f}x | "
                  f"{eb * ms:.3f} | {tb * ms:.3f} | {eb / tb:.2f}x | {mtxt} |", flush=True)


if __name__ == "__main__":
    main()
