"""Single ops, op + eval per call: Ember against upstream MLX and torch eager (CPU).

Modelled on upstream's mlx/benchmarks/python: each call builds one op (or a short fixed
chain) on inputs evaluated beforehand and evaluates it; torch runs the same op eagerly.
Inputs are the same numpy data for all three. Figures are ms per call, the median of
repeats after warm-up (iterations per repeat are calibrated so a repeat lasts ~10 ms).
Torch runs with `torch.set_num_threads(--threads)` (default: os.cpu_count()); upstream MLX
runs with its default CPU threading; Ember runs on torch's kernels, so on the same threads.

    python -m benchmarks.ops [--filter SUBSTR] [--sizes tiny,small,medium] [--repeats 5]
                             [--json PATH] [--compare PATH]

`--json` saves the figures; `--compare` prints an earlier saved run's ember/mlx ratio
beside this run's.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from benchmarks._timing import median_time

SIZES = {"tiny": 256, "small": 256 * 256, "medium": 2048 * 2048}
SIDE = {"tiny": 16, "small": 256, "medium": 2048}  # square 2-d shapes of those sizes


def _rng():
    return np.random.default_rng(0)


def _f32(*shape):
    return _rng().standard_normal(shape).astype(np.float32)


# -- the cases --------------------------------------------------------------------------
# A case: (name, size label, make) where make(np) -> (inputs dict, mlx-style fn, torch fn).
# The mlx-style fn gets (mx, nn, ins) and returns what to evaluate; the torch fn gets
# (torch, tnn, ins).

CASES = []


def case(name, sizes=("tiny", "small", "medium")):
    def deco(make):
        for s in sizes:
            CASES.append((name, s, make))
        return make
    return deco


def _square(size):
    n = SIDE[size]
    return {"x": _f32(n, n), "y": _f32(n, n)}


def _unary(name, mfn, tfn, pos=False):
    def make(size):
        ins = _square(size)
        if pos:
            ins["x"] = np.abs(ins["x"]) + 0.5
        return ins, lambda mx, nn, i: mfn(mx, i["x"]), lambda t, tn, i: tfn(t, i["x"])
    case(name)(make)


def _binary(name, mfn, tfn):
    def make(size):
        return (_square(size), lambda mx, nn, i: mfn(mx, i["x"], i["y"]),
                lambda t, tn, i: tfn(t, i["x"], i["y"]))
    case(name)(make)


_unary("exp", lambda mx, x: mx.exp(x), lambda t, x: t.exp(x))
_unary("log", lambda mx, x: mx.log(x), lambda t, x: t.log(x), pos=True)
_unary("sigmoid", lambda mx, x: mx.sigmoid(x), lambda t, x: t.sigmoid(x))
_unary("tanh", lambda mx, x: mx.tanh(x), lambda t, x: t.tanh(x))
_unary("gelu chain", lambda mx, x: x * 0.5 * (1 + mx.erf(x * 0.7071067811865476)),
       lambda t, x: x * 0.5 * (1 + t.erf(x * 0.7071067811865476)))
_unary("astype f16", lambda mx, x: x.astype(mx.float16), lambda t, x: x.to(t.float16))
_unary("astype i32", lambda mx, x: x.astype(mx.int32), lambda t, x: x.to(t.int32))
_unary("transpose copy", lambda mx, x: mx.contiguous(mx.transpose(x)),
       lambda t, x: x.t().contiguous())
_binary("add", lambda mx, x, y: x + y, lambda t, x, y: x + y)
_binary("multiply", lambda mx, x, y: x * y, lambda t, x, y: x * y)
_binary("maximum", lambda mx, x, y: mx.maximum(x, y), lambda t, x, y: t.maximum(x, y))
_binary("where", lambda mx, x, y: mx.where(x > 0, x, y), lambda t, x, y: t.where(x > 0, x, y))
_binary("add bcast row", lambda mx, x, y: x + y[0], lambda t, x, y: x + y[0])
_binary("add scalar", lambda mx, x, y: x + 1.0, lambda t, x, y: x + 1.0)


def _reduce(name, mfn, tfn):
    def make(size):
        ins = _square(size)
        return ins, lambda mx, nn, i: mfn(mx, i["x"]), lambda t, tn, i: tfn(t, i["x"])
    case(name)(make)


_reduce("sum all", lambda mx, x: mx.sum(x), lambda t, x: t.sum(x))
_reduce("sum ax0", lambda mx, x: mx.sum(x, axis=0), lambda t, x: t.sum(x, 0))
_reduce("sum ax-1", lambda mx, x: mx.sum(x, axis=-1), lambda t, x: t.sum(x, -1))
_reduce("mean ax-1", lambda mx, x: mx.mean(x, axis=-1), lambda t, x: t.mean(x, -1))
_reduce("max ax0", lambda mx, x: mx.max(x, axis=0), lambda t, x: t.amax(x, 0))
_reduce("max ax-1", lambda mx, x: mx.max(x, axis=-1), lambda t, x: t.amax(x, -1))
_reduce("argmax ax-1", lambda mx, x: mx.argmax(x, axis=-1), lambda t, x: t.argmax(x, -1))
_reduce("argmax ax0", lambda mx, x: mx.argmax(x, axis=0), lambda t, x: t.argmax(x, 0))
_reduce("logsumexp ax-1", lambda mx, x: mx.logsumexp(x, axis=-1),
        lambda t, x: t.logsumexp(x, -1))
_reduce("softmax ax-1", lambda mx, x: mx.softmax(x, axis=-1), lambda t, x: t.softmax(x, -1))
_reduce("var ax0", lambda mx, x: mx.var(x, axis=0), lambda t, x: t.var(x, 0, correction=0))
_reduce("cumsum ax-1", lambda mx, x: mx.cumsum(x, axis=-1), lambda t, x: t.cumsum(x, -1))
_reduce("cumsum ax0", lambda mx, x: mx.cumsum(x, axis=0), lambda t, x: t.cumsum(x, 0))
_reduce("prod ax-1", lambda mx, x: mx.prod(x, axis=-1), lambda t, x: t.prod(x, -1))
_reduce("any ax-1", lambda mx, x: mx.any(x > 0, axis=-1), lambda t, x: t.any(x > 0, -1))
_reduce("all ax0", lambda mx, x: mx.all(x > 0, axis=0), lambda t, x: t.all(x > 0, 0))
_reduce("isnan any", lambda mx, x: mx.any(mx.isnan(x)), lambda t, x: t.isnan(x).any())


def _act(name, tname, **tkw):
    """An nn activation: `mlx.nn.<name>` against `torch.nn.functional.<tname>(**tkw)`."""
    def make(size):
        return (_square(size), lambda mx, nn, i: getattr(nn, name)(i["x"]),
                lambda t, tn, i: getattr(tn.functional, tname)(i["x"], **tkw))
    case(f"nn.{name}")(make)


for _n in ("relu", "leaky_relu", "elu", "silu", "gelu", "gelu_approx", "softplus",
           "mish", "hardswish", "selu", "log_softmax"):
    _act(_n, {"gelu_approx": "gelu"}.get(_n, _n),
         **({"approximate": "tanh"} if _n == "gelu_approx" else {}))


def _sortcase(name, mfn, tfn):
    def make(size):
        n = {"tiny": 16, "small": 256, "medium": 1024}[size]
        return ({"x": _f32(n, n)}, lambda mx, nn, i: mfn(mx, i["x"]),
                lambda t, tn, i: tfn(t, i["x"]))
    case(name)(make)


_sortcase("sort ax-1", lambda mx, x: mx.sort(x, axis=-1), lambda t, x: t.sort(x, -1)[0])
_sortcase("argsort ax-1", lambda mx, x: mx.argsort(x, axis=-1),
          lambda t, x: t.argsort(x, -1))
_sortcase("argpartition k=8", lambda mx, x: mx.argpartition(x, 8, axis=-1),
          lambda t, x: t.topk(x, 9, -1, largest=False)[1])
_sortcase("topk k=8", lambda mx, x: mx.topk(x, 8, axis=-1), lambda t, x: t.topk(x, 8, -1)[0])


@case("matmul", ("tiny", "small", "medium"))
def _matmul(size):
    n = {"tiny": 64, "small": 256, "medium": 1024}[size]
    return ({"x": _f32(n, n), "y": _f32(n, n)}, lambda mx, nn, i: i["x"] @ i["y"],
            lambda t, tn, i: i["x"] @ i["y"])


@case("matmul batched", ("tiny", "small", "medium"))
def _bmm(size):
    b, n = {"tiny": (4, 16), "small": (16, 64), "medium": (8, 256)}[size]
    return ({"x": _f32(b, n, n), "y": _f32(b, n, n)}, lambda mx, nn, i: i["x"] @ i["y"],
            lambda t, tn, i: i["x"] @ i["y"])


@case("addmm", ("small",))
def _addmm(size):
    return ({"c": _f32(256), "x": _f32(256, 256), "y": _f32(256, 256)},
            lambda mx, nn, i: mx.addmm(i["c"], i["x"], i["y"]),
            lambda t, tn, i: t.addmm(i["c"], i["x"], i["y"]))


@case("conv1d", ("tiny", "small"))
def _conv1d(size):
    n, l_, c, o = {"tiny": (1, 32, 8, 8), "small": (4, 256, 32, 64)}[size]
    ins = {"x": _f32(n, l_, c), "w": _f32(o, 3, c)}

    def tf(t, tn, i):  # torch is channels-first
        return t.nn.functional.conv1d(i["x"].transpose(1, 2), i["w"].transpose(1, 2),
                                      padding=1).transpose(1, 2)
    return ins, lambda mx, nn, i: mx.conv1d(i["x"], i["w"], padding=1), tf


@case("conv2d", ("tiny", "small"))
def _conv2d(size):
    n, h, c, o = {"tiny": (1, 8, 4, 8), "small": (4, 32, 16, 32)}[size]
    ins = {"x": _f32(n, h, h, c), "w": _f32(o, 3, 3, c)}

    def tf(t, tn, i):
        return t.nn.functional.conv2d(i["x"].permute(0, 3, 1, 2), i["w"].permute(0, 3, 1, 2),
                                      padding=1).permute(0, 2, 3, 1)
    return ins, lambda mx, nn, i: mx.conv2d(i["x"], i["w"], padding=1), tf


def _rows(size):
    return {"tiny": (4, 64), "small": (128, 512), "medium": (4096, 1024)}[size]


@case("layer_norm")
def _ln(size):
    r, d = _rows(size)
    ins = {"x": _f32(r, d), "w": _f32(d), "b": _f32(d)}
    return (ins, lambda mx, nn, i: mx.fast.layer_norm(i["x"], i["w"], i["b"], 1e-5),
            lambda t, tn, i: t.nn.functional.layer_norm(i["x"], (d,), i["w"], i["b"], 1e-5))


@case("rms_norm")
def _rms(size):
    r, d = _rows(size)
    ins = {"x": _f32(r, d), "w": _f32(d)}

    def tf(t, tn, i):
        x = i["x"]
        return x * t.rsqrt(x.square().mean(-1, keepdim=True) + 1e-5) * i["w"]
    return ins, lambda mx, nn, i: mx.fast.rms_norm(i["x"], i["w"], 1e-5), tf


@case("rope", ("tiny", "small", "medium"))
def _rope(size):
    b, h, l_, d = {"tiny": (1, 1, 4, 64), "small": (1, 8, 128, 64),
                   "medium": (4, 32, 512, 64)}[size]
    ins = {"x": _f32(b, h, l_, d)}
    half = d // 2
    inv = 1.0 / (10000.0 ** (np.arange(half, dtype=np.float32) * 2 / d))
    ang = np.arange(l_, dtype=np.float32)[:, None] * inv[None]
    ins["cos"], ins["sin"] = np.cos(ang), np.sin(ang)

    def tf(t, tn, i):
        x = i["x"]
        x1, x2 = x[..., :half], x[..., half:]
        c, s = i["cos"], i["sin"]
        return t.cat([x1 * c - x2 * s, x1 * s + x2 * c], -1)
    return (ins, lambda mx, nn, i: mx.fast.rope(i["x"], d, traditional=False, base=10000.0,
                                                scale=1.0, offset=0), tf)


@case("sdpa", ("tiny", "small"))
def _sdpa(size):
    b, h, l_, d = {"tiny": (1, 2, 8, 32), "small": (1, 8, 128, 64)}[size]
    ins = {"q": _f32(b, h, l_, d), "k": _f32(b, h, l_, d), "v": _f32(b, h, l_, d)}
    sc = d ** -0.5
    return (ins, lambda mx, nn, i: mx.fast.scaled_dot_product_attention(
                i["q"], i["k"], i["v"], scale=sc),
            lambda t, tn, i: t.nn.functional.scaled_dot_product_attention(
                i["q"], i["k"], i["v"], scale=sc))


def _gather_ins(size):
    n = SIDE[size]
    idx = _rng().integers(0, n, size=(n,)).astype(np.int32)
    return {"x": _f32(n, n), "idx": idx, "idx2": _rng().integers(0, n, (n, n)).astype(np.int32),
            "y": _f32(n, n)}


@case("take ax0")
def _take(size):
    return (_gather_ins(size), lambda mx, nn, i: mx.take(i["x"], i["idx"], axis=0),
            lambda t, tn, i: t.index_select(i["x"], 0, i["idx"]))


@case("x[idx]")
def _getitem(size):
    return (_gather_ins(size), lambda mx, nn, i: i["x"][i["idx"]],
            lambda t, tn, i: i["x"][i["idx"]])


@case("take_along_axis")
def _tal(size):
    return (_gather_ins(size), lambda mx, nn, i: mx.take_along_axis(i["x"], i["idx2"], -1),
            lambda t, tn, i: t.gather(i["x"], -1, i["idx2"].long()))


@case("at[idx].add")
def _scatter(size):
    def tf(t, tn, i):
        return i["x"].index_add(0, i["idx"], i["y"])
    return (_gather_ins(size), lambda mx, nn, i: i["x"].at[i["idx"]].add(i["y"]), tf)


@case("concatenate")
def _concat(size):
    return (_square(size), lambda mx, nn, i: mx.concatenate([i["x"], i["y"]], axis=1),
            lambda t, tn, i: t.cat([i["x"], i["y"]], 1))


@case("stack")
def _stack(size):
    return (_square(size), lambda mx, nn, i: mx.stack([i["x"], i["y"]]),
            lambda t, tn, i: t.stack([i["x"], i["y"]]))


@case("tile")
def _tile(size):
    return (_square(size), lambda mx, nn, i: mx.tile(i["x"], (2, 1)),
            lambda t, tn, i: i["x"].repeat(2, 1))


@case("repeat")
def _repeat(size):
    return (_square(size), lambda mx, nn, i: mx.repeat(i["x"], 2, axis=0),
            lambda t, tn, i: i["x"].repeat_interleave(2, 0))


@case("pad")
def _pad(size):
    return (_square(size), lambda mx, nn, i: mx.pad(i["x"], 2),
            lambda t, tn, i: tn.functional.pad(i["x"], (2, 2, 2, 2)))


@case("reverse rows + 1")
def _flip(size):
    return (_square(size), lambda mx, nn, i: i["x"][::-1] + 1,
            lambda t, tn, i: i["x"].flip(0) + 1)


@case("broadcast add 3-d")
def _bcast3(size):
    return (_square(size), lambda mx, nn, i: mx.broadcast_to(i["x"], (2,) + i["x"].shape) + 1,
            lambda t, tn, i: i["x"].expand((2,) + i["x"].shape) + 1)


@case("split 4 + add")
def _split(size):
    # a split is views in all three; adding the parts makes each evaluate real work
    def mf(mx, nn, i):
        a, b, c, d = mx.split(i["x"], 4, axis=1)
        return (a + b) + (c + d)

    def tf(t, tn, i):
        a, b, c, d = t.chunk(i["x"], 4, 1)
        return (a + b) + (c + d)
    return _square(size), mf, tf


@case("random.uniform")
def _uniform(size):
    n = SIDE[size]
    return ({}, lambda mx, nn, i: mx.random.uniform(shape=(n, n)),
            lambda t, tn, i: t.rand(n, n))


@case("random.normal")
def _normal(size):
    n = SIDE[size]
    return ({}, lambda mx, nn, i: mx.random.normal(shape=(n, n)),
            lambda t, tn, i: t.randn(n, n))


@case("fft", ("tiny", "small"))
def _fft(size):
    r, n = {"tiny": (1, 256), "small": (64, 1024)}[size]
    return ({"x": _f32(r, n)}, lambda mx, nn, i: mx.fft.fft(i["x"]),
            lambda t, tn, i: t.fft.fft(i["x"]))


@case("rfft", ("tiny", "small"))
def _rfft(size):
    r, n = {"tiny": (1, 256), "small": (64, 1024)}[size]
    return ({"x": _f32(r, n)}, lambda mx, nn, i: mx.fft.rfft(i["x"]),
            lambda t, tn, i: t.fft.rfft(i["x"]))


@case("fft2", ("small",))
def _fft2(size):
    return ({"x": _f32(256, 256)}, lambda mx, nn, i: mx.fft.fft2(i["x"]),
            lambda t, tn, i: t.fft.fft2(i["x"]))


@case("hadamard_transform")
def _hadamard(size):
    def tf(t, tn, i):  # butterflies, as upstream computes it
        x = i["x"]
        n = x.shape[-1]
        h = 1
        while h < n:
            y = x.view(-1, n // (2 * h), 2, h)
            x = t.stack((y[:, :, 0] + y[:, :, 1], y[:, :, 0] - y[:, :, 1]), 2).view(-1, n)
            h *= 2
        return x * n ** -0.5
    return _square(size), lambda mx, nn, i: mx.hadamard_transform(i["x"]), tf


@case("einsum ij,kj->ik", ("tiny", "small"))
def _einsum(size):
    return (_square(size), lambda mx, nn, i: mx.einsum("ij,kj->ik", i["x"], i["y"]),
            lambda t, tn, i: t.einsum("ij,kj->ik", i["x"], i["y"]))


@case("cross_entropy")
def _xent(size):
    n = SIDE[size]
    ins = {"x": _f32(n, n), "y": _rng().integers(0, n, n).astype(np.int32)}

    def tf(t, tn, i):
        return tn.functional.cross_entropy(i["x"], i["y"].long(), reduction="none")
    return ins, lambda mx, nn, i: nn.losses.cross_entropy(i["x"], i["y"]), tf


# nn layers: the module is built once (its own parameters; same shapes in all three)

@case("nn.Linear", ("tiny", "small", "medium"))
def _linear(size):
    b, d = {"tiny": (1, 64), "small": (128, 512), "medium": (1024, 1024)}[size]
    return ({"x": _f32(b, d), "_layer": ("Linear", (d, d))},
            lambda mx, nn, i: i["_layer"](i["x"]), lambda t, tn, i: i["_layer"](i["x"]))


@case("nn.LayerNorm", ("tiny", "small", "medium"))
def _layernorm(size):
    r, d = _rows(size)
    return ({"x": _f32(r, d), "_layer": ("LayerNorm", (d,))},
            lambda mx, nn, i: i["_layer"](i["x"]), lambda t, tn, i: i["_layer"](i["x"]))


@case("nn.Conv2d", ("tiny", "small"))
def _nnconv(size):
    n, h, c, o = {"tiny": (1, 8, 4, 8), "small": (4, 32, 16, 32)}[size]
    return ({"x": _f32(n, h, h, c), "_layer": ("Conv2d", (c, o, 3))},
            lambda mx, nn, i: i["_layer"](i["x"]),
            lambda t, tn, i: i["_layer"](i["x"].permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


# -- running -----------------------------------------------------------------------------

def _time(call, sync, repeats, budget=0.01):
    for _ in range(2):
        call()
    sync()
    t0 = time.perf_counter()
    call()
    sync()
    one = max(time.perf_counter() - t0, 1e-7)
    iters = max(1, min(2000, int(budget / one)))
    return median_time(call, sync, iters, repeats, warmup=0)


def _mlx_like(mx, nn, ins):
    out = {}
    for k, v in ins.items():
        if k == "_layer":
            name, args = v
            layer = getattr(nn, name)(*args)
            mx.eval(layer.parameters())
            out[k] = layer
        else:
            out[k] = mx.array(v)
    mx.eval([v for v in out.values() if isinstance(v, mx.array)])
    return out


def _torch_like(torch, ins):
    out = {}
    for k, v in ins.items():
        if k == "_layer":
            name, args = v
            if name == "Conv2d":
                out[k] = torch.nn.Conv2d(*args, padding=0)
            else:
                out[k] = getattr(torch.nn, name)(*args)
            out[k].requires_grad_(False)
        else:
            out[k] = torch.from_numpy(v)
    return out


def run(filt, sizes, repeats):
    import mlx.core as mlx
    import mlx.nn as mlx_nn
    import torch

    import ember.core as ember
    import ember.nn as ember_nn
    mlx.set_default_device(mlx.cpu)
    ember.set_default_device(ember.cpu)
    mlx.random.seed(0)
    ember.random.seed(0)
    rows = []
    for name, size, make in CASES:
        if size not in sizes or (filt and not any(f in f"{name} {size}" for f in filt)):
            continue
        ins, mf, tf = make(size)
        r = {"op": name, "size": size}
        for fw, mx, nn in (("ember", ember, ember_nn), ("mlx", mlx, mlx_nn)):
            i = _mlx_like(mx, nn, ins)
            ev = mx.eval
            r[fw] = _time(lambda: ev(mf(mx, nn, i)), lambda: None, repeats)  # noqa: B023
        ti = _torch_like(torch, ins)
        with torch.inference_mode():
            r["torch"] = _time(lambda: tf(torch, torch.nn, ti), lambda: None, repeats)  # noqa: B023
        rows.append(r)
        print(_fmt(r), flush=True)
    return rows


def _fmt(r, prev=None):
    ms = 1e3
    cells = [r["op"], r["size"], f"{r['ember'] * ms:.4f}", f"{r['mlx'] * ms:.4f}",
             f"{r['torch'] * ms:.4f}", f"{r['ember'] / r['mlx']:.2f}x",
             f"{r['ember'] / r['torch']:.2f}x"]
    if prev is not None:
        p = prev.get((r["op"], r["size"]))
        cells.append(f"{p['ember'] / p['mlx']:.2f}x" if p else "")
    return "| " + " | ".join(cells) + " |"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--filter", default="", help="comma-separated substrings of 'op size'")
    p.add_argument("--sizes", default="tiny,small,medium")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="")
    p.add_argument("--compare", default="")
    args = p.parse_args(argv)
    import mlx.core
    import torch
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}, "
          f"mlx {mlx.core.__version__} (default CPU threading), cpus={os.cpu_count()}")
    head = "| op | size | ember ms | mlx ms | torch ms | ember/mlx | ember/torch |"
    print(head + "\n|" + "---|" * 7, flush=True)
    filt = [f for f in args.filter.split(",") if f]
    t0 = time.perf_counter()
    rows = run(filt, args.sizes.split(","), args.repeats)
    print(f"({len(rows)} rows in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.compare:
        with open(args.compare) as f:
            prev = {(r["op"], r["size"]): r for r in json.load(f)}
        print("\n" + head[:-1] + " before ember/mlx |\n|" + "---|" * 8)
        for r in rows:
            print(_fmt(r, prev))
        slower = [r for r in rows if r["ember"] > r["mlx"]]
        print(f"\nember slower than mlx on {len(slower)} of {len(rows)} rows")


if __name__ == "__main__":
    main()
