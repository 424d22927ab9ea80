"""scaled_dot_product_attention forward and forward+backward: Ember vs torch vs upstream MLX.

Ember runs `mx.fast.scaled_dot_product_attention` and `mx.vjp` of it (the forward, then
the q, k and v cotangents through a fused backward: torch's kernels, Ember's Triton ones
in float32); torch runs
`F.scaled_dot_product_attention` (with `enable_gqa` for grouped heads) and
`torch.autograd.grad` with the same cotangent; upstream MLX runs `mlx.vjp` where it has
the device. Figures are milliseconds per step (median of repeats of `--iters` steps,
synchronised around each repeat; each repeat times every framework in turn) and ratios
against torch.

Every framework is timed the same way: by default steps are queued without waiting
(Ember and MLX `async_eval`, torch's eager launches), so the figures are throughput;
`--blocking` waits for every step instead (`eval`, `torch.cuda.synchronize`), so they are
latency and include each framework's host time per call. `--count-ops` lists the aten
ops one step of each framework runs on small shapes (CPU unless `--device gpu`): Ember
must launch no more kernels than torch.

    python -m benchmarks.attention [--device gpu|cpu] [--dtypes bfloat16,float16] [--iters 20]
                                   [--blocking] [--count-ops]
"""

import argparse

from benchmarks._timing import fwd_and_grad

# (name, B, Hq, Hkv, Tq, Tkv, D, mask)
CONFIGS = [
    ("mha 2k d128", 4, 32, 32, 2048, 2048, 128, None),
    ("mha 2k d128 causal", 4, 32, 32, 2048, 2048, 128, "causal"),
    ("gqa 32/8 4k d128 causal", 2, 32, 8, 4096, 4096, 128, "causal"),
    ("mha 1k d64", 8, 16, 16, 1024, 1024, 64, None),
    ("gqa 32/8 1k d128 additive mask", 2, 32, 8, 1024, 1024, 128, "additive"),
    ("decode 1 x 4k gqa 32/8 d128", 8, 32, 8, 1, 4096, 128, "causal"),
    # the char-GPT of benchmarks.models at its large size: an additive causal mask
    ("gpt large 512 d64 additive causal", 16, 12, 12, 512, 512, 64, "additive_causal"),
]
SMALL = [("small mha 128 d64", 2, 4, 4, 128, 128, 64, None),
         ("small gqa 128 d64 causal", 2, 4, 2, 128, 128, 64, "causal")]


def _small(cfg):
    """A benchmark config shrunk for counting ops on the CPU (same heads, masks and
    query/key length relation)."""
    name, b, hq, hk, tq, tk, d, mask = cfg
    return (name + " (small)", 1, hq, hk, min(tq, 64), min(tk, 64 if tq > 1 else 256), d,
            mask)


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
    elif mask == "additive_causal":
        m = np.triu(np.full((tq, tk), -np.inf, np.float32), 1 + tk - tq)
    return q, k, v, cot, m


def ember_steps(cfg, device, dtype, blocking):
    """(forward step, forward+backward step, sync) for Ember."""
    import ember.core as mx
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    d, kind = cfg[6], cfg[7]
    dt = getattr(mx, dtype)
    q, k, v, c, m = _inputs(cfg)
    q, k, v, c = (mx.array(a).astype(dt) for a in (q, k, v, c))
    mask = "causal" if kind == "causal" else None if m is None else mx.array(m).astype(dt)
    mx.eval(q, k, v, c, mask if mask is not None and mask != "causal" else q)
    run = mx.eval if blocking else mx.async_eval

    def f(q, k, v):
        return [mx.fast.scaled_dot_product_attention(q, k, v, scale=d ** -0.5, mask=mask)]

    def fwd():
        run(f(q, k, v))

    def fwd_bwd():
        out, grads = mx.vjp(f, [q, k, v], [c])
        run(out, grads)

    return fwd, fwd_bwd, mx.synchronize


def torch_steps(cfg, device, dtype, blocking):
    """(forward step, forward+backward step, sync) for torch."""
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
    wait = sync if blocking else (lambda: None)

    def fwd():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, **kw)
        wait()

    def fwd_bwd():
        y = F.scaled_dot_product_attention(q, k, v, **kw)
        torch.autograd.grad(y, (q, k, v), c)
        wait()

    return fwd, fwd_bwd, sync


def count_ops(cfg, dtype, device="cpu"):
    """{framework: (forward ops, forward+backward ops)}: the aten ops of one step, as
    'name' or 'name xN'."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    def ops(step):
        step()  # (first-call caches)
        with Count() as c:
            step()
        return sum(c.ops.values()), " ".join(
            k if n == 1 else f"{k} x{n}" for k, n in sorted(c.ops.items()))
    out = {}
    for name, steps in (("ember", ember_steps), ("torch", torch_steps)):
        fwd, fwd_bwd, _ = steps(cfg, device, dtype, True)
        out[name] = (ops(fwd), ops(fwd_bwd))
    return out


def mlx_steps(cfg, device, dtype, blocking):
    """(forward step, forward+backward step, sync) for upstream MLX, None without it."""
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
    run = mlx.eval if blocking else mlx.async_eval

    def f(q, k, v):
        return [mlx.fast.scaled_dot_product_attention(q, k, v, scale=d ** -0.5, mask=mask)]

    def fwd():
        run(f(q, k, v))

    def fwd_bwd():
        out, grads = mlx.vjp(f, [q, k, v], [c])
        run(out, grads)

    return fwd, fwd_bwd, mlx.synchronize


def _release_caches():
    import mlx.core as mlx
    import torch
    mlx.synchronize()
    mlx.clear_cache()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def _timed(frameworks, mlx, timed):
    """(fwd_and_grad's figures for `frameworks`, upstream's forward+backward ms as text).
    Upstream is timed along with the others; alone after them where two allocators' caches
    at once exhaust the device (its float32 attention is unfused, so large); or not at all
    where it fails alone."""
    if mlx is None:
        return fwd_and_grad(frameworks, *timed), "n/a"
    try:
        got = fwd_and_grad({**frameworks, "mlx": mlx}, *timed)
        return got, f"{got['mlx'][1] * 1e3:.3f}"
    except RuntimeError as e:
        if "out of memory" not in str(e):
            raise
    _release_caches()
    got = fwd_and_grad(frameworks, *timed)
    _release_caches()
    try:
        alone = fwd_and_grad({"mlx": mlx}, *timed)["mlx"][1]
    except RuntimeError as e:
        return got, "out of memory" if "out of memory" in str(e) else "failed"
    return got, f"{alone * 1e3:.3f} (alone)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, choices=["cpu", "gpu"])
    ap.add_argument("--dtypes", default="bfloat16,float16")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--configs", default=None, help="substring filter on config names")
    ap.add_argument("--no-mlx", action="store_true", help="skip upstream MLX")
    ap.add_argument("--blocking", action="store_true",
                    help="wait for every step (latency) instead of queueing them (throughput)")
    ap.add_argument("--count-ops", action="store_true",
                    help="list the aten ops per step (small shapes) and exit")
    args = ap.parse_args(argv)
    import torch
    if args.count_ops:
        device = args.device or "cpu"
        print("| config | dtype | step | ember ops | torch ops |")
        print("|---|---|---|---|---|")
        for cfg in [_small(c) for c in CONFIGS] + SMALL:
            for dtype in args.dtypes.split(","):
                got = count_ops(cfg, dtype, device)
                for i, step in enumerate(("fwd", "f+b")):
                    (ne, le), (nt, lt) = got["ember"][i], got["torch"][i]
                    print(f"| {cfg[0]} | {dtype} | {step} | {ne}: {le} | {nt}: {lt} |")
        return
    device = args.device or ("gpu" if torch.cuda.is_available() else "cpu")
    configs = CONFIGS if device == "gpu" else SMALL
    if args.configs:
        configs = [c for c in CONFIGS + SMALL if args.configs in c[0]]
    if device == "gpu":
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print("timing:", "every step waited for (latency)" if args.blocking
          else "steps queued, synchronised per repeat (throughput)")
    ms = 1e3
    print("| config | dtype | ember fwd ms | torch fwd ms | ember/torch fwd | ember f+b ms | "
          "torch f+b ms | ember/torch f+b | mlx f+b ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        for dtype in args.dtypes.split(","):
            run = (cfg, device, dtype, args.blocking)
            frameworks = {"ember": ember_steps(*run), "torch": torch_steps(*run)}
            m = None if args.no_mlx else mlx_steps(*run)
            got, mtxt = _timed(frameworks, m, (args.iters, args.repeats, 10))
            (ef, eb), (tf, tb) = got["ember"], got["torch"]
            print(f"| {cfg[0]} | {dtype} | {ef * ms:.3f} | {tf * ms:.3f} | {ef / tf:.2f}x | "
                  f"{eb * ms:.3f} | {tb * ms:.3f} | {eb / tb:.2f}x | {mtxt} |", flush=True)


if __name__ == "__main__":
    main()
