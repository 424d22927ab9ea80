"""A whole train step compiled with its state captured, as upstream's docs write it:

    state = [model.state, optimizer.state]
    @partial(mx.compile, inputs=state, outputs=state)
    def step(x, y): ...

20 steps must give the losses and parameters of the uncompiled step (Ember), and of
upstream's compiled step from the same initial weights."""

from functools import partial

import mlx.core as mlx
import mlx.nn as mnn
import mlx.optimizers as moptim
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
from ember.core.transforms import compile as C
from ember.utils import tree_flatten
from tests.core.compile_runs import gpt_train

STEPS = 20

OPTIMIZERS = {
    "sgd_momentum": lambda o: o.SGD(learning_rate=0.05, momentum=0.9, weight_decay=1e-3),
    "adam": lambda o: o.Adam(learning_rate=1e-2),
    "adamw": lambda o: o.AdamW(learning_rate=1e-2, weight_decay=0.1),
    "lion": lambda o: o.Lion(learning_rate=1e-3),
}


def _data(m):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6)).astype(np.float32)
    y = rng.normal(size=(16, 1)).astype(np.float32)
    return m.array(x), m.array(y)


def _model(nn_mod, dropout):
    layers = [nn_mod.Linear(6, 12), nn_mod.LayerNorm(12), nn_mod.ReLU()]
    if dropout:
        layers.append(nn_mod.Dropout(0.25))
    return nn_mod.Sequential(*layers, nn_mod.Linear(12, 1))


def _weights(model):
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def _train(m, nn_mod, optim_mod, opt_name, compiled, dropout=False, weights=None):
    """Losses over STEPS steps and the final parameters (numpy)."""
    m.random.seed(0)
    model = _model(nn_mod, dropout)
    if weights is not None:
        from mlx.utils import tree_unflatten as mlx_unflatten

        from ember.utils import tree_unflatten
        unflatten = tree_unflatten if m is mx else mlx_unflatten
        model.update(unflatten([(k, m.array(v)) for k, v in weights.items()]))
    opt = OPTIMIZERS[opt_name](optim_mod)
    x, y = _data(m)

    def loss_fn(model, x, y):
        return ((model(x) - y) ** 2).mean()

    loss_and_grad = nn_mod.value_and_grad(model, loss_fn)
    state = [model.state, opt.state] + ([m.random.state] if dropout else [])

    def step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        opt.update(model, grads)
        return loss

    if compiled:
        step = partial(m.compile, inputs=state, outputs=state)(step)
    losses = []
    for _ in range(STEPS):
        loss = step(x, y)
        m.eval(loss, state)
        losses.append(loss.item())
    return np.array(losses), _weights(model), step


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_compiled_train_step_matches_uncompiled(opt_name):
    want, wp, _ = _train(mx, nn, optim, opt_name, compiled=False)
    got, gp, step = _train(mx, nn, optim, opt_name, compiled=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert sorted(gp) == sorted(wp)
    for k in wp:
        np.testing.assert_allclose(gp[k], wp[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # first call: the optimizer state grows (a second trace), then every step reuses it
    s = C.stats(step)
    assert (s["misses"], s["hits"]) == (2, STEPS - 2)
    assert losses_decrease(got)


def losses_decrease(losses):
    return losses[-1] < losses[0]


def test_dropout_with_random_state_captured():
    want, wp, _ = _train(mx, nn, optim, "adam", compiled=False, dropout=True)
    got, gp, _ = _train(mx, nn, optim, "adam", compiled=True, dropout=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for k in wp:
        np.testing.assert_allclose(gp[k], wp[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert len(set(np.round(got, 6))) == STEPS  # fresh dropout masks every step


@pytest.mark.parametrize("opt_name", ["adam", "sgd_momentum"])
def test_compiled_train_step_matches_upstream(opt_name):
    mx.random.seed(0)
    weights = _weights(_model(nn, False))
    got, gp, _ = _train(mx, nn, optim, opt_name, compiled=True, weights=weights)
    want, wp, _ = _train(mlx, mnn, moptim, opt_name, compiled=True, weights=weights)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for k in wp:
        np.testing.assert_allclose(gp[k], wp[k], rtol=1e-4, atol=1e-5, err_msg=k)


def test_state_trees_hold_the_new_arrays():
    model = nn.Linear(3, 2)
    opt = optim.SGD(learning_rate=0.1)
    state = [model.state, opt.state]
    before = model.weight

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x):
        loss, grads = nn.value_and_grad(model, lambda m, x: m(x).sum())(model, x)
        opt.update(model, grads)
        return loss

    step(mx.ones((4, 3)))
    assert model.weight is not before
    assert state[0] is model and model.weight is state[0]["weight"]
    assert opt.state["step"].item() == 1
    step(mx.ones((4, 3)))
    assert opt.state["step"].item() == 2
    expected = np.array(before) - 0.2 * 4
    np.testing.assert_allclose(np.array(model.weight), expected, rtol=1e-6)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_compiled_gpt_train_step(dropout):
    # attention (fused SDPA backward), embeddings, layer norms, AdamW, dropout masks drawn
    # from the captured random state
    def run(compiled):
        return gpt_train(compiled, (32, 8, 16, 2, 2), (2, 9), 6, dropout)[:2]

    want, wp = run(False)
    got, gp = run(True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for k in wp:
        np.testing.assert_allclose(gp[k], wp[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_state_changed_between_calls_is_seen(monkeypatch):
    """Later calls find the state's leaves where the last call wrote them; a tree changed
    in between (a leaf replaced, a container replaced, a key added or removed) is walked
    again."""
    state = {"w": mx.array([1.0, 2.0]), "opt": {"n": mx.array(0.0)}, "fixed": [mx.array(5.0)]}

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x):
        state["w"] = state["w"] * x + state["fixed"][0]
        state["opt"]["n"] = state["opt"]["n"] + 1
        if "extra" in state:
            state["extra"] = state["extra"] * 2
        return state["w"].sum()

    def check(w, n):
        np.testing.assert_allclose(np.array(state["w"]), w)
        assert state["opt"]["n"].item() == n
    walks = []
    real = C._state_leaves
    monkeypatch.setattr(C, "_state_leaves", lambda *a: walks.append(1) or real(*a))
    step(mx.array(2.0))
    check([7.0, 9.0], 1)
    n = len(walks)
    step(mx.array(2.0))  # found through the last call's places
    check([19.0, 23.0], 2)
    assert len(walks) == n
    state["w"] = mx.array([0.0, 1.0])  # a leaf replaced
    step(mx.array(1.0))
    check([5.0, 6.0], 3)
    state["opt"] = {"n": mx.array(10.0)}  # a container replaced
    step(mx.array(1.0))
    check([10.0, 11.0], 11)
    state["extra"] = mx.array(3.0)  # a key added: a new leaf, a new trace
    step(mx.array(1.0))
    check([15.0, 16.0], 12)
    assert state["extra"].item() == 6.0
    step(mx.array(1.0))
    assert state["extra"].item() == 12.0
    check([20.0, 21.0], 13)
    del state["extra"]  # back to the first tree's structure (and its traced call)
    step(mx.array(1.0))
    check([25.0, 26.0], 14)


def test_random_state_read_anew_on_every_call():
    state = [mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def draw():
        return mx.random.uniform(shape=(3,))

    mx.random.seed(3)
    got = [np.array(draw()) for _ in range(3)]
    mx.random.seed(3)
    want = [np.array(mx.random.uniform(shape=(3,))) for _ in range(3)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    mx.random.seed(3)  # reseeded between calls: the next call reads the new key
    np.testing.assert_array_equal(np.array(draw()), want[0])


def test_tuples_and_uncaptured_inputs_as_upstream():
    """A tuple inside the state tree is replaced by a new tuple (its arrays take tracers
    and new values); an `inputs` array read other than through the tree is an error."""
    got = {}
    for m in (mlx, mx):
        t = (m.array(5.0), [m.array(1.0)])
        st = {"fixed": t, "l": [(m.array(2.0),)]}

        @partial(m.compile, inputs=st, outputs=st)
        def g(x):
            st["l"][0] = (st["l"][0][0] + 1,)
            return x + st["fixed"][0] + st["fixed"][1][0]
        out = [g(m.array(1.0)).item(), g(m.array(2.0)).item()]
        got[m] = (out, st["fixed"] is t, st["l"][0][0].item(), st["fixed"][0].item())
        a = m.array(1.0)
        for inputs in ((a,), [(a,)], [a]):
            with pytest.raises(ValueError, match=r"^\[compile\] Attempting to compile a "
                               "function with uncaptured inputs"):
                m.compile(lambda x: x + a, inputs=inputs)(m.array(2.0))
        assert m.compile(lambda x: x + 1, inputs=(a,))(m.array(2.0)).item() == 3.0
    assert got[mx] == got[mlx]
