"""The machinery under compile: one `Compiled` node per call, the graph passes, the
generated executor, the rules of the `Compiled` primitive, placeholders, shapeless shape
inference, and what a trace keeps alive."""

import gc
import weakref

import numpy as np
import pytest

import ember.core as mx
from ember.core._backend import fusion as F
from ember.core._backend import kernels_compiled as KC
from ember.core.primitives import compiled as P
from ember.core.primitives import elementwise as E
from ember.core.primitives import misc as M
from ember.core.primitives import shape as S
from ember.core.transforms import compile as C
from ember.core.transforms.eval import TRACING


def R(*shape, seed=0):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    return mx.array(rng.uniform(-1.0, 1.0, shape).astype(np.float32))


def _names(tape):
    return [type(st.prim).__name__ for st in tape.steps]


def _close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.array(a), np.array(b), rtol=tol, atol=tol)


# -- a call is one node --------------------------------------------------------------------

def test_call_is_one_node_over_the_call_arrays():
    x, y = R(2, 3), R(2, 3, seed=1)
    cf = mx.compile(lambda x, y: (mx.exp(x) * y, x - y))
    a, b = cf(x, y)
    assert type(a._prim) is P.Compiled and a._prim is b._prim
    assert a._inputs == (x, y) and a._siblings == (a, b)
    _close(a, mx.exp(x) * y)
    _close(b, x - y)


def test_unused_inputs_are_not_inputs_of_the_node():
    x, y = R(3), R(3, seed=1)
    out = mx.compile(lambda x, y, z: x * 2)(x, y, R(3, seed=2))
    assert out._inputs == (x,)
    _close(out, x * 2)


def test_under_a_transform_the_tape_is_expanded():
    cf = mx.compile(lambda x: mx.sin(x) * 2)
    mx.eval(cf(R(3)))  # traced and cached
    seen = []

    def f(x):
        y = cf(x)
        seen.append(y)
        return y.sum()

    g = mx.grad(f)(R(3))
    assert type(seen[0]._prim) is E.BINARY["multiply"]
    _close(g, 2 * mx.cos(R(3)))


# -- passes -----------------------------------------------------------------------------------

def _stream():
    return mx.default_stream(mx.default_device())


def _tape(steps, outs, shapes, shapeless=False, consts=None):
    dtype = {s: mx.float32 for s in shapes}
    return P.Tape([0], consts or {}, steps, outs, dict(shapes), dtype, shapeless, _stream())


def test_drop_noops():
    s = _stream()
    steps = [P.Step(M.Identity(), (0,), (1,), s, False),
             P.Step(S.Reshape((2, 3)), (1,), (2,), s, False),
             P.Step(M.AsType(mx.float32), (2,), (3,), s, False),
             P.Step(S.Transpose((0, 1)), (3,), (4,), s, False),
             P.Step(S.Broadcast((2, 3)), (4,), (5,), s, False),
             P.Step(E.UNARY["exp"](), (5,), (6,), s, False)]
    tape = _tape(steps, [6, 3], {k: (2, 3) for k in range(7)})
    P.drop_noops(tape)
    assert _names(tape) == ["Exp"] and tape.steps[0].ins == (0,) and tape.outs == [6, 0]


def test_shapeless_tapes_keep_shape_steps():
    s = _stream()
    steps = [P.Step(S.Reshape((2, 3)), (0,), (1,), s, False),
             P.Step(M.AsType(mx.float32), (1,), (2,), s, False)]
    tape = _tape(steps, [2], {k: (2, 3) for k in range(3)}, shapeless=True)
    P.drop_noops(tape)
    assert _names(tape) == ["Reshape"] and tape.outs == [1]


def test_stop_gradient_stays_on_the_tape_but_costs_no_call():
    cf = mx.compile(lambda x: mx.stop_gradient(x) * 2)
    mx.eval(cf(R(3)))
    tape = C.tapes(cf)[0]
    assert "StopGradient" in _names(tape)
    assert "StopGradient" not in tape.run.source and tape.run.source.count(" = f") == 1


def test_cse_and_constant_merging():
    def f(x):
        a = mx.exp(x) * mx.array(2.0)
        b = mx.exp(x) * mx.array(2.0)  # equal constants, same computation
        return a + b, mx.array([1.0, 2.0]) + mx.array([1.0, 2.0])
    cf = mx.compile(f)
    x = R(2)
    a, b = cf(x)
    tape = C.tapes(cf)[0]
    # the second result reads no input: a constant of the trace
    assert sorted(_names(tape)) == ["Add", "Exp", "Multiply"]
    assert len(tape.consts) == 2
    _close(a, 4 * mx.exp(x))
    _close(b, [2.0, 4.0])


def test_constants_differing_in_dtype_sign_or_values_stay_apart():
    def f(x):
        h = x.astype(mx.float16)
        return (x + mx.array(0.0), x + mx.array(-0.0), h + mx.array(0.0, mx.float16),
                x + mx.array([1.0, 2.0]), x + mx.array([1.0, 3.0]), x + mx.array([1.0, 2.0]))
    cf = mx.compile(f)
    outs = cf(R(2))
    assert len(C.tapes(cf)[0].consts) == 5
    mx.eval(outs)


def test_cse_respects_parameters():
    cf = mx.compile(lambda x: (x.sum(0), x.sum(1), x.sum(0)))
    mx.eval(cf(R(2, 3)))
    assert _names(C.tapes(cf)[0]).count("Reduce") == 2


def test_dead_code():
    s = _stream()
    exp, neg = E.UNARY["exp"](), E.UNARY["negative"]()
    c = (mx.array(1.0)._tensor(), mx.float32, s, None)
    steps = [P.Step(exp, (0,), (2,), s, False), P.Step(neg, (1,), (3,), s, False)]
    tape = _tape(steps, [2], {0: (), 1: (), 2: (), 3: ()}, consts={1: c})
    P.dead_code(tape)
    assert _names(tape) == ["Exp"] and not tape.consts


def test_passes_list_is_the_hook():
    assert P.PASSES == [P.drop_noops, P.merge_constants, P.cse, P.dead_code]


# -- the executor -------------------------------------------------------------------------------

def test_generated_executor_frees_temporaries(monkeypatch):
    monkeypatch.setattr(F, "FUSE", [False])  # one line per step, as traced
    cf = mx.compile(lambda x: (mx.exp(x) * 2 + 1) / 3)
    x = R(4)
    _close(cf(x), (mx.exp(x) * 2 + 1) / 3)
    src = C.tapes(cf)[0].run.source
    assert src.count("del ") == 3 and "for " not in src


def test_long_tapes_run_in_a_loop(monkeypatch):
    monkeypatch.setattr(KC, "MAX_GENERATED_STEPS", 5)

    def chain(x):
        for k in range(20):
            x = mx.sin(x) + k
        return x, x * 2
    cf = mx.compile(chain)
    x = R(3)
    a, b = cf(x)
    want = chain(x)
    _close(a, want[0])
    _close(b, want[1])
    assert not hasattr(C.tapes(cf)[0].run, "source")


def test_multi_output_steps():
    cf = mx.compile(lambda x: [y * 2 for y in mx.split(x, 3)] + list(mx.unstack(x[:1])))
    x = R(6)
    got = cf(x)
    want = [y * 2 for y in mx.split(x, 3)] + list(mx.unstack(x[:1]))
    for g, w in zip(got, want):
        _close(g, w)


# -- rules of the Compiled primitive ----------------------------------------------------------

def _fn(x, y):
    return mx.sin(x) * y + (x * x).sum()


def test_compiled_vjp_rule():
    x, y = R(3), R(3, seed=1)
    out = mx.compile(_fn)(x, y)
    ct = R(3, seed=2)
    got = out._prim.vjp([x, y], [ct], [0, 1], [out])
    _, want = mx.vjp(_fn, [x, y], [ct])
    for g, w in zip(got, want):
        _close(g, w)
    # the same array twice: each position gets its own cotangent
    twice = mx.compile(_fn)(x, x)
    got = twice._prim.vjp([x, x], [ct], [0, 1], [twice])
    _, want = mx.vjp(_fn, [x, R(3)], [ct])
    _, want2 = mx.vjp(lambda a, b: _fn(a, b), [x, x], [ct])
    for g, w in zip(got, want2):
        _close(g, w)


def test_compiled_jvp_rule():
    x, y = R(3), R(3, seed=1)
    out = mx.compile(_fn)(x, y)
    t = R(3, seed=3)
    got = out._prim.jvp([x, y], [t], [1])
    _, want = mx.jvp(lambda b: _fn(x, b), [y], [t])
    _close(got[0], want[0])


def test_compiled_vmap_rule():
    x, y = R(3), R(3, seed=1)
    out = mx.compile(_fn)(x, y)
    xb = R(4, 3, seed=5)
    res, axes = out._prim.vmap([xb, y], [0, None])
    want = mx.vmap(_fn, in_axes=(0, None))(xb, y)
    _close(mx.moveaxis(res[0], axes[0], 0), want)


# -- placeholders ---------------------------------------------------------------------------------

def test_placeholder_errors():
    p = mx.array(0.0)
    from ember.core.array import node
    ph = node((), mx.float32, P.PLACEHOLDER, (), p._stream)
    with pytest.raises(RuntimeError, match="without a primitive"):
        mx.eval(ph + 1)
    TRACING[0] += 1
    try:
        with pytest.raises(ValueError, match="during function transformations"):
            mx.eval(ph + 1)
    finally:
        TRACING[0] -= 1


# -- shapeless ---------------------------------------------------------------------------------

def test_shapeless_infers_shapes_without_tracing():
    count = [0]

    def f(x, w):
        count[0] += 1
        return mx.softmax(x @ w, axis=-1).sum(0), mx.maximum(x, 0).T

    cf = mx.compile(f, shapeless=True)
    for n, k, j in ((2, 3, 4), (5, 3, 4), (5, 7, 2), (1, 1, 1)):
        x, w = R(n, k), R(k, j, seed=1)
        a, b = cf(x, w)
        assert a.shape == (j,) and b.shape == (k, n)
        _close(a, mx.softmax(x @ w, axis=-1).sum(0), 1e-5)
        _close(b, mx.maximum(x, 0).T)
    assert count[0] == 1 and C.stats(cf)["recompiles"] == 0


def test_infer_shapes_reports_failure():
    cf = mx.compile(lambda x: x.reshape(6) + 1, shapeless=True)
    mx.eval(cf(R(2, 3)))
    tape = C.tapes(cf)[0]
    assert KC.infer_shapes(tape, [(3, 2)])[tape.outs[0]] == (6,)
    assert KC.infer_shapes(tape, [(4, 2)]) is None


# -- what a trace keeps ---------------------------------------------------------------------

def test_tape_keeps_no_traced_arrays():
    refs = []

    def f(x):
        y = mx.exp(x)
        refs.append(weakref.ref(y))
        return y * 2

    cf = mx.compile(f)
    out = cf(R(3))
    mx.eval(out)
    gc.collect()
    assert refs[0]() is None


def test_one_off_traces_are_not_cached():
    calls = []

    def g(a):
        cf = mx.compile(lambda z: z * a)
        calls.append(cf)
        return cf(mx.ones(3))

    _close(mx.vmap(g)(R(2, 3)), R(2, 3))
    assert C.stats(calls[0])["entries"] == 0
