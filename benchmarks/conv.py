"""conv2d forward and forward+backward: Ember vs torch vs upstream MLX.

Ember runs `mx.vjp` of `conv2d` (the forward, then the input and weight cotangents);
torch runs `F.conv2d` on channels-last tensors (the memory layout of MLX's NHWC arrays)
and `torch.autograd.grad` with the same cotangent; upstream MLX runs `mlx.vjp` where it
has the device. Figures are milliseconds per step (median of repeats of `--iters` steps,
CUDA-synchronised around each repeat; each repeat times every framework in turn) and
ratios against torch.

Both sides are timed the same way. By default steps are queued without waiting (Ember's
`async_eval`, torch's eager launches), so a figure is the device time of a step unless the
host falls behind. `--sync` waits for every step instead (Ember's `eval`, which blocks like
upstream's, and `torch.cuda.synchronize()` after each torch step): host overhead, launch
latency and device time then add up, for both.

    python -m benchmarks.conv [--device gpu|cpu] [--dtypes float32,bfloat16] [--iters 20]
                              [--sync]
"""

import argparse

from benchmarks._timing import fwd_and_grad

# (name, N, H, W, C_in, C_out, kernel, stride, padding, groups)
CONFIGS = [
    ("resnet 56x56 64->64 3x3", 32, 56, 56, 64, 64, 3, 1, 1, 1),
    ("resnet 28x28 128->128 3x3", 32, 28, 28, 128, 128, 3, 1, 1, 1),
    ("resnet 14x14 256->256 3x3 s2", 32, 28, 28, 256, 256, 3, 2, 1, 1),
    ("1x1 56x56 64->256", 32, 56, 56, 64, 256, 1, 1, 0, 1),
    ("stem 224x224 3->64 7x7 s2", 16, 224, 224, 3, 64, 7, 2, 3, 1),
    ("depthwise 56x56 128 3x3", 32, 56, 56, 128, 128, 3, 1, 1, 128),
]
SMALL = [("small 16x16 8->16 3x3", 4, 16, 16, 8, 16, 3, 1, 1, 1)]


def _inputs(cfg, seed=0):
    import numpy as np
    _, n, h, w, ci, co, k, s, p, g = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, ci)).astype(np.float32)
    wt = (rng.standard_normal((co, k, k, ci // g)) / np.sqrt(k * k * ci / g)).astype(np.float32)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    cot = rng.standard_normal((n, ho, wo, co)).astype(np.float32)
    return x, wt, cot


def ember_steps(cfg, device, dtype, each_step=False):
    """(forward step, forward+backward step, sync) for Ember."""
    import torch

    import ember.core as mx
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    _, _, _, _, _, _, _, s, p, g = cfg
    dt = getattr(mx, dtype)
    x, w, c = (mx.array(a).astype(dt) for a in _inputs(cfg))
    mx.eval(x, w, c)
    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)
    run = mx.eval if each_step else mx.async_eval

    def f(x, w):
        return [mx.conv2d(x, w, stride=s, padding=p, groups=g)]

    def fwd():
        run(f(x, w))

    def fwd_bwd():
        # the output and the cotangents of both operands, as torch's autograd.grad below
        out, grads = mx.vjp(f, [x, w], [c])
        run(out, grads)

    return fwd, fwd_bwd, sync


def torch_steps(cfg, device, dtype, each_step=False):
    """(forward step, forward+backward step, sync) for torch."""
    import torch
    import torch.nn.functional as F
    dev = "cuda" if device == "gpu" else "cpu"
    dt = getattr(torch, dtype)
    _, _, _, _, _, _, _, s, p, g = cfg
    cl = torch.channels_last
    x, w, c = (torch.from_numpy(a).to(dev, dt) for a in _inputs(cfg))
    # NHWC storage seen as NCHW: torch's channels-last tensors, MLX's layout
    x = x.permute(0, 3, 1, 2).requires_grad_()
    w = w.permute(0, 3, 1, 2).contiguous(memory_format=cl).requires_grad_()
    c = c.permute(0, 3, 1, 2)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    wait = sync if each_step else (lambda: None)

    def fwd():
        with torch.no_grad():
            F.conv2d(x, w, stride=s, padding=p, groups=g)
        wait()

    def fwd_bwd():
        y = F.conv2d(x, w, stride=s, padding=p, groups=g)
        torch.autograd.grad(y, (x, w), c)
        wait()

    return fwd, fwd_bwd, sync


def mlx_steps(cfg, device, dtype, each_step=False):
    """(forward step, forward+backward step, sync) for upstream MLX, None without it."""
    try:
        import mlx.core as mlx
    except ImportError:
        return None
    if device == "gpu" and not mlx.is_available(mlx.gpu):
        return None
    mlx.set_default_device(mlx.gpu if device == "gpu" else mlx.cpu)
    _, _, _, _, _, _, _, s, p, g = cfg
    dt = getattr(mlx, dtype)
    x, w, c = (mlx.array(a).astype(dt) for a in _inputs(cfg))
    mlx.eval(x, w, c)
    run = mlx.eval if each_step else mlx.async_eval
    # waits for everything queued (async_eval's outputs included)
    sync = mlx.synchronize

    def f(x, w):
        return [mlx.conv2d(x, w, stride=s, padding=p, groups=g)]

    def fwd():
        run(f(x, w))

    def fwd_bwd():
        out, grads = mlx.vjp(f, [x, w], [c])
        run(out, grads)

    return fwd, fwd_bwd, sync


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, choices=["cpu", "gpu"])
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--configs", default=None, help="substring filter on config names")
    ap.add_argument("--sync", action="store_true", help="wait for every step (both sides)")
    args = ap.parse_args(argv)
    import torch
    device = args.device or ("gpu" if torch.cuda.is_available() else "cpu")
    configs = CONFIGS if device == "gpu" else SMALL
    if args.configs:
        configs = [c for c in CONFIGS + SMALL if args.configs in c[0]]
    if device == "gpu":
        # the same TF32 setting for both (Ember follows MLX_ENABLE_TF32, default on)
        import ember.core  # noqa: F401 - applies the setting
        print(f"device: {torch.cuda.get_device_name()}, cudnn.allow_tf32="
              f"{torch.backends.cudnn.allow_tf32}, torch {torch.__version__}, "
              f"{'synchronised' if args.sync else 'queued'} steps")
    ms = 1e3
    print("| config | dtype | ember fwd ms | torch fwd ms | ember/torch fwd | ember f+b ms | "
          "torch f+b ms | ember/torch f+b | mlx f+b ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        for dtype in args.dtypes.split(","):
            run = (cfg, device, dtype, args.sync)
            frameworks = {"ember": ember_steps(*run), "torch": torch_steps(*run)}
            m = mlx_steps(*run)
            if m:
                frameworks["mlx"] = m
            got = fwd_and_grad(frameworks, args.iters, args.repeats, warmup=3)
            (ef, eb), (tf, tb) = got["ember"], got["torch"]
            mtxt = f"{got['mlx'][1] * ms:.3f}" if m else "n/a"
            print(f"| {cfg[0]} | {dtype} | {ef * ms:.3f} | {tf * ms:.3f} | {ef / tf:.2f}x | "
                  f"{eb * ms:.3f} | {tb * ms:.3f} | {eb / tb:.2f}x | {mtxt} |", flush=True)


if __name__ == "__main__":
    main()
