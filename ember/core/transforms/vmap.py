"""vmap: trace the function on unbatched placeholders, then replay the graph over the
batched inputs calling each primitive's vmap rule.

Axis specs follow upstream: `in_axes` is matched against the arguments (the lone argument
itself when there is one), `out_axes` against the result; either may be an int or None
(not at the top level) or a prefix tree of lists, tuples and dicts of the same kinds as the
data. A 1-tuple stands for its element when the whole tree is a single array.
"""

import functools
import operator

from ember.core.array import TRANSFORMING, array, node
from ember.core.primitives.compiled import PLACEHOLDER
from ember.core.transforms.eval import TRACING
from ember.core.transforms.graph import (
    dependent_order,
    flatten_arrays,
    fmt_shape,
    rebuild,
    signature_error,
)

_SIG = "vmap(fun: Callable[P, R], in_axes: object = 0, out_axes: object = 0) -> Callable[P, R]"
_NOT_PREFIX = "[tree_map] Additional input tree is not a valid prefix of the first tree."
_AXIS_TYPE = "[vmap] axis must be int or None."
_RULE_AXIS_TYPE = "[custom vmap] The output axes must be ints or None."


def _ops():
    import ember.core.ops as O
    return O


def _leaf_axis(x, ax, output, seen_tuple, rule):
    """The normalised batch axis (or None) for array x (the unbatched traced output
    when `output`). A custom vmap rule's axis may be any integer (a numpy one too) and
    nothing else; upstream fails converting anything else."""
    if rule and ax is not None:
        try:
            ax = operator.index(ax)
        except TypeError:
            raise RuntimeError(_RULE_AXIS_TYPE) from None
    if isinstance(ax, tuple):
        if len(ax) != 1 or not (ax[0] is None or isinstance(ax[0], int)):
            raise ValueError(_AXIS_TYPE)
        seen_tuple[0] = True
        ax = ax[0]
    if ax is None:
        return None
    if not isinstance(ax, int):
        raise ValueError(_AXIS_TYPE)
    if not -2 ** 31 <= ax < 2 ** 31:
        raise RuntimeError("std::bad_cast")
    ax = given = int(ax)  # (True is axis 1, and reads so in the message)
    n = x.ndim + output
    if ax < 0:
        ax += n
    if not 0 <= ax < n:
        if rule:  # upstream meets a rule's bad axis first when moving it
            raise IndexError(f"[moveaxis] Invalid axis {given} for array with {n} dimensions.")
        what = "output " if output else ""
        raise IndexError(f"[vmap] Invalid {what}vectorization axis {ax} for array with shape "
                         f"{fmt_shape(x._shape)}")
    return ax


def _flat_axes(tree, axes, output, rule=False):
    """One axis per array leaf of `tree`, from the prefix tree `axes` (that a custom vmap
    rule returned when `rule`)."""
    flat = []
    seen_tuple = [False]

    def visit(t, ax):
        if isinstance(t, array):
            flat.append(_leaf_axis(t, ax, output, seen_tuple, rule))
        elif isinstance(t, list):
            if isinstance(ax, list):
                if len(ax) != len(t):
                    raise ValueError(_NOT_PREFIX)
                for x, a in zip(t, ax):
                    visit(x, a)
                return
            if isinstance(ax, (tuple, dict)):
                raise ValueError(_NOT_PREFIX)
            for x in t:
                visit(x, ax)
        elif isinstance(t, tuple):
            if isinstance(ax, tuple):
                if len(ax) != len(t):
                    raise ValueError(_NOT_PREFIX)
                for x, a in zip(t, ax):
                    visit(x, a)
                return
            if isinstance(ax, (list, dict)):
                raise ValueError(_NOT_PREFIX)
            for x in t:
                visit(x, ax)
        else:  # a dict (flatten_arrays let nothing else through)
            if isinstance(ax, dict):
                if len(ax) != len(t) or any(k not in ax for k in t):
                    raise ValueError(_NOT_PREFIX)
                for k, x in t.items():
                    visit(x, ax[k])
                return
            if isinstance(ax, (list, tuple)):
                raise ValueError(_NOT_PREFIX)
            for x in t.values():
                visit(x, ax)

    visit(tree, axes)
    if seen_tuple[0] and not isinstance(tree, array):
        raise ValueError(_AXIS_TYPE)
    return flat


def vmap(fun, in_axes=0, out_axes=0):
    if not callable(fun) or in_axes is None or out_axes is None:
        kw = {k: v for k, v in (("in_axes", in_axes), ("out_axes", out_axes)) if v != 0}
        raise signature_error("vmap", _SIG, (fun,), kw)

    @functools.wraps(fun)
    def vmap_fn(*args, **kwargs):
        if kwargs:
            raise TypeError("[vmap] Keyword arguments are not supported.")
        tree = args[0] if len(args) == 1 else args
        leaves = flatten_arrays(tree, [])
        axes = _flat_axes(tree, in_axes, False)
        size = None
        for x, ax in zip(leaves, axes):
            if ax is not None:
                if size is None:
                    size = x._shape[ax]
                elif x._shape[ax] != size:
                    raise ValueError(f"[vmap] Inconsistent axis sizes: {size} and "
                                     f"{x._shape[ax]}.")
        # placeholders stand for one slice of the batched inputs; unbatched ones are used
        # as they are. Their primitive's kernel gives upstream's errors when the function
        # evaluates one (inside: not allowed during a transform; outside: it escaped)
        traced = []
        for x, ax in zip(leaves, axes):
            if ax is None:
                traced.append(x)
            else:
                sh = x._shape
                traced.append(node(sh[:ax] + sh[ax + 1:], x._dtype, PLACEHOLDER, (), x._stream))
        new = rebuild(tree, iter(traced))
        TRACING[0] += 1
        TRANSFORMING[0] += 1
        try:
            outs = fun(new) if len(args) == 1 else fun(*new)
            flat_out = flatten_arrays(outs, [])
            oaxes = _flat_axes(outs, out_axes, True)
            if size is None:  # upstream checks this only now, after tracing
                raise ValueError("At least one of in_axes must be non-None.")
            mapped = _replay(flat_out, traced, leaves, axes)
        finally:
            TRACING[0] -= 1
            TRANSFORMING[0] -= 1
        O = _ops()
        results = []
        for (y, ax), o, oax in zip(mapped, flat_out, oaxes):
            if y is None:
                # no batched input reaches it: broadcast along the new axis (None: last)
                pos = o.ndim if oax is None else oax
                y = O.expand_dims(o, pos)
                shape = list(y._shape)
                shape[pos] = size
                y = O.broadcast_to(y, tuple(shape))
            elif ax is None:
                # a custom vmap rule left it unbatched: as upstream, its last axis is
                # taken for the batch axis
                if oax is not None:
                    if oax >= y.ndim:
                        raise ValueError(f"[vmap] Axis {oax} invalid for output with "
                                         f"{y.ndim} dimensions.")
                    y = O.moveaxis(y, -1, oax)
            elif oax is None:
                raise ValueError(f"[vmap] Axis -1 invalid for output with {y.ndim} dimensions.")
            elif ax != oax:
                y = O.moveaxis(y, ax, oax)
            results.append(y)
        return rebuild(outs, iter(results))

    return vmap_fn


def _replay(outs, traced, leaves, axes):
    """[(batched output, batch axis or None)] for the traced outputs, (None, None) for
    one that no batched input reaches."""
    env = {}
    sources = []
    for p, x, ax in zip(traced, leaves, axes):
        if ax is not None:
            env[id(p)] = (x, ax)
            sources.append(id(p))
    order, dep = dependent_order(outs, sources)
    O = _ops()
    for a in order:
        new_in = []
        in_axes = []
        for x in a._inputs:
            v = env.get(id(x))
            if v is None:
                new_in.append(x)
                in_axes.append(None)
            else:
                new_in.append(v[0])
                in_axes.append(v[1])
        if in_axes.count(None) != len(in_axes):
            res, res_axes = a._prim.vmap(new_in, in_axes)
        else:
            # only unbatched outputs of custom rules reach it: the rules expect a batched
            # input, so give them a batch of one and take it out again
            res, res_axes = a._prim.vmap([O.expand_dims(x, 0) for x in new_in],
                                         [0] * len(new_in))
            res = [r if ax is None else O.squeeze(r, ax) for r, ax in zip(res, res_axes)]
            res_axes = [None] * len(res)
        if a._siblings is None:
            env[id(a)] = (res[0], res_axes[0])
        else:
            for s, r, ax in zip(a._siblings, res, res_axes):
                env[id(s)] = (r, ax)
    return [env.get(id(o), (None, None)) for o in outs]
