"""The fused step: one `OptimizerUpdate` node per dtype instead of a dozen nodes per
parameter, for the built-in elementwise optimizers.

A parameter takes the fused path when its gradient, the parameter and its state slots are
arrays of one floating dtype and shape on the device of the current stream (what the
per-parameter rule would compute without any promotion, broadcast or copy). Any other
parameter goes through `apply_single` as before, so results and errors are unchanged.
"""

from ember.core import device as dev
from ember.core import dtypes as D
from ember.core.array import array, nodes
from ember.core.ops._base import to_device
from ember.core.primitives.optim import OptimizerUpdate
from ember.core.transforms.graph import map_tree

_FLOATS = frozenset((D.float16, D.bfloat16, D.float32, D.float64))
_NUMBERS = (int, float, bool)


def apply(opt, rule, grads, params, state):
    """`opt.apply_gradients` over trees for an optimizer with a fused `rule`: (rule name,
    hyperparameters, state slots, scalars(dtype) -> (scalar arrays, flags))."""
    leaves = []
    _collect(grads, params, state, leaves)
    name, hyper, slots, scalars = rule
    s = dev.resolve(None)
    d = s.device
    groups = {}  # dtype -> [(leaf index, gradient, parameter, state, slot arrays)]
    last_dt = group = None
    results = [None] * len(leaves)
    for i, (g, p, st) in enumerate(leaves):
        if type(g) is array and type(p) is array and type(st) is dict:
            dt, shape = p._dtype, p._shape
            ok = g._dtype is dt and g._shape == shape and g._stream.device is d \
                and p._stream.device is d and (dt is last_dt or dt in _FLOATS)
            if ok:
                xs = [st.get(k) for k in slots]
                for x in xs:
                    if type(x) is not array or x._dtype is not dt or x._shape != shape \
                            or x._stream.device is not d:
                        ok = False
                        break
            if ok:
                if dt is not last_dt:
                    last_dt, group = dt, groups.setdefault(dt, [])
                group.append((i, g, p, st, xs))
                continue
        results[i] = opt.apply_single(g, p, st)
    for dt, group in groups.items():
        sc, flags = scalars(dt)
        if any(x._shape or x._dtype is not dt for x in sc):
            # a learning rate of shape (1,) or more broadcasts into the parameters, one
            # of another dtype (an array weight decay, say) promotes them
            for i, g, p, st, _ in group:
                results[i] = opt.apply_single(g, p, st)
            continue
        sc = [x if x._stream.device is d else to_device(x, s) for x in sc]
        n = len(group)
        ins = sc + [e[1] for e in group] + [e[2] for e in group]
        for j in range(len(slots)):
            ins += [e[4][j] for e in group]
        shapes = [e[2]._shape for e in group] * (1 + len(slots))
        prim = OptimizerUpdate(name, hyper + flags, n, len(sc), slots)
        outs = nodes(shapes, [dt] * len(shapes), prim, tuple(ins), s)
        for k, e in enumerate(group):
            results[e[0]] = outs[k]
            st = e[3]
            for j, slot in enumerate(slots):
                st[slot] = outs[(j + 1) * n + k]
    results = iter(results)
    return map_tree(grads, lambda x: not isinstance(x, (dict, list, tuple)),
                    lambda _: next(results))


def _collect(grads, params, state, out):
    # the walk of Optimizer._walk (the same lookups, so the same KeyErrors)
    if isinstance(grads, dict):
        for k, g in grads.items():
            if type(g) is array:
                out.append((g, params[k], state[k]))
            else:
                _collect(g, params[k], state[k], out)
    elif isinstance(grads, (list, tuple)):
        for i, g in enumerate(grads):
            _collect(g, params[i], state[i], out)
    else:
        out.append((grads, params, state))


def hyperparameters(*values):
    """`values` as a tuple when all are Python numbers (primitive parameters), else None."""
    return values if all(type(v) in _NUMBERS for v in values) else None
