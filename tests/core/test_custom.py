"""custom_function and checkpoint: each parity case runs on upstream MLX and on Ember,
which must agree on the result (structure, shapes, dtypes, values) or on the exception
type; further tests check the calling conventions and what checkpoint keeps."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from ember.core.primitives.custom import CustomTransforms
from tests.helpers import assert_same

CASES = []


def case(f):
    CASES.append(pytest.param(f, id=f.__name__))
    return f


def R(mod, *shape, seed=0):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    return mod.array(rng.uniform(-1.0, 1.0, shape).astype(np.float32))


def _same(got, want, path="result"):
    if isinstance(want, mlx.array):
        assert_same(got, want, rtol=2e-5, msg=path)
    elif isinstance(want, dict):
        assert type(got) is dict and list(got) == list(want), f"{path}: {got!r} vs {want!r}"
        for k in want:
            _same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, (list, tuple)):
        assert type(got) is type(want) and len(got) == len(want), f"{path}: {got!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{path}.{i}")
    else:
        assert got == want and type(got) is type(want), f"{path}: {got!r} vs {want!r}"


def _run(f, mod):
    try:
        out = f(mod)
        mod.eval(out)
        return out, None
    except Exception as err:  # noqa: BLE001 - compared by the caller
        return None, err


@pytest.mark.parametrize("f", CASES)
def test_parity(f):
    want, werr = _run(f, mlx)
    got, gerr = _run(f, mx)
    if werr is not None:
        assert gerr is not None, f"upstream raised {werr!r}; Ember returned {got!r}"
        assert type(gerr) is type(werr), f"{gerr!r} vs upstream {werr!r}"
        return
    assert gerr is None, f"Ember raised {gerr!r}; upstream returned {want!r}"
    _same(got, want)


# -- functions with custom rules, built per module ---------------------------------------

def sin_scaled_vjp(m, scale=10.0):
    """sin whose gradient is scaled."""
    @m.custom_function
    def f(x):
        return m.sin(x)

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        return cotangents * m.cos(primals) * scale
    return f


def mul_two(m):
    """Two arguments, two outputs, custom vjp, jvp and vmap."""
    @m.custom_function
    def f(x, y):
        return x * y, m.exp(x) + y

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        x, y = primals
        cp, cs = cotangents
        return cp * y * 2 + cs * outputs[1], cp * x + cs * 3

    @f.jvp
    def f_jvp(primals, tangents):
        x, y = primals
        tx, ty = tangents
        if ty is None:
            return tx * y, tx * m.exp(x)
        return tx * y + ty * x * 5, tx * m.exp(x)

    @f.vmap
    def f_vmap(inputs, axes):
        x, y = inputs
        ax, ay = axes
        if ax != ay:
            y = m.moveaxis(y, ay, ax)
        return (x * y * 2, m.exp(x) + y), (ax, ax)
    return f


@case
def call_is_the_function(m):
    f = mul_two(m)
    return f(R(m, 3), R(m, 3, seed=1))


@case
def grad_uses_custom_vjp(m):
    return m.grad(lambda x: sin_scaled_vjp(m)(x).sum())(R(m, 4))


@case
def value_and_grad_mixed_with_ops(m):
    f = sin_scaled_vjp(m, 3.0)

    def loss(x, w):
        a = f(x * w)
        return (a * a + m.exp(a) + x).sum()
    return m.value_and_grad(loss, argnums=(0, 1))(R(m, 5), R(m, 5, seed=2))


@case
def grad_of_grad_through_custom_vjp(m):
    f = sin_scaled_vjp(m, 2.0)
    return m.grad(lambda x: m.grad(lambda x: f(x).sum())(x).sum())(R(m, 3))


@case
def jvp_of_grad_through_custom_vjp(m):
    f = sin_scaled_vjp(m, 2.0)
    return m.jvp(lambda x: m.grad(lambda x: f(x).sum())(x), [R(m, 3)], [R(m, 3, seed=4)])


@case
def vjp_two_outputs(m):
    return m.vjp(mul_two(m), [R(m, 3), R(m, 3, seed=1)], [R(m, 3, seed=2), R(m, 3, seed=3)])


@case
def grad_one_of_two_outputs(m):
    f = mul_two(m)
    return m.grad(lambda x, y: f(x, y)[1].sum(), argnums=(0, 1))(R(m, 3), R(m, 3, seed=1))


@case
def grad_outputs_used_twice(m):
    f = mul_two(m)

    def loss(x, y):
        p, s = f(x, y)
        return (p * s + p).sum()
    return m.grad(loss, argnums=(0, 1))(R(m, 3), R(m, 3, seed=1))


@case
def jvp_custom(m):
    return m.jvp(mul_two(m), [R(m, 3), R(m, 3, seed=1)], [R(m, 3, seed=2), R(m, 3, seed=3)])


@case
def jvp_none_tangent(m):
    f = mul_two(m)
    y = R(m, 3, seed=1)
    return m.jvp(lambda x: f(x, y), [R(m, 3)], [R(m, 3, seed=2)])


@case
def vmap_custom(m):
    return m.vmap(mul_two(m))(R(m, 4, 3), R(m, 4, 3, seed=1))


@case
def vmap_custom_axes(m):
    return m.vmap(mul_two(m), in_axes=(1, 0))(R(m, 3, 4), R(m, 4, 3, seed=1))


@case
def vmap_of_grad_custom(m):
    f = sin_scaled_vjp(m)
    return m.vmap(m.grad(lambda x: f(x).sum()))(R(m, 4, 3))


@case
def grad_of_vmap_custom(m):
    # vmap replaces the node by the vmapped function: the vjp is no longer the custom one
    f = sin_scaled_vjp(m)
    return m.grad(lambda x: m.vmap(f)(x).sum())(R(m, 4, 3))


@case
def fallback_jvp_and_vmap(m):
    f = sin_scaled_vjp(m)
    x = R(m, 4, 3)
    return m.jvp(f, [x], [R(m, 4, 3, seed=1)]), m.vmap(f, in_axes=1)(x)


@case
def fallback_vjp(m):
    @m.custom_function
    def f(x, y):
        return m.sin(x) * y

    @f.jvp
    def f_jvp(primals, tangents):
        return tangents[0] * 100
    return m.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(R(m, 3), R(m, 3, seed=1))


@case
def fallback_vjp_same_array_twice(m):
    @m.custom_function
    def f(x, y):
        return x * y * y

    @f.jvp
    def f_jvp(primals, tangents):
        return tangents[0]
    return m.grad(lambda x: f(x, x).sum())(R(m, 3))


@case
def captured_arrays_are_constants(m):
    def g(x):
        y = x * 2

        @m.custom_function
        def f(x):
            return x * y

        @f.jvp
        def f_jvp(primals, tangents):
            return tangents * 100
        return f(x).sum()
    return m.grad(g)(R(m, 3))


@case
def captured_arrays_constants_in_jvp(m):
    def g(x):
        y = x * 2

        @m.custom_function
        def f(x):
            return x * y

        @f.vjp
        def f_vjp(primals, cotangents, outputs):
            return cotangents * 100
        return f(x)
    return m.jvp(g, [R(m, 3)], [R(m, 3, seed=1)])


@case
def pytree_arguments_and_outputs(m):
    @m.custom_function
    def f(d, n):
        return {"a": d["x"] * n, "b": (m.sin(d["y"]),)}

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        d, n = primals
        return {"x": cotangents["a"] * 10, "y": cotangents["b"][0] * outputs["a"]}, None

    def loss(x, y):
        out = f({"x": x, "y": y}, 3)
        return (out["a"] + out["b"][0]).sum()
    x, y = R(m, 3), R(m, 3, seed=1)
    return f({"x": x, "y": y}, 3), m.grad(loss, argnums=(0, 1))(x, y)


@case
def pytree_vmap_prefix_axes(m):
    @m.custom_function
    def f(d):
        return {"a": d["x"] * 2, "b": (d["y"] + 1,)}

    @f.vmap
    def f_vmap(inputs, axes):
        return {"a": inputs["x"] * 3, "b": (inputs["y"] - 1,)}, 0
    return m.vmap(lambda x: f({"x": x, "y": x}))(R(m, 4, 2))


@case
def pytree_jvp(m):
    @m.custom_function
    def f(d):
        return {"a": d["x"] * 2, "b": (d["y"] + 1,)}

    @f.jvp
    def f_jvp(primals, tangents):
        return {"a": tangents["x"] * 10, "b": (tangents["y"],)}
    return m.jvp(lambda x: f({"x": x, "y": x})["a"], [R(m, 3)], [R(m, 3, seed=1)])


@case
def jvp_missing_output_tangent_is_zero(m):
    @m.custom_function
    def f(x):
        return x * 2, x + 1

    @f.jvp
    def f_jvp(primals, tangents):
        return (tangents * 10,)
    return m.jvp(f, [R(m, 3)], [R(m, 3, seed=1)])


@case
def keyword_array_gets_its_gradient(m):
    @m.custom_function
    def f(x, y=None):
        return x * y

    @f.vjp
    def f_vjp(primals, cotangents, outputs, y=None):
        return cotangents * 2, cotangents * primals * 7
    return m.grad(lambda x, y: f(x, y=y).sum(), argnums=(0, 1))(R(m, 3), R(m, 3, seed=1))


@case
def integer_inputs(m):
    @m.custom_function
    def f(x):
        return x * 2

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        return cotangents * 5
    x = m.array([1, 2])
    return f(x), m.vjp(f, [x], [m.array([1, 1])])


@case
def no_rules_is_the_plain_function(m):
    f = m.custom_function(lambda x, n: (x * n, n))
    return f(R(m, 3), 3), m.grad(lambda x: f(x, 2.0)[0].sum())(R(m, 3))


@case
def rule_that_raises(m):
    f = sin_scaled_vjp(m)

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        raise KeyError("abort")
    return m.grad(lambda x: f(x).sum())(R(m, 3))


@case
def non_array_output_with_rules(m):
    g = m.custom_function(lambda x: (m.sin(x), 3.0))
    g.vjp(lambda p, c, o: c)
    return g(R(m, 2))


@case
def not_callable(m):
    return m.custom_function(3)


@case
def rule_not_callable(m):
    return sin_scaled_vjp(m).vjp(3)


@case
def jvp_rule_not_callable(m):
    return sin_scaled_vjp(m).jvp(None)


@case
def fallback_jvp_with_keyword_arguments(m):
    @m.custom_function
    def f(x, y=None):
        return x * y

    @f.vjp
    def f_vjp(primals, cotangents, outputs, y=None):
        return cotangents
    return m.jvp(lambda x: f(x, y=x), [R(m, 3)], [R(m, 3)])


@case
def jvp_rule_with_keyword_arguments(m):
    @m.custom_function
    def f(x, y=None):
        return x * y

    @f.jvp
    def f_jvp(primals, tangents, y=None):
        return tangents
    return m.jvp(lambda x: f(x, y=x), [R(m, 3)], [R(m, 3)])


@case
def fallback_vmap_with_keyword_arguments(m):
    @m.custom_function
    def f(x, y=None):
        return x * y

    @f.vjp
    def f_vjp(primals, cotangents, outputs, y=None):
        return cotangents
    return m.vmap(lambda x, y: f(x, y=y), in_axes=(0, None))(R(m, 3, 2), R(m, 2))


@case
def vmap_with_keyword_arguments(m):
    @m.custom_function
    def f(x, y=None):
        return x * y

    @f.vmap
    def f_vmap(inputs, axes, y=None):
        return inputs * y, axes
    return m.vmap(lambda x: f(x, y=x))(R(m, 3, 2))


@case
def vmap_rule_not_a_pair(m):
    f = sin_scaled_vjp(m)
    f.vmap(lambda inputs, axes: [m.sin(inputs), axes])
    return m.vmap(f)(R(m, 3, 2))


@case
def vmap_rule_bad_axis(m):
    f = sin_scaled_vjp(m)
    f.vmap(lambda inputs, axes: (m.sin(inputs), 5))
    return m.vmap(f)(R(m, 3, 2))


@case
def vmap_rule_axis_not_int(m):
    f = sin_scaled_vjp(m)
    f.vmap(lambda inputs, axes: (m.sin(inputs), 1.5))
    return m.vmap(f)(R(m, 3, 2))


@case
def vmap_rule_output_negative_axis(m):
    f = sin_scaled_vjp(m)
    f.vmap(lambda inputs, axes: (m.sin(inputs) * 2, -1))
    return m.vmap(f)(R(m, 3, 2))


def _two_args(m, rule):
    """f(x, y) = sin(x) * y with vjp `rule`, and the gradients of f(x, y).sum()."""
    f = m.custom_function(lambda x, y: m.sin(x) * y).vjp(rule)
    return m.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(R(m, 3), R(m, 3, seed=1))


@case
def vjp_rule_none_is_skipped_not_zero(m):
    # only the arrays of a rule's result count: (None, d) gives d to the first input
    return _two_args(m, lambda p, c, o: (None, c * 5))


@case
def vjp_rule_non_array_leaves_are_skipped(m):
    return _two_args(m, lambda p, c, o: (1.0, "s", [c * 5], {"a": c * 7}))


@case
def vjp_rule_too_few_takes_the_output_cotangents(m):
    return _two_args(m, lambda p, c, o: c * 5)


@case
def vjp_rule_cotangents_keep_their_shape(m):
    return (_two_args(m, lambda p, c, o: (c.sum(), c[:1])),
            _two_args(m, lambda p, c, o: (m.ones((2, 3)), c[:2])))


@case
def vjp_rule_too_few_with_two_outputs(m):
    @m.custom_function
    def f(x, y):
        return x * 2, y * 3

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        return cotangents[1] * 10
    return m.grad(lambda x, y: (f(x, y)[0] * 2 + f(x, y)[1]).sum(),
                  argnums=(0, 1))(R(m, 3), R(m, 3, seed=1))


@case
def vjp_rule_lines_up_with_the_array_arguments(m):
    @m.custom_function
    def f(n, x):
        return x * n

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        return (cotangents * 100,)

    @m.custom_function
    def g(n, x):
        return x * n

    @g.vjp
    def g_vjp(primals, cotangents, outputs):
        return cotangents * 100, cotangents * 7
    return (m.grad(lambda x: f(3, x).sum())(R(m, 3)),
            m.grad(lambda x: g(3, x).sum())(R(m, 3)))


@case
def jvp_rule_none_is_skipped_not_zero(m):
    @m.custom_function
    def f(x, y):
        return x * 2, y * 3

    @f.jvp
    def f_jvp(primals, tangents):
        return None, 1.0, tangents[1]
    return m.jvp(f, [R(m, 3), R(m, 3, seed=1)], [R(m, 3, seed=2), R(m, 3, seed=3)])


def _unbatched_rule(m):
    """A custom vmap rule that calls its output unbatched (the first slice, doubled)."""
    f = m.custom_function(lambda x: x * 2)

    @f.vmap
    def f_vmap(inputs, axes):
        return inputs[0] * 2, None
    return f


@case
def vmap_rule_unbatched_output_1d(m):
    return m.vmap(_unbatched_rule(m))(R(m, 2, 3))


@case
def vmap_rule_unbatched_output_takes_last_axis(m):
    f = _unbatched_rule(m)
    return m.vmap(f)(R(m, 2, 3, 4)), m.vmap(f, out_axes=1)(R(m, 2, 3, 4))


@case
def vmap_rule_unbatched_output_axis_too_big(m):
    return m.vmap(_unbatched_rule(m), out_axes=2)(R(m, 2, 3, 4))


@case
def vmap_rule_unbatched_output_through_ops(m):
    f = _unbatched_rule(m)
    return m.vmap(lambda x: m.exp(f(x)) + 1)(R(m, 2, 3, 4))


@case
def vmap_rule_axis_tuple_for_an_array(m):
    f = sin_scaled_vjp(m)
    f.vmap(lambda inputs, axes: (m.sin(inputs), (0,)))
    return m.vmap(f)(R(m, 3, 2))


@case
def vmap_rule_numpy_int_axis(m):
    f = sin_scaled_vjp(m)
    f.vmap(lambda inputs, axes: (m.sin(inputs).T, np.int64(1)))
    return m.vmap(f)(R(m, 3, 2))


@case
def outputs_must_be_arrays(m):
    g = m.custom_function(lambda x: {"a": x, "n": 3})
    g.jvp(lambda p, t: t)
    return g(R(m, 2))


# -- checkpoint ---------------------------------------------------------------------------

def _block(m):
    def f(x, w, scale=1.0):
        h = m.tanh(x @ w)
        return m.sin(h) * scale + x
    return f


@case
def checkpoint_value(m):
    f = m.checkpoint(_block(m))
    return f(R(m, 2, 3), R(m, 3, 3, seed=1), scale=2.0)


@case
def checkpoint_grads(m):
    f = m.checkpoint(_block(m))
    loss = lambda x, w: (f(f(x, w), w) ** 2).sum()
    return m.value_and_grad(loss, argnums=(0, 1))(R(m, 2, 3), R(m, 3, 3, seed=1))


@case
def checkpoint_keyword_array_grad(m):
    f = m.checkpoint(_block(m))
    loss = lambda x, w, s: f(x, w, scale=s).sum()
    return m.grad(loss, argnums=(0, 1, 2))(R(m, 2, 3), R(m, 3, 3, seed=1), R(m, 3, seed=2))


@case
def checkpoint_grad_of_grad(m):
    f = m.checkpoint(lambda x: m.sin(x) * x)
    return m.grad(lambda x: m.grad(lambda x: f(x).sum())(x).sum())(R(m, 4))


@case
def checkpoint_jvp_and_vmap(m):
    f = m.checkpoint(_block(m))
    x, w = R(m, 2, 3), R(m, 3, 3, seed=1)
    return (m.jvp(lambda x: f(x, w), [x], [R(m, 2, 3, seed=3)]),
            m.vmap(lambda x: f(x, w))(R(m, 4, 2, 3)))


@case
def checkpoint_pytrees_and_constants(m):
    f = m.checkpoint(lambda d, n: {"o": d["a"] * n, "p": [m.exp(d["b"]), 3.0]})
    x = R(m, 3)
    loss = lambda x: (f({"a": x, "b": x}, 3)["o"] + f({"a": x, "b": x}, 2)["p"][0]).sum()
    return f({"a": x, "b": x}, 3), m.grad(loss)(x)


@case
def checkpoint_captured_constant(m):
    def g(x):
        y = x * 2
        return m.checkpoint(lambda x: x * y)(x).sum()
    return m.grad(g)(R(m, 3))


@case
def nested_checkpoint_and_custom(m):
    f = sin_scaled_vjp(m, 3.0)
    g = m.checkpoint(lambda x: f(x) * x + f(x * 2))
    h = m.custom_function(lambda x: g(x) + 1)
    h.jvp(lambda p, t: t * 2)
    x = R(m, 6)
    return (m.grad(lambda x: (g(g(x)) ** 2).sum())(x),
            m.grad(lambda x: m.grad(lambda x: g(x).sum())(x).sum())(x),
            m.grad(lambda x: h(x).sum())(x), m.jvp(h, [x], [x]))


@case
def checkpoint_not_callable(m):
    return m.checkpoint(3)


# -- conventions and what stays in the graph --------------------------------------------

def _conventions(m):
    seen = {}

    @m.custom_function
    def f(x, y, n):
        return x * y * n, x + y

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        seen["vjp"] = (type(primals), len(primals), primals[2], type(cotangents),
                       type(outputs))
        return cotangents[0], cotangents[1], None

    @f.jvp
    def f_jvp(primals, tangents):
        seen["jvp"] = (type(primals), tangents[1] is None, tangents[2])
        return tangents[0], tangents[0]

    @f.vmap
    def f_vmap(inputs, axes):
        seen["vmap"] = axes
        return (inputs[0] * inputs[1] * inputs[2], inputs[0] + inputs[1]), axes[0]

    x, y = R(m, 3), R(m, 3, seed=1)
    m.eval(m.grad(lambda x: f(x, y, 2)[0].sum())(x))
    m.eval(m.jvp(lambda x: f(x, y, 2), [x], [x]))
    m.eval(m.vmap(lambda x: f(x, y, 2))(R(m, 2, 3)))
    return seen


def test_rules_get_upstreams_trees():
    ours, theirs = _conventions(mx), _conventions(mlx)
    ours["vjp"] = (ours["vjp"][0], ours["vjp"][1], ours["vjp"][2]) + tuple(
        t.__name__ for t in ours["vjp"][3:])
    theirs["vjp"] = (theirs["vjp"][0], theirs["vjp"][1], theirs["vjp"][2]) + tuple(
        t.__name__ for t in theirs["vjp"][3:])
    assert ours == theirs


def test_decorators_return_a_snapshot():
    for m in (mx, mlx):
        f = m.custom_function(m.exp)
        g = f.vjp(lambda p, c, o: c * 5)
        f.jvp(lambda p, t: t * 9)
        x = m.ones(2)
        assert g is not f and isinstance(g, m.custom_function)
        assert m.grad(lambda x: g(x).sum())(x).tolist() == [5.0, 5.0]
        assert m.jvp(g, [x], [x])[1][0].tolist() == m.exp(x).tolist()
        assert m.jvp(f, [x], [x])[1][0].tolist() == [9.0, 9.0]


def _reachable(outs):
    """Every array reachable from outs without entering CustomTransforms nodes."""
    seen, stack = {}, list(outs)
    while stack:
        a = stack.pop()
        if id(a) in seen:
            continue
        seen[id(a)] = a
        if not isinstance(a._prim, CustomTransforms):
            stack.extend(a._inputs)
    return seen


@pytest.mark.parametrize("use_checkpoint", [True, False])
def test_checkpoint_recomputes_instead_of_keeping(use_checkpoint):
    hidden = []

    def f(x):
        h = mx.sin(x)
        hidden.append(h)
        return mx.cos(h) * x

    g = mx.checkpoint(f) if use_checkpoint else f
    x = mx.array([0.5, 1.0, 2.0])
    grad = mx.grad(lambda x: (g(x) ** 2).sum())(x)
    reach = _reachable([grad])
    if use_checkpoint:
        # the backward traced f again and uses only that second trace
        assert len(hidden) == 2
        assert id(hidden[0]) not in reach and id(hidden[1]) in reach
    else:
        assert len(hidden) == 1 and id(hidden[0]) in reach
    want = mlx.grad(lambda x: (mlx.checkpoint(
        lambda x: mlx.cos(mlx.sin(x)) * x)(x) ** 2).sum())(mlx.array([0.5, 1.0, 2.0]))
    assert_same(grad, want, rtol=2e-5)


def test_custom_vjp_skips_the_functions_backward():
    calls = []

    @mx.custom_function
    def f(x):
        return mx.sin(x)

    @f.vjp
    def f_vjp(primals, cotangents, outputs):
        calls.append(1)
        return cotangents
    x = mx.array([1.0, 2.0])
    grad = mx.grad(lambda x: f(x).sum())(x)
    assert calls == [1] and grad.tolist() == [1.0, 1.0]
    # nothing of sin's backward (a cos) was built
    assert not any(getattr(a._prim, "name", "") == "Cos" for a in _reachable([grad]).values())


def test_vmap_rule_outputs_must_be_arrays():
    # upstream fails later, evaluating a placeholder; Ember says what is wrong at once
    f = sin_scaled_vjp(mx)
    f.vmap(lambda inputs, axes: (3.0, 0))
    with pytest.raises(ValueError, match="tree_flatten"):
        mx.vmap(f)(R(mx, 3, 2))
    f.vmap(lambda inputs, axes: ((), 0))
    with pytest.raises(ValueError, match="custom vmap"):
        mx.vmap(f)(R(mx, 3, 2))


@pytest.mark.parametrize("op", ["matmul", "sum", "take", "softmax"])
def test_ops_after_a_rules_unbatched_output(op):
    # Upstream's rules read an unbatched input's axis -1 as the last axis, which breaks
    # most of them here; Ember computes the op on the unbatched value, which then leaves
    # vmap as any unbatched rule output does (its last axis moved to the batch axis).
    def g(m, y):
        return {"matmul": lambda: y @ m.ones((4, 2)), "sum": lambda: y.sum(axis=1),
                "take": lambda: m.take(y, m.array([0, 2]), axis=0),
                "softmax": lambda: m.softmax(y, axis=-1)}[op]()

    x = R(mlx, 2, 3, 4)
    got = mx.vmap(lambda x: g(mx, _unbatched_rule(mx)(x)))(mx.array(np.array(x)))
    _same(got, mlx.moveaxis(g(mlx, x[0] * 2), -1, 0))


def test_outputs_are_lazy_and_pass_through():
    f = sin_scaled_vjp(mx)
    x = mx.array([1.0, 2.0])
    y = f(x)
    assert y._data is None and isinstance(y._prim, CustomTransforms)
    assert y._prim.is_equivalent(y._prim) and not y._prim.is_equivalent(f(x)._prim)
    assert_same(y, mlx.sin(mlx.array([1.0, 2.0])))
