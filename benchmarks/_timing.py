"""The timing loop the benchmarks share: seconds per step, median of repeats."""

import statistics
import time


def median_time(step, sync, iters, repeats, warmup):
    """Run `step` `iters` times per repeat, `sync` (waiting for the device) after each
    repeat; the median over `repeats` of the seconds per step, after `warmup` steps."""
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


def interleaved(steps, iters, repeats, warmup):
    """{name: seconds per step, median of repeats} for `steps`, {name: (step, sync)}.
    Each repeat times every entry's `iters` steps in turn, so clocks that drift over a run
    (a GPU warming up or throttling) weigh on every framework alike."""
    for step, sync in steps.values():
        for _ in range(warmup):
            step()
        sync()
    ts = {name: [] for name in steps}
    for _ in range(repeats):
        for name, (step, sync) in steps.items():
            t0 = time.perf_counter()
            for _ in range(iters):
                step()
            sync()
            ts[name].append((time.perf_counter() - t0) / iters)
    return {name: statistics.median(t) for name, t in ts.items()}


def fwd_and_grad(frameworks, iters, repeats, warmup):
    """{name: (forward seconds, forward+backward seconds)} for `frameworks`,
    {name: (forward step, forward+backward step, sync)}, each kind timed interleaved."""
    fwd = interleaved({n: (s[0], s[2]) for n, s in frameworks.items()}, iters, repeats, warmup)
    grad = interleaved({n: (s[1], s[2]) for n, s in frameworks.items()}, iters, repeats,
                       warmup)
    return {n: (fwd[n], grad[n]) for n in frameworks}
