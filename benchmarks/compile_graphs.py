"""mx.compile with CUDA-graph replay: per-op cost of a compiled chain, and the compiled
char-GPT train step (the gpt model of `benchmarks.models`).

For each case: Ember eager, Ember compiled with graphs off (`EMBER_CUDA_GRAPHS=0`'s switch)
and on, upstream MLX eager and compiled (for the train step, where its CUDA build is
installed) and torch (eager; for the chain also a torch CUDA graph of the same adds), in
one run on one device. Every step ends in an eval and a device synchronize.

    python -m benchmarks.compile_graphs [--ops 200] [--sizes small,default] [--iters N]
"""

import argparse
import statistics
import time
from functools import partial

from benchmarks import models as M
from benchmarks.overhead import median_time


def _median_us(fn, repeats, warmup=5):
    return 1e6 * median_time(fn, repeats, warmup)


def chain(n_ops, size, repeats):
    """us per add: {case: us}."""
    import torch

    import ember.core as mx
    from ember.core._backend import cudagraph as CG
    mx.set_default_device(mx.gpu)
    x = mx.ones((size,))
    b = mx.full((size,), 1e-3)
    mx.eval(x, b)

    def f(x, b):
        for _ in range(n_ops):
            x = x + b
        return x

    out = {"ember eager": _median_us(lambda: mx.eval(f(x, b)), repeats) / n_ops}
    for graphs in (False, True):
        CG.GRAPHS[0] = graphs
        cf = mx.compile(f)
        out[f"ember compiled, graphs {'on' if graphs else 'off'}"] = \
            _median_us(lambda: mx.eval(cf(x, b)), repeats) / n_ops
    CG.GRAPHS[0] = True
    got, want = mx.compile(f)(x, b), f(x, b)
    assert mx.array_equal(got, want).item()

    tx = torch.ones(size, device="cuda")
    tb = torch.full((size,), 1e-3, device="cuda")

    def tf():
        y = tx
        for _ in range(n_ops):
            y = y + tb
        return y

    def teager():
        tf()
        torch.cuda.synchronize()
    out["torch eager"] = _median_us(teager, repeats) / n_ops
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        tf()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        ty = tf()

    def tgraph():
        g.replay()
        ty.clone()
        torch.cuda.synchronize()
    out["torch CUDA graph"] = _median_us(tgraph, repeats) / n_ops
    return out


def _ember_gpt(cfg, params, mode, framework="ember"):
    """A step function: mode 'eager', 'off' (compiled, no graphs) or 'on'; upstream MLX's
    with `framework="mlx"` (its compile for 'off' and 'on')."""
    mx, nn, optim, _ = M._mlx_handle(framework)
    mx.set_default_device(mx.gpu)
    net = M.mlx_models(mx, nn, optim)["gpt"](cfg)
    net.load_weights([(k, mx.array(v)) for k, v in params.items()], strict=True)
    data = {k: mx.array(v) for k, v in M.make_inputs("gpt", cfg).items()}
    x, y = data["x"], data["y"]
    causal = nn.MultiHeadAttention.create_additive_causal_mask(cfg["S"])
    opt = optim.AdamW(learning_rate=M.LR, bias_correction=True)
    opt.init(net.trainable_parameters())
    mx.eval(net.parameters(), opt.state, x, y, causal)

    def loss_fn(x, y):
        return nn.losses.cross_entropy(net(x, causal), y, reduction="mean")

    loss_and_grad = nn.value_and_grad(net, loss_fn)
    state = [net.state, opt.state]

    def train(x, y):
        loss, grads = loss_and_grad(x, y)
        opt.update(net, grads)
        return loss

    if mode != "eager":
        train = partial(mx.compile, inputs=state, outputs=state)(train)
    losses = []

    def step():
        loss = train(x, y)
        mx.eval(loss, state)
        mx.synchronize()
        losses.append(loss)

    def phases():
        """(us to call the step, us to evaluate it)"""
        t0 = time.perf_counter()
        loss = train(x, y)
        t1 = time.perf_counter()
        mx.eval(loss, state)
        mx.synchronize()
        return 1e6 * (t1 - t0), 1e6 * (time.perf_counter() - t1)
    return step, losses, train, phases


def _kernels(step, top=25):
    """The GPU kernels of one step (run plainly, so each launch is seen): count and time."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
    evs = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.device_time_total for e in evs)
    n = sum(e.count for e in evs)
    print(f"  {n} kernels, {total:.0f} us of GPU time in one step")
    for e in sorted(evs, key=lambda e: -e.device_time_total)[:top]:
        print(f"    {e.count:5d} {e.device_time_total:9.1f} us  {e.key[:90]}")


def _labelled_kernels():
    """Wrap every kernel in a profiler range named after its primitive (for tapes traced
    from now on); returns a function undoing it."""
    import torch

    from ember.core._backend.kernels import KERNELS
    saved = dict(KERNELS)

    def wrap(name, k):
        def labelled(p, *xs):
            with torch.profiler.record_function(f"step {name}"):
                return k(p, *xs)
        return labelled
    for cls, k in saved.items():
        KERNELS[cls] = wrap(getattr(cls, "name", cls.__name__), k)
    return lambda: KERNELS.update(saved)


def _kernels_by_step(step, top=25):
    """GPU kernels and time of one step, by the primitive that launched them."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
    by = {}

    def under(e):
        n, t = len(e.kernels), sum(k.duration for k in e.kernels)
        for c in e.cpu_children:
            if not c.name.startswith("step "):
                cn, ct = under(c)
                n, t = n + cn, t + ct
        return n, t
    for e in prof.profiler.function_events:
        if e.name.startswith("step "):
            n, t = under(e)
            c = by.setdefault(e.name[5:], [0, 0, 0.0])
            c[0], c[1], c[2] = c[0] + 1, c[1] + n, c[2] + t
    print("  by primitive: steps, kernels, us")
    for name, (k, n, t) in sorted(by.items(), key=lambda kv: -kv[1][2])[:top]:
        print(f"    {name:34s} {k:4d} {n:5d} {t:9.1f}")


def gpt(size, iters, warmup, profile=False):
    """ms per train step: {case: ms}, and the losses of the first steps per case."""
    import torch

    import ember.core as mx
    from ember.core._backend import cudagraph as CG
    from ember.core.transforms import compile as C
    cfg = M.SIZES[size]
    params = M.init_params("gpt", cfg)
    out, losses = {}, {}
    for mode in ("eager", "off", "on"):
        CG.GRAPHS[0] = mode != "off"  # (eager: as users get it, repeats replayed)
        step, ls, train, phases = _ember_gpt(cfg, params, mode)
        name = f"ember {'eager' if mode == 'eager' else 'compiled, graphs ' + mode}"
        out[name] = _median_us(step, iters, warmup) / 1e3
        ph = [phases() for _ in range(20)]
        out[name + " (call, eval us)"] = \
            f"{statistics.median(p[0] for p in ph):.0f}, {statistics.median(p[1] for p in ph):.0f}"
        losses[mode] = [lo.item() for lo in ls[:5]]
        if mode == "off" and profile:
            _kernels(step)
            undo = _labelled_kernels()  # a fresh trace of the same step, labelled
            try:
                lstep = _ember_gpt(cfg, params, mode)[0]
                lstep()
                _kernels_by_step(lstep)
            finally:
                undo()
        if mode == "on":
            g = C.tapes(train)[-1].graph
            out["graph"] = repr(g)
            if profile:
                import cProfile
                import pstats
                pr = cProfile.Profile()
                pr.enable()
                for _ in range(20):
                    step()
                pr.disable()
                pstats.Stats(pr).sort_stats("tottime").print_stats(18)
    CG.GRAPHS[0] = True
    if M._have_mlx("gpu"):
        for mode in ("eager", "off"):
            step, ls, _, phases = _ember_gpt(cfg, params, mode, "mlx")
            name = f"mlx {'eager' if mode == 'eager' else 'compiled'}"
            out[name] = _median_us(step, iters, warmup) / 1e3
            losses[name] = [lo.item() for lo in ls[:5]]
    tc = M.torch_case("gpt", cfg, "gpu", params)
    out["torch eager"] = _median_us(tc.step, iters, warmup) / 1e3
    del tc
    torch.cuda.empty_cache()
    mx.synchronize()
    return out, losses


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=200)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--sizes", default="small,default")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--profile", action="store_true",
                   help="the kernels of a step; 20 steps with graphs under cProfile")
    args = p.parse_args(argv)
    print(f"chain of {args.ops} adds on ({args.size},) float32: us per op")
    for k, v in chain(args.ops, args.size, args.repeats).items():
        print(f"  {k:32s} {v:8.3f}")
    for size in args.sizes.split(","):
        res, losses = gpt(size, args.iters, args.warmup, args.profile)
        print(f"gpt train step, {size} {M.SIZES[size]}: ms per step")
        for k, v in res.items():
            print(f"  {k:32s} {v:8.3f}" if isinstance(v, float) else f"  {k}: {v}")
        on = res["ember compiled, graphs on"]
        for ref in ("mlx compiled", "mlx eager", "torch eager"):
            if ref in res:
                print(f"  {ref} / ember compiled (graphs on): {res[ref] / on:.2f}x")
        for k, v in losses.items():
            print(f"  losses {k:6s} {['%.6f' % x for x in v]}")


if __name__ == "__main__":
    main()
