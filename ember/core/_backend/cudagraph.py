"""CUDA-graph replay of compiled calls.

A cached compiled call whose tape runs on one CUDA device is executed by a `GraphRunner`
(`graph_runner(tape)`; the kernel of `Compiled` hands it the call's tensors):

1. The first execution runs the tape plainly with synchronising CUDA calls made errors
   (`torch.cuda.set_sync_debug_mode`): a kernel that reads values on the host (`.item()`,
   `nonzero`, `tolist`, a copy to the CPU) cannot be captured, and the tape is then run
   plainly for good. This run is also the warm-up torch's CUDA-graph docs ask for (lazy
   initialisation, caches, autotuning happen outside the capture).
2. The second runs it again on a side stream (this call's result, and a warm-up on the
   stream that captures), then captures `tape.run` over static copies of the inputs into a
   `torch.cuda.CUDAGraph` with a private memory pool. A capture that raises (an operation
   CUDA does not allow while capturing) makes the tape run plainly for good.
3. Later executions copy the inputs into the static buffers (one multi-tensor copy per
   dtype; an input passed again as the same tensor object is not copied: Ember's tensors
   are never written after they are made), replay the graph, and hand out copies of the
   static outputs (one multi-tensor op per dtype): the next replay overwrites the static
   outputs, and a result must keep its value as long as its array lives.

Inputs on another device than the tape's postpone the decision (the call runs plainly);
after `UNFIT_LIMIT` such calls the tape runs plainly for good. `release()` frees the graph,
its pool and its buffers (the compile cache calls it when it drops the entry).

On by default; `EMBER_CUDA_GRAPHS=0` (or `GRAPHS[0] = False`) runs every tape plainly;
`EMBER_COMPILE_DEBUG=1` (or `DEBUG[0] = True`) prints one line per decision to stderr.
"""

import os
import sys
import warnings
import weakref

import torch

GRAPHS = [os.environ.get("EMBER_CUDA_GRAPHS", "1") not in ("", "0")]
DEBUG = [os.environ.get("EMBER_COMPILE_DEBUG", "0") not in ("", "0")]

UNFIT_LIMIT = 3  # plain calls with inputs off the tape's device before giving up
# results of at most this many bytes in all are copied into two alternating sets of
# buffers, reused where nothing holds them (no tensors made per replay: their host cost
# exceeds a small train step's GPU time); larger ones into new tensors (no idle copy)
RECYCLE_BYTES = 256 << 20

# runner states
WARMING, CAPTURED, PLAIN, RELEASED = "warming", "captured", "plain", "released"

_copy_ = torch._foreach_copy_
_use_count = torch._C._storage_Use_Count
_getrefcount = sys.getrefcount
_mul = torch._foreach_mul
_ref = weakref.ref


def _first_line(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


# -- how a runner talks to CUDA (tests stand a fake in for it on the CPU) ------------------------

class _Cuda:
    _side = {}  # device -> the stream captures run on

    @staticmethod
    def checked_run(run, tensors):
        """run(*tensors), with CUDA calls that synchronise with the host raising."""
        prev = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings():  # (torch warns that the mode is a prototype)
            warnings.simplefilter("ignore", UserWarning)
            torch.cuda.set_sync_debug_mode(2)
        try:
            return run(*tensors)
        finally:
            torch.cuda.set_sync_debug_mode(prev)

    @classmethod
    def capture(cls, run, tensors, static_in, device):
        """(this call's outputs, graph, static outputs): run(*tensors) on the capture stream
        (a warm-up there), then run(*static_in) captured in a private memory pool. Raises
        when the capture fails."""
        side = cls._side.get(device)
        if side is None:
            side = cls._side[device] = torch.cuda.Stream(device)
        cur = torch.cuda.current_stream(device)
        side.wait_stream(cur)
        try:
            with torch.cuda.device(device), torch.cuda.stream(side):
                out = run(*tensors)
                graph = torch.cuda.CUDAGraph()
                graph.capture_begin(pool=torch.cuda.graph_pool_handle(),
                                    capture_error_mode="thread_local")
                try:
                    static_out = run(*static_in)
                except BaseException:
                    try:  # end the (invalidated) capture; the first error is the one to tell
                        graph.capture_end()
                    except Exception:  # noqa: BLE001, S110
                        pass
                    raise
                with warnings.catch_warnings():  # (a run without kernels: an empty graph)
                    warnings.simplefilter("ignore", UserWarning)
                    graph.capture_end()
        finally:
            # later work on the current stream (and memory freed to it) follows the side's
            cur.wait_stream(side)
        return out, graph, static_out


CUDA = _Cuda()


def _backend_for(tape):
    """The backend a runner of `tape` uses, or None when no graph can hold it (the tape is
    not on one CUDA device, or has nothing to replay)."""
    s = tape.stream
    if not s.is_gpu or not tape.steps:
        return None
    dev = s.tdevice
    for st in tape.steps:
        if not st.stream.is_gpu or st.stream.tdevice != dev:
            return None
    return CUDA


def graph_runner(tape):
    """The GraphRunner of `tape`, or None when it always runs plainly."""
    backend = _backend_for(tape)
    return None if backend is None else GraphRunner(tape, backend)


# -- the runner ---------------------------------------------------------------------------------

def _groups(tensors, fits):
    """Positions of `tensors` grouped by dtype (the unit of one multi-tensor op) for those
    where `fits(t)`, and the other positions."""
    by = {}
    rest = []
    for i, t in enumerate(tensors):
        if fits(t):
            by.setdefault(t.dtype, []).append(i)
        else:
            rest.append(i)
    return list(by.values()), rest


def _dense(t):
    # multiplying by 1 copies exactly (bool would be promoted); contiguous tensors of one
    # dtype take the multi-tensor kernels
    return t.dtype is not torch.bool and t.is_contiguous()


class GraphRunner:
    """Runs a tape: plainly until its graph is captured, then by replay. `status` is one of
    WARMING, CAPTURED, PLAIN (for good; `reason` says why), RELEASED; `replays` counts
    replays."""

    __slots__ = ("run", "name", "device", "backend", "status", "reason", "runs", "unfit",
                 "replays", "graph", "static_in", "static_out", "seen", "in_group", "n_groups",
                 "out_groups", "out_rest", "single", "handout", "__weakref__")

    def __init__(self, tape, backend):
        self.run = tape.run  # not the tape: a runner it holds must not hold it back
        self.name = f"tape {id(tape):#x} ({len(tape.steps)} steps, {len(tape.inputs)} inputs)"
        self.device = tape.stream.tdevice
        self.backend = backend
        self.status = WARMING
        self.reason = None
        self.runs = self.unfit = self.replays = 0
        self.graph = None
        self.static_in = self.static_out = self.seen = self.handout = None
        self.single = len(tape.outs) == 1

    def __repr__(self):
        why = f": {self.reason}" if self.reason else ""
        return f"GraphRunner({self.name}, {self.status}{why})"

    def __call__(self, tensors):
        graph = self.graph
        if graph is not None and GRAPHS[0]:
            return self._replay(graph, tensors)
        if self.status is not WARMING or not GRAPHS[0]:
            return self.run(*tensors)
        return self._warm(tensors)

    def _say(self, msg):
        if DEBUG[0]:
            print(f"[compile] CUDA graph, {self.name}: {msg}", file=sys.stderr, flush=True)

    def _give_up(self, reason):
        self.status, self.reason = PLAIN, reason
        self._say(f"runs without a graph: {reason}")

    def release(self):
        """Free the graph, its memory pool and its buffers; run plainly from now on."""
        if self.status is RELEASED:
            return
        had = self.graph is not None
        self.graph = self.static_in = self.static_out = self.seen = self.handout = None
        self.status = RELEASED
        if had:
            self._say("released")

    # -- before the capture

    def _warm(self, tensors):
        dev = self.device
        for t in tensors:
            if t.device != dev:
                self.unfit += 1
                if self.unfit >= UNFIT_LIMIT:
                    self._give_up(f"an input is on {t.device}, not {dev}")
                return self.run(*tensors)
        self.runs += 1
        if self.runs == 1:
            try:
                return self.backend.checked_run(self.run, tensors)
            except Exception as e:  # noqa: BLE001 - the plain run below raises a real error
                self.runs = 0
                out = self.run(*tensors)
                self._give_up(f"synchronises with the host ({_first_line(e)})")
                return out
        return self._capture(tensors)

    def _capture(self, tensors):
        try:
            static_in = [torch.empty_like(t, memory_format=torch.contiguous_format)
                         for t in tensors]
            if static_in:
                _copy_(static_in, list(tensors))
            out, graph, static_out = self.backend.capture(self.run, tensors, static_in,
                                                          self.device)
        except Exception as e:  # noqa: BLE001 - any failure: no graph for this tape
            self._give_up(f"capture failed ({_first_line(e)})")
            return self.run(*tensors)
        static_out = [static_out] if self.single else list(static_out)
        for o in static_out:
            if o.device != self.device:  # the graph would not write it
                self._give_up(f"an output is on {o.device}, not {self.device}")
                return out
        self.graph, self.static_in, self.static_out = graph, static_in, static_out
        self.seen = [_ref(t) for t in tensors]
        groups, _ = _groups(static_in, lambda t: True)
        self.in_group = [0] * len(static_in)
        for k, idx in enumerate(groups):
            for i in idx:
                self.in_group[i] = k
        self.n_groups = len(groups)
        self.out_groups, self.out_rest = _groups(static_out, _dense)
        if sum(o.nbytes for o in static_out) <= RECYCLE_BYTES:
            self.handout = [[None] * len(static_out), [None] * len(static_out)]
        self.status = CAPTURED
        self._say("captured")
        return out

    # -- replay

    def _replay(self, graph, tensors):
        seen, static = self.seen, self.static_in
        dst = None
        for i, t in enumerate(tensors):
            if seen[i]() is t:
                continue
            seen[i] = _ref(t)
            if dst is None:
                n = self.n_groups
                dst, src = [[] for _ in range(n)], [[] for _ in range(n)]
            k = self.in_group[i]
            dst[k].append(static[i])
            src[k].append(t)
        if dst is not None:
            for d, s in zip(dst, src):
                if d:
                    _copy_(d, s)
        graph.replay()
        self.replays += 1
        outs = self.static_out
        if self.single:
            return outs[0].clone()
        res = [None] * len(outs)
        sets = self.handout
        if sets is not None:
            # results go to buffers of their own, reused where nothing holds them any more
            # (the state of a train step: two steps ago, its buffers are free again)
            sets.reverse()
            mine = sets[0]
            for idx in self.out_groups:
                dst = []
                for i in idx:
                    if mine[i] is None or not _free(mine, i):
                        mine[i] = torch.empty_like(outs[i])
                    dst.append(mine[i])
                    # (a new tensor object on the buffer: caches keyed by a tensor's
                    # identity must not see this result as the one handed out before)
                    res[i] = mine[i].detach()
                _copy_(dst, [outs[i] for i in idx])
        else:
            for idx in self.out_groups:
                for i, r in zip(idx, _mul([outs[i] for i in idx], 1)):
                    res[i] = r
        for i in self.out_rest:
            res[i] = outs[i].clone()
        return tuple(res)


def _holds(buffers, i):
    """(Python references to tensor i of `buffers`, uses of its storage)."""
    t = buffers[i]
    return _getrefcount(buffers[i]), _use_count(t.untyped_storage()._cdata)


_ALONE = []  # what `_holds` gives for a tensor nothing else holds (measured once)


def _free(buffers, i):
    """Whether nothing but `buffers` holds tensor i (no other Python reference, and no
    alias, view or export of its storage)."""
    if not _ALONE:
        _ALONE.append(_holds([torch.empty(1)], 0))
    return _holds(buffers, i) == _ALONE[0]
