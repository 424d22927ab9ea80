"""Reverse and forward mode: vjp, jvp, grad, value_and_grad.

Both run the function once on fresh tracer nodes (identities of the primals), then walk
the lazy graph calling each primitive's rule. Results are lazy arrays.
"""

import functools

from ember.core import dtypes as D
from ember.core.array import array
from ember.core.transforms.eval import TRACING
from ember.core.transforms.graph import dependents, outputs_of, topo


def _ops():
    import ember.core.ops as O
    return O


def _trace(fun, primals):
    """Run fun on identity tracers of the primals: (tracers, outputs)."""
    O = _ops()
    tracers = [O._identity(p) for p in primals]
    TRACING[0] += 1
    try:
        outs = fun(tracers)
    finally:
        TRACING[0] -= 1
    return tracers, outs


def _cast(c, like):
    if c.dtype is not like.dtype:
        c = _ops().astype(c, like.dtype)
    if c.shape != like.shape:
        c = _ops().broadcast_to(c, like.shape)
    return c


def backward(outs, cotangents, tracers):
    """Cotangents of `tracers` given cotangents of `outs` (None where no path)."""
    O = _ops()
    stop = {id(t) for t in tracers}
    order = topo(outs, stop)
    dep = dependents(order, stop)
    cot = {}
    for o, c in zip(outs, cotangents):
        if id(o) in dep:
            cot[id(o)] = c if id(o) not in cot else O.add(cot[id(o)], c)
    TRACING[0] += 1
    try:
        for a in reversed(order):
            if id(a) in stop or id(a) not in dep or a._prim is None:
                continue
            sibs = outputs_of(a)
            cts = [cot.pop(id(s), None) for s in sibs]
            if all(c is None for c in cts):
                continue
            cts = [O.zeros_like(s) if c is None else c for s, c in zip(sibs, cts)]
            ins = a._inputs
            argnums = [i for i, x in enumerate(ins) if id(x) in dep]
            res = a._prim.vjp(list(ins), cts, argnums, list(sibs))
            for i, c in zip(argnums, res):
                x = ins[i]
                c = _cast(c, x)
                prev = cot.get(id(x))
                cot[id(x)] = c if prev is None else O.add(prev, c)
    finally:
        TRACING[0] -= 1
    return [cot.get(id(t)) for t in tracers]


def forward(outs, tangents, tracers):
    """Tangents of `outs` given tangents of `tracers`."""
    O = _ops()
    stop = {id(t) for t in tracers}
    order = topo(outs, stop)
    dep = dependents(order, stop)
    tan = {id(t): tg for t, tg in zip(tracers, tangents)}
    TRACING[0] += 1
    try:
        for a in order:
            if id(a) in stop or id(a) not in dep or id(a) in tan:
                continue
            ins = a._inputs
            argnums = [i for i, x in enumerate(ins) if id(x) in tan]
            res = a._prim.jvp(list(ins), [tan[id(ins[i])] for i in argnums], argnums)
            for s, t in zip(outputs_of(a), res):
                tan[id(s)] = _cast(t, s)
    finally:
        TRACING[0] -= 1
    return [tan[id(o)] if id(o) in tan else O.zeros_like(o) for o in outs]


def _as_list(outs, op):
    if isinstance(outs, array):
        return [outs], True
    if isinstance(outs, (list, tuple)) and all(isinstance(o, array) for o in outs):
        return list(outs), False
    raise ValueError(f"[{op}] The function must return an array or a list of arrays.")


def _check_arrays(xs, op, what):
    if not isinstance(xs, (list, tuple)) or not all(isinstance(x, array) for x in xs):
        raise ValueError(f"[{op}] {what} must be a list of arrays.")
    return list(xs)


def vjp(fun, primals, cotangents):
    primals = _check_arrays(primals, "vjp", "primals")
    cotangents = _check_arrays(cotangents, "vjp", "cotangents")
    tracers, outs = _trace(lambda ts: fun(*ts), primals)
    outs, _ = _as_list(outs, "vjp")
    if len(cotangents) != len(outs):
        raise ValueError(f"[vjp] Number of outputs to compute gradients for ({len(outs)}) does "
                         f"not match number of cotangents ({len(cotangents)}).")
    for o, c in zip(outs, cotangents):
        if o.shape != c.shape:
            raise ValueError(f"[vjp] Output shape {_fmt(o.shape)} does not match cotangent "
                             f"shape {_fmt(c.shape)}.")
    grads = backward(outs, cotangents, tracers)
    O = _ops()
    return outs, [O.zeros_like(p) if g is None else g for p, g in zip(primals, grads)]


def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def jvp(fun, primals, tangents):
    primals = _check_arrays(primals, "jvp", "primals")
    tangents = _check_arrays(tangents, "jvp", "tangents")
    if len(primals) != len(tangents):
        raise ValueError(f"[jvp] Number of inputs ({len(primals)}) does not match number of "
                         f"tangents ({len(tangents)}).")
    for p, t in zip(primals, tangents):
        if p.shape != t.shape:
            raise ValueError(f"[jvp] Input shape {_fmt(p.shape)} does not match tangent "
                             f"shape {_fmt(t.shape)}.")
    tracers, outs = _trace(lambda ts: fun(*ts), primals)
    outs, _ = _as_list(outs, "jvp")
    return outs, forward(outs, [_cast(t, p) for t, p in zip(tangents, primals)], tracers)


# -- grad and value_and_grad ------------------------------------------------------------

def _flatten_args(tree, op):
    from ember.utils import tree_flatten
    leaves = tree_flatten(tree, is_leaf=lambda x: isinstance(x, array))
    for _, v in leaves:
        if not isinstance(v, array):
            raise ValueError("[tree_flatten] The argument should contain only arrays")
    return [v for _, v in leaves]


def _rebuild(tree, it):
    from ember.utils import tree_map
    return tree_map(lambda _: next(it), tree, is_leaf=lambda x: isinstance(x, array))


def _value_and_grad(fun, argnums, argnames, op):
    if argnums is None:
        argnums = () if argnames else 0
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if isinstance(argnames, str):
        argnames = [argnames]
    argnames = list(argnames)
    if len(set(nums)) != len(nums):
        raise ValueError(f"[{op}] Repeat argument number not allowed in argnums.")
    if any(n < 0 for n in nums):
        raise ValueError(f"[{op}] Can't compute the gradient of negative argument index.")

    def run(*args, **kwargs):
        for n in nums:
            if n >= len(args):
                raise ValueError(f"[{op}] Can't compute the gradient of argument index {n} "
                                 f"because the function is called with only {len(args)} "
                                 "positional arguments.")
        for name in argnames:
            if name not in kwargs:
                raise ValueError(f"[{op}] Can't compute the gradient of keyword argument "
                                 f"'{name}' because the function is called with the following "
                                 f"keyword arguments {list(kwargs)}.")
        trees = [args[n] for n in nums] + [kwargs[k] for k in argnames]
        primals = [x for t in trees for x in _flatten_args(t, op)]
        shapes = trees

        def call(tracers):
            it = iter(tracers)
            new_trees = [_rebuild(t, it) for t in shapes]
            a = list(args)
            for n, t in zip(nums, new_trees):
                a[n] = t
            kw = dict(kwargs)
            for k, t in zip(argnames, new_trees[len(nums):]):
                kw[k] = t
            return fun(*a, **kw)

        tracers, out = _trace(call, primals)
        loss = out
        if isinstance(out, (list, tuple)):
            if not out:
                raise ValueError(f"[{op}] The function returned an empty tuple.")
            loss = out[0]
        if not isinstance(loss, array):
            raise ValueError(f"[{op}] The return value of the function whose gradient we want "
                             f"to compute should be a scalar array; but "
                             f"{type(loss).__name__} was returned.")
        if loss.size != 1:
            raise ValueError(f"[{op}] The return value of the function whose gradient we want "
                             f"to compute should be a scalar array; but an array of shape "
                             f"{_fmt(loss.shape)} was returned.")
        O = _ops()
        seed = O.ones(loss.shape, loss.dtype if loss.dtype.kind in "fc" else D.float32)
        grads = backward([loss], [seed], tracers)
        grads = [O.zeros_like(p) if g is None else g for p, g in zip(primals, grads)]
        it = iter(grads)
        trees_g = [_rebuild(t, it) for t in shapes]
        pos = trees_g[:len(nums)]
        g_pos = pos[0] if single else tuple(pos)
        if argnames:
            g = (g_pos if nums else None, dict(zip(argnames, trees_g[len(nums):])))
        else:
            g = g_pos
        return out, g

    return run


def value_and_grad(fun, argnums=None, argnames=()):
    run = _value_and_grad(fun, argnums, argnames, "value_and_grad")

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        return run(*args, **kwargs)
    return wrapper


def grad(fun, argnums=None, argnames=()):
    run = _value_and_grad(fun, argnums, argnames, "grad")

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        return run(*args, **kwargs)[1]
    return wrapper
