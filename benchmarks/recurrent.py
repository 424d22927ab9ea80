"""nn.RNN / nn.GRU / nn.LSTM forward and value_and_grad: Ember vs torch eager (vs upstream
MLX on the CPU).

Ember runs the layer (`out = layer(x)`, for LSTM the hidden states) and
`nn.value_and_grad` of `sum(out ** 2)` with respect to the parameters; torch runs
`torch.nn.RNN/GRU/LSTM(batch_first=True)` and `backward()` of the same loss; MLX runs
its own layer the same way. Figures are milliseconds per step (each step waits for its
result) and ratios against torch.

    python -m benchmarks.recurrent [--device gpu|cpu] [--threads 1] [--iters 20]
"""

import argparse

from benchmarks._timing import median_time

# (N, L, D, H)
CONFIGS = [(2, 32, 64, 128), (8, 128, 256, 512)]
LAYERS = ["RNN", "GRU", "LSTM"]


def _mlx_like(mx, nn, name, cfg, iters):
    """(forward, value_and_grad) seconds per step of the layer in Ember or upstream MLX
    (module handles `mx`, `nn`), on their default device."""
    import numpy as np
    n, length, d, h = cfg
    layer = getattr(nn, name)(d, h)
    x = mx.array(np.random.default_rng(0).standard_normal((n, length, d)).astype("float32"))
    mx.eval(layer.parameters(), x)

    def out(model, x):
        y = model(x)
        return y[0] if name == "LSTM" else y

    def fwd():
        mx.eval(out(layer, x))

    vg = nn.value_and_grad(layer, lambda m, x: (out(m, x) ** 2).sum())

    def train():
        mx.eval(vg(layer, x))
    return (median_time(fwd, mx.synchronize, iters, 5, 3),
            median_time(train, mx.synchronize, iters, 5, 3))


def _ember(name, cfg, dev, iters):
    import ember.core as mx
    import ember.nn as nn
    mx.set_default_device(mx.gpu if dev == "gpu" else mx.cpu)
    return _mlx_like(mx, nn, name, cfg, iters)


def _mlx(name, cfg, iters):
    import mlx.core as mlx
    import mlx.nn as mnn
    return _mlx_like(mlx, mnn, name, cfg, iters)


def _torch(name, cfg, dev, iters):
    import torch
    n, length, d, h = cfg
    device = "cuda" if dev == "gpu" else "cpu"
    layer = getattr(torch.nn, name)(d, h, batch_first=True).to(device)
    x = torch.randn(n, length, d, device=device)
    sync = torch.cuda.synchronize if dev == "gpu" else (lambda: None)

    def fwd():
        with torch.no_grad():
            layer(x)[0]
        sync()

    def train():
        layer.zero_grad(set_to_none=True)
        (layer(x)[0] ** 2).sum().backward()
        sync()
    return (median_time(fwd, sync, iters, 5, 3), median_time(train, sync, iters, 5, 3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--no-mlx", action="store_true")
    args = ap.parse_args()
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{'layer':6} {'N,L,D->H':18} {'':5} {'ember ms':>9} {'torch ms':>9} {'x torch':>8}"
          f" {'mlx ms':>9}")
    for cfg in CONFIGS:
        for name in LAYERS:
            e = _ember(name, cfg, args.device, args.iters)
            t = _torch(name, cfg, args.device, args.iters)
            m = (None, None) if args.no_mlx or args.device == "gpu" else \
                _mlx(name, cfg, args.iters)
            for i, what in enumerate(("fwd", "train")):
                mm = "" if m[i] is None else f"{m[i] * 1e3:9.3f}"
                print(f"{name:6} {str(cfg):18} {what:5} {e[i] * 1e3:9.3f} {t[i] * 1e3:9.3f} "
                      f"{e[i] / t[i]:8.2f} {mm}")


if __name__ == "__main__":
    main()
