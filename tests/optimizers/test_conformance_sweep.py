"""A sweep of ember.optimizers and ember.utils against upstream mlx.optimizers / mlx.utils:
each case is one function `case(core, optimizers, utils)` run in both frameworks on the
same inputs, and the outcomes (result trees, or exception type and message) compared."""

import importlib
from collections import OrderedDict, namedtuple
from functools import partial

import mlx.core as mlx
import mlx.optimizers as mopt
import mlx.utils as mutils
import numpy as np
import pytest

import ember.core as mx
import ember.optimizers as eopt
import ember.utils as eutils
from tests.helpers import assert_close, dtype_name, np_of

UP = (mlx, mopt, mutils)
OURS = (mx, eopt, eutils)
NT = namedtuple("NT", "x y")


def _norm(x):
    """A comparable form of a result: arrays as (dtype, shape, values), dicts with their
    key order, containers with their type, anything else as itself."""
    if isinstance(x, (mx.array, mlx.array)):
        return ("array", dtype_name(x), tuple(x.shape), np_of(x))
    if isinstance(x, dict):
        return ("dict", list(x), [_norm(v) for v in x.values()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [_norm(v) for v in x])
    if callable(x):
        return ("callable",)
    return ("value", type(x).__name__, x)


def _compare(got, want, path=""):
    assert got[0] == want[0], f"{path}: {got[0]} vs upstream {want[0]}"
    if want[0] == "array":
        assert got[1:3] == want[1:3], f"{path}: {got[1:3]} vs upstream {want[1:3]}"
        # the per-element rules give upstream's bits; reductions (Adafactor's means,
        # Muon's matmuls) may round in another order
        assert_close(got[3], want[3], want[1], msg=path)
    elif want[0] == "dict":
        assert got[1] == want[1], f"{path}: keys {got[1]} vs upstream {want[1]}"
        for k, a, b in zip(want[1], got[2], want[2]):
            _compare(a, b, f"{path}.{k}")
    elif want[0] == "value":
        assert got == want, f"{path}: {got} vs upstream {want}"
    elif want[0] != "callable":
        assert len(got[1]) == len(want[1]), f"{path}: length"
        for i, (a, b) in enumerate(zip(got[1], want[1])):
            _compare(a, b, f"{path}.{i}")


def _outcome(case, fw):
    try:
        out = case(*fw)
        fw[0].eval([v for _, v in fw[2].tree_flatten(out)
                    if isinstance(v, (mx.array, mlx.array))])
        return _norm(out), None
    except Exception as e:  # noqa: BLE001 - the exception itself is compared
        return None, e


def check(case):
    """`case` gives upstream's result in Ember, or raises upstream's exception type with
    its message (a binding's refusal compared less its "Invoked with" tail)."""
    want, want_err = _outcome(case, UP)
    got, got_err = _outcome(case, OURS)
    if want_err is not None:
        assert got_err is not None, f"upstream raised {want_err!r}, Ember did not"
        assert type(got_err) is type(want_err), f"{got_err!r} vs upstream {want_err!r}"
        assert str(got_err) == str(want_err).split("\n\nInvoked with")[0]
        return
    assert got_err is None, f"Ember raised {got_err!r}, upstream did not"
    _compare(got, want)


def arr(m, *shape, seed=0, dt="float32"):
    v = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return m.array(v).astype(getattr(m, dt))


def params(m, dt="float32", seed=0):
    """A nested parameter tree: dicts, a list holding a tuple, 0-d to 3-d leaves."""
    def a(shape, k):
        return arr(m, *shape, seed=seed + k, dt=dt)
    return {"w": a((4, 3), 1), "b": a((3,), 2), "s": a((), 3),
            "l": [a((2, 5), 4), (a((3, 2, 2), 5),)], "d": {"x": a((5, 6), 6)}}


OPTIMIZERS = {
    "sgd": lambda o: o.SGD(0.1),
    "sgd_momentum": lambda o: o.SGD(0.1, momentum=0.9, weight_decay=0.01, dampening=0.1),
    "sgd_nesterov": lambda o: o.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "rmsprop": lambda o: o.RMSprop(0.01, alpha=0.9),
    "adagrad": lambda o: o.Adagrad(0.1),
    "adadelta": lambda o: o.AdaDelta(1.0),
    "adam": lambda o: o.Adam(0.01),
    "adam_bc": lambda o: o.Adam(0.01, bias_correction=True),
    "adamw": lambda o: o.AdamW(0.01, weight_decay=0.1, bias_correction=True),
    "adamax": lambda o: o.Adamax(0.01),
    "lion": lambda o: o.Lion(0.01, weight_decay=0.1),
    "adafactor": lambda o: o.Adafactor(),
    "adafactor_lr": lambda o: o.Adafactor(0.01, relative_step=False, scale_parameter=False,
                                          beta_1=0.9, weight_decay=0.1),
    "adafactor_warmup": lambda o: o.Adafactor(warmup_init=True, beta_1=0.5,
                                              clip_threshold=0.5, eps=(1e-20, 1e-2)),
    "muon": lambda o: o.Muon(0.02),
    "muon_plain": lambda o: o.Muon(0.02, nesterov=False, weight_decay=0.0, ns_steps=2),
    "multi": lambda o: o.MultiOptimizer([o.Adam(0.01), o.SGD(0.1, momentum=0.9)],
                                        [lambda path, g: g.ndim >= 2]),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_init_state(name, dt):
    def case(m, o, u):
        opt = OPTIMIZERS[name](o)
        before = dict(opt.state)
        opt.init(params(m, dt))
        return before, opt.state
    check(case)


@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("pdt,gdt", [("float32", "float32"), ("float16", "float16"),
                                     ("bfloat16", "float32"), ("float32", "bfloat16"),
                                     ("float16", "bfloat16")])
def test_steps_and_dtypes(name, pdt, gdt):
    def case(m, o, u):
        opt = OPTIMIZERS[name](o)
        p = params(m, pdt)
        for i in range(3):
            p = opt.apply_gradients(params(m, gdt, 10 * (i + 1)), p)
        return p, opt.state
    check(case)


LEARNING_RATES = {
    "schedule": lambda m, o: o.cosine_decay(0.1, 4, 0.01),
    "joined": lambda m, o: o.join_schedules([o.linear_schedule(0.0, 0.1, 2),
                                             o.exponential_decay(0.1, 0.9)], [2]),
    "array": lambda m, o: m.array(0.05),
    "float16_array": lambda m, o: m.array(0.05, m.float16),
    "int": lambda m, o: 1,
    "python_float_schedule": lambda m, o: (lambda step: 0.1),
}
WITH_LR = {
    "sgd": lambda o, lr: o.SGD(lr, momentum=0.9),
    "adam": lambda o, lr: o.Adam(lr, bias_correction=True),
    "adamw": lambda o, lr: o.AdamW(lr),
    "lion": lambda o, lr: o.Lion(lr, weight_decay=0.1),
    "adafactor": lambda o, lr: o.Adafactor(lr, relative_step=False),
    "muon": lambda o, lr: o.Muon(lr),
}


@pytest.mark.parametrize("name", WITH_LR)
@pytest.mark.parametrize("lr", LEARNING_RATES)
def test_learning_rate_kinds(name, lr):
    def case(m, o, u):
        opt = WITH_LR[name](o, LEARNING_RATES[lr](m, o))
        p = params(m, "bfloat16")
        scalars = [{k: v for k, v in opt.state.items() if not isinstance(v, dict)}]
        for i in range(3):
            p = opt.apply_gradients(params(m, "bfloat16", i + 5), p)
            scalars.append({k: v for k, v in opt.state.items() if not isinstance(v, dict)})
        return p, scalars
    check(case)


def _with_update(make_grads, init=None):
    def run(opt, m):
        p = {"a": arr(m, 3), "b": arr(m, 2, 2, seed=1)}
        if init is not None:
            opt.init(init(m))
        return opt.apply_gradients(make_grads(m), p), opt.state
    return run


TREE_CASES = {
    "missing_gradient": _with_update(lambda m: {"a": arr(m, 3, seed=2)},
                                     lambda m: {"a": arr(m, 3), "b": arr(m, 2, 2)}),
    "extra_gradient": _with_update(lambda m: {"a": arr(m, 3, seed=2), "c": arr(m, 2)},
                                   lambda m: {"a": arr(m, 3)}),
    "extra_gradient_uninitialised": _with_update(
        lambda m: {"a": arr(m, 3, seed=2), "c": arr(m, 2)}),
    "broadcast_gradient": _with_update(lambda m: {"b": arr(m, 2, seed=2)},
                                       lambda m: {"b": arr(m, 2, 2)}),
    "wrong_shape": _with_update(lambda m: {"a": arr(m, 4, seed=2)}),
    "python_leaves": _with_update(lambda m: {"a": arr(m, 3, seed=2), "n": 1.0}),
    "none_gradient": _with_update(lambda m: {"a": arr(m, 3, seed=2), "b": None}),
    "init_non_arrays": lambda opt, m: (
        opt.init({"a": arr(m, 3), "n": 3, "s": "x", "z": None,
                  "l": [arr(m, 2), 1.5, (arr(m, 2, 2), 7)]}), opt.state),
    "init_grows_list": lambda opt, m: (
        opt.init({"l": [arr(m, 2)]}), opt.init({"l": [arr(m, 2), arr(m, 3)], "t": (arr(m, 1),)}),
        opt.state),
    "list_and_tuple_tops": lambda opt, m: (
        opt.apply_gradients([arr(m, 3, seed=1), (arr(m, 2, 2, seed=2),)],
                            [arr(m, 3), (arr(m, 2, 2),)]), opt.state),
    "bare_array": lambda opt, m: (opt.apply_gradients(arr(m, 3, seed=1), arr(m, 3)), opt.state),
    "ordered_dict": lambda opt, m: (
        opt.apply_gradients(OrderedDict(b=arr(m, 2, seed=1), a=arr(m, 3, seed=2)),
                            OrderedDict(b=arr(m, 2), a=arr(m, 3))), opt.state),
    "parameter_named_step": lambda opt, m: (
        opt.apply_gradients({"step": arr(m, 2, seed=1)}, {"step": arr(m, 2)}), opt.state),
    "learning_rate_setter": lambda opt, m: (
        setattr(opt, "learning_rate", mx.array(0.5, mx.float16) if m is mx
                else mlx.array(0.5, mlx.float16)), opt.learning_rate, opt.state),
    "schedule_setter": lambda opt, m: setattr(opt, "learning_rate", lambda step: step),
}


@pytest.mark.parametrize("name", ["sgd_momentum", "adamw", "lion", "adafactor", "muon",
                                  "multi"])
@pytest.mark.parametrize("tree_case", TREE_CASES)
def test_trees(name, tree_case):
    check(lambda m, o, u: TREE_CASES[tree_case](OPTIMIZERS[name](o), m))


CONSTRUCTOR_ERRORS = [  # (beyond test_optimizers' BAD_ARGS)
    lambda o: o.SGD(-0.1, momentum=-0.5, weight_decay=-1.0),
    lambda o: o.Adam(0.1, betas=(0.9, -0.1)),
    lambda o: o.Adam(0.1, betas=[0.9, 0.9, 1.0]),
    lambda o: o.AdamW(0.1, betas=[0.9, 1.5], weight_decay=-1),
    lambda o: o.Adafactor(-1.0, beta_1=2.0, eps=(1.0,)),
    lambda o: o.Muon(-0.1, momentum=2.0),
    lambda o: o.MultiOptimizer([]),
]


@pytest.mark.parametrize("i", range(len(CONSTRUCTOR_ERRORS)))
def test_constructor_arguments(i):
    def case(m, o, u):
        opt = CONSTRUCTOR_ERRORS[i](o)
        hyper = {k: v for k, v in vars(opt).items() if not k.startswith("_")
                 and k not in ("optimizers", "filters")}
        return type(opt).__name__, opt.state, hyper
    check(case)


FILTERS = {
    "ndim": lambda path, g: g.ndim >= 2,
    "list_item": lambda path, g: path == "l.1",
    "none": lambda path, g: False,
    "all": lambda path, g: True,
}


@pytest.mark.parametrize("filt", FILTERS)
def test_multi_optimizer_filters(filt):
    def case(m, o, u):
        opt = o.MultiOptimizer([o.Adam(0.01), o.SGD(0.1, momentum=0.9)], [FILTERS[filt]])
        p = {"w": arr(m, 3, 2), "l": [arr(m, 2, seed=1), arr(m, 4, 4, seed=2)],
             "b": arr(m, 2, seed=3)}
        first = opt.apply_gradients(p, p)
        p = u.tree_merge(p, first, lambda a, b: b)
        return first, opt.apply_gradients(p, p), opt.state, opt.learning_rate
    check(case)


def test_multi_optimizer_state_and_learning_rate():
    def make(o):
        return o.MultiOptimizer([o.Adam(0.01), o.SGD(0.1)], [FILTERS["ndim"]])
    check(lambda m, o, u: (lambda opt: (setattr(opt, "learning_rate", 0.3), opt.state))(
        make(o)))
    check(lambda m, o, u: setattr(make(o), "state", {"states": [{}]}))
    check(lambda m, o, u: setattr(make(o), "state", {}))


SCHEDULES = {
    "exponential": lambda o: o.exponential_decay(0.1, 0.9),
    "exponential_int": lambda o: o.exponential_decay(1, 2),
    "step": lambda o: o.step_decay(0.1, 0.9, 3),
    "cosine": lambda o: o.cosine_decay(0.1, 10),
    "cosine_end": lambda o: o.cosine_decay(0.1, 10, 0.01),
    "cosine_int": lambda o: o.cosine_decay(1, 10, 0),
    "linear": lambda o: o.linear_schedule(0.0, 0.1, 5),
    "linear_int": lambda o: o.linear_schedule(0, 10, 5),
    "joined": lambda o: o.join_schedules(
        [o.linear_schedule(0.0, 0.1, 3), o.exponential_decay(0.1, 0.5),
         o.step_decay(1.0, 0.5, 2)], [3, 6]),
    "joined_unsorted": lambda o: o.join_schedules([o.linear_schedule(0.0, 0.1, 3)] * 3, [6, 3]),
    "joined_one": lambda o: o.join_schedules([o.cosine_decay(0.1, 4)], []),
}
STEPS = {
    "int": lambda m: [0, 4, 20], "float": lambda m: [4.5], "bool": lambda m: [True],
    "uint64": lambda m: [m.array(4, m.uint64), m.array(12, m.uint64)],
    "int32": lambda m: [m.array(4)], "uint32": lambda m: [m.array(7, m.uint32)],
    "float32": lambda m: [m.array(4.5)], "float16": lambda m: [m.array(4, m.float16)],
    "vector": lambda m: [m.array([0, 3, 7, 12])],
}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("steps", STEPS)
def test_schedule_values_and_dtypes(name, steps):
    check(lambda m, o, u: [SCHEDULES[name](o)(s) for s in STEPS[steps](m)])


SCHEDULE_ERRORS = [
    lambda o: o.step_decay(0.1, 0.9, 0),
    lambda o: o.step_decay(0.1, 0.9, 0.5),
    lambda o: o.cosine_decay(0.1, 0),
    lambda o: o.cosine_decay(0.1, -5),
    lambda o: o.linear_schedule(0.0, 1.0, 0),
    lambda o: o.join_schedules([], []),
    lambda o: o.join_schedules([o.linear_schedule(0.0, 0.1, 3)], [3]),
    lambda o: o.join_schedules([o.linear_schedule(0.0, 0.1, 3)] * 3, [3]),
]


@pytest.mark.parametrize("i", range(len(SCHEDULE_ERRORS)))
def test_schedule_arguments(i):
    check(lambda m, o, u: [SCHEDULE_ERRORS[i](o)(s) for s in range(0, 10, 3)])


GRADIENTS = {
    "empty": lambda m: {},
    "empty_list": lambda m: [],
    "empty_nested": lambda m: {"a": {}, "b": []},
    "zeros": lambda m: {"a": m.zeros((3,)), "b": [m.zeros((2, 2))]},
    "mixed": lambda m: {"a": arr(m, 3, dt="float16"), "b": arr(m, 4, seed=1, dt="bfloat16"),
                        "c": arr(m, 2, seed=2)},
    "float16_large": lambda m: {"a": m.full((100,), 1000.0, m.float16)},
    "integers": lambda m: {"a": m.array([1, 2, 3]), "b": arr(m, 2)},
    "python_float": lambda m: {"a": 3.0, "b": arr(m, 2)},
    "bare_array": lambda m: arr(m, 5),
}


@pytest.mark.parametrize("grads", GRADIENTS)
@pytest.mark.parametrize("max_norm", [0.0, 0.5, 2, 1e6])
def test_clip_grad_norm(grads, max_norm):
    check(lambda m, o, u: o.clip_grad_norm(GRADIENTS[grads](m), max_norm))


def test_clip_grad_norm_arguments():
    check(lambda m, o, u: o.clip_grad_norm({"a": m.ones(3)}, -1))
    check(lambda m, o, u: o.clip_grad_norm({"a": m.ones(3, m.float16)},
                                           m.array(0.5, m.float16)))


@pytest.mark.parametrize("name", ["sgd", "adamw", "adafactor", "muon"])
def test_compiled_step_with_schedule(name):
    def case(m, o, u):
        nn = importlib.import_module("mlx.nn" if m is mlx else "ember.nn")
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        model.update(u.tree_map(lambda x: arr(m, *x.shape, seed=x.size) * 0.3,
                                model.parameters()))
        opt = WITH_LR[name](o, o.cosine_decay(0.05, 3))
        x, y = arr(m, 5, 4, seed=1), arr(m, 5, 2, seed=2)
        grad_fn = nn.value_and_grad(model, lambda mod, x, y: ((mod(x) - y) ** 2).mean())
        state = [model.state, opt.state]

        @partial(m.compile, inputs=state, outputs=state)
        def step(x, y):
            loss, g = grad_fn(model, x, y)
            opt.update(model, g)
            return loss

        losses = []
        for _ in range(4):
            losses.append(step(x, y))
            m.eval(state)
        return losses, model.parameters(), opt.state
    check(case)


TREES = {
    "nested": lambda m: {"a": [1, (2, {"b": 3})], "c": {"d": m.ones(2)}, "e": None},
    "list": lambda m: [1, [2, 3], {"x": 4}],
    "empties": lambda m: {"a": [], "b": {}, "c": (), "d": [[]]},
    "namedtuple": lambda m: {"n": NT(1, [2, 3])},
    "ordered": lambda m: OrderedDict(b=1, a=2),
    "leaf": lambda m: 5,
}


@pytest.mark.parametrize("tree", TREES)
def test_flatten_map_reduce(tree):
    t = TREES[tree]

    def is_list(x):
        return isinstance(x, list)

    check(lambda m, o, u: [
        u.tree_flatten(t(m)), u.tree_flatten(t(m), prefix="pre"),
        u.tree_flatten(t(m), is_leaf=is_list), u.tree_flatten(t(m), destination={}),
        u.tree_flatten(t(m), prefix=".p", destination=[("z", 0)]),
        u.tree_map(lambda x: (x, 1), t(m)),
        u.tree_map(lambda x: isinstance(x, list), t(m), is_leaf=is_list),
        u.tree_map_with_path(lambda p, x: (p, x), t(m)),
        u.tree_map_with_path(lambda p, x: p, t(m), path="root", is_leaf=is_list),
        u.tree_reduce(lambda a, b: a + [b], t(m), []),
        u.tree_reduce(lambda a, b: (a, b), t(m)),
        u.tree_unflatten(u.tree_flatten(t(m))),
        u.tree_merge(t(m), None), u.tree_merge({}, t(m)),
    ])
    check(lambda m, o, u: u.tree_flatten(t(m), destination=()))


@pytest.mark.parametrize("a", TREES)
@pytest.mark.parametrize("b", TREES)
def test_two_trees(a, b):
    ta, tb = TREES[a], TREES[b]
    check(lambda m, o, u: u.tree_map(lambda x, y: (x, y), ta(m), tb(m)))
    check(lambda m, o, u: u.tree_map_with_path(lambda p, x, y: (p, x, y), ta(m), tb(m)))
    check(lambda m, o, u: u.tree_merge(ta(m), tb(m)))
    check(lambda m, o, u: u.tree_merge(ta(m), tb(m), lambda x, y: (x, y)))


FLAT = {
    "list": [("0", 1), ("1", 2)], "gap": [("0", 1), ("2", 2)], "from_one": [("1", 1)],
    "mixed": [("0", 1), ("a", 2)], "nested": [("a.0.b", 1), ("a.1.c", 2), ("d", 3)],
    "dict": {"a.0": 1, "a.1": 2}, "empty": [], "empty_dict": {}, "root": [("", 5)],
    "two_roots": [("", 5), ("", 6)], "duplicate": [("a", 1), ("a", 2)],
    "leading_zero": [("01", 1), ("1", 2)], "negative": [("-1", 1), ("0", 2)],
    "unordered": [("1", 1), ("0", 2)], "not_pairs": [1, 2], "short_pair": [("a",)],
    "leaf_then_child": [("a", 1), ("a.b", 2)], "trailing_dot": [("a.", 1)],
    "int_key": [(0, 1)], "underscore": [("1_0", 1), ("0", 2)],
}


@pytest.mark.parametrize("flat", FLAT)
def test_tree_unflatten(flat):
    check(lambda m, o, u: u.tree_unflatten(FLAT[flat]))
