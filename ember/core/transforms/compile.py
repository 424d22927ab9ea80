"""compile, enable_compile, disable_compile.

A compiled function is traced once per cache key on placeholder arrays (shape and dtype,
no data) standing for the array leaves of its arguments and of the `inputs` trees; the
traced graph becomes a tape (`ember.core.primitives.compiled`), simplified by the graph
passes there (merge equal constants, drop no-ops, common subexpressions, dead code). Later
calls with the same key do not run the function: they build one `Compiled` node over the
call's arrays, whose kernel runs the tape (`ember.core._backend.kernels_compiled`). Called
while another transform traces (grad, vjp, jvp, vmap, an enclosing compile), the tape is
expanded into ordinary lazy nodes instead, so those transforms see through it.

Semantics (upstream's):
- The key: the function, the current stream, the structure of the arguments (lists and
  tuples alike, dict keys in order, keyword names in order), the shape (with
  `shapeless=True` only the rank) and dtype of every array leaf, the value of every
  constant leaf (int and bool alike, float, str, None), and the shapes and dtypes of the
  array leaves of `inputs`. Compiled functions of the same `fun` share its cache; the cache
  goes when one of them is garbage collected.
- Arrays the function reads without receiving them (closures, globals) are constants: their
  value when traced is kept, in-place changes and rebinding later are not seen, and no
  gradient flows to them. Lazy ones are evaluated at the end of the trace. Constants that
  depend on another transform's placeholders stay inputs of the call, and such a trace is
  used for that call only.
- `inputs`: trees (lists, tuples, dicts, modules, `mx.random.state`) whose arrays are
  implicit inputs: placeholders stand in them while tracing, and the originals are put
  back afterwards where the function left a placeholder (a tuple inside the trees is
  replaced by a new one). Reading an `inputs` array other than through its tree (a
  closure, a tuple given as `inputs`) raises ValueError. `outputs`: trees whose arrays
  after the trace are implicit outputs; every call puts the new values in their place.
  `partial(mx.compile, inputs=state, outputs=state)` with
  `state = [model.state, optimizer.state, mx.random.state]` compiles a whole train step.
- Evaluating a traced array inside the function raises ValueError; evaluating one that
  escaped (state in `inputs` but not in `outputs`) raises RuntimeError later.
- `shapeless=True`: a call with other shapes (same ranks and dtypes) reuses the tape; the
  output shapes come from running the kernels on meta tensors, and where that fails
  (a shape baked into a step, a kernel reading values, a slice or split of an axis whose
  size changed) the function is traced again for those shapes (a recompile).
- MLX_DISABLE_COMPILE (set to anything) or disable_compile() make compiled functions
  plain calls (arguments are still checked); enable_compile() overrides the variable.

Cache: at most `cache_size()` keys per function (EMBER_COMPILE_CACHE_SIZE, default 64;
`set_cache_size(n)`), least recently used first out. `stats()` gives the global counters,
`stats(compiled_fn)` those of one function: hits (calls that reused a tape), misses
(traces), recompiles (traces of a function that already had a tape: a changed shape,
dtype, constant or structure), evictions, entries (keys now cached). `tapes(compiled_fn)`
shows the cached tapes (their steps, and `tape.run.source`, the generated executor);
`clear_cache()` forgets them all.

CUDA graphs: a cached call whose tape runs on one CUDA device is executed by a graph
runner (`ember.core._backend.cudagraph`): plainly the first time (with host
synchronisation made an error: such a tape never gets a graph), captured into a CUDA graph
with a private memory pool the second time, replayed after that (the inputs copied into
the graph's buffers unless the same tensors come again, the outputs copied out). Tapes
whose capture fails run plainly. `tape.graph.status` / `.reason` tell which; the graph
goes with its cache entry (eviction, `clear_cache`, the function's cache going).
`EMBER_CUDA_GRAPHS=0` turns graphs off; `EMBER_COMPILE_DEBUG=1` prints each decision.
"""

import collections
import functools
import operator
import os
import weakref

import ember.core.ops as O
from ember.core import device as dev
from ember.core._backend import cudagraph as CG
from ember.core._backend import kernels_compiled as KC
from ember.core.array import array, node, nodes
from ember.core.primitives.compiled import (
    PASSES,
    PLACEHOLDER,
    Compiled,
    Placeholder,
    Step,
    Tape,
    bounded,
)
from ember.core.transforms.eval import TRACING, evaluate
from ember.core.transforms.graph import is_array, map_tree, rebuild, signature_error

__all__ = ["compile", "enable_compile", "disable_compile"]

_SIG = ("compile(fun: Callable[P, R], inputs: object | None = None, outputs: object | None "
        "= None, shapeless: bool = False) -> Callable[P, R]")

_ENABLED = ["MLX_DISABLE_COMPILE" not in os.environ]
_CACHE_SIZE = [int(os.environ.get("EMBER_COMPILE_CACHE_SIZE", "64"))]

_CONSTANTS = (int, float, str, type(None))
_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python


def _type_name(t):
    if t.__flags__ & _HEAP_TYPE and t.__module__ != "builtins":
        return f"{t.__module__}.{t.__name__}"  # (not the qualified name, as upstream)
    return t.__name__


def _bad_argument(tree):
    return ValueError("[compile] Function arguments must be trees of arrays or constants "
                      "(floats, ints, strings, or None), but received type "
                      f"{_type_name(type(tree))}.")


def _check(tree):
    if isinstance(tree, (array,) + _CONSTANTS):
        return
    if isinstance(tree, (list, tuple)):
        for x in tree:
            _check(x)
    elif isinstance(tree, dict):
        for x in tree.values():
            _check(x)
    else:
        raise _bad_argument(tree)


# -- the cache key and the arrays of a call ----------------------------------------------------

class _Marker:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


# what follows in a key: a sequence length, dict keys, a constant, the `inputs` arrays
_SEQ, _DICT, _INT, _FLOAT, _STR, _NONE, _STATE = (
    _Marker(n) for n in ("seq", "dict", "int", "float", "str", "None", "state"))


def _flatten(tree, key, arrays, shapeless):
    """Append `tree`'s array leaves to `arrays` and its key tokens to `key`."""
    if isinstance(tree, array):
        arrays.append(tree)
        key.append(len(tree._shape) if shapeless else tree._shape)
        key.append(tree._dtype._rank)
    elif isinstance(tree, (list, tuple)):
        key.append(_SEQ)
        key.append(len(tree))
        for x in tree:
            _flatten(x, key, arrays, shapeless)
    elif isinstance(tree, dict):
        key.append(_DICT)
        key.append(tuple(tree))
        for x in tree.values():
            _flatten(x, key, arrays, shapeless)
    elif isinstance(tree, int):  # bool included: upstream keys True like 1
        key.append(_INT)
        key.append(int(tree))
    elif isinstance(tree, float):
        key.append(_FLOAT)
        # -0.0 and nan as text: 0.0 == -0.0, and nan never equals itself
        key.append(tree if tree == tree and tree else repr(tree))
    elif isinstance(tree, str):
        key.append(_STR)
        key.append(tree)
    elif tree is None:
        key.append(_NONE)
    else:
        raise _bad_argument(tree)


_HOLE = _Marker("hole")  # where an output array sat in a stored result tree


def _strip(tree, arrays):
    """The result tree with its arrays (appended to `arrays`) replaced by holes."""
    return map_tree(tree, is_array, lambda x: arrays.append(x) or _HOLE)


def _fill(tree, it):
    """A stored result tree with its holes filled from `it`."""
    return map_tree(tree, lambda x: x is _HOLE, lambda _: next(it))


# -- implicit state: the `inputs` and `outputs` trees -------------------------------------------

_RS = []


def _random_state_type():
    if not _RS:
        from ember.core import random
        _RS.append(random._RandomState)
    return _RS[0]


def _state_leaves(tree, out, locs=None):
    """Append the arrays of a state tree to `out` (other leaves are ignored), and with
    `locs`, where each one is: (container, key or index); (a tuple, None) and (None, the
    array) where no new value can go (a tuple, a bare array); (None, None) for the random
    state."""
    # array leaves are taken in the loops (one call per container, not per leaf: this
    # runs on every call of a compiled train step)
    if isinstance(tree, (list, tuple)):
        fixed = isinstance(tree, tuple)
        for i, x in enumerate(tree):
            if type(x) is array:
                out.append(x)
                if locs is not None:
                    locs.append((tree, None if fixed else i))
            else:
                _state_leaves(x, out, locs)
    elif isinstance(tree, dict):
        for k, x in tree.items():
            if type(x) is array:
                out.append(x)
                if locs is not None:
                    locs.append((tree, k))
            else:
                _state_leaves(x, out, locs)
    elif isinstance(tree, array):
        out.append(tree)
        if locs is not None:
            locs.append((None, tree))
    elif type(tree) is _random_state_type():
        from ember.core import random
        out.append(random._state_key())
        if locs is not None:
            locs.append((None, None))
    return out


class _StatePlan:
    """Where the leaves of an `inputs` tree that is also the `outputs` tree are, so that
    a call takes them without walking the tree and writes the new values straight there:
    a train step's state is the same tree on every call, holding what the last call wrote
    back. Each slot of each container must still hold the object it held, and each
    container its length; any change sends the call back to the full walk."""

    __slots__ = ("tree", "conts", "keys", "objs", "sized", "lengths", "leaves", "writable",
                 "random", "tuples")

    def __init__(self, tree):
        self.tree = tree
        self.conts, self.keys, self.objs, self.sized, self.lengths = [], [], [], [], []
        self._record(tree)
        # a tuple takes new values by being replaced: such trees take the full walk
        self.tuples = any(isinstance(c, tuple) for c in self.sized)
        locs = []
        self.leaves = _state_leaves(tree, [], locs)
        slot = {(id(c), k): j for j, (c, k) in enumerate(zip(self.conts, self.keys))}
        # (leaf, slot) for leaves that take new values; random-state leaves are read anew
        self.writable = [(i, slot[(id(c), k)]) for i, (c, k) in enumerate(locs)
                         if c is not None and k is not None]
        self.random = [i for i, (c, k) in enumerate(locs) if c is None and k is None]

    def _record(self, tree):
        if isinstance(tree, (list, tuple)):
            items = enumerate(tree)
        elif isinstance(tree, dict):
            items = tree.items()
        else:
            return
        self.sized.append(tree)
        self.lengths.append(len(tree))
        for k, x in items:
            self.conts.append(tree)
            self.keys.append(k)
            self.objs.append(x)
            self._record(x)

    def match(self):
        """The tree's leaves, or None when the tree changed."""
        # (loops in C: this runs on every call of a compiled train step)
        if self.tuples or list(map(len, self.sized)) != self.lengths or not all(
                map(operator.is_, map(operator.getitem, self.conts, self.keys), self.objs)):
            return None
        leaves = self.leaves
        if self.random:
            from ember.core import random
            for i in self.random:
                leaves[i] = random._state_key()
        return leaves

    def put(self, values):
        """`_put` of the call's new leaf values, at the leaves' places."""
        conts, keys, objs, leaves = self.conts, self.keys, self.objs, self.leaves
        for i, j in self.writable:
            conts[j][keys[j]] = objs[j] = leaves[i] = values[i]
        if self.random:
            from ember.core import random
            for i in self.random:
                random._set_state(values[i])


def _state_map(tree, fn):
    """Replace, in place, each array leaf x of a state tree by fn(x), in the order of
    `_state_leaves`. A tuple in a list or dict is replaced by a new tuple (as upstream);
    the tree itself, when a tuple, cannot take new values: fn still sees its leaves."""
    if isinstance(tree, list):
        for i, x in enumerate(tree):
            if isinstance(x, array):
                tree[i] = fn(x)
            elif isinstance(x, tuple):
                tree[i] = _mapped(x, fn)
            else:
                _state_map(x, fn)
    elif isinstance(tree, dict):
        for k, x in tree.items():
            if isinstance(x, array):
                tree[k] = fn(x)
            elif isinstance(x, tuple):
                tree[k] = _mapped(x, fn)
            else:
                _state_map(x, fn)
    elif isinstance(tree, (array, tuple)):
        _mapped(tree, fn)
    elif type(tree) is _random_state_type():
        from ember.core import random
        random._set_state(fn(random._state_key()))


def _mapped(x, fn):
    if isinstance(x, array):
        return fn(x)
    if isinstance(x, tuple):
        items = [_mapped(y, fn) for y in x]
        return tuple(items) if type(x) is tuple else type(x)(*items)
    _state_map(x, fn)
    return x


def _put(tree, values):
    it = iter(values)

    def take(x):
        v = next(it, _HOLE)
        return x if v is _HOLE else v
    _state_map(tree, take)


# -- the cache ---------------------------------------------------------------------------------

class _FunCache:
    """The traced calls of one function: key -> [entries] (more than one only for shapeless
    keys whose shapes the first entry cannot take), least recently used first."""

    __slots__ = ("entries", "hits", "misses", "recompiles", "evictions", "last_key", "last",
                 "plan")

    def __init__(self):
        self.entries = collections.OrderedDict()
        self.plan = None  # a _StatePlan of the state tree, for calls with inputs is outputs
        self.hits = self.misses = self.recompiles = self.evictions = 0
        # the most recently used key and its entries (a hit on it needs no reordering)
        self.last_key = self.last = None


_CACHES = {}
_TOTALS = {"hits": 0, "misses": 0, "recompiles": 0, "evictions": 0}


def _erase(fid):
    fc = _CACHES.pop(fid, None)
    if fc is not None:
        for variants in fc.entries.values():
            _release(variants)


def _release(variants):
    """Free the CUDA graphs of dropped entries (pending calls then run their tapes)."""
    for e in variants:
        g = e.tape.graph
        if g is not None:
            g.release()


def stats(fun=None):
    """Counters of the compile cache: of all functions, or of the compiled function `fun`:
    hits, misses (traces), recompiles (traces of a function already traced), evictions
    and entries (cached keys)."""
    if fun is None:
        return dict(_TOTALS, entries=sum(len(c.entries) for c in _CACHES.values()))
    fc = _CACHES.get(getattr(fun, "_ember_compile_id", None))
    if fc is None:
        return {"hits": 0, "misses": 0, "recompiles": 0, "evictions": 0, "entries": 0}
    return {"hits": fc.hits, "misses": fc.misses, "recompiles": fc.recompiles,
            "evictions": fc.evictions, "entries": len(fc.entries)}


def tapes(fun):
    """The tapes cached for the compiled function `fun`, least recently used first."""
    fc = _CACHES.get(getattr(fun, "_ember_compile_id", None))
    if fc is None:
        return []
    return [e.tape for variants in fc.entries.values() for e in variants]


def cache_size():
    """The most keys cached per compiled function."""
    return _CACHE_SIZE[0]


def set_cache_size(n):
    """Cache at most `n` keys per compiled function (the least recently used go first)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError("[compile] The cache size must be a positive int.")
    _CACHE_SIZE[0] = n
    for fc in _CACHES.values():
        _evict(fc)


def clear_cache():
    """Forget every traced call (counters stay)."""
    for fc in _CACHES.values():
        for variants in fc.entries.values():
            _release(variants)
        fc.entries.clear()
        fc.last_key = fc.last = None


def _evict(fc):
    while len(fc.entries) > _CACHE_SIZE[0]:
        key, variants = fc.entries.popitem(last=False)
        _release(variants)
        if key == fc.last_key:
            fc.last_key = fc.last = None
        fc.evictions += 1
        _TOTALS["evictions"] += 1


class _Entry:
    """One traced call: the tape and what maps a call's arrays to its inputs and its
    outputs back to the result tree and the `outputs` trees."""

    __slots__ = ("tape", "prim", "in_index", "out_shapes", "out_dtypes", "out_tree", "n_fun",
                 "state_src", "own_node", "shapes", "bounds")

    def __init__(self, tape, in_index, out_tree, n_fun, state_src):
        self.tape = tape
        self.prim = Compiled(tape, tape.shape)
        self.in_index = in_index
        self.out_shapes = [tape.shape[o] for o in tape.outs]
        self.out_dtypes = [tape.dtype[o] for o in tape.outs]
        self.out_tree = out_tree
        self.n_fun = n_fun
        self.state_src = state_src
        # results that are an input or a constant get a node of their own when expanded
        made = {o for st in tape.steps for o in st.outs}
        self.own_node = [i for i in range(n_fun) if tape.outs[i] not in made]
        self.shapes = None
        if tape.shapeless:
            sig = tuple(tape.shape[s] for s in tape.inputs)
            self.shapes = {sig: (self.prim, self.out_shapes)}
            # (input slot, its traced shape, the axes whose size must stay)
            self.bounds = [(st.ins[0], tape.shape[st.ins[0]], axes) for st in tape.steps
                           for axes in (bounded(st.prim),) if axes]

    def cache(self):
        """Called when the entry is cached: on the GPU, its calls may replay a CUDA graph."""
        self.prim.runner = self.tape.graph = CG.graph_runner(self.tape)

    def outputs(self, arrays):
        """The tape's output arrays for a call with `arrays`; None when a shapeless tape
        cannot take their shapes."""
        ins = arrays if self.in_index is None else [arrays[k] for k in self.in_index]
        tape = self.tape
        prim, shapes = self.prim, self.out_shapes
        if self.shapes is not None:
            sig = tuple([x._shape for x in ins])
            got = self.shapes.get(sig)
            if got is None:
                slot_shapes = KC.infer_shapes(tape, sig)
                if slot_shapes is not None and any(
                        slot_shapes[s][a] != traced[a] for s, traced, axes in self.bounds
                        for a in axes):
                    slot_shapes = None
                got = False if slot_shapes is None else \
                    (Compiled(tape, slot_shapes), [slot_shapes[o] for o in tape.outs])
                if len(self.shapes) > 256:
                    self.shapes.clear()
                self.shapes[sig] = got
            if got is False:
                return None
            prim, shapes = got
        if TRACING[0]:
            outs = tape.expand(ins, prim.shapes)
            for i in self.own_node:
                outs[i] = O._identity(outs[i])
            return outs
        n = len(shapes)
        if n == 1:
            return [node(shapes[0], self.out_dtypes[0], prim, tuple(ins), tape.stream)]
        if n:
            return nodes(shapes, self.out_dtypes, prim, tuple(ins), tape.stream)
        return []

    def finish(self, outs, arrays, outputs, plan=None):
        """The call's result tree; the `outputs` trees take their new values (at the
        places `plan`, a _StatePlan of `outputs`, found when given)."""
        if outputs is not None:
            values = [outs[j] if j >= 0 else arrays[-j - 1] for j in self.state_src]
            if plan is not None and not plan.tuples and len(plan.leaves) == len(values):
                plan.put(values)
            else:
                _put(outputs, values)
        t = self.out_tree
        if t is _HOLE:
            return outs[0]
        return _fill(t, iter(outs))


# -- calls -------------------------------------------------------------------------------------

def _call(fun, fid, cfg, inputs, outputs, shapeless, args, kwargs):
    s = dev.resolve(None)
    # ints where possible: Dtype and Stream hash in Python. The id of the stream is safe:
    # the tapes keyed by it hold the stream.
    key = [id(s), cfg]
    arrays = []
    for a in args:
        if type(a) is array:
            arrays.append(a)
            key.append(len(a._shape) if shapeless else a._shape)
            key.append(a._dtype._rank)
        else:
            _flatten(a, key, arrays, shapeless)
    if kwargs:
        _flatten(kwargs, key, arrays, shapeless)
    n_args = len(arrays)
    fc = _CACHES.get(fid)
    if fc is None:
        fc = _CACHES[fid] = _FunCache()
    if inputs is not None:
        key.append(_STATE)
        if outputs is inputs:
            plan = fc.plan
            leaves = plan.match() if plan is not None and plan.tree is inputs else None
            if leaves is None:
                plan = fc.plan = _StatePlan(inputs)
                leaves = plan.leaves
            arrays += leaves
        else:
            plan = None
            leaves = _state_leaves(inputs, arrays)[n_args:]
        for x in leaves:
            key.append(len(x._shape) if shapeless else x._shape)
            key.append(x._dtype._rank)
    else:
        plan = None
    key = tuple(key)
    if key == fc.last_key:  # the usual case: called as last time
        variants = fc.last
    else:
        variants = fc.entries.get(key)
        if variants is not None:
            fc.entries.move_to_end(key)
            fc.last_key, fc.last = key, variants
    if variants is not None:
        for entry in variants:
            outs = entry.outputs(arrays)
            if outs is not None:
                fc.hits += 1
                _TOTALS["hits"] += 1
                return entry.finish(outs, arrays, outputs, plan)
    fc.misses += 1
    _TOTALS["misses"] += 1
    if fc.entries:
        fc.recompiles += 1
        _TOTALS["recompiles"] += 1
    entry, externals = _trace(fun, args, kwargs, arrays, n_args, inputs, outputs, shapeless, s)
    if externals:
        arrays = arrays + externals  # a one-off tape: it reads another transform's tracers
    elif variants is not None and key in fc.entries:
        entry.cache()
        variants.append(entry)
        if len(variants) > _CACHE_SIZE[0]:  # the oldest shapes go, the first trace stays
            _release([variants.pop(1)])
    else:
        entry.cache()
        fc.entries[key] = variants = [entry]
        fc.last_key, fc.last = key, variants  # the newest key is the most recently used
        _evict(fc)
    result = entry.finish(entry.outputs(arrays), arrays, outputs)
    if plan is not None:  # the places of the tree as the traced call left it
        fc.plan = _StatePlan(inputs)
    return result


def _trace(fun, args, kwargs, arrays, n_args, inputs, outputs, shapeless, stream):
    """Run `fun` on placeholders: its entry, and the arrays it captured that depend on
    another transform's tracers (extra inputs of this call only)."""
    phs = [node(x._shape, x._dtype, PLACEHOLDER, (), x._stream) for x in arrays]
    it = iter(phs)
    t_args = [rebuild(a, it) for a in args]
    t_kwargs = {k: rebuild(v, it) for k, v in kwargs.items()}
    if inputs is not None:
        _put(inputs, phs[n_args:])
    TRACING[0] += 1
    try:
        out = fun(*t_args, **t_kwargs)
        fun_arrays = []
        out_tree = _strip(out, fun_arrays)
        state_arrays = _state_leaves(outputs, []) if outputs is not None else []
    except BaseException:
        if inputs is not None:  # the state as it was (upstream leaves its tracers there)
            _put(inputs, arrays[n_args:])
        raise
    finally:
        TRACING[0] -= 1
    if inputs is not None:
        # as upstream: the originals go back where the function left a placeholder
        back = {id(p): x for p, x in zip(phs[n_args:], arrays[n_args:])}
        _state_map(inputs, lambda x: back.get(id(x), x))
    # an `inputs` array read other than through its tree (a closure, a tuple of the tree)
    state = {id(x) for x in arrays[n_args:]}
    tape, externals = _capture(phs, fun_arrays + state_arrays, shapeless, stream, state)
    n_fun = len(fun_arrays)
    # a state output that is still an input placeholder is that input: no node output
    n_in = len(arrays)
    outs = tape.outs[:n_fun]
    state_src = []
    for sl in tape.outs[n_fun:]:
        if sl < n_in:
            state_src.append(-sl - 1)
        else:
            state_src.append(len(outs))
            outs.append(sl)
    tape.outs = outs
    for p in PASSES:
        p(tape)
    used = tape.used_inputs()
    in_index = None
    if len(used) != len(tape.inputs):
        in_index = [tape.inputs[k] for k in used]  # input slots are call positions
        tape.inputs = in_index
    tape.run = KC.build_runner(tape)
    return _Entry(tape, in_index, out_tree, n_fun, state_src), externals


# classes of traced arrays: an input placeholder, data, a step, a constant to evaluate, and
# one that reads another transform's tracers
_IN, _CONST, _DEP, _FREE, _TAINT = range(5)


def _capture(phs, outs, shapeless, stream, state):
    """The tape computing `outs` from the placeholders `phs` (slots 0..len(phs)-1), and the
    captured arrays that had to become extra inputs (slots after those)."""
    cls = {id(p): _IN for p in phs}
    order = []
    expanded = set()
    stack = list(reversed(outs))
    push, pop = stack.append, stack.pop
    while stack:  # iterative post-order walk (long chains must not recurse)
        a = stack[-1]
        k = id(a)
        if k in cls:
            pop()
            continue
        if k in state:
            raise ValueError("[compile] Attempting to compile a function with uncaptured "
                             "inputs is not allowed.")
        if a._data is not None:
            cls[k] = _CONST
            pop()
            continue
        p = a._prim
        if p is None or p.__class__ is Placeholder:
            cls[k] = _TAINT  # a tracer of another transform (vmap, an enclosing compile)
            pop()
            continue
        ins = a._inputs
        if k not in expanded:
            expanded.add(k)
            for x in ins:
                if id(x) not in cls:
                    push(x)
            continue
        pop()
        c = _FREE
        for x in ins:
            cx = cls[id(x)]
            if cx == _IN or cx == _DEP:
                c = _DEP
                break
            if cx == _TAINT:
                c = _TAINT
        sib = a._siblings
        if sib is None:
            cls[k] = c
        else:
            for x in sib:
                cls[id(x)] = c
        if c == _DEP:
            order.append(a)
    fold, externals, seen = [], [], set()
    for x in [x for a in order for x in a._inputs] + list(outs):
        c = cls[id(x)]
        if (c == _FREE or c == _TAINT) and id(x) not in seen:
            seen.add(id(x))
            (fold if c == _FREE else externals).append(x)
    if fold:
        evaluate(fold)  # constants of this trace: computed once, kept by the tape

    slot = {}
    shape, dtype = {}, {}
    for i, x in enumerate(phs + externals):
        slot[id(x)] = i
        shape[i], dtype[i] = x._shape, x._dtype
    consts = {}
    n = [len(slot)]

    def slot_of(x):
        s = slot.get(id(x))
        if s is None:  # data: a constant
            s = slot[id(x)] = n[0]
            n[0] += 1
            shape[s], dtype[s] = x._shape, x._dtype
            consts[s] = (x._data, x._dtype, x._stream, KC.const_key(x._data))
        return s

    steps = []
    for a in order:
        ins = tuple([slot_of(x) for x in a._inputs])
        made = []
        for x in a._siblings or (a,):
            s = slot[id(x)] = n[0]
            n[0] += 1
            shape[s], dtype[s] = x._shape, x._dtype
            made.append(s)
        steps.append(Step(a._prim, ins, tuple(made), a._stream, a._siblings is not None))
    out_slots = [slot_of(o) for o in outs]
    tape = Tape(list(range(len(phs) + len(externals))), consts, steps, out_slots, shape, dtype,
                shapeless, stream)
    return tape, externals


# -- the API ---------------------------------------------------------------------------------

def compile(fun, inputs=None, outputs=None, shapeless=False):
    if not callable(fun) or not isinstance(shapeless, bool):
        kw = {k: v for k, v in (("inputs", inputs), ("outputs", outputs),
                                ("shapeless", shapeless)) if v is not None and v is not False}
        raise signature_error("compile", _SIG, (fun,), kw)
    fid = id(fun)
    # wrappers of one function share its cache, but not the tapes of other state trees
    cfg = (shapeless, id(inputs), id(outputs))

    @functools.wraps(fun)
    def compiled(*args, **kwargs):
        if not _ENABLED[0]:
            _check(args)
            _check(kwargs)
            return fun(*args, **kwargs)
        return _call(fun, fid, cfg, inputs, outputs, shapeless, args, kwargs)

    compiled._ember_compile_id = fid
    # the wrapper holds `fun`, so its id stays unique while any wrapper lives; as upstream,
    # the cache of `fun` goes with the first of its wrappers to go
    weakref.finalize(compiled, _erase, fid)
    return compiled


def enable_compile():
    """Globally enable compilation. This will override the environment variable
    ``MLX_DISABLE_COMPILE`` if set."""
    _ENABLED[0] = True


def disable_compile():
    """Globally disable compilation. Setting the environment variable
    ``MLX_DISABLE_COMPILE`` can also be used to disable compilation."""
    _ENABLED[0] = False
