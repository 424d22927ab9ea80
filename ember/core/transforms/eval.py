"""Evaluation: walk the lazy graph iteratively, run each kernel once, detach as we go.

Detaching (dropping primitive and inputs of an evaluated array) is what frees the graph
and the intermediate buffers; it is skipped while a transform is tracing, since grad and
friends still need the recipes.
"""

from time import perf_counter as _clock

from ember.core._backend import eager_graphs as _graphs
from ember.core._backend import inference_guard as _inference
from ember.core._backend import memory as _mem
from ember.core._backend import streams as S
from ember.core._backend.kernels import KERNELS
from ember.core.array import TRACING, array  # (TRACING: defined with the array)


def evaluate(outs, sync=True):
    """Compute every unevaluated array that `outs` need, inputs first.

    One iterative depth-first walk: an array runs as soon as its inputs hold data, so
    there is no separate ordering pass and no visited set (an array holding data is done;
    one pushed twice is skipped the second time)."""
    # (reversed: the first output is walked first, so a loss's forward runs before the
    # gradients that come after it, and a backward finds what its forward left)
    stack = [o for o in reversed(outs) if o._data is None]
    if not stack:
        return
    guard = _inference(True)
    try:
        # (a graph evaluated again on a GPU replays as one CUDA graph)
        if _graphs.ENABLED[0] and not TRACING[0]:
            done = _graphs.evaluate(stack, sync)
            if done is True:
                return
            if done:  # a graph seen a first few times: what its plain evaluation costs
                t = _clock()
                _run(stack, sync)
                done.timed(_clock() - t)
                return
        _run(stack, sync)
    finally:
        del guard


def _run(stack, sync):
    detach = not TRACING[0]
    kernels = KERNELS
    gpu_streams = None
    primary = None  # the last default GPU stream used before any switching
    push = stack.append
    pop = stack.pop
    track = _mem.track if _mem.TRACKING[0] else None  # CPU memory statistics, once asked for
    try:
        while stack:
            a = stack[-1]
            if a._data is not None:
                pop()
                continue
            ins = a._inputs
            waiting = False
            for x in ins:
                if x._data is None:
                    push(x)
                    waiting = True
            if waiting:
                continue
            pop()
            p = a._prim
            if p is None:
                raise ValueError("[eval] Attempting to eval an array without a primitive.")
            st = a._stream
            if st.is_gpu:
                # default streams run on torch's current (default) stream as they are;
                # switching starts with the first node on another stream
                if gpu_streams is not None:
                    S.switch(gpu_streams, st)
                elif st._primary:
                    primary = st
                else:
                    gpu_streams = S.enter(primary)
                    S.switch(gpu_streams, st)
            if len(ins) == 2:
                r = kernels[p.__class__](p, ins[0]._data, ins[1]._data)
            elif len(ins) == 1:
                r = kernels[p.__class__](p, ins[0]._data)
            else:
                r = kernels[p.__class__](p, *[x._data for x in ins])
            sib = a._siblings
            if sib is None:
                a._data = r
                if track is not None:
                    track(r)
                if detach:
                    a._prim = None
                    a._inputs = ()
            else:
                for s, t in zip(sib, r):
                    s._data = t
                    if track is not None:
                        track(t)
                    if detach:
                        s._prim = None
                        s._inputs = ()
                        s._siblings = None
    finally:
        if gpu_streams is not None:
            S.leave(gpu_streams, sync)
        elif sync and primary is not None:
            S.sync_current(primary)


def eval(*args):  # noqa: A001 - the MLX name
    evaluate(_arrays_of(args))


def async_eval(*args):
    if TRACING[0]:  # (grad, vmap and compile trace: nothing there can be queued)
        raise ValueError("[async_eval] Not allowed inside a graph transformation.")
    evaluate(_arrays_of(args), sync=False)


def _arrays_of(tree):
    """The arrays in a tree of lists, tuples and dicts; other leaves are ignored, as
    upstream does."""
    out = []
    try:
        _collect(tree, out)
    except RecursionError:  # a tree nested deeper than Python's stack: walk it by hand
        out = _arrays_of_deep(tree)
    return out


def _collect(tree, out):
    # array leaves are taken in the loops (one call per container, not per leaf: a train
    # step evaluates the whole model and optimizer state)
    if isinstance(tree, (list, tuple)):
        items = tree
    elif isinstance(tree, dict):
        items = tree.values()
    else:
        if isinstance(tree, array):
            out.append(tree)
        return
    for x in items:
        if type(x) is array:
            out.append(x)
        elif isinstance(x, (list, tuple, dict, array)):
            _collect(x, out)


def _arrays_of_deep(tree):
    out = []
    stack = [tree]
    while stack:
        x = stack.pop()
        if isinstance(x, array):
            out.append(x)
        elif isinstance(x, (list, tuple)):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
    return out
