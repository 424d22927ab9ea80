"""custom_function and checkpoint.

Calling a custom function runs it (lazily, as written) and hands its outputs through a
CustomTransforms node whose inputs are the call's input arrays followed by those outputs.
Transforms reaching the node call its rules: the user's, or else the transform of the
function itself. Like upstream, the function is treated as pure: the vjp and jvp without a
user rule trace it again on the node's inputs, so arrays it captures are constants. The
vmap without a rule reuses the function's outputs, which the replay has already batched.

Rule conventions (upstream's): positional arguments reach a rule as one tree (the argument
itself when there is one, else the tuple of them), keyword arguments as keywords of the
vjp rule. Of what a vjp rule returns, only the arrays count: in order, they are the
cotangents of the input arrays (positional, then keyword), taken as they are (no check of
shape or dtype). Where a rule gives fewer, the next inputs take the output cotangents, as
upstream's do. A jvp rule returns the outputs' tangents in the same way, zeros where it
gives too few; a vmap rule returns `(outputs, axes)` with `axes` a prefix tree of the
outputs.
"""

import functools

from ember.core.array import array, nodes
from ember.core.primitives.custom import CustomTransforms
from ember.core.transforms.autodiff import _trace, _vjp, forward
from ember.core.transforms.graph import flatten_arrays, signature_error
from ember.core.transforms.vmap import _flat_axes

__all__ = ["custom_function", "checkpoint"]


def _ops():
    import ember.core.ops as O
    return O


# -- trees whose leaves need not be arrays ----------------------------------------------

class _Hole:
    """Where an array sat in a stored argument or output tree (the tree keeps no arrays)."""

    __slots__ = ()


_HOLE = _Hole()


def _leaves(tree, out):
    """Append every leaf of `tree` (through lists, tuples and dicts) to `out`."""
    if isinstance(tree, (list, tuple)):
        for x in tree:
            _leaves(x, out)
    elif isinstance(tree, dict):
        for x in tree.values():
            _leaves(x, out)
    else:
        out.append(tree)
    return out


def _map(tree, fn):
    """`tree` with each leaf replaced by fn(leaf)."""
    if isinstance(tree, (list, tuple)):
        items = [_map(x, fn) for x in tree]
        if type(tree) is list:
            return items
        return type(tree)(*items) if hasattr(tree, "_fields") else type(tree)(items)
    if isinstance(tree, dict):
        return {k: _map(x, fn) for k, x in tree.items()}
    return fn(tree)


def _strip(tree):
    return _map(tree, lambda x: _HOLE if isinstance(x, array) else x)


def _fill(tree, it):
    """`tree` with its holes filled from iterator `it`, other leaves kept."""
    return _map(tree, lambda x: next(it) if x is _HOLE else x)


def _fill_only(tree, it):
    """`tree` with its holes filled from iterator `it`, other leaves made None (the
    tangents and axes of the arguments)."""
    return _map(tree, lambda x: next(it) if x is _HOLE else None)


def _pack(args):
    """The tree a rule receives for the positional arguments."""
    return args[0] if len(args) == 1 else args


def _arrays(res):
    """The arrays among the leaves of a rule's result (any other leaf is dropped)."""
    return [x for x in _leaves(res, []) if isinstance(x, array)]


# -- the rules of one call --------------------------------------------------------------

class _Rules:
    """What the CustomTransforms node of one call needs: the call's argument and output
    trees (arrays stripped), the function, and the rules in force at the call."""

    __slots__ = ("fun", "args", "kwargs", "outs", "vjp_rule", "jvp_rule", "vmap_rule")

    def __init__(self, fun, args, kwargs, outs, rules):
        self.fun = fun
        self.args = _strip(args)
        self.kwargs = _strip(kwargs)
        self.outs = _strip(outs)
        self.vjp_rule, self.jvp_rule, self.vmap_rule = rules

    def _call_args(self, arrays):
        it = iter(arrays)
        return _fill(self.args, it), _fill(self.kwargs, it)

    def _flat_fun(self):
        """The function from its input arrays to its output arrays."""
        def flat(*xs):
            args, kwargs = self._call_args(xs)
            return _arrays(self.fun(*args, **kwargs))
        return flat

    def _no_keywords(self, what):
        if self.kwargs:  # upstream passes keywords to a vjp rule only
            raise ValueError(f"[custom {what}] Function should only accept positional "
                             "arguments")

    def vjp(self, primals, cotangents, outputs):
        if self.vjp_rule is None:
            return _vjp(self._flat_fun(), list(primals), list(cotangents))[1]
        args, kwargs = self._call_args(primals)
        res = self.vjp_rule(_pack(args), _fill(self.outs, iter(cotangents)),
                            _fill(self.outs, iter(outputs)), **kwargs)
        n = len(primals)
        got = (_arrays(res) + list(cotangents))[:n]
        return got + [None] * (n - len(got))

    def jvp(self, primals, tangents, outputs):
        if self.jvp_rule is None:
            given = [i for i, t in enumerate(tangents) if t is not None]
            tracers, outs = _trace(self._flat_fun(), list(primals))
            return forward(outs, [tangents[i] for i in given], [tracers[i] for i in given])
        self._no_keywords("jvp")
        args, _ = self._call_args(primals)
        res = self.jvp_rule(_pack(args), _pack(_fill_only(self.args, iter(tangents))))
        got = _arrays(res)[:len(outputs)]
        zeros_like = _ops().zeros_like
        return got + [zeros_like(o) for o in outputs[len(got):]]

    def vmap(self, inputs, axes, outputs, out_axes):
        if self.vmap_rule is None:
            return list(outputs), list(out_axes)
        self._no_keywords("vmap")
        args, _ = self._call_args(inputs)
        res = self.vmap_rule(_pack(args), _pack(_fill_only(self.args, iter(axes))))
        if not isinstance(res, tuple) or len(res) != 2:
            raise ValueError("[custom vmap] Vmap function should return a tuple with 2 items.")
        outs = flatten_arrays(res[0], [])
        n = len(outputs)
        if len(outs) < n:
            raise ValueError(f"[custom vmap] The vmap function returned {len(outs)} arrays but "
                             f"the function has {n} outputs.")
        return outs[:n], _flat_axes(res[0], res[1], False, rule=True)[:n]


def _call(fun, args, kwargs, rules, strict):
    """Run fun and pass its output arrays through a CustomTransforms node. A custom
    function's outputs must all be arrays (strict); a checkpointed one's may hold other
    values, which are returned as they are."""
    ins = [x for x in _leaves(kwargs, _leaves(args, [])) if isinstance(x, array)]
    out = fun(*args, **kwargs)
    if strict:
        outs = flatten_arrays(out, [])
    else:
        outs = _arrays(out)
    if not outs:
        return out
    r = _Rules(fun, args, kwargs, out, rules)
    passed = nodes(tuple(o._shape for o in outs), tuple(o._dtype for o in outs),
                   CustomTransforms(len(ins), r), tuple(ins + outs), outs[0]._stream)
    return _fill(r.outs, iter(passed))


# -- the public API -------------------------------------------------------------------------

def _signature_error(name, f):
    return TypeError(f"{name}(): incompatible function arguments. The following argument "
                     f"types are supported:\n    1. {name}(self, f: Callable)\n\nInvoked with "
                     f"types: ember.core.custom_function, {type(f).__name__}")


class custom_function:
    """Set up a function for custom gradient and vmap definitions.

    Instances are callables that behave identically to the wrapped function; when a
    function transformation is used the functions defined via :meth:`vjp`, :meth:`jvp`
    and :meth:`vmap` are used instead of the default transformation. Undefined
    transformations fall back to the default behaviour. Captured arrays are treated as
    constants.
    """

    __slots__ = ("_fun", "_vjp", "_jvp", "_vmap")

    def __init__(self, f):
        if not callable(f):
            raise _signature_error("__init__", f)
        self._fun = f
        self._vjp = self._jvp = self._vmap = None

    def __call__(self, *args, **kwargs):
        rules = (self._vjp, self._jvp, self._vmap)
        if rules == (None, None, None):
            return self._fun(*args, **kwargs)
        return _call(self._fun, args, kwargs, rules, True)

    def _copy(self):
        c = custom_function(self._fun)
        c._vjp, c._jvp, c._vmap = self._vjp, self._jvp, self._vmap
        return c

    def vjp(self, f):
        """Define a custom vjp for the wrapped function: f(primals, cotangents, outputs)
        returns the cotangents of the primals (a tree like the primals)."""
        if not callable(f):
            raise _signature_error("vjp", f)
        self._vjp = f
        return self._copy()

    def jvp(self, f):
        """Define a custom jvp for the wrapped function: f(primals, tangents) returns the
        tangents of the outputs (tangents hold None for inputs without one)."""
        if not callable(f):
            raise _signature_error("jvp", f)
        self._jvp = f
        return self._copy()

    def vmap(self, f):
        """Define a custom vectorization for the wrapped function: f(inputs, axes) returns
        (outputs, output axes), an axis being None for an output that is not vectorized."""
        if not callable(f):
            raise _signature_error("vmap", f)
        self._vmap = f
        return self._copy()


def checkpoint(fun):
    """Transform the passed callable to one that performs gradient checkpointing with
    respect to the inputs of the callable: its gradient recomputes the intermediate
    states instead of keeping them from the forward pass."""
    if not callable(fun):
        raise signature_error("checkpoint", "checkpoint(fun: Callable[P, R]) -> Callable[P, R]",
                              (fun,), {})

    @functools.wraps(fun)
    def checkpointed(*args, **kwargs):
        return _call(fun, args, kwargs, (None, None, None), False)

    return checkpointed
