"""vmap: trace the function on unbatched placeholders, then replay the graph over the
batched inputs calling each primitive's vmap rule."""

import functools

from ember.core.array import array, node
from ember.core.transforms.eval import TRACING
from ember.core.transforms.graph import outputs_of, topo


def _ops():
    import ember.core.ops as O
    return O


def _flatten(tree):
    from ember.utils import tree_flatten
    return [v for _, v in tree_flatten(tree, is_leaf=lambda x: isinstance(x, array))]


def _broadcast_axes(axes, tree, what):
    """Expand an axes spec (int/None or a tree prefix of `tree`) to one entry per leaf."""
    if axes is None or isinstance(axes, int):
        return [axes] * len(_flatten(tree))
    if isinstance(axes, (list, tuple)) and isinstance(tree, (list, tuple)):
        if len(axes) != len(tree):
            raise ValueError(f"[vmap] The number of {what} axes ({len(axes)}) must match the "
                             f"number of {what}s ({len(tree)}).")
        return [a for ax, t in zip(axes, tree) for a in _broadcast_axes(ax, t, what)]
    if isinstance(axes, dict) and isinstance(tree, dict):
        return [a for k in tree for a in _broadcast_axes(axes[k], tree[k], what)]
    raise ValueError(f"[vmap] The {what} axes must be an int, None or a tree matching the "
                     f"{what}s.")


def _rebuild(tree, it):
    from ember.utils import tree_map
    return tree_map(lambda _: next(it), tree, is_leaf=lambda x: isinstance(x, array))


def vmap(fun, in_axes=0, out_axes=0):
    @functools.wraps(fun)
    def wrapper(*args):
        O = _ops()
        args = list(args)
        leaves = _flatten(args)
        axes = _broadcast_axes(tuple(in_axes) if isinstance(in_axes, list) else in_axes,
                               tuple(args) if not isinstance(in_axes, (int, type(None)))
                               else args, "input")
        size = None
        placeholders = []
        inputs = []
        for x, ax in zip(leaves, axes):
            if not isinstance(x, array):
                x = O.as_array(x)
            if ax is None:
                placeholders.append(x)
                inputs.append((x, None))
                continue
            if x.ndim == 0 or not -x.ndim <= ax < x.ndim:
                raise IndexError(f"[vmap] Invalid vectorization axis {ax} for array with shape "
                                 f"({','.join(map(str, x.shape))})")
            ax %= x.ndim
            if size is None:
                size = x.shape[ax]
            elif size != x.shape[ax]:
                raise ValueError(f"[vmap] Inconsistent axis sizes: {size} and {x.shape[ax]}.")
            ph = node(x.shape[:ax] + x.shape[ax + 1:], x.dtype, None, (), x._stream)
            placeholders.append(ph)
            inputs.append((x, ax))
        if size is None:
            raise ValueError("[vmap] At least one of in_axes must be non-None.")
        TRACING[0] += 1
        try:
            outs = fun(*_rebuild(args, iter(placeholders)))
            flat_out = _flatten(outs)
            if not all(isinstance(o, array) for o in flat_out):
                raise ValueError("[vmap] The outputs of a vmapped function must be arrays.")
            mapped = _replay(flat_out, placeholders, inputs)
        finally:
            TRACING[0] -= 1
        oaxes = _broadcast_axes(out_axes, outs, "output")
        results = []
        for (y, ax), oax in zip(mapped, oaxes):
            if ax is None:
                y = O.broadcast_to(O.expand_dims(y, 0), (size,) + y.shape)
                ax = 0
            if oax is None:
                results.append(y)
                continue
            if not -y.ndim <= oax < y.ndim:
                raise ValueError(f"[vmap] Axis {oax} is out of bounds for the output with "
                                 f"{y.ndim} dimensions.")
            results.append(O.moveaxis(y, ax, oax) if ax != oax % y.ndim else y)
        return _rebuild(outs, iter(results))

    return wrapper


def _replay(outs, placeholders, inputs):
    """[(batched output, batch axis)] for the traced outputs."""
    stop = {id(p) for p in placeholders}
    env = {id(p): v for p, v in zip(placeholders, inputs)}
    order = topo(outs, stop)
    for a in order:
        if id(a) in env:
            continue
        ins = a._inputs
        if not any(id(x) in env and env[id(x)][1] is not None for x in ins):
            for s in outputs_of(a):
                env[id(s)] = (s, None)
            continue
        new_in, axes = [], []
        for x in ins:
            v, ax = env.get(id(x), (x, None))
            new_in.append(v)
            axes.append(ax)
        res, res_axes = a._prim.vmap(new_in, axes)
        for s, r, ax in zip(outputs_of(a), res, res_axes):
            env[id(s)] = (r, ax)
    return [env[id(o)] for o in outs]
