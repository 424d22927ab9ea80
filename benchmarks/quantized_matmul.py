"""Decode-shape quantized matmul: achieved bandwidth of the fused kernels.

For x (M, K) @ dequantize(w (N, K))ᵀ, affine 4- and 8-bit: the Triton kernel alone (CUDA
events, and CUDA-graph replay to take launch overhead out), the whole Ember op
(mx.quantized_matmul + eval), torch's bf16 matmul on the dense weight, and upstream MLX
(when importable; its CPU backend here, so only a rough reference). Figures are
microseconds (median) and GB/s of packed weight + scales + biases; the H100's peak is
about 3350 GB/s.

    python -m benchmarks.quantized_matmul [--shapes 1x4096x4096,1x4096x14336] [--bits 4 8]
"""

import argparse
import statistics
import time

import numpy as np


def _cuda_time(torch, fn, repeats, warmup=10):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(20):
            fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / 20)
    return statistics.median(times)


def _graph_time(torch, fn, repeats):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(20):
            fn()
    return _cuda_time(torch, g.replay, repeats, warmup=3) / 20


def _wall_time(fn, repeats, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e6)
    return statistics.median(times)


def bench(m, n, k, bits, gs, repeats):
    import torch

    import ember.core as mx
    from ember.core._backend import triton_quantized as T

    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal((m, k)).astype(np.float32)
    with mx.stream(mx.gpu):
        wq = mx.quantize(mx.array(w).astype(mx.bfloat16), gs, bits)
        xe = mx.array(x).astype(mx.bfloat16)
        mx.eval(wq, xe)
    tw, ts, tb = (a._data for a in wq)
    tx = xe._data
    nbytes = n * k * bits / 8 + 2 * ts.numel() * ts.element_size()
    row = {"shape": f"{m}x{k}@{n}x{k}", "bits": bits, "gs": gs}

    def kernel():
        T.quantized_matmul(tx, tw, ts, tb, True, gs, bits)

    row["kernel_us"] = _cuda_time(torch, kernel, repeats)
    row["graph_us"] = _graph_time(torch, kernel, repeats)

    def op():
        mx.eval(mx.quantized_matmul(xe, *wq, group_size=gs, bits=bits))
        torch.cuda.synchronize()

    row["ember_op_us"] = _wall_time(op, repeats)
    dense = torch.from_numpy(w).to(device="cuda", dtype=torch.bfloat16)

    def tmm():
        torch.matmul(tx, dense.T)

    row["torch_bf16_us"] = _graph_time(torch, tmm, repeats)
    row["torch_bf16_GBps"] = n * k * 2 / row["torch_bf16_us"] / 1e3
    row["GBps"] = nbytes / row["graph_us"] / 1e3
    row["GBps_events"] = nbytes / row["kernel_us"] / 1e3
    try:
        import mlx.core as mlx
        mw = mlx.quantize(mlx.array(w).astype(mlx.bfloat16), gs, bits)
        mxx = mlx.array(x).astype(mlx.bfloat16)
        mlx.eval(mw, mxx)
        row["mlx_us"] = _wall_time(
            lambda: mlx.eval(mlx.quantized_matmul(mxx, *mw, group_size=gs, bits=bits)),
            max(3, repeats // 5))
    except ImportError:
        pass
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="1x4096x4096,4x4096x4096,1x4096x14336,1x14336x4096")
    p.add_argument("--bits", type=int, nargs="+", default=[4, 8])
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=50)
    a = p.parse_args(argv)
    for sh in a.shapes.split(","):
        m, k, n = (int(v) for v in sh.split("x"))
        for bits in a.bits:
            r = bench(m, n, k, bits, a.group_size, a.repeats)
            print("  ".join(f"{key}={v:.1f}" if isinstance(v, float) else f"{key}={v}"
                            for key, v in r.items()), flush=True)


if __name__ == "__main__":
    main()
