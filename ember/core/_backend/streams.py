"""Running kernels on CUDA streams during one evaluation.

The default stream needs no switching. When a node lives on another stream, the
evaluation switches torch's current stream, after making the new stream wait for the
previous one so producers are ordered before consumers.
"""

import torch


class _Run:
    __slots__ = ("current", "used", "saved")


def enter(primary=None):
    """Start switching; `primary` is the default stream the evaluation has used so far
    (without switching: it is torch's current stream), which later streams wait for."""
    r = _Run()
    r.current = None
    r.used = set()
    r.saved = {}
    if primary is not None:
        switch(r, primary)
    return r


_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)
_CURRENT = {}  # (device index, raw stream) -> torch's Stream object for it


def current(primary):
    """torch's current stream on `primary`'s device, as a Stream object kept per raw
    stream: `torch.cuda.current_stream` builds a new one per call, which cost about as
    much as a wait for a small eager step (and `Event.record()` calls it)."""
    index = primary.device.index
    if _raw_stream is None:
        return torch.cuda.current_stream(index)
    key = (index, _raw_stream(index))
    ts = _CURRENT.get(key)
    if ts is None:
        if len(_CURRENT) > 64:
            _CURRENT.clear()
        ts = _CURRENT[key] = torch.cuda.current_stream(index)
    return ts


def sync_current(primary):
    """Wait for torch's current stream on `primary`'s device."""
    current(primary).synchronize()


def switch(run, stream):
    ts = stream.torch_stream
    if ts is run.current:
        return
    dev = ts.device
    if dev not in run.saved:
        run.saved[dev] = torch.cuda.current_stream(dev)
    if run.current is not None:
        ts.wait_stream(run.current)
    torch.cuda.set_stream(ts)
    run.current = ts
    run.used.add(ts)


def leave(run, sync):
    for prev in run.saved.values():
        if run.current is not None and prev is not run.current:
            prev.wait_stream(run.current)
        torch.cuda.set_stream(prev)
    if sync:
        for ts in run.used:
            ts.synchronize()
