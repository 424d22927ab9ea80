"""Reverse and forward mode: vjp, jvp, grad, value_and_grad.

Both run the function once on fresh tracer nodes (identities of the primals), then walk
the part of the lazy graph between the tracers and the outputs calling each primitive's
rule. Results are lazy arrays. As upstream, the cotangents given to vjp are cast to their
output's dtype; nothing else is cast: the gradient's dtype is what the rules produce.
"""

import functools

from ember.core.array import TRANSFORMING, array, const, fresh
from ember.core.primitives.custom import CustomTransforms
from ember.core.primitives.misc import StopGradient
from ember.core.transforms.eval import TRACING
from ember.core.transforms.graph import (
    dependent_order,
    flatten_arrays,
    fmt_shape,
    rebuild,
    restore,
    signature_error,
    substitute,
)


def _ops():
    import ember.core.ops as O
    return O


def _trace(fun, primals):
    """Run fun on tracers of the primals: new array objects with their values. Outside
    other transforms they share the data of evaluated primals (evaluation has nothing to
    run for them); inside, identities keep the path to the outer transform's tracers."""
    if TRACING[0]:
        ident = _ops()._identity
        tracers = [ident(p) for p in primals]
    else:
        tracers = [fresh(p) for p in primals]
    TRACING[0] += 1
    TRANSFORMING[0] += 1
    try:
        outs = fun(*tracers)
    finally:
        TRACING[0] -= 1
        TRANSFORMING[0] -= 1
    return tracers, outs


def backward(outs, cotangents, tracers):
    """Cotangents of `tracers` given cotangents of `outs` (None where no path). Where an
    output appears twice, its first cotangent is used.

    A rule's cotangent for a floating input is cast to the input's dtype (upstream's rules
    always give that dtype; integer and bool inputs keep whatever the rules give, as
    upstream), and one of a broadcastable shape is broadcast to the input's. The
    cotangents of a custom vjp rule are kept as they are, as upstream."""
    O = _ops()
    add, zeros_like, astype, broadcast_to = O.add, O.zeros_like, O.astype, O.broadcast_to
    order, dep = dependent_order(outs, [id(t) for t in tracers], StopGradient)
    cot = {}
    for o, c in zip(outs, cotangents):
        k = id(o)
        if k in dep and k not in cot:
            cot[k] = c
    pop = cot.pop
    get = cot.get
    TRACING[0] += 1
    try:
        for a in reversed(order):
            sib = a._siblings
            if sib is None:
                c = pop(id(a), None)
                if c is None:
                    continue
                cts = [c]
                outputs = [a]
            else:
                cts = [pop(id(s), None) for s in sib]
                if all(c is None for c in cts):
                    continue
                cts = [zeros_like(s) if c is None else c for s, c in zip(sib, cts)]
                outputs = list(sib)
            ins = a._inputs
            argnums = [i for i, x in enumerate(ins) if id(x) in dep]
            prim = a._prim
            res = prim.vjp(list(ins), cts, argnums, outputs)
            # upstream takes the cotangents of a user's custom vjp rule as they are
            custom = prim.__class__ is CustomTransforms
            for i, c in zip(argnums, res):
                x = ins[i]
                if not custom:
                    if c._dtype is not x._dtype and x._dtype.kind in "fc":
                        c = astype(c, x._dtype)
                    if c._shape != x._shape:
                        c = broadcast_to(c, x._shape)
                k = id(x)
                prev = get(k)
                cot[k] = c if prev is None else add(prev, c)
    finally:
        TRACING[0] -= 1
    return [get(id(t)) for t in tracers]


def forward(outs, tangents, tracers):
    """Tangents of `outs` given tangents of `tracers` (zeros where no path)."""
    order, _ = dependent_order(outs, [id(t) for t in tracers], StopGradient)
    tan = {id(t): tg for t, tg in zip(tracers, tangents)}
    TRACING[0] += 1
    try:
        for a in order:
            ins = a._inputs
            argnums = [i for i, x in enumerate(ins) if id(x) in tan]
            res = a._prim.jvp(list(ins), [tan[id(ins[i])] for i in argnums], argnums)
            if a._siblings is None:
                tan[id(a)] = res[0]
            else:
                for s, t in zip(a._siblings, res):
                    tan[id(s)] = t
    finally:
        TRACING[0] -= 1
    zeros_like = _ops().zeros_like
    return [tan[id(o)] if id(o) in tan else zeros_like(o) for o in outs]


# -- vjp and jvp ---------------------------------------------------------------------

_VJP_SIG = ("vjp(fun: Callable, primals: list[array], cotangents: list[array]) -> "
            "tuple[list[array], list[array]]")
_JVP_SIG = ("jvp(fun: Callable, primals: list[array], tangents: list[array]) -> "
            "tuple[list[array], list[array]]")


def _array_list(xs):
    """xs as a list of arrays, or None when it is not a sequence of arrays."""
    if isinstance(xs, array):
        xs = list(xs)  # a sequence of its rows, as upstream's bindings see it
    elif not isinstance(xs, (list, tuple)):
        return None
    for x in xs:
        if not isinstance(x, array):
            return None
    return list(xs)


def _outputs(outs, op):
    if isinstance(outs, array):
        return [outs]
    if isinstance(outs, (list, tuple)) and all(isinstance(o, array) for o in outs):
        return list(outs)
    raise RuntimeError(f"[{op}] The function must return an array or a list of arrays.")


def vjp(fun, primals, cotangents):
    p, c = _array_list(primals), _array_list(cotangents)
    if not callable(fun) or p is None or c is None:
        raise signature_error("vjp", _VJP_SIG, (fun, primals, cotangents), {})
    return _vjp(lambda *xs: _outputs(fun(*xs), "vjp"), p, c)


def _vjp(fun, primals, cotangents):
    tracers, outs = _trace(fun, primals)
    if len(cotangents) < len(outs):
        raise ValueError(f"[vjp] Number of outputs to compute gradients for ({len(outs)}) "
                         f"does not match number of cotangents ({len(cotangents)}).")
    astype = None
    seeds = []
    for o, c in zip(outs, cotangents):
        if o._shape != c._shape:
            hint = " If you are using grad your function must return a scalar." \
                if o.size == 1 else ""
            raise ValueError(f"[vjp] Output shape {fmt_shape(o._shape)} does not match "
                             f"cotangent shape {fmt_shape(c._shape)}.{hint}")
        if c._dtype is not o._dtype:
            astype = astype or _ops().astype
            c = astype(c, o._dtype)
        seeds.append(c)
    grads = backward(outs, seeds, tracers)
    zeros_like = _ops().zeros_like
    return outs, [zeros_like(p) if g is None else g for p, g in zip(primals, grads)]


def jvp(fun, primals, tangents):
    p, t = _array_list(primals), _array_list(tangents)
    if not callable(fun) or p is None or t is None:
        raise signature_error("jvp", _JVP_SIG, (fun, primals, tangents), {})
    if len(p) != len(t):
        raise ValueError("[jvp] Number of inputs does not match number of tangents.")
    for x, tg in zip(p, t):
        if x._shape != tg._shape:
            raise ValueError("[jvp] Input shape does not match shape of tangent.")
    tracers, outs = _trace(lambda *xs: _outputs(fun(*xs), "jvp"), p)
    return outs, forward(outs, t, tracers)


# -- grad and value_and_grad ------------------------------------------------------------

def _sig(op):
    ret = "Callable[P, Any]" if op == "grad" else "Callable[P, tuple[R, Any]]"
    return (f"{op}(fun: Callable[P, R], argnums: int | Sequence[int] | None = None, "
            f"argnames: str | Sequence[str] = []) -> {ret}")


def _as_c_int(v):
    """v as an int the way upstream's bindings take a C int, or None."""
    if not isinstance(v, int):
        index = getattr(type(v), "__index__", None)
        if index is None or isinstance(v, float):
            return None
        try:
            v = index(v)
        except TypeError:  # (an array of several elements, or of floats)
            return None
    v = int(v)
    return v if -2 ** 31 <= v < 2 ** 31 else None


def _c_ints(argnums):
    """argnums as a tuple of C ints, or None: an int, or a sequence of ints (anything with
    a length and items, such as a range or a 1-d integer array, as upstream's bindings
    take a sequence; a set, a dict or a generator is none)."""
    n = _as_c_int(argnums)
    if n is not None:
        return (n,)
    t = type(argnums)
    if not hasattr(t, "__getitem__") or not hasattr(t, "__len__") \
            or isinstance(argnums, (dict, bytes, bytearray)):
        return None
    try:
        nums = tuple(_as_c_int(n) for n in argnums)
    except TypeError:  # (a 0-d array: its length is an error)
        return None
    return None if None in nums else nums


def _names(argnames):
    """argnames as a list of str, or None: one str, or any iterable of them."""
    if isinstance(argnames, str):
        return [argnames]
    try:
        names = list(argnames)
    except TypeError:
        return None
    return names if all(isinstance(n, str) for n in names) else None


def _parse(fun, argnums, argnames, op):
    """(sorted argnums, sorted argnames), validated as upstream does at creation."""
    nums = () if argnums is None else _c_ints(argnums)
    names = _names(argnames)
    if not callable(fun) or nums is None or names is None:
        kwargs = {}
        if argnums is not None:
            kwargs["argnums"] = argnums
        if not isinstance(argnames, tuple) or argnames:
            kwargs["argnames"] = argnames
        raise signature_error(op, _sig(op), (fun,), kwargs)
    if argnums is None and not names:
        nums = (0,)
    for n in nums:
        if n < 0:
            raise ValueError(f"[{op}] Can't compute the gradient of negative argument index {n}")
    seen = set()
    for n in nums:
        if n in seen:
            raise ValueError(f"[{op}] Duplicate argument index {n} is not allowed.")
        seen.add(n)
    if not nums and not names:
        raise ValueError(f"[{op}] Gradient wrt no argument requested")
    # upstream keeps both in ordered sets: gradients come in increasing argument order
    return tuple(sorted(nums)), sorted(set(names))


def _value_and_grad(fun, argnums, argnames, op):
    nums, names = _parse(fun, argnums, argnames, op)
    n_pos = len(nums)
    top = nums[-1] if nums else -1
    name_set = set(names)
    is_vg = op == "value_and_grad"

    def run(args, kwargs):
        if top >= len(args):
            raise ValueError(f"[{op}] Can't compute the gradient of argument index {top} because "
                             f"the function is called with only {len(args)} positional "
                             "arguments.")
        for name in names:
            if name not in kwargs:
                keys = "".join(f"{k}," for k in kwargs)
                raise ValueError(f"[{op}] Can't compute the gradient of keyword argument "
                                 f"'{name}' because the function is called with the following "
                                 f"keyword arguments {{{keys}}}")
        # the keyword gradients come in the order the keywords were passed
        kw_names = [k for k in kwargs if k in name_set] if names else ()
        trees = [args[n] for n in nums] + [kwargs[k] for k in kw_names]
        primals = []
        for t in trees:
            flatten_arrays(t, primals)
        if not primals:
            raise ValueError("[grad] Must specify at least one argument.")

        def call(*tracers):
            it = iter(tracers)
            saved = []
            try:
                new = [substitute(t, it, saved) for t in trees]
                a = list(args)
                for n, t in zip(nums, new):
                    a[n] = t
                if names:
                    kwargs_ = dict(kwargs)
                    kwargs_.update(zip(kw_names, new[n_pos:]))
                    return fun(*a, **kwargs_)
                return fun(*a, **kwargs)
            finally:
                restore(saved)

        tracers, out = _trace(call, primals)
        loss = out
        if not isinstance(out, array):
            if not is_vg:
                raise ValueError(f"[{op}] The return value of the function whose gradient we "
                                 "want to compute should be a scalar array; but "
                                 f"{type(out).__name__} was returned.")
            head = (f"[{op}] The return value of the function whose gradient we want to "
                    "compute should be either a scalar array or a")
            if not isinstance(out, tuple):
                raise ValueError(f"{head} tuple with the first value being a scalar array "
                                 "(Union[array, tuple[array, Any, ...]]); but "
                                 f"{type(out).__name__} was returned.")
            if not out:
                raise ValueError(f"{head} non-empty tuple. The first value should be a scalar "
                                 "array and the rest can be anything. Instead, we got an empty "
                                 "tuple.")
            loss = out[0]
            if not isinstance(loss, array):
                raise ValueError(f"{head} tuple with the first value being a scalar array "
                                 "(Union[array, tuple[array, Any, ...]]); but it was a tuple "
                                 f"with the first value being of type {type(loss).__name__} .")
        if loss._shape != ():
            hint = " If you are using grad your function must return a scalar." \
                if loss.size == 1 else ""
            raise ValueError(f"[vjp] Output shape {fmt_shape(loss._shape)} does not match "
                             f"cotangent shape ().{hint}")
        seed = const(1, loss._dtype, loss._stream)
        grads = backward([loss], [seed], tracers)
        O = _ops()
        # the seed is a shared cached constant: never hand it out (grad of the identity)
        it = iter([O.zeros_like(p) if g is None else O._identity(g) if g is seed else g
                   for p, g in zip(primals, grads)])
        g = [rebuild(t, it) for t in trees]
        pos = g[0] if n_pos == 1 else tuple(g[:n_pos])
        if names:
            pos = (pos if n_pos else None, dict(zip(kw_names, g[n_pos:])))
        return out, pos

    return run


def value_and_grad(fun, argnums=None, argnames=()):
    run = _value_and_grad(fun, argnums, argnames, "value_and_grad")

    @functools.wraps(fun)
    def value_and_grad_fn(*args, **kwargs):
        return run(args, kwargs)
    return value_and_grad_fn


def grad(fun, argnums=None, argnames=()):
    run = _value_and_grad(fun, argnums, argnames, "grad")

    @functools.wraps(fun)
    def grad_fn(*args, **kwargs):
        return run(args, kwargs)[1]
    return grad_fn
