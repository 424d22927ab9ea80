"""Per-op overhead: build and evaluate a chain of 200 adds on small arrays.

Ember, upstream MLX and torch eager in one run on one device; figures are microseconds per
op (median of repeats) and ratios against torch and MLX.

    python -m benchmarks.overhead [--device cpu|gpu] [--ops 200] [--size 16] [--repeats 50]
"""

import argparse
import statistics
import time


def median_time(fn, repeats, warmup=5):
    """Median seconds of `fn()` over `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_ember(device, n_ops, size, repeats):
    import ember.core as mx
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    x = mx.ones((size,))
    b = mx.full((size,), 1e-3)
    mx.eval(x, b)

    def chain():
        y = x
        for _ in range(n_ops):
            y = y + b
        return y

    def run():
        mx.eval(chain())

    total = median_time(run, repeats)
    build = median_time(chain, repeats)
    return total / n_ops, build / n_ops


def bench_mlx(device, n_ops, size, repeats):
    try:
        import mlx.core as mlx
    except ImportError:
        return None
    if device == "gpu":
        if not mlx.is_available(mlx.gpu):
            return None
        mlx.set_default_device(mlx.gpu)
    else:
        mlx.set_default_device(mlx.cpu)
    x = mlx.ones((size,))
    b = mlx.full((size,), 1e-3)
    mlx.eval(x, b)

    def run():
        y = x
        for _ in range(n_ops):
            y = y + b
        mlx.eval(y)

    return median_time(run, repeats) / n_ops


def bench_torch(device, n_ops, size, repeats):
    import torch
    dev = "cuda" if device == "gpu" else "cpu"
    x = torch.ones(size, device=dev)
    b = torch.full((size,), 1e-3, device=dev)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def run():
        y = x
        for _ in range(n_ops):
            y = y + b
        sync()

    return median_time(run, repeats) / n_ops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--ops", type=int, default=200)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=50)
    args = p.parse_args(argv)
    e_total, e_build = bench_ember(args.device, args.ops, args.size, args.repeats)
    m = bench_mlx(args.device, args.ops, args.size, args.repeats)
    t = bench_torch(args.device, args.ops, args.size, args.repeats)
    us = 1e6
    print(f"chain of {args.ops} adds on ({args.size},) float32, device={args.device}")
    print("| framework | us/op | vs torch | vs mlx |")
    print("|---|---|---|---|")
    mtxt = f"{m * us:.2f}" if m else "n/a"
    print(f"| ember (build+eval) | {e_total * us:.2f} | {e_total / t:.2f}x | "
          f"{(e_total / m) if m else float('nan'):.2f}x |")
    print(f"| ember (build only) | {e_build * us:.2f} | | |")
    print(f"| mlx | {mtxt} | {(m / t) if m else float('nan'):.2f}x | 1.00x |")
    print(f"| torch eager | {t * us:.2f} | 1.00x | |")


if __name__ == "__main__":
    main()
