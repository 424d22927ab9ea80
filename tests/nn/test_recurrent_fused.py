"""The fused recurrent layers (one `Recurrent` node per layer) against the unrolled formula
and upstream mlx.nn: outputs, gradients, jvp, vmap, higher derivatives, fallbacks."""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.core.ops import recurrent as R
from ember.core.primitives.recurrent import Recurrent
from ember.utils import tree_flatten, tree_map
from tests.helpers import assert_close, np_of
from tests.nn.parity import E, M, assert_tree_same, rand, sync

TOL = {"float32": 1e-4, "float16": 1e-2, "bfloat16": 5e-2}
# (name, layer kwargs): RNN with both fused nonlinearities
LAYERS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("GRU", {}), ("LSTM", {})]
LAYER_IDS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]


def make(mod, name, kw, bias=True, d=5, h=4, seed=1):
    kw = dict(kw)
    if kw.get("nonlinearity") == "relu":
        kw["nonlinearity"] = mod.relu
    (mx if mod is nn else mlx).random.seed(seed)
    return getattr(mod, name)(d, h, bias=bias, **kw)


def pair(name, kw, bias=True, dtype="float32", d=5, h=4):
    e, m = make(nn, name, kw, bias, d, h), make(mnn, name, kw, bias, d, h)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    sync(e, m)
    return e, m


def call(layer, x, h=None, c=None):
    if isinstance(layer, (nn.LSTM, mnn.LSTM)):
        return list(layer(x, h, c))
    return [layer(x, h)]


def unrolled(layer, x, h=None, c=None):
    """The same layer computed step by step (the fallback formula)."""
    if isinstance(layer, nn.RNN):
        return [R.rnn_unrolled(x, layer.Wxh, layer.Whh, layer.bias, h, layer.nonlinearity)]
    if isinstance(layer, nn.GRU):
        return [R.gru_unrolled(x, layer.Wx, layer.Wh, layer.b, layer.bhn, h)]
    return list(R.lstm_unrolled(x, layer.Wx, layer.Wh, layer.bias, h, c))


def fused_nodes(outs):
    """The Recurrent nodes in the (unevaluated) graph of `outs`."""
    seen, stack, found = set(), list(outs), []
    while stack:
        a = stack.pop()
        if id(a) in seen:
            continue
        seen.add(id(a))
        if isinstance(a._prim, Recurrent):
            found.append(a._prim)
        stack.extend(a._inputs or ())
    return found


def close(got, want, rtol):
    """Two lists of Ember arrays: same shapes and dtypes, close values."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert_close(np_of(a), np_of(b), "float32", rtol)


def loss_of(outs):
    # weights every output differently, so each cotangent matters
    total = None
    for k, o in enumerate(outs):
        t = ((o.astype(mx.float32 if isinstance(o, mx.array) else mlx.float32) * (k + 1.5))
             ** 2).sum()
        total = t if total is None else total + t
    return total


CASES = [  # x shape, hidden given, cell given (LSTM only)
    ((3, 7, 5), False, False), ((3, 7, 5), True, False), ((3, 7, 5), True, True),
    ((3, 7, 5), False, True), ((7, 5), False, False), ((7, 5), True, True),
    ((2, 3, 4, 5), True, True), ((3, 1, 5), True, False),
]


def inputs(shape, with_h, with_c, name, h=4):
    x = rand(shape, 2)
    st = shape[:-2] + (h,)
    hh = rand(st, 3) if with_h else None
    cc = rand(st, 4) if with_c and name == "LSTM" else None
    return x, hh, cc


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_matches_unrolled_and_upstream(layer, case, dtype, bias):
    name, kw = layer
    shape, with_h, with_c = case
    e, m = pair(name, kw, bias, dtype)
    x, h, c = inputs(shape, with_h, with_c, name)
    args_e = [E(x, dtype), E(h, dtype), E(c, dtype)]
    args_m = [M(x, dtype), M(h, dtype), M(c, dtype)]
    ye = call(e, *args_e)
    assert len(fused_nodes(ye)) == (2 if name == "LSTM" else 1)
    yu = unrolled(e, *args_e)
    assert not fused_nodes(yu)
    ym = call(m, *args_m)
    tol = TOL[dtype]
    assert_tree_same(ye, ym, rtol=tol, msg="fused vs upstream")
    assert_tree_same(yu, ym, rtol=tol, msg="unrolled vs upstream")

    # gradients of the parameters, the input and the initial states
    argnums = [0] + [i for i, v in ((1, h), (2, c)) if v is not None]

    def f(fn, model):
        def g(params, *a):
            model.update(params)
            return loss_of(fn(model, *a))
        return g
    ge = mx.grad(f(call, e), [0] + [a + 1 for a in argnums])(e.trainable_parameters(),
                                                              *args_e)
    gu = mx.grad(f(unrolled, e), [0] + [a + 1 for a in argnums])(e.trainable_parameters(),
                                                                 *args_e)
    gm = mlx.grad(f(call, m), [0] + [a + 1 for a in argnums])(m.trainable_parameters(),
                                                              *args_m)
    gtol = tol * 5 if dtype == "float32" else tol * 10
    assert_tree_same(list(ge), list(gm), rtol=gtol, msg="fused grads vs upstream")
    assert_tree_same(list(gu), list(gm), rtol=gtol, msg="unrolled grads vs upstream")


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_value_and_grad_with_and_without_saved_forward(layer):
    # vjp asked for before the forward ran (torch's autograd state kept from the forward)
    # and after it ran (the backward recomputes it) give the same gradients
    name, kw = layer
    e, m = pair(name, kw)
    x, h, c = inputs((3, 6, 5), True, True, name)
    xe = E(x)

    def loss(model, x):
        return loss_of(call(model, x, E(h), E(c)))
    v1, g1 = nn.value_and_grad(e, loss)(e, xe)
    mx.eval(v1, g1)
    out = call(e, xe, E(h), E(c))
    mx.eval(out)
    v2, g2 = nn.value_and_grad(e, lambda model, x: loss_of(out) * 0 + loss(model, x))(e, xe)
    vm, gm = mnn.value_and_grad(m, lambda model, x: loss_of(call(model, x, M(h), M(c))))(
        m, M(x))
    assert_tree_same(g1, gm, rtol=5e-4)
    assert_tree_same(g2, gm, rtol=5e-4)
    assert_tree_same(v1, vm, rtol=1e-4)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_grad_evaluated_after_forward(layer):
    # the forward node is evaluated before the vjp's node runs: the backward recomputes
    name, kw = layer
    e, m = pair(name, kw)
    x = rand((2, 5, 5), 0)
    ve, vjp_e = mx.vjp(lambda x: call(e, x), [E(x)],
                       [E(rand((2, 5, 4), 1))] * (2 if name == "LSTM" else 1))
    vm, vjp_m = mlx.vjp(lambda x: call(m, x), [M(x)],
                        [M(rand((2, 5, 4), 1))] * (2 if name == "LSTM" else 1))
    mx.eval(ve)
    assert_tree_same(ve, vm, rtol=1e-4)
    assert_tree_same(vjp_e, vjp_m, rtol=5e-4)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_jvp_matches_upstream(layer):
    name, kw = layer
    e, m = pair(name, kw)
    x, h, c = inputs((2, 5, 5), True, True, name)
    tx, th, tc = rand((2, 5, 5), 7), rand((2, 4), 8), rand((2, 4), 9)
    if name == "LSTM":
        pe, te = [E(x), E(h), E(c)], [E(tx), E(th), E(tc)]
        pm, tm = [M(x), M(h), M(c)], [M(tx), M(th), M(tc)]
    else:
        pe, te, pm, tm = [E(x), E(h)], [E(tx), E(th)], [M(x), M(h)], [M(tx), M(th)]
    oe, je = mx.jvp(lambda *a: call(e, *a), pe, te)
    om, jm = mlx.jvp(lambda *a: call(m, *a), pm, tm)
    assert_tree_same(oe, om, rtol=1e-4)
    assert_tree_same(je, jm, rtol=5e-4)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("in_axes", [(0, None), (1, 0), (None, 0)])
def test_vmap_over_inputs_matches_loop(layer, in_axes):
    # weights shared: the vmapped axis folds into the layer's batch
    name, kw = layer
    e, _ = pair(name, kw)
    xs = E(rand((3, 2, 6, 5), 0))
    hs = E(rand((3, 2, 4), 1))
    if in_axes[0] == 1:
        xs = mx.moveaxis(xs, 0, 1)
    if in_axes[0] is None:
        xs = xs[0]
    if in_axes[1] is None:
        hs = hs[0]
    got = mx.vmap(lambda x, h: call(e, x, h), in_axes=in_axes)(xs, hs)
    for j in range(3):
        xj = xs if in_axes[0] is None else mx.take(xs, j, axis=in_axes[0])
        want = call(e, xj, hs if in_axes[1] is None else hs[j])
        close([g[j] for g in got], want, 1e-5)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_vmap_over_weights_matches_loop(layer):
    # batched weights: the primitive falls back to the unrolled formula
    name, kw = layer
    e, _ = pair(name, kw)
    params = e.trainable_parameters()
    stacked = {k: mx.stack([v * (1 + 0.1 * j) for j in range(3)]) for k, v in params.items()}
    x = E(rand((2, 6, 5), 0))

    def f(p, x):
        e.update(p)
        return call(e, x)
    got = mx.vmap(f, in_axes=(0, None))(stacked, x)
    for j in range(3):
        want = f({k: v[j] for k, v in stacked.items()}, x)
        close([g[j] for g in got], want, 1e-5)
    e.update(params)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_vmap_of_grad_matches_loop(layer):
    # per-example gradients: vmap of the fused vjp node
    name, kw = layer
    e, _ = pair(name, kw)
    xs = E(rand((3, 2, 5, 5), 0))
    gfn = mx.grad(lambda x: loss_of(call(e, x)))
    got = mx.vmap(gfn)(xs)
    want = mx.stack([gfn(xs[j]) for j in range(3)])
    assert_close(np_of(got), np_of(want), "float32", 1e-4)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_second_derivatives_match_unrolled(layer):
    # the grad of a gradient goes through the vjp node's formula
    name, kw = layer
    e, m = pair(name, kw)
    x = rand((2, 4, 5), 0)

    def inner(fn, model, lib):
        g = lib.grad(lambda x: loss_of(fn(model, x)))
        return lambda x: (g(x) ** 2).sum()
    ge = mx.grad(inner(call, e, mx))(E(x))
    gu = mx.grad(inner(unrolled, e, mx))(E(x))
    gm = mlx.grad(inner(call, m, mlx))(M(x))
    assert_tree_same(ge, gm, rtol=2e-3)
    assert_tree_same(gu, gm, rtol=2e-3)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_compile_matches_eager(layer):
    name, kw = layer
    e, _ = pair(name, kw)
    x = E(rand((2, 6, 5), 0))
    eager = call(e, x)
    comp = mx.compile(lambda x: call(e, x))(x)
    close(comp, eager, 1e-6)
    # a compiled value_and_grad (the vjp node consumes the forward's autograd state)
    vg = nn.value_and_grad(e, lambda model, x: loss_of(call(model, x)))
    step = mx.compile(lambda x: vg(e, x))
    for _ in range(2):
        (v1, g1), (v2, g2) = step(x), vg(e, x)
        close([v1] + list(g1.values()), [v2] + list(g2.values()), 1e-5)


def test_lstm_hidden_only_never_needs_cells():
    # the cell states are their own node: the hidden states alone do not depend on it
    e, m = pair("LSTM", {})
    x = rand((2, 6, 5), 0)
    hs, cs = e(E(x))
    assert [p.kind for p in fused_nodes([hs])] == ["lstm"]
    assert sorted(p.kind for p in fused_nodes([cs])) == ["lstm", "lstm_cells"]
    def hidden_sum(model, lib):
        def f(w):
            model.update({"Wh": w})
            return (model(lib.array(x))[0] ** 2).sum()
        return f
    g = mx.grad(hidden_sum(e, mx))(e.Wh)
    gm = mlx.grad(hidden_sum(m, mlx))(m.Wh)
    assert_tree_same(g, gm, rtol=5e-4)


@pytest.mark.parametrize("act", ["relu_module", "tanh_module", "mx_tanh", "relu_set_later"])
def test_builtin_nonlinearities_are_fused(act):
    # a module without parameters is falsy: upstream's `nonlinearity or tanh` then picks
    # tanh; assigned after construction, the module is used
    ae, am = {"relu_module": (nn.ReLU(), mnn.ReLU()), "tanh_module": (nn.Tanh(), mnn.Tanh()),
              "mx_tanh": (mx.tanh, mlx.tanh), "relu_set_later": (None, None)}[act]
    mx.random.seed(1)
    e = nn.RNN(5, 4, nonlinearity=ae)
    m = sync(e, mnn.RNN(5, 4, nonlinearity=am))
    if act == "relu_set_later":
        e.nonlinearity, m.nonlinearity = nn.ReLU(), mnn.ReLU()
    x = rand((2, 6, 5), 0) * 2
    y = e(E(x))
    assert [p.kind for p in fused_nodes([y])] == \
        ["rnn_relu" if act == "relu_set_later" else "rnn_tanh"]
    assert_tree_same(y, m(M(x)), rtol=1e-4)


@pytest.mark.parametrize("act", ["lambda", "leaky"])
def test_other_nonlinearities_fall_back(act):
    fe, fm = {"lambda": (lambda v: v * 0.5, lambda v: v * 0.5),
              "leaky": (nn.leaky_relu, mnn.leaky_relu)}[act]
    mx.random.seed(1)
    e = nn.RNN(5, 4, nonlinearity=fe)
    m = sync(e, mnn.RNN(5, 4, nonlinearity=fm))
    x, h = rand((2, 6, 5), 0), rand((2, 4), 1)
    y = e(E(x), E(h))
    assert not fused_nodes([y])
    assert_tree_same(y, m(M(x), M(h)), rtol=1e-5)
    ge = mx.grad(lambda x: (e(x, E(h)) ** 2).sum())(E(x))
    gm = mlx.grad(lambda x: (m(x, M(h)) ** 2).sum())(M(x))
    assert_tree_same(ge, gm, rtol=1e-4)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("case", ["x_f16_params_f32", "x_f32_params_f16", "h_f16", "x_int"])
def test_mixed_dtypes_like_upstream(layer, case):
    name, kw = layer
    pdt = "float16" if case == "x_f32_params_f16" else "float32"
    xdt = {"x_f16_params_f32": "float16", "x_int": "int32"}.get(case, "float32")
    e, m = pair(name, kw, dtype=pdt)
    x = rand((2, 5, 5), 0) * (3 if case == "x_int" else 1)
    h = rand((2, 4), 1) if case == "h_f16" else None
    hdt = "float16" if case == "h_f16" else "float32"
    ye = call(e, E(x, xdt), E(h, hdt))
    # fused where promoting to the parameters' dtype is all upstream does
    assert bool(fused_nodes(ye)) == (case != "x_f32_params_f16")
    assert_tree_same(ye, call(m, M(x, xdt), M(h, hdt)), rtol=1e-3 if pdt == "float32" else 1e-2)


@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("xshape,hshape,fused", [
    ((3, 5, 5), (4,), True), ((3, 5, 5), (1, 4), True), ((2, 3, 5, 5), (3, 4), True),
    ((5, 5), (1, 4), False), ((3, 5, 5), (2, 3, 4), False)])
def test_broadcast_initial_state_like_upstream(layer, xshape, hshape, fused):
    # a GRU's hidden state (and an LSTM's cell) broadcasts against the batch; a state
    # that enters through addmm (RNN, LSTM hidden) must have the full shape, or upstream
    # raises: the LSTM gets a broadcast cell and a full hidden state
    name, kw = layer
    e, m = pair(name, kw)
    x, h = rand(xshape, 0), rand(hshape, 1)
    c = None
    if name == "LSTM":
        h, c = rand(xshape[:-2] + (4,), 1), h * 0.5
    try:
        mlx.eval(call(m, M(x), M(h), M(c)))
    except ValueError:
        assert name == "RNN"
        with pytest.raises(ValueError):
            mx.eval(call(e, E(x), E(h)))
        return
    ye = call(e, E(x), E(h), E(c))
    assert bool(fused_nodes(ye)) == (fused and name != "RNN")
    assert_tree_same(ye, call(m, M(x), M(h), M(c)), rtol=1e-4)
    ge = mx.grad(lambda h: loss_of(call(e, E(x), h, E(c))))(E(h))
    gm = mlx.grad(lambda h: loss_of(call(m, M(x), h, M(c))))(M(h))
    assert_tree_same(ge, gm, rtol=5e-4)


def test_gru_with_one_bias_removed():
    # a user may drop either bias: the kernel fills the other with zeros
    for drop in ("b", "bhn"):
        e, m = pair("GRU", {})
        setattr(e, drop, None)
        setattr(m, drop, None)
        x, h = rand((2, 5, 5), 0), rand((2, 4), 1)
        y = e(E(x), E(h))
        assert fused_nodes([y])
        assert_tree_same(y, m(M(x), M(h)), rtol=1e-4)
        def total(model, lib):
            def f(p):
                model.update(p)
                return (model(lib.array(x), lib.array(h)) ** 2).sum()
            return f
        ge = mx.grad(total(e, mx))(e.trainable_parameters())
        gm = mlx.grad(total(m, mlx))(m.trainable_parameters())
        assert_tree_same(ge, gm, rtol=5e-4)


def test_float64_on_cpu():
    e, m = pair("LSTM", {})
    x = rand((2, 5, 5), 0)
    with mx.stream(mx.cpu):
        e.set_dtype(mx.float64)
        ys = call(e, E(x, "float64"))
        assert fused_nodes(ys)
        want = unrolled(e, E(x, "float64"))
        for y, w in zip(ys, want):
            assert y.dtype == mx.float64
            assert_close(np_of(y), np_of(w), "float64", 1e-12)
    assert_tree_same([y.astype(mx.float32) for y in ys], call(m, M(x)), rtol=1e-5)


# -- GPU against CPU ----------------------------------------------------------------------

def _on(device, fn):
    with mx.stream(device):
        out = fn()
        mx.eval(out)
    return out


@pytest.mark.gpu
@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("with_state", [False, True])
def test_gpu_matches_cpu(layer, dtype, with_state):
    name, kw = layer
    e, _ = pair(name, kw, dtype=dtype, d=16, h=32)
    x, h, c = inputs((4, 9, 16), with_state, with_state, name, h=32)

    def run():
        args = [E(x, dtype), E(h, dtype), E(c, dtype)]
        ys = call(e, *args)
        assert len(fused_nodes(ys)) == (2 if name == "LSTM" else 1)
        nums = [0] + [i for i, v in ((1, h), (2, c)) if v is not None]

        def f(params, *a):
            e.update(params)
            return loss_of(call(e, *a))
        gs = mx.grad(f, [0] + [i + 1 for i in nums])(e.trainable_parameters(), *args)
        return ys, list(gs)
    gpu = _on(mx.gpu, run)
    cpu = _on(mx.cpu, run)
    tol = {"float32": 2e-3, "float16": 2e-2, "bfloat16": 1e-1}[dtype]  # TF32 on the GPU
    assert_tree_same(gpu[0], cpu[0], rtol=tol, msg="forward")
    if kw.get("nonlinearity") != "relu" or dtype == "float32":
        assert_tree_same(gpu[1], cpu[1], rtol=tol * 5, msg="grads")
        return
    # in half precision a pre-activation near 0 can round to either side of relu's kink,
    # which flips its derivative: a few elements may differ, no more
    for a, b in zip(tree_flatten(gpu[1]), tree_flatten(cpu[1])):
        off = ~np.isclose(np_of(a[1]), np_of(b[1]), rtol=tol * 5, atol=tol * 5)
        assert off.mean() <= 0.01, f"grads {a[0]}: {off.sum()} of {off.size} differ"


@pytest.mark.gpu
@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_gpu_value_and_grad_matches_upstream(layer):
    name, kw = layer
    e, m = pair(name, kw, d=16, h=32)
    x = rand((4, 9, 16), 0)

    def loss(model, x):
        return loss_of(call(model, x))
    with mx.stream(mx.gpu):
        ve, ge = nn.value_and_grad(e, loss)(e, E(x))
        mx.eval(ve, ge)
    vm, gm = mnn.value_and_grad(m, loss)(m, M(x))
    assert_tree_same(ve, vm, rtol=2e-3)
    assert_tree_same(ge, gm, rtol=1e-2)


@pytest.mark.parametrize("layer", LAYERS[2:], ids=LAYER_IDS[2:])
def test_backward_reuses_the_forward_autograd_state(layer, monkeypatch):
    # value_and_grad builds the vjp before the forward runs: the forward runs once, under
    # torch's autograd, and the backward consumes its state (no second forward)
    import ember.core._backend.kernels_recurrent as K
    calls = []
    traced = K._traced
    monkeypatch.setattr(K, "_traced", lambda p, ts, nums: calls.append(p.kind) or
                        traced(p, ts, nums))
    name, kw = layer
    e, m = pair(name, kw)
    x = rand((2, 5, 5), 0)

    def loss(model, x):
        return loss_of(call(model, x))
    ve, ge = nn.value_and_grad(e, loss)(e, E(x))
    mx.eval(ve, ge)
    assert sorted(calls) == (["lstm", "lstm_cells"] if name == "LSTM" else ["gru"])
    vm, gm = mnn.value_and_grad(m, loss)(m, M(x))
    assert_tree_same(ge, gm, rtol=5e-4)
    # the forward evaluated before the vjp is built: the backward recomputes it
    calls.clear()

    def evaluated(x):
        ys = call(e, x)
        mx.eval(ys)
        assert not calls
        return ys
    ones = [mx.ones((2, 5, 4))] * (2 if name == "LSTM" else 1)
    g1 = mx.vjp(evaluated, [E(x)], ones)[1]
    mx.eval(g1)
    assert len(calls) == (2 if name == "LSTM" else 1)
    g2 = mlx.vjp(lambda x: call(m, x), [M(x)], [mlx.ones((2, 5, 4))] * len(ones))[1]
    assert_tree_same(g1, g2, rtol=5e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("layer", LAYERS, ids=LAYER_IDS)
def test_gpu_flat_weights_follow_the_parameters(layer):
    """cuDNN's flat copy of the weights is made once per set of weight arrays and
    replaced when the model's parameters change."""
    from ember.core._backend import kernels_recurrent as K
    name, kw = layer
    e, _ = pair(name, kw, d=16, h=32)
    x = rand((4, 9, 16), 0)

    def both():
        gpu = _on(mx.gpu, lambda: call(e, E(x)))
        assert_tree_same(gpu, _on(mx.cpu, lambda: call(e, E(x))), rtol=2e-3)
        return gpu
    K._FLAT.clear()
    first = both()
    flats = [id(v[1]) for v in K._FLAT.values()]
    assert_tree_same(both(), first, rtol=1e-7)
    assert [id(v[1]) for v in K._FLAT.values()] == flats  # reused, not rebuilt
    e.update(tree_map(lambda p: p * 0.5, e.trainable_parameters()))
    both()
