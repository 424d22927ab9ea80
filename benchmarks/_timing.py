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
