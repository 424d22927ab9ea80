"""random.normal of many floats: Ember vs torch.randn vs upstream MLX.

Figures are milliseconds per call (median of repeats, device-synchronised) and ratios
against torch. Ember and MLX draw from an explicit key, as a training loop would.

    python -m benchmarks.random_normal [--device gpu|cpu] [--n 100000000] [--repeats 10]
"""

import argparse

from benchmarks._timing import median_time


def _median(fn, sync, repeats):
    return median_time(fn, sync, 1, repeats, warmup=2)


def _sync(device):
    import torch
    return torch.cuda.synchronize if device == "gpu" else (lambda: None)


def bench_ember(device, n, repeats):
    import ember.core as mx
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    k = mx.random.key(0)
    return _median(lambda: mx.eval(mx.random.normal((n,), key=k)), _sync(device), repeats)


def bench_torch(device, n, repeats):
    import torch
    dev = "cuda" if device == "gpu" else "cpu"
    g = torch.Generator(device=dev).manual_seed(0)
    return _median(lambda: torch.randn(n, device=dev, generator=g), _sync(device), repeats)


def bench_mlx(device, n, repeats):
    try:
        import mlx.core as mlx
    except ImportError:
        return None
    d = mlx.gpu if device == "gpu" else mlx.cpu
    if not mlx.is_available(d):
        return None
    mlx.set_default_device(d)
    k = mlx.random.key(0)
    return _median(lambda: mlx.eval(mlx.random.normal((n,), key=k)), lambda: None, repeats)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="gpu", choices=["cpu", "gpu"])
    p.add_argument("--n", type=int, default=100_000_000)
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args(argv)
    e = bench_ember(a.device, a.n, a.repeats)
    t = bench_torch(a.device, a.n, a.repeats)
    m = bench_mlx(a.device, a.n, a.repeats)
    print(f"random.normal of {a.n} float32, device={a.device}")
    print("| framework | ms | vs torch |")
    print("|---|---|---|")
    print(f"| ember | {e * 1e3:.2f} | {e / t:.2f}x |")
    print(f"| mlx | {m * 1e3:.2f} | {m / t:.2f}x |" if m else "| mlx | n/a | |")
    print(f"| torch.randn | {t * 1e3:.2f} | 1.00x |")


if __name__ == "__main__":
    main()
