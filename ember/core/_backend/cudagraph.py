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

4. Results that come back as the next call's inputs (a train step's state: `inputs` and
   `outputs` of mx.compile) are found over the first replays and then carried between
   two more captures of the tape in the same pool (`_Carry`): no copy into static inputs,
   and the fused Adam kernel writes its results where the next call reads them
   (`RESERVED`, `empty_for`).
5. A runner with `twins` set (eager graphs) hands its large results out where the graph
   wrote them, from two captures in pools of their own taking turns (`_Twins`): a replay
   runs the capture none of whose earlier results lives on, and so copies nothing out.

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
# results that come back as the next call's inputs (a train step's state) are carried
# between two more graphs (`_Carry`) where they take at most this many bytes (two sets of
# buffers are held); the runner looks for them over its first LEARN_CALLS replays
CARRY_MAX_BYTES = 4 << 30
LEARN_CALLS = 4
# a runner with `twins` set (eager graphs) hands results of at least this many bytes out
# where its graph wrote them, from two captures taking turns (`_Twins`); smaller ones are
# copied out as above (a result held for good, such as a sampled token, then keeps no
# graph from replaying)
DIRECT_BYTES = 1 << 20

# runner states
WARMING, CAPTURED, PLAIN, RELEASED = "warming", "captured", "plain", "released"

# while a `_Carry` captures: id(input tensor) -> the buffer its next value is carried in.
# Kernels that compute the value replacing an input (an optimizer's update) write it there
# (`empty_for`), and the capture copies nothing for that result
RESERVED = {}

# called with no arguments before and after every capture: caches of values made while
# capturing (they live in the graph's pool, and hold only within one capture) drop them
CAPTURE_HOOKS = []

_copy_ = torch._foreach_copy_
_use_count = torch._C._storage_Use_Count
_getrefcount = sys.getrefcount
_mul = torch._foreach_mul
_ref = weakref.ref


def empty_for(t):
    """An empty contiguous tensor like `t` for the value that replaces t: the buffer the
    capture under way carries it in, where there is one."""
    r = RESERVED.get(id(t)) if RESERVED else None
    if r is not None and r.shape == t.shape and r.dtype is t.dtype and r.device == t.device:
        return r
    return torch.empty_like(t, memory_format=torch.contiguous_format)


def _first_line(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


# -- how a runner talks to CUDA (tests stand a fake in for it on the CPU) ------------------------

class _Cuda:
    _side = {}  # device -> the stream captures run on

    @staticmethod
    def event():
        """A CUDA event that can time (recorded by the caller)."""
        return torch.cuda.Event(enable_timing=True)

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
    def capture(cls, run, tensors, static_in, device, pool=None):
        """(this call's outputs, graph, static outputs): run(*tensors) on the capture stream
        (a warm-up there; none where `tensors` is None), then run(*static_in) captured in
        a private memory pool, or in the pool of the graph `pool`. Raises when the capture
        fails."""
        side = cls._side.get(device)
        if side is None:
            side = cls._side[device] = torch.cuda.Stream(device)
        cur = torch.cuda.current_stream(device)
        side.wait_stream(cur)
        try:
            with torch.cuda.device(device), torch.cuda.stream(side):
                out = None if tensors is None else run(*tensors)
                graph = torch.cuda.CUDAGraph()
                for hook in CAPTURE_HOOKS:
                    hook()
                graph.capture_begin(pool=torch.cuda.graph_pool_handle() if pool is None
                                    else pool.pool(), capture_error_mode="thread_local")
                try:
                    static_out = run(*static_in)
                except BaseException:
                    try:  # end the (invalidated) capture; the first error is the one to tell
                        graph.capture_end()
                    except Exception:  # noqa: BLE001, S110
                        pass
                    raise
                finally:
                    for hook in CAPTURE_HOOKS:
                        hook()
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
                 "out_groups", "out_rest", "single", "handout", "learn", "prev", "pairs",
                 "carry", "twins", "__weakref__")

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
        self.learn = LEARN_CALLS  # (0: never carry)
        self.prev = self.pairs = self.carry = None
        self.twins = False  # (True: made at the first replay; then a `_Twins` or None)

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
        self.prev = self.carry = self.twins = None
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
        twins = self.twins
        if twins is True:
            twins = self.twins = _Twins.make(self)
        if twins:
            return twins.replay(self, tensors)
        if self.carry is not None:
            res = self.carry.replay(self, tensors)
            if res is not None:
                return res
        elif self.learn:
            res = self._learn(tensors)
            if res is not None:
                return res
        self._copy_in(tensors, ())
        graph.replay()
        self.replays += 1
        if self.single:
            res = self.static_out[0].clone()
        else:
            res = self._results(self.static_out, self.out_groups, self.out_rest)
        if self.learn:
            self.prev = [_ref(r) for r in ((res,) if self.single else res)]
        return res

    def _copy_in(self, tensors, skip):
        """Copy the inputs into the static buffers, but those at the positions `skip` and
        those passed again as the tensor object copied last time."""
        seen, static = self.seen, self.static_in
        dst = None
        for i, t in enumerate(tensors):
            if seen[i]() is t or i in skip:
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

    def _results(self, outs, groups, rest, res=None):
        """The results of a replay from its static outputs `outs` (the positions `groups`,
        of one dtype each, and `rest`): copies the next replay leaves alone."""
        res = res or [None] * len(outs)
        sets = self.handout
        if sets is not None:
            # results go to buffers of their own, reused where nothing holds them any more
            # (the state of a train step: two steps ago, its buffers are free again)
            sets.reverse()
            mine = sets[0]
            for idx in groups:
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
            for idx in groups:
                for i, r in zip(idx, _mul([outs[i] for i in idx], 1)):
                    res[i] = r
        for i in rest:
            res[i] = outs[i].clone()
        return tuple(res)

    # -- results that come back as inputs

    def _learn(self, tensors):
        """Look for the last replay's results among the inputs: where the same (input,
        result) pairs come twice in a row, carry them (`_Carry`) and replay this call so.
        None where this call replays the graph as before."""
        self.learn -= 1
        prev, self.prev = self.prev, None
        pairs = []
        if prev:
            where = {}
            for j, r in enumerate(prev):
                o = r()
                if o is not None:
                    where.setdefault(id(o), j)
            taken = set()
            for i, t in enumerate(tensors):
                j = where.get(id(t))
                if j is not None and j not in taken and prev[j]() is t:
                    pairs.append((i, j))
                    taken.add(j)
        if not pairs or pairs != self.pairs:
            self.pairs = pairs
            return None
        self.learn = 0
        size = sum(self.static_in[i].nbytes for i, _ in pairs)
        if size > CARRY_MAX_BYTES or not _room_for(self.device, 2 * size):
            self._say(f"carries nothing: {2 * size / 2**30:.2f} GiB of buffers do not fit")
            return None
        try:
            self.carry = _Carry(self, pairs)
        except Exception as e:  # noqa: BLE001 - no carrying; the graph replays as before
            self._say(f"carries nothing: capture failed ({_first_line(e)})")
            return None
        self._say(f"carries {len(pairs)} results into the next call")
        return self.carry.replay(self, tensors)


def _room_for(device, nbytes):
    """Whether the device has `nbytes` to spare for carried state: half its free memory
    at most, so that the step itself keeps room to grow (the CPU: always)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return 2 * nbytes <= free


class _Carry:
    """Results of a runner that come back as inputs of its next call (a train step's
    parameters and optimizer state), carried between two more captures of its tape in its
    memory pool: graph x reads those inputs from buffer set x and, inside the graph,
    copies the results into set 1 - x, whose buffers it hands out (as new tensor objects
    over them). The next call passes them back, and graph 1 - x reads them where they
    are: no copy into static inputs, and none at all for results a kernel wrote in place
    (`empty_for`); the others are copied inside the graph. A call that passes other
    tensors is copied into set x; where a buffer to write is still held (by an earlier
    result that lives on), the runner's own graph replays instead."""

    __slots__ = ("pairs", "bufs", "uses", "graphs", "outs", "given", "groups", "rest",
                 "skip", "copies")

    def __init__(self, runner, pairs):
        self.pairs = pairs
        ins = runner.static_in
        self.bufs = [[torch.empty_like(ins[i]) for i, _ in pairs] for _ in range(2)]
        # (the storage of a buffer: its use count tells whether anything else holds it)
        self.uses = [[b.untyped_storage()._cdata for b in bs] for bs in self.bufs]
        self.given = [[None] * len(pairs) for _ in range(2)]
        self.skip = frozenset(i for i, _ in pairs)
        carried = {j for _, j in pairs}
        self.groups = [g for g in ([j for j in idx if j not in carried]
                                   for idx in runner.out_groups) if g]
        self.rest = [j for j in runner.out_rest if j not in carried]
        by = {}
        for p, (i, _) in enumerate(pairs):
            by.setdefault(ins[i].dtype, []).append(p)
        self.copies = list(by.values())  # positions in `pairs` by dtype
        self.graphs, self.outs = [], []
        for x in (0, 1):
            static_in = list(ins)
            for p, (i, _) in enumerate(pairs):
                static_in[i] = self.bufs[x][p]
            _, graph, out = runner.backend.capture(self._run(runner, x), None, static_in,
                                                   runner.device, pool=runner.graph)
            self.graphs.append(graph)
            self.outs.append([out] if runner.single else list(out))

    def _run(self, runner, x):
        run, single, pairs, copies, dst = runner.run, runner.single, self.pairs, self.copies, \
            self.bufs[1 - x]

        def carried(*tensors):
            RESERVED.update((id(tensors[i]), dst[p]) for p, (i, _) in enumerate(pairs))
            try:
                outs = run(*tensors)
            finally:
                RESERVED.clear()
            seq = (outs,) if single else outs
            for ps in copies:
                ps = [p for p in ps if seq[pairs[p][1]] is not dst[p]]  # (not written there)
                if ps:
                    _copy_([dst[p] for p in ps], [seq[pairs[p][1]] for p in ps])
            return outs
        return carried

    def replay(self, runner, tensors):
        """This call by one of the two graphs, or None where neither may run it."""
        pairs, given = self.pairs, self.given
        i0 = pairs[0][0]
        r = given[1][0]
        x = 1 if r is not None and r() is tensors[i0] else 0
        src, dst, mine = self.uses[x], self.uses[1 - x], given[x]
        alone = _alone_storage()
        todo = None
        for p, (i, _) in enumerate(pairs):
            if _use_count(dst[p]) != alone:
                return None  # (an earlier result still lives on in it)
            r = mine[p]
            t = tensors[i]
            if r is None or r() is not t:
                if _use_count(src[p]) != alone:
                    return None
                if todo is None:
                    todo = set()
                todo.add(p)
        if todo is not None:
            bufs = self.bufs[x]
            for ps in self.copies:
                ps = [p for p in ps if p in todo]
                if ps:
                    _copy_([bufs[p] for p in ps], [tensors[pairs[p][0]] for p in ps])
        runner._copy_in(tensors, self.skip)
        self.graphs[x].replay()
        runner.replays += 1
        outs = self.outs[x]
        res = [None] * len(outs)
        bufs, theirs = self.bufs[1 - x], given[1 - x]
        for p, (_, j) in enumerate(pairs):
            # (a new tensor object per result, as `_results` gives)
            a = res[j] = bufs[p].detach()
            theirs[p] = _ref(a)
        if runner.single:
            return res[0]
        return runner._results(outs, self.groups, self.rest, res)


class _Twins:
    """Two captures of a runner's tape, each in a pool of its own, whose results of at
    least DIRECT_BYTES (`direct`, each alone on its storage) are handed out as new tensor
    objects over the graph's own buffers; the others are copied out as usual. A replay
    runs the capture none of whose direct results lives on any more (the other's, where
    a step's results are gone or have come back as inputs by the step after next), or
    runs the tape plainly where both still live. Separate pools, since a graph's
    intermediates may take memory where the other's results lie in a shared one."""

    __slots__ = ("direct", "sides", "turn", "groups", "rest")

    @classmethod
    def make(cls, runner):
        """The twins of a captured runner, or None where no result goes out directly or
        the second capture fails (the runner replays as before)."""
        alone = _alone_storage()
        outs = runner.static_out
        direct = [i for i, o in enumerate(outs) if o.nbytes >= DIRECT_BYTES
                  and _use_count(o.untyped_storage()._cdata) == alone]
        if not direct:
            return None
        try:
            _, graph, other = runner.backend.capture(runner.run, None, runner.static_in,
                                                     runner.device)
        except Exception as e:  # noqa: BLE001 - no twins; the graph replays as before
            runner._say(f"no twin: capture failed ({_first_line(e)})")
            return None
        other = [other] if runner.single else list(other)
        uses = [[o[i].untyped_storage()._cdata for i in direct] for o in (outs, other)]
        if any(_use_count(u) != alone for u in uses[1]):
            return None
        self = cls()
        self.direct = direct
        self.sides = [(runner.graph, outs, uses[0]), (graph, other, uses[1])]
        self.turn = 0
        self.groups = [g for g in ([i for i in idx if i not in direct]
                                   for idx in runner.out_groups) if g]
        self.rest = [i for i in runner.out_rest if i not in direct]
        runner._say(f"twins hand {len(direct)} results out directly")
        return self

    def replay(self, runner, tensors):
        alone = _alone_storage()
        for x in (self.turn, 1 - self.turn):
            graph, outs, uses = self.sides[x]
            if all(_use_count(u) == alone for u in uses):
                break
        else:  # (both captures' results still live)
            return runner.run(*tensors)
        self.turn = 1 - x
        runner._copy_in(tensors, ())
        graph.replay()
        runner.replays += 1
        res = [None] * len(outs)
        for i in self.direct:
            res[i] = outs[i].detach()
        if runner.single:
            return res[0]
        return runner._results(outs, self.groups, self.rest, res)


def _holds(buffers, i):
    """(Python references to tensor i of `buffers`, uses of its storage)."""
    t = buffers[i]
    return _getrefcount(buffers[i]), _use_count(t.untyped_storage()._cdata)


_ALONE = []  # what `_holds` gives for a tensor nothing else holds (measured once)
_ALONE_STORAGE = []  # the use count of the storage of a tensor nothing else holds


def _alone_storage():
    if not _ALONE_STORAGE:
        t = torch.empty(1)
        cd = t.untyped_storage()._cdata  # (the storage object made here is gone again)
        _ALONE_STORAGE.append(_use_count(cd))
    return _ALONE_STORAGE[0]


def _free(buffers, i):
    """Whether nothing but `buffers` holds tensor i (no other Python reference, and no
    alias, view or export of its storage)."""
    if not _ALONE:
        _ALONE.append(_holds([torch.empty(1)], 0))
    return _holds(buffers, i) == _ALONE[0]
