"""ember.optimizers against upstream mlx.optimizers: the same optimizer, parameters and
gradients in both; parameters and the full state compared after every step."""

import mlx.core as mlx
import mlx.nn as mnn
import mlx.optimizers as mopt
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
import ember.optimizers as eopt
from ember.utils import tree_flatten, tree_map, tree_unflatten
from tests.helpers import assert_close, np_of
from tests.nn.parity import assert_tree_same, sync, to_mlx

STEPS = 10


def np_tree(seed):
    """A parameter-shaped tree of numpy arrays: nested dicts, a list, 0-d to 4-d leaves."""
    r = np.random.default_rng(seed)

    def a(*shape):
        return r.standard_normal(shape).astype(np.float32)

    return {"w": a(4, 3), "b": a(3), "s": a(), "deep": {"c": a(2, 3, 4), "conv": a(3, 2, 2, 4)},
            "seq": [a(5), a(3, 2)]}


def trees(seed, dtype):
    """The same tree as (Ember, MLX) arrays of `dtype`."""
    t = np_tree(seed)
    e = tree_map(lambda x: mx.array(x).astype(getattr(mx, dtype)), t)
    return e, to_mlx(e)


def flat(tree):
    return sorted(tree_flatten(tree), key=lambda kv: kv[0])


def assert_same_unordered(e, m, rtol=None, msg=""):
    """Trees with the same leaves (paths, shapes, dtypes, values), in any key order."""
    fe, fm = flat(e), flat(m)
    assert [k for k, _ in fe] == [k for k, _ in fm], f"{msg}: keys differ"
    assert_tree_same(dict(fe), dict(fm), rtol, msg)


CASES = {
    "sgd": lambda o: o.SGD(0.1),
    "sgd_momentum": lambda o: o.SGD(0.1, momentum=0.9),
    "sgd_wd": lambda o: o.SGD(0.1, momentum=0.9, weight_decay=0.01),
    "sgd_wd_no_momentum": lambda o: o.SGD(learning_rate=0.1, weight_decay=0.1),
    "sgd_dampening": lambda o: o.SGD(0.1, momentum=0.9, dampening=0.3),
    "sgd_nesterov": lambda o: o.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "rmsprop": lambda o: o.RMSprop(0.01),
    "rmsprop_args": lambda o: o.RMSprop(0.01, alpha=0.9, eps=1e-5),
    "adagrad": lambda o: o.Adagrad(0.1),
    "adagrad_eps": lambda o: o.Adagrad(0.1, eps=1e-3),
    "adadelta": lambda o: o.AdaDelta(1.0),
    "adadelta_args": lambda o: o.AdaDelta(0.5, rho=0.5, eps=1e-4),
    "adam": lambda o: o.Adam(1e-2),
    "adam_args": lambda o: o.Adam(1e-2, betas=(0.8, 0.95), eps=1e-6),
    "adam_bias_correction": lambda o: o.Adam(1e-2, bias_correction=True),
    "adamw": lambda o: o.AdamW(1e-2),
    "adamw_args": lambda o: o.AdamW(1e-2, betas=[0.8, 0.9], eps=1e-5, weight_decay=0.1,
                                    bias_correction=True),
    "adamw_no_decay": lambda o: o.AdamW(1e-2, weight_decay=0.0),
    "adamax": lambda o: o.Adamax(1e-2),
    "adamax_args": lambda o: o.Adamax(1e-2, betas=[0.5, 0.9], eps=1e-4),
    "lion": lambda o: o.Lion(1e-3),
    "lion_args": lambda o: o.Lion(1e-3, betas=[0.8, 0.9], weight_decay=0.1),
    "adafactor": lambda o: o.Adafactor(),
    "adafactor_beta1": lambda o: o.Adafactor(beta_1=0.9, weight_decay=0.01),
    "adafactor_lr": lambda o: o.Adafactor(learning_rate=1e-2, relative_step=False,
                                          scale_parameter=False),
    "adafactor_lr_scaled": lambda o: o.Adafactor(1e-2, relative_step=False, beta_1=0.5),
    "adafactor_warmup": lambda o: o.Adafactor(warmup_init=True, clip_threshold=0.5,
                                              decay_rate=-0.5, eps=(1e-20, 1e-2)),
    "muon": lambda o: o.Muon(1e-2),
    "muon_args": lambda o: o.Muon(1e-2, momentum=0.9, weight_decay=0.0, nesterov=False,
                                  ns_steps=3),
    # schedules as learning rates
    "sgd_exponential": lambda o: o.SGD(o.exponential_decay(0.1, 0.9), momentum=0.9),
    "rmsprop_step": lambda o: o.RMSprop(o.step_decay(1e-2, 0.5, 3)),
    "adagrad_linear": lambda o: o.Adagrad(o.linear_schedule(0.1, 0.01, 6)),
    "adadelta_cosine": lambda o: o.AdaDelta(o.cosine_decay(1.0, 5)),
    "adam_step": lambda o: o.Adam(o.step_decay(1e-2, 0.5, 3), bias_correction=True),
    "adamw_cosine": lambda o: o.AdamW(o.cosine_decay(1e-2, 8, 1e-3), bias_correction=True),
    "adamax_exponential": lambda o: o.Adamax(o.exponential_decay(1e-2, 0.8)),
    "lion_linear": lambda o: o.Lion(o.linear_schedule(0.0, 1e-3, 5), weight_decay=0.5),
    "adafactor_join": lambda o: o.Adafactor(
        o.join_schedules([o.linear_schedule(0.0, 1e-2, 3), o.cosine_decay(1e-2, 10)], [3]),
        relative_step=False),
    "muon_join": lambda o: o.Muon(o.join_schedules(
        [o.linear_schedule(1e-3, 1e-2, 2), o.exponential_decay(1e-2, 0.9),
         o.cosine_decay(1e-2, 4)], [2, 5])),
    # several optimizers over one tree
    "multi_one": lambda o: o.MultiOptimizer([o.Adam(1e-2)]),
    "multi_ndim": lambda o: o.MultiOptimizer([o.Muon(1e-2), o.AdamW(1e-2)],
                                             [lambda k, g: g.ndim >= 2]),
    "multi_path": lambda o: o.MultiOptimizer(
        [o.SGD(0.1, momentum=0.5), o.Lion(o.cosine_decay(1e-3, 5)), o.Adam(1e-2)],
        [lambda k, g: k.startswith("deep"), lambda k, g: "seq" in k]),
}

ROUGH = {"muon", "muon_args", "muon_join", "multi_ndim"}  # matmuls: summation order differs


def tol(name, dtype):
    return 2e-4 if name in ROUGH and dtype == "float32" else None


def run_both(name, dtype, steps=STEPS, state_too=True):
    """Step both optimizers on the same gradients; compare after every step."""
    eo, mo = CASES[name](eopt), CASES[name](mopt)
    ep, mp = trees(0, dtype)
    for i in range(steps):
        eg, mg = trees(i + 1, dtype)
        ep = eo.apply_gradients(eg, ep)
        mp = mo.apply_gradients(mg, mp)
        mx.eval(ep, eo.state)
        mlx.eval(mp, mo.state)
        msg = f"{name} {dtype} step {i}"
        assert_same_unordered(ep, mp, tol(name, dtype), msg)
        if state_too:
            assert_same_unordered(eo.state, mo.state, tol(name, dtype), msg + " state")
            if "learning_rate" in mo.state or name == "multi_one":
                assert_same(eo.learning_rate, mo.learning_rate, msg + " lr")
    return eo, mo, ep, mp


def assert_same(e, m, msg=""):
    assert_tree_same({"x": e}, {"x": m}, None, msg)


@pytest.mark.parametrize("name", sorted(CASES))
def test_steps_float32(name):
    run_both(name, "float32")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_steps_half(name, dtype):
    _, mp = trees(0, dtype)
    try:
        mlx.eval(CASES[name](mopt).apply_gradients(mp, mp))
    except Exception as exc:  # upstream refuses this dtype: so must we
        with pytest.raises(type(exc)):
            ep, _ = trees(0, dtype)
            mx.eval(CASES[name](eopt).apply_gradients(ep, ep))
        return
    run_both(name, dtype)


def _models(relu=True):
    mid = [nn.ReLU()] if relu else []
    em = nn.Sequential(nn.Linear(4, 8), *mid, nn.Linear(8, 3, bias=False))
    mid = [mnn.ReLU()] if relu else []
    mm = sync(em, mnn.Sequential(mnn.Linear(4, 8), *mid, mnn.Linear(8, 3, bias=False)))
    return em, mm


@pytest.mark.parametrize("name", ["sgd_nesterov", "adamw_args", "adafactor_beta1", "muon",
                                  "multi_ndim", "multi_one"])
def test_update_module(name):
    """`update(model, grads)` on nn models trained on a loss, grads from value_and_grad."""
    # upstream's MultiOptimizer cannot merge results around a layer without parameters
    em, mm = _models(relu=not name.startswith("multi"))
    eo, mo = CASES[name](eopt), CASES[name](mopt)
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    ex, mxx = mx.array(x), mlx.array(x)
    e_step = nn.value_and_grad(em, lambda inp: mx.mean(mx.square(em(inp))))
    m_step = mnn.value_and_grad(mm, lambda inp: mlx.mean(mlx.square(mm(inp))))
    for i in range(STEPS):
        el, eg = e_step(ex)
        ml, mg = m_step(mxx)
        eo.update(em, eg)
        mo.update(mm, mg)
        mx.eval(em.parameters(), eo.state)
        mlx.eval(mm.parameters(), mo.state)
        assert_close(np_of(el), np_of(ml), "float32", 1e-4, f"{name} loss {i}")
        assert_tree_same(em.parameters(), mm.parameters(), 1e-4, f"{name} params {i}")
        assert_same_unordered(eo.state, mo.state, 1e-4, f"{name} state {i}")


def test_multi_optimizer_layer_without_parameters():
    """A parameterless layer between two split parameters: upstream's merge fails, so
    does ours (the same error)."""
    em, mm = _models(relu=True)
    eo, mo = CASES["multi_ndim"](eopt), CASES["multi_ndim"](mopt)
    eg = tree_map(mx.ones_like, em.trainable_parameters())
    mg = tree_map(mlx.ones_like, mm.trainable_parameters())
    with pytest.raises(ValueError) as me:
        mo.update(mm, mg)
    with pytest.raises(ValueError) as ee:
        eo.update(em, eg)
    assert str(ee.value) == str(me.value)


def test_gradients_subset_of_parameters():
    """`parameters` may hold more than `gradients`; the result has the gradients' structure."""
    eo, mo = eopt.Adam(1e-2), mopt.Adam(1e-2)
    ep, mp = trees(0, "float32")
    eg, mg = trees(1, "float32")
    part = lambda t: {"w": t["w"], "deep": {"c": t["deep"]["c"]}}  # noqa: E731
    eg, mg = part(eg), part(mg)
    for _ in range(3):
        er, mr = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
        assert_tree_same(er, mr)
        assert_tree_same(eo.state, mo.state)


def test_tuple_tree():
    eo, mo = eopt.SGD(0.1, momentum=0.9), mopt.SGD(0.1, momentum=0.9)
    ep, mp = trees(0, "float32")
    eg, mg = trees(1, "float32")
    ep, mp = {"t": (ep["w"], ep["b"])}, {"t": (mp["w"], mp["b"])}
    eg, mg = {"t": (eg["w"], eg["b"])}, {"t": (mg["w"], mg["b"])}
    for _ in range(3):
        ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
        assert type(ep["t"]) is type(mp["t"]) is tuple
        assert type(eo.state["t"]) is type(mo.state["t"]) is tuple
        assert_tree_same(ep, mp)
        assert_tree_same(eo.state, mo.state)
    # the top level of the tree must be a dict (the state keeps "step" there)
    for o, p in [(eopt.SGD(0.1), ep["t"]), (mopt.SGD(0.1), mp["t"])]:
        with pytest.raises(KeyError):
            o.apply_gradients(p, p)


def test_namedtuple_tree_per_parameter_path():
    """Optimizers without a fused update (Muon, Adafactor) keep namedtuples in the result."""
    from collections import namedtuple
    NT = namedtuple("NT", "a b")
    for make in [lambda o: o.Muon(0.1), lambda o: o.Adafactor()]:
        eo, mo = make(eopt), make(mopt)
        ep, mp = trees(0, "float32")
        ep, mp = {"n": NT(ep["w"], ep["b"])}, {"n": NT(mp["w"], mp["b"])}
        for _ in range(2):
            ep, mp = eo.apply_gradients(ep, ep), mo.apply_gradients(mp, mp)
            assert type(ep["n"]) is type(mp["n"]) is NT
            assert_tree_same(ep, mp)
            assert_tree_same(eo.state, mo.state)


def test_init_with_shorter_list():
    """A state list longer than the parameters' is an IndexError, as upstream (not cut)."""
    for o, fw in [(eopt.Adam(0.1), mx), (mopt.Adam(0.1), mlx)]:
        o.init({"b": [fw.ones(1), fw.ones(2), fw.ones(3)]})
        with pytest.raises(IndexError):
            o.init({"b": [fw.ones(1)]})
        assert len(o.state["b"]) == 3


def test_missing_slots_fail_as_upstream():
    """A state without its slots fails with upstream's exception (SGD reads "v" with .get,
    AdaDelta reads "v" before "u")."""
    for make in [lambda o: o.SGD(0.1, momentum=0.9), lambda o: o.AdaDelta(0.1)]:
        errors = []
        for o, fw in [(make(eopt), mx), (make(mopt), mlx)]:
            p = fw.ones(2)
            with pytest.raises(Exception) as e:
                o.apply_gradients(p, p)
            errors.append(e.value)
        assert type(errors[0]) is type(errors[1]) and str(errors[0]) == str(errors[1])


def test_hyperparameter_edits_before_apply_single():
    """apply_single after an update sees hyperparameters changed in between (the scalars
    of the update are not reused)."""
    edits = [(lambda o: o.AdamW(0.1), "weight_decay", 0.5),
             (lambda o: o.Adam(0.1, bias_correction=True), "betas", [0.5, 0.6]),
             (lambda o: o.Adam(0.1), "bias_correction", True),
             (lambda o: o.Lion(0.1, weight_decay=0.1), "weight_decay", 0.5),
             (lambda o: o.Adafactor(), "warmup_init", True),
             (lambda o: o.Adafactor(0.3), "relative_step", False)]
    for make, attr, value in edits:
        eo, mo = make(eopt), make(mopt)
        ep, mp = trees(0, "float32")
        eg, mg = trees(1, "float32")
        ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
        setattr(eo, attr, value)
        setattr(mo, attr, value)
        er = eo.apply_single(eg["w"], ep["w"], eo.state["w"])
        mr = mo.apply_single(mg["w"], mp["w"], mo.state["w"])
        assert_tree_same(er, mr, None, attr)


def test_init_then_state():
    """Explicit init fills the state before any update, in upstream's layout."""
    for name in ["sgd", "adam", "adafactor_beta1", "muon", "multi_path"]:
        eo, mo = CASES[name](eopt), CASES[name](mopt)
        ep, mp = trees(0, "float32")
        eo.init(ep)
        mo.init(mp)
        assert_same_unordered(eo.state, mo.state, msg=name)
        # a second init (and the first update after it) keeps what is there
        eo.init(ep)
        mo.init(mp)
        assert_same_unordered(eo.state, mo.state, msg=name)


def test_init_grows_state():
    """init on a larger tree adds slots for the new parameters and keeps the old ones."""
    eo, mo = eopt.Adam(1e-2), mopt.Adam(1e-2)
    ep, mp = trees(0, "float32")
    small = lambda t: {"w": t["w"], "seq": [t["seq"][0]]}  # noqa: E731
    eo.apply_gradients(small(ep), small(ep))
    mo.apply_gradients(small(mp), small(mp))
    eo.init(ep)
    mo.init(mp)
    assert_same_unordered(eo.state, mo.state)
    eg, mg = trees(1, "float32")
    assert_tree_same(eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp))
    assert_same_unordered(eo.state, mo.state)


def test_learning_rate_setter():
    for name in ["sgd_momentum", "adam_bias_correction", "adamw_args", "lion_args",
                 "multi_path", "adamw_cosine"]:
        eo, mo = CASES[name](eopt), CASES[name](mopt)
        ep, mp = trees(0, "bfloat16")
        for i in range(4):
            if i == 2:
                eo.learning_rate = 0.5
                mo.learning_rate = 0.5
                assert_same(eo.learning_rate, mo.learning_rate)
            if i == 3:
                eo.learning_rate = mx.array(0.25, mx.bfloat16)
                mo.learning_rate = mlx.array(0.25, mlx.bfloat16)
                assert_same(eo.learning_rate, mo.learning_rate)
            eg, mg = trees(i + 1, "bfloat16")
            ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
            assert_same_unordered(ep, mp, msg=f"{name} {i}")
            assert_same_unordered(eo.state, mo.state, msg=f"{name} {i}")


def test_state_edits_between_steps():
    """Replacing state entries by hand (step, learning rate) takes effect at once, also
    for apply_single called directly."""
    eo, mo = eopt.Adam(1e-2, bias_correction=True), mopt.Adam(1e-2, bias_correction=True)
    ep, mp = trees(0, "float32")
    eg, mg = trees(1, "float32")
    ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
    eo.state["step"] = mx.array(7, mx.uint64)
    mo.state["step"] = mlx.array(7, mlx.uint64)
    eo.state["learning_rate"] = mx.array(0.3)
    mo.state["learning_rate"] = mlx.array(0.3)
    er = eo.apply_single(eg["w"], ep["w"], eo.state["w"])
    mr = mo.apply_single(mg["w"], mp["w"], mo.state["w"])
    assert_same(er, mr)
    ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
    assert_tree_same(ep, mp)
    assert_tree_same(eo.state, mo.state)


def test_step_and_schedule_values():
    eo = eopt.SGD(eopt.cosine_decay(0.1, 5))
    mo = mopt.SGD(mopt.cosine_decay(0.1, 5))
    assert_same(eo.step, mo.step)
    assert_same(eo.learning_rate, mo.learning_rate)
    for _ in range(7):
        eo.apply_gradients({}, {})
        mo.apply_gradients({}, {})
        assert_same(eo.step, mo.step)
        assert_same(eo.learning_rate, mo.learning_rate)


class _Dummy(dict):
    """Stands in for a model: a dict with update()."""

    def update(self, new):
        super().update(new)


def test_update_empty_and_dict_model():
    """update() needs only `model.update` and item access; the schedule doc examples call
    update({}, {})."""
    eo = eopt.Adam(eopt.linear_schedule(0, 1e-1, 10))
    mo = mopt.Adam(mopt.linear_schedule(0, 1e-1, 10))
    for _ in range(12):
        eo.update({}, {})
        mo.update({}, {})
    assert_same(eo.learning_rate, mo.learning_rate)
    assert_same(eo.step, mo.step)
    ep, mp = trees(0, "float32")
    em, mm = _Dummy(ep), _Dummy(mp)
    eg, mg = trees(1, "float32")
    # initialised on an empty tree: new parameters have no state (upstream: KeyError)
    for o, m, g in [(mo, mm, mg), (eo, em, eg)]:
        with pytest.raises(KeyError):
            o.update(m, g)
    eo, mo = eopt.Adam(1e-2), mopt.Adam(1e-2)
    for _ in range(2):
        eo.update(em, eg)
        mo.update(mm, mg)
        assert_same_unordered(dict(em), dict(mm))
        assert_same_unordered(eo.state, mo.state)


def _save_load(state, tmp_path, fmt):
    path = str(tmp_path / f"opt.{fmt}")
    flat_state = dict(tree_flatten(state))
    if fmt == "npz":
        mx.savez(path, **flat_state)
    else:
        mx.save_safetensors(path, flat_state)
    return tree_unflatten(list(mx.load(path).items()))


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
@pytest.mark.parametrize("name", ["sgd_nesterov", "adam_step", "adamw_cosine", "adafactor_beta1",
                                  "muon_join", "lion_linear", "adadelta", "multi_path"])
def test_save_load_continue(name, fmt, tmp_path):
    """Save the state, load it into a fresh optimizer, continue: equals not stopping."""
    dtype = "float32" if fmt == "npz" else "bfloat16"
    uninterrupted, resumed = CASES[name](eopt), CASES[name](eopt)
    ep, _ = trees(0, dtype)
    rp = ep
    for i in range(STEPS):
        eg, _ = trees(i + 1, dtype)
        ep = uninterrupted.apply_gradients(eg, ep)
        if i == 4:
            saved = _save_load(resumed.state, tmp_path, fmt)
            resumed = CASES[name](eopt)
            resumed.state = saved
        rp = resumed.apply_gradients(eg, rp)
        mx.eval(ep, rp)
        assert_same_unordered(rp, to_mlx(ep), 0, f"{name} step {i}")
        assert_same_unordered(resumed.state, to_mlx(uninterrupted.state), 0, f"{name} state {i}")


def test_saved_state_loads_upstream(tmp_path):
    """A state saved by Ember restores an upstream optimizer (and the reverse), which then
    continue in step."""
    eo, mo = eopt.AdamW(1e-2, bias_correction=True), mopt.AdamW(1e-2, bias_correction=True)
    ep, mp = trees(0, "float32")
    for i in range(3):
        eg, mg = trees(i + 1, "float32")
        ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
    path = str(tmp_path / "s.safetensors")
    mx.save_safetensors(path, dict(tree_flatten(eo.state)))
    mo2 = mopt.AdamW(1e-2, bias_correction=True)
    mo2.state = tree_unflatten(list(mlx.load(path).items()))
    path = str(tmp_path / "m.safetensors")
    mlx.save_safetensors(path, dict(tree_flatten(mo.state)))
    eo2 = eopt.AdamW(1e-2, bias_correction=True)
    eo2.state = tree_unflatten(list(mx.load(path).items()))
    for i in range(3, 6):
        eg, mg = trees(i + 1, "float32")
        ep2, mp2 = eo2.apply_gradients(eg, ep), mo2.apply_gradients(mg, mp)
        ep, mp = ep2, mp2
        assert_tree_same(ep, mp)
        assert_same_unordered(eo2.state, mo2.state)


def test_state_setter_and_multi_state():
    e = eopt.MultiOptimizer([eopt.SGD(0.1), eopt.Adam(0.1)], [lambda k, g: k == "w"])
    m = mopt.MultiOptimizer([mopt.SGD(0.1), mopt.Adam(0.1)], [lambda k, g: k == "w"])
    ep, mp = trees(0, "float32")
    e.init(ep)
    m.init(mp)
    assert list(e.state) == list(m.state) == ["states"]
    assert_same_unordered(e.state, m.state)
    for bad in [{}, {"states": [{}]}, {"other": []}]:
        with pytest.raises(ValueError) as ee:
            e.state = bad
        with pytest.raises(ValueError) as em:
            m.state = bad
        assert str(ee.value) == str(em.value)
    e.learning_rate = 0.01
    m.learning_rate = 0.01
    for eo, mo in zip(e.optimizers, m.optimizers):
        assert_same(eo.learning_rate, mo.learning_rate)
    for opt in (m, e):
        with pytest.raises(KeyError):
            opt.step


def test_custom_optimizer_subclass():
    """A user optimizer written against the base class API (init_single/apply_single,
    _maybe_schedule, learning_rate, step) runs the same in both."""

    def make(o, m):
        class Scaled(o.Optimizer):
            def __init__(self, lr):
                super().__init__()
                self._maybe_schedule("learning_rate", lr)

            def init_single(self, parameter, state):
                state["n"] = m.zeros_like(parameter)

            def apply_single(self, gradient, parameter, state):
                state["n"] = state["n"] + 1
                return parameter - self.learning_rate * gradient / self.step

        return Scaled(o.exponential_decay(0.5, 0.9))

    eo, mo = make(eopt, mx), make(mopt, mlx)
    ep, mp = trees(0, "float32")
    for i in range(4):
        eg, mg = trees(i + 1, "float32")
        ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
        assert_tree_same(ep, mp)
        assert_tree_same(eo.state, mo.state)
    with pytest.raises(NotImplementedError):
        eopt.Optimizer().init_single(mx.zeros(1), {})
    with pytest.raises(NotImplementedError):
        eopt.Optimizer().apply_single(mx.zeros(1), mx.zeros(1), {})


def test_adafactor_without_learning_rate():
    """relative_step=False needs a learning rate: both fail the same way at the update."""
    ep, mp = trees(0, "float32")
    e, m = eopt.Adafactor(relative_step=False), mopt.Adafactor(relative_step=False)
    assert "learning_rate" not in e.state and "learning_rate" not in m.state
    with pytest.raises(KeyError):
        m.apply_gradients(mp, mp)
    with pytest.raises(KeyError):
        e.apply_gradients(ep, ep)


def test_muon_newton_schulz():
    e, m = eopt.Muon(0.1), mopt.Muon(0.1)
    for shape in [(3, 5), (5, 3), (4, 4)]:
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        assert_close(np_of(e._zeropower_via_newtonschulz5(mx.array(x), 5)),
                     np_of(m._zeropower_via_newtonschulz5(mlx.array(x), 5)), "float32", 1e-4)
    with pytest.raises(AssertionError):
        e._zeropower_via_newtonschulz5(mx.zeros((2, 2, 2)), 5)


CLIP_TREES = {
    "mixed": lambda: {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
                      "b": [np.array([3.0, -4.0], np.float16), np.array(2.5, np.float32)],
                      "c": {"d": np.linspace(-3, 3, 7).astype(np.float32)}},
    "ints": lambda: {"i": np.array([3, 4], np.int32), "f": np.array([1.0], np.float32)},
    "big_f16": lambda: {"h": np.full((4,), 300.0, np.float16)},
    "bf16": "bf16",
    "empty": lambda: {},
}


def _clip_tree(name):
    if name == "bf16":
        e = {"x": mx.array(np_tree(3)["w"]).astype(mx.bfloat16),
             "y": mx.array(np_tree(4)["deep"]["c"]).astype(mx.bfloat16)}
        return e, to_mlx(e)
    t = CLIP_TREES[name]()
    e = tree_map(mx.array, t)
    return e, to_mlx(e)


@pytest.mark.parametrize("max_norm", [0.0, 0.5, 3.0, 1e4])
@pytest.mark.parametrize("name", sorted(CLIP_TREES))
def test_clip_grad_norm(name, max_norm):
    e, m = _clip_tree(name)
    ec, en = eopt.clip_grad_norm(e, max_norm)
    mc, mn = mopt.clip_grad_norm(m, max_norm)
    assert_same(en, mn, "norm")
    assert_tree_same(ec, mc, None, "clipped")


def test_clip_grad_norm_errors():
    for bad in [-1, -0.5]:
        with pytest.raises(ValueError) as ee:
            eopt.clip_grad_norm({"a": mx.ones(2)}, bad)
        with pytest.raises(ValueError) as em:
            mopt.clip_grad_norm({"a": mlx.ones(2)}, bad)
        assert str(ee.value) == str(em.value)


BAD_ARGS = [
    lambda o: o.SGD(0.1, nesterov=True),
    lambda o: o.SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True),
    lambda o: o.SGD(0.1, momentum=-1.0, nesterov=True),
    lambda o: o.RMSprop(0.1, alpha=-0.1),
    lambda o: o.RMSprop(0.1, eps=0.0),
    lambda o: o.Adagrad(0.1, eps=-1.0),
    lambda o: o.AdaDelta(0.1, rho=-0.5),
    lambda o: o.AdaDelta(0.1, eps=0),
    lambda o: o.Adam(0.1, betas=[1.0, 0.9]),
    lambda o: o.Adam(0.1, betas=[0.9, -0.1]),
    lambda o: o.Adam(0.1, eps=-1e-8),
    lambda o: o.AdamW(0.1, betas=[0.9, 1.5]),
    lambda o: o.Adamax(0.1, betas=[-0.1, 0.9]),
    lambda o: o.Adamax(0.1, eps=-1.0),
    lambda o: o.Lion(0.1, betas=[0.9, 1.0]),
    lambda o: o.MultiOptimizer([o.SGD(0.1), o.Adam(0.1)]),
    lambda o: o.MultiOptimizer([o.SGD(0.1)], [lambda k, g: True]),
    # filters must be a list (upstream appends the fallback with +)
    lambda o: o.MultiOptimizer([o.SGD(0.1), o.Adam(0.1)], (lambda k, g: True,)),
]


@pytest.mark.parametrize("i", range(len(BAD_ARGS)))
def test_bad_arguments(i):
    with pytest.raises(Exception) as em:
        BAD_ARGS[i](mopt)
    with pytest.raises(type(em.value)) as ee:
        BAD_ARGS[i](eopt)
    assert str(ee.value) == str(em.value)


def test_public_names():
    names = ["Optimizer", "MultiOptimizer", "SGD", "RMSprop", "Adagrad", "AdaDelta", "Adam",
             "AdamW", "Adamax", "Lion", "Adafactor", "Muon", "clip_grad_norm",
             "exponential_decay", "step_decay", "cosine_decay", "linear_schedule",
             "join_schedules"]
    for n in names:
        assert hasattr(eopt, n), n
        assert hasattr(mopt, n), n
    import inspect
    for n in names:
        ue, um = getattr(eopt, n), getattr(mopt, n)
        fe = ue.__init__ if inspect.isclass(ue) else ue
        fm = um.__init__ if inspect.isclass(um) else um
        pe = [(p.name, p.default, p.kind) for p in inspect.signature(fe).parameters.values()]
        pm = [(p.name, p.default, p.kind) for p in inspect.signature(fm).parameters.values()]
        assert pe == pm, n
    assert issubclass(eopt.AdamW, eopt.Adam) and issubclass(eopt.Adamax, eopt.Adam)



def _public(module):
    return {n for n in dir(module) if not n.startswith("_")}


@pytest.mark.parametrize("sub", ["", ".optimizers", ".schedulers"])
def test_module_namespace(sub):
    """What upstream's modules expose (their imports included: mx, math, Module, the tree
    utilities, typing names) is reachable from Ember's, as the Ember counterpart."""
    import importlib
    import types
    em = importlib.import_module("ember.optimizers" + sub)
    mm = importlib.import_module("mlx.optimizers" + sub)
    assert _public(mm) <= _public(em), sorted(_public(mm) - _public(em))
    for n in sorted(_public(mm)):
        e, m = getattr(em, n), getattr(mm, n)
        if isinstance(m, types.ModuleType):
            assert e.__name__ == m.__name__.replace("mlx.", "ember.", 1), n
        elif getattr(m, "__module__", "").startswith("mlx"):
            assert e.__name__ == m.__name__ and e.__module__.startswith("ember."), n
        else:
            assert e is m, n


@pytest.mark.parametrize("name", ["sgd_wd", "sgd_nesterov", "rmsprop", "adagrad", "adadelta",
                                  "adam_bias_correction", "adamw_args", "adamax", "lion_args",
                                  "adafactor_lr", "muon", "multi_path"])
def test_learning_rate_with_a_dimension(name):
    """A learning rate of shape (1,) broadcasts into the parameters (0-d ones become 1-d),
    as upstream."""
    eo, mo = CASES[name](eopt), CASES[name](mopt)
    ep, mp = trees(0, "float32")
    eo.learning_rate = mx.array([0.05])
    mo.learning_rate = mlx.array([0.05])
    for i in range(3):
        eg, mg = trees(i + 1, "float32")
        ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
        assert_same_unordered(ep, mp, tol(name, "float32"), f"{name} {i}")
        assert_same_unordered(eo.state, mo.state, tol(name, "float32"), f"{name} {i}")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("make", [
    lambda o, m: o.AdamW(1e-2, weight_decay=m.array(0.1, m.bfloat16)),
    lambda o, m: o.AdamW(1e-2, weight_decay=m.array(0.1, m.float16), bias_correction=True),
    lambda o, m: o.Lion(1e-2, weight_decay=m.array(0.1, m.float32)),
    lambda o, m: o.SGD(m.array(0.1, m.float32), momentum=0.9),
], ids=["adamw_bf16_decay", "adamw_f16_decay", "lion_f32_decay", "sgd"])
def test_array_hyperparameters_promote(make, dtype):
    """Array hyperparameters of another dtype promote the parameters as upstream (to
    float32 where bfloat16 meets float16)."""
    eo, mo = make(eopt, mx), make(mopt, mlx)
    ep, mp = trees(0, dtype)
    for i in range(3):
        eg, mg = trees(i + 1, dtype)
        ep, mp = eo.apply_gradients(eg, ep), mo.apply_gradients(mg, mp)
        assert_same_unordered(ep, mp, msg=f"step {i}")
        assert_same_unordered(eo.state, mo.state, msg=f"state {i}")
