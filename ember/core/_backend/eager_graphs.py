"""CUDA-graph replay of eager evaluations that repeat.

An eager step on the GPU (a model's forward, a train step) evaluates the same graph again
and again: the same primitives with the same parameters over inputs of the same shapes
and dtypes. Launching its kernels one by one costs tens of microseconds of host time
each; upstream's CUDA backend batches them into CUDA graphs. Here `evaluate` keys each
evaluation of a graph on torch's current stream of one GPU by its structure (per node:
primitive class and `params()`, input positions, result shape and dtype; per leaf:
shape, dtype, device), and from the `SEEN`-th evaluation of one key on hands it to a
`cudagraph.GraphRunner` over the leaves' tensors: one checked plain run, a capture, then
replays (the compiled calls' runner, with its copies of new inputs into static buffers;
results of 1 MB or more go out where a second capture, taking turns with the first,
wrote them, `cudagraph._Twins`, smaller ones are copied out).

Only the arrays that live beyond the evaluation get data: the ones asked for and every
node something besides the graph still holds (Python's reference count above the graph's
own references). The rest were never observable, and their buffers stay in the graph's
pool.

Graphs that cannot be keyed are evaluated plainly: any node on another stream, a
primitive whose `params()` do not hash, custom and compiled primitives (the latter
replay their own graph), leaves off the GPU. So are graphs whose quickest timed
evaluation took less than `MIN_COST` (a replay and its result copy cost about as much),
of fewer than `MIN_STEPS` primitives with a result below `cudagraph.DIRECT_BYTES` (one
launch would become a graph's and a copy's) or more than `MAX_NODES`, or of more than
`MAX_BYTES` of results (kernels outlast their launches there), and of more than
`MAX_LEAF_BYTES` of leaves (the graph's static copies of them would double a large
model's weights).

A key's graph is kept only where it makes the program's steps shorter. After WARM
replays (the first upload the graph), blocks of BLOCK replayed steps and of BLOCK plain
ones take turns, each step timed by CUDA events recorded as it begins: their spacing on
the device is a step's period whether the host or the device bounds it. Replays save
host time and may add copies of inputs and small results to the device's; where the
device hides the host's time (attention over 2048 tokens: its kernels bound the step),
or the copies outweigh the launches saved, the graph is released. A first replayed block
far quicker than any plain evaluation was (`EARLY`) keeps the graph without the rest.

`EMBER_EAGER_GRAPHS=0` (or `ENABLED[0] = False`) turns it off; `EMBER_COMPILE_DEBUG=1`
prints the runners' decisions. The cache keeps the `CACHE_SIZE` keys used last, releasing
a dropped key's graph, and releases the least recently used graphs while those held take
more than `MAX_HELD_BYTES` (results and leaf copies). Every evaluation on the GPU pays the
walk that makes the key (about 0.9 us per node on a development VM), replayed or not.
"""

import os
import sys
from collections import OrderedDict
from math import prod as _prod
from statistics import median as _median

from ember.core._backend import cudagraph as CG
from ember.core._backend import streams as S
from ember.core._backend.kernels import KERNELS

ENABLED = [os.environ.get("EMBER_EAGER_GRAPHS", "1") not in ("", "0")]
# evaluations of a key before its runner takes over (the runner's first is plain); those
# are plain and timed on the host (`MIN_COST`)
SEEN = 6
# the trial that keeps or releases a key's graph: ROUNDS of BLOCK replayed steps then
# BLOCK plain ones, each timed but a block's first (whose period the other way's last
# step sways: a replay's host savings let the next plain step's kernels run back to back);
# the median periods decide, and taking turns keeps a host whose speed drifts from
# favouring either (0 rounds: no trial). It follows WARM replays: a capture's first
# replays upload the graph, and steps take up to twice their later time for a few more
BLOCK = 4  # (at least 2: a block's first step is not timed)
ROUNDS = 2
WARM = 10
KEEP = 0.95  # the largest share of the plain period at which a replayed period keeps the graph
# the trial's first block of replayed steps keeps the graph at once where their median
# period is at most this share of the quickest timed plain evaluation (`_Entry.cost`,
# which a plain step's period cannot undercut): the plain blocks could only confirm it,
# at a plain step's cost each (a chain of 200 small adds: 15 us an add plain, 4.3
# replayed)
EARLY = 0.5
# graphs whose quickest timed (plain) evaluation but the first took less than this many
# seconds, waiting for the device included, stay plain: a replay and its result copy
# would cost about as much
MIN_COST = 30e-6
# graphs of fewer primitives stay plain where a result would be copied out (one below
# cudagraph.DIRECT_BYTES): a replay of one then launches a graph and copies in place of
# one launch (a convolution's forward alone: 0.05-0.07 ms a step replayed on an H100,
# 0.035-0.05 plain). Larger results go out uncopied, and the replay takes the host's
# work of the primitive's kernel call off the step (conv2d forwards in one run: 1.18-2.63x
# torch plain, 0.88-1.27x replayed)
MIN_STEPS = 2
MAX_NODES = 4096
MAX_BYTES = 1 << 30
MAX_LEAF_BYTES = 256 << 20  # (a captured graph keeps a copy of its leaves: no model's weights)
CACHE_SIZE = 32
# graphs' results and leaf copies in all, beyond which the least recently used graphs are
# released (each graph keeps a memory pool of about its results and static leaf copies)
MAX_HELD_BYTES = 2 << 30

_CACHE = OrderedDict()  # key -> _Entry
_HELD = [0]  # bytes of the entries with a runner
_REFUSED = set()  # primitive classes that keep a graph plain (filled on first use)
_getrefcount = sys.getrefcount


# (tests stand CPU stand-ins in for these four)
def _stream_fits(stream):
    return stream.is_gpu and stream._primary


def _tensor_fits(t):
    return t.is_cuda


_current = S.current  # (a stream's torch stream, where timing events are recorded)


_BACKEND = [CG.CUDA]


class _Tape:
    """What a GraphRunner reads of a tape."""

    __slots__ = ("run", "steps", "inputs", "outs", "stream")


class _Entry:
    """A key's sightings, its runner once it has one, the least host time its timed plain
    evaluations took (`cost`, seconds), and the timing events of its trial's steps
    (`marks`; None once decided)."""

    __slots__ = ("seen", "runner", "bytes", "cost", "marks")

    def __init__(self):
        self.seen = 1
        self.runner = None
        self.bytes = 0
        self.cost = float("inf")
        self.marks = []

    def timed(self, cost):
        """Record a plain evaluation's host time (not the first's: it pays one-time
        costs)."""
        if self.seen > 1:
            self.cost = min(self.cost, cost)

    def drop(self):
        """Release the runner's graph and stop counting its memory."""
        if self.runner is not None:
            self.runner.release()
        _HELD[0] -= self.bytes
        self.bytes = 0


def _refused():
    if not _REFUSED:
        from ember.core.primitives.compiled import Compiled
        from ember.core.primitives.custom import CustomTransforms
        _REFUSED.update((Compiled, CustomTransforms))
    return _REFUSED


def _walk(roots, stream):
    """(key, outputs, leaves, steps, bytes its runner holds (two captures' results, see
    `cudagraph._Twins`, and copies of the leaves)) of the graph under `roots`, inputs
    first, or None when it cannot be replayed. `outputs` holds every array the graph
    computes (siblings side by side), `steps` (first output slot, siblings or 0 for a
    single output, input slots) per primitive; input slots count outputs up from 0 and
    leaves down from -1, each leaf numbered where a node first names it."""
    refused = _refused()
    slot = {}  # (arrays hash by identity and are never compared here: distinct hashes)
    outs, leaves, steps, key = [], [], [], []
    nbytes = leaf_bytes = 0
    stack = list(roots)
    push, pop, at = stack.append, stack.pop, slot.__getitem__
    while stack:
        a = stack[-1]
        if a in slot:
            pop()
            continue
        ins = a._inputs
        pending = False
        for x in ins:
            if x not in slot:
                t = x._data
                if t is None:
                    push(x)
                    pending = True
                    continue
                if not _tensor_fits(t):
                    return None
                slot[x] = -1 - len(leaves)
                leaves.append(x)
                leaf_bytes += t.nbytes
                key.append((x._shape, x._dtype, t.device))
        if pending:
            continue
        pop()
        p = a._prim
        if a._stream is not stream or p is None or p.__class__ in refused:
            return None
        refs = tuple(map(at, ins))
        sib = a._siblings
        if sib is None:
            k = 0
            slot[a] = len(outs)
            steps.append((len(outs), 0, refs))
            outs.append(a)
            nbytes += _prod(a._shape) * a._dtype.size
        else:
            k = len(sib)
            steps.append((len(outs), k, refs))
            for o in sib:
                slot[o] = len(outs)
                outs.append(o)
                nbytes += _prod(o._shape) * o._dtype.size
        key.append((p.__class__, p.params(), a._shape, a._dtype, k, refs))
        if len(steps) > MAX_NODES or nbytes > MAX_BYTES or leaf_bytes > MAX_LEAF_BYTES:
            return None
    return key, outs, leaves, steps, 2 * nbytes + leaf_bytes


class _Probe:
    __slots__ = ()


def _live(outs, roots, steps):
    """Output slots of the arrays that must get data: the roots, and arrays referenced
    from outside the graph (Python's count above the graph's own references: its
    consumers' input tuples, a sibling tuple, and this walk's, measured on a probe)."""
    want = {id(r) for r in roots}
    inside = [0] * len(outs)  # references from the graph's input tuples
    for _, _, refs in steps:
        for s in refs:
            if s >= 0:
                inside[s] += 1
    probe = _Probe()
    outs.append(probe)
    counts = []
    for i in range(len(outs)):
        o = outs[i]
        counts.append(_getrefcount(o))
    outs.pop()
    base = counts.pop() - 1  # (less the probe's own name)
    live = []
    for i in range(len(outs)):
        o = outs[i]
        if id(o) in want or counts[i] > base + inside[i] + (o._siblings is not None):
            live.append(i)
    return tuple(live)


def _runner(outs, leaves, steps, live, stream):
    """A GraphRunner whose run executes the steps' kernels over the leaves' tensors and
    returns the live outputs' tensors (the others are dropped after their last reader)."""
    last = {}  # output slot -> the last step reading it
    for n, (_, _, refs) in enumerate(steps):
        for s in refs:
            if s >= 0:
                last[s] = n
    keep = set(live)
    frees = [[] for _ in steps]
    for s, n in last.items():
        if s not in keep:
            frees[n].append(s)
    plan = []
    for n, (at, k, refs) in enumerate(steps):
        p = outs[at]._prim
        plan.append((KERNELS[p.__class__], p, refs, at, k, tuple(frees[n])))
    n_out = len(outs)
    one = live[0] if len(live) == 1 else None

    def run(*tensors):
        vals = [None] * n_out
        for kern, p, refs, at, k, free in plan:
            r = kern(p, *[vals[s] if s >= 0 else tensors[-1 - s] for s in refs])
            if k:  # (the outputs of a multi-output primitive, one or more)
                vals[at:at + k] = r
            else:
                vals[at] = r
            for s in free:
                vals[s] = None
        return vals[one] if one is not None else tuple(vals[i] for i in live)

    tape = _Tape()
    tape.run, tape.steps, tape.inputs, tape.stream = run, plan, leaves, stream
    tape.outs = live
    runner = CG.GraphRunner(tape, _BACKEND[0])
    runner.learn = 0  # (no carried results: the held bytes of `_trim` would not count them)
    runner.twins = True  # (counted as twice the results in `evaluate`)
    return runner


def evaluate(roots, sync):
    """Evaluate the graph under `roots` (unevaluated arrays) through a CUDA graph where it
    repeats: True. Otherwise nothing is done: False, or the `_Entry` of a graph seen
    fewer than SEEN times or at a plain step of its trial, whose plain evaluation the
    caller times (`_Entry.timed`)."""
    stream = roots[0]._stream
    if not _stream_fits(stream):
        return False
    w = _walk(roots, stream)
    if w is None:
        return False
    key, outs, leaves, steps, size = w
    if len(steps) < MIN_STEPS and any(_prod(o._shape) * o._dtype.size < CG.DIRECT_BYTES
                                      for o in outs):
        return False
    live = _live(outs, roots, steps)
    try:
        key = (tuple(key), live)
        e = _CACHE.get(key)
    except TypeError:  # a primitive's parameters that do not hash
        return False
    if e is None:
        e = _CACHE[key] = _Entry()
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)[1].drop()
        return e
    _CACHE.move_to_end(key)
    r = e.runner
    if r is None:
        if e.marks is None:  # (decided: too cheap to replay)
            return False
        e.seen += 1
        if e.seen < SEEN:
            return e  # (timed again)
        if e.cost < MIN_COST:
            e.marks = None
            return False
        r = e.runner = _runner(outs, leaves, steps, live, stream)
        e.bytes = size
        _HELD[0] += size
        _trim(key)
        if not ROUNDS:
            e.marks = None
    elif r.status is CG.PLAIN or r.status is CG.RELEASED:
        _HELD[0] -= e.bytes  # (no graph: no pool)
        e.bytes = 0
        return False
    elif e.marks is not None and r.status is CG.CAPTURED and r.replays >= WARM:
        m = e.marks  # the trial: blocks of replayed steps, then of plain ones, in turn
        m.append(mark(stream))
        if len(m) == BLOCK + 1 and _kept_early(e, r):
            pass
        elif len(m) > 2 * BLOCK * ROUNDS:
            if _trial_releases(e, r):
                return False
        elif (len(m) - 1) // BLOCK % 2:
            return e
    res = r([x._data for x in leaves])
    if r.single:  # (the runner hands a single result out bare)
        res = (res,)
    for i, t in zip(live, res):
        outs[i]._data = t
    for o in outs:
        o._prim = None
        o._inputs = ()
        o._siblings = None
    if sync and stream.is_gpu:
        S.sync_current(stream)
    return True


def mark(stream):
    """A timing event recorded on torch's current stream (`stream`'s) now: the start of a
    step in a key's trial, whose period is the device's time from one to the next (the
    host's where the device waits for it, the device's where it is behind)."""
    ev = _BACKEND[0].event()
    ev.record(_current(stream))
    return ev


def _periods(m):
    """(replayed, plain) step periods in seconds from a trial's marks so far, but those of
    each block's first step (waiting for the last mark)."""
    m[-1].synchronize()
    d = ([], [])
    for i, (a, b) in enumerate(zip(m, m[1:])):
        if i % BLOCK:
            d[i // BLOCK % 2].append(a.elapsed_time(b) * 1e-3)
    return d


def _kept_early(e, r):
    """Whether the trial's first replayed block (its steps but the first) took at most
    EARLY of the quickest plain evaluation's host time: then the graph is kept, and the
    trial ends."""
    replayed = _median(_periods(e.marks)[0])
    if e.cost == float("inf") or replayed > EARLY * e.cost:  # (inf: never timed)
        return False
    e.marks = None
    r._say(f"kept early: replayed steps took {replayed * 1e6:.0f} us, a plain evaluation "
           f"{e.cost * 1e6:.0f} us")
    return True


def _trial_releases(e, r):
    """Whether the trial's replayed steps took more than KEEP of its plain steps' median
    period (waiting for the last): then replays save host time that the device hides, or
    lose more to their copies than they save, and the graph is released for plain
    evaluation. Decided once."""
    replayed, plain = map(_median, _periods(e.marks))
    e.marks = None
    bound = replayed > KEEP * plain
    r._say(f"{'released' if bound else 'kept'}: replayed steps took {replayed * 1e6:.0f} "
           f"us, plain ones {plain * 1e6:.0f} us")
    if bound:
        e.drop()
    return bound


def _trim(keep):
    """Drop the least recently used graphs (but `keep`'s) while their memory is over
    MAX_HELD_BYTES."""
    for key in list(_CACHE):
        if _HELD[0] <= MAX_HELD_BYTES:
            break
        if key != keep and _CACHE[key].runner is not None:
            _CACHE.pop(key).drop()


def clear():
    """Drop every cached graph (and its memory pool)."""
    while _CACHE:
        _CACHE.popitem()[1].drop()
    _HELD[0] = 0
