"""The fused optimizer update (one OptimizerUpdate node per dtype) against the
parameter-by-parameter path (`FUSED = False`): the same bits, step after step, and the
fused path taken exactly where it should be. (tests/optimizers/test_optimizers.py
compares the default, fused, path with upstream MLX.)"""

from functools import partial

import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
import ember.optimizers as eopt
from ember.core.primitives.optim import OptimizerUpdate
from ember.optimizers import optimizers as eopt_module
from ember.utils import tree_flatten, tree_map

STEPS = 10
DTYPES = ["float32", "float16", "bfloat16", "float64"]

VARIANTS = {
    "sgd": lambda: eopt.SGD(0.1),
    "sgd_wd": lambda: eopt.SGD(0.1, weight_decay=0.1),
    "sgd_momentum": lambda: eopt.SGD(0.1, momentum=0.9),
    "sgd_momentum_wd": lambda: eopt.SGD(0.1, momentum=0.9, weight_decay=0.01),
    "sgd_dampening": lambda: eopt.SGD(0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
    "sgd_nesterov": lambda: eopt.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "sgd_negative_momentum": lambda: eopt.SGD(0.1, momentum=-0.5),
    "sgd_int_hyper": lambda: eopt.SGD(1, momentum=1, weight_decay=1),
    "rmsprop": lambda: eopt.RMSprop(0.01),
    "rmsprop_args": lambda: eopt.RMSprop(0.01, alpha=0.9, eps=1e-5),
    "adagrad": lambda: eopt.Adagrad(0.1, eps=1e-3),
    "adadelta": lambda: eopt.AdaDelta(0.5, rho=0.5, eps=1e-4),
    "adam": lambda: eopt.Adam(1e-2),
    "adam_bias_correction": lambda: eopt.Adam(1e-2, betas=(0.8, 0.95), eps=1e-6,
                                              bias_correction=True),
    "adamw": lambda: eopt.AdamW(1e-2),
    "adamw_bias_correction": lambda: eopt.AdamW(1e-2, betas=[0.8, 0.9], eps=1e-5,
                                                weight_decay=0.1, bias_correction=True),
    "adamw_no_decay": lambda: eopt.AdamW(1e-2, weight_decay=0.0),
    "adamax": lambda: eopt.Adamax(1e-2, betas=[0.5, 0.9], eps=1e-4),
    "lion": lambda: eopt.Lion(1e-3),
    "lion_decay": lambda: eopt.Lion(1e-3, betas=[0.8, 0.9], weight_decay=0.1),
    "lion_negative_decay": lambda: eopt.Lion(1e-3, weight_decay=-0.1),
    "adamw_schedule": lambda: eopt.AdamW(eopt.cosine_decay(1e-2, 8, 1e-3),
                                         bias_correction=True),
    "sgd_schedule": lambda: eopt.SGD(eopt.exponential_decay(0.1, 0.9), momentum=0.9),
}


def np_tree(seed, big=True):
    """Nested dicts, a list and a tuple; 0-d, empty, 1-d to 4-d leaves."""
    r = np.random.default_rng(seed)

    def a(*shape):
        return r.standard_normal(shape).astype(np.float32)

    t = {"w": a(4, 3), "b": a(3), "s": a(), "e": a(0, 3),
         "deep": {"c": a(2, 3, 4), "conv": a(3, 2, 2, 4)}, "seq": [a(5), (a(3, 2), a(7))]}
    if big:
        t["big"] = a(33, 65)
    return t


def tree(seed, dtype, big=True):
    return tree_map(lambda x: mx.array(x).astype(getattr(mx, dtype)), np_tree(seed, big))


def np_leaves(tree):
    """[(path, dtype name, numpy)] of a tree (bfloat16 exactly as float32)."""
    return [(k, str(v.dtype), np.array(v.astype(mx.float32) if v.dtype == mx.bfloat16 else v))
            for k, v in sorted(tree_flatten(tree), key=lambda kv: kv[0])]


def assert_identical(e, f, msg, rtol=None):
    """Equal trees: the same bits, or within `rtol` when given."""
    le, lf = np_leaves(e), np_leaves(f)
    assert [(k, d) for k, d, _ in le] == [(k, d) for k, d, _ in lf], msg
    for (k, _, x), (_, _, y) in zip(le, lf):
        assert x.shape == y.shape, f"{msg}: {k}"
        if rtol is None:
            assert np.array_equal(x, y, equal_nan=True), f"{msg}: {k}"
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol, err_msg=f"{msg}: {k}")


def graph(outs):
    """(number of unevaluated nodes, number of OptimizerUpdate nodes) behind `outs`."""
    seen, n, fused = set(), 0, 0
    stack = [o for o in outs if o._data is None]
    while stack:
        a = stack.pop()
        key = id(a._siblings) if a._siblings is not None else id(a)
        if a._data is not None or key in seen:
            continue
        seen.add(key)
        n += 1
        fused += type(a._prim) is OptimizerUpdate
        stack.extend(a._inputs)
    return n, fused


def arrays(*trees):
    return [v for t in trees for _, v in tree_flatten(t)]


def steps(make, dtype_of, fused, monkeypatch, steps=STEPS, grads=None):
    """Per step: (params, state) after stepping a fresh optimizer; `dtype_of(seed)` gives
    the trees."""
    monkeypatch.setattr(eopt_module, "FUSED", fused)
    opt = make()
    params = dtype_of(0)
    out = []
    for i in range(steps):
        g = grads(i + 1) if grads else dtype_of(i + 1)
        params = opt.apply_gradients(g, params)
        mx.eval(params, opt.state)
        out.append((params, dict(opt.state)))
    monkeypatch.setattr(eopt_module, "FUSED", True)
    return out


def assert_paths_agree(make, dtype_of, monkeypatch, msg, grads=None, rtol=None):
    fast = steps(make, dtype_of, True, monkeypatch, grads=grads)
    slow = steps(make, dtype_of, False, monkeypatch, grads=grads)
    for i, ((pf, sf), (ps, ss)) in enumerate(zip(fast, slow)):
        assert_identical(pf, ps, f"{msg} step {i} params", rtol)
        assert_identical(sf, ss, f"{msg} step {i} state", rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fused_equals_per_parameter(name, dtype, monkeypatch):
    assert_paths_agree(VARIANTS[name], partial(tree, dtype=dtype), monkeypatch,
                       f"{name} {dtype}")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_chunked_on_cpu(dtype, monkeypatch):
    """The CPU kernel runs the rule chunk by chunk: small chunks give the same bits."""
    from ember.core._backend import kernels_optim
    monkeypatch.setattr(kernels_optim, "CPU_CHUNK", 10)
    for name in ["adamw_bias_correction", "sgd_nesterov", "adadelta", "lion_decay"]:
        assert_paths_agree(VARIANTS[name], partial(tree, dtype=dtype), monkeypatch, name)


def _count(make, params, grads):
    opt = make()
    opt.init(params)
    mx.eval(params, grads, opt.state)
    new = opt.apply_gradients(grads, params)
    return graph(arrays(new, opt.state))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_one_node_per_step(name):
    """One OptimizerUpdate per step, and a node count that does not grow with the number
    of parameters (only the step's scalars come on top)."""
    small = _count(VARIANTS[name], tree(0, "float32", big=False), tree(1, "float32", False))
    big = {"a": tree(0, "float32"), "b": [tree(2, "float32"), tree(3, "float32")]}
    big_g = {"a": tree(1, "float32"), "b": [tree(4, "float32"), tree(5, "float32")]}
    large = _count(VARIANTS[name], big, big_g)
    assert small[1] == large[1] == 1
    assert small[0] == large[0] <= 30, (small, large)


def test_one_node_per_dtype(monkeypatch):
    def mixed(seed):
        return {"f32": tree(seed, "float32"), "bf16": tree(seed, "bfloat16"),
                "f16": [tree(seed, "float16", big=False)]}

    assert _count(VARIANTS["adamw_bias_correction"], mixed(0), mixed(1))[1] == 3
    for name in ["adamw_bias_correction", "sgd_nesterov", "lion_decay"]:
        assert_paths_agree(VARIANTS[name], mixed, monkeypatch, f"{name} mixed")


def test_model_update_nodes():
    """`update(model, grads)` on an nn model: one fused node, the same result as the
    per-parameter path."""
    def run():
        mx.random.seed(3)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3))
        opt = eopt.AdamW(1e-2, bias_correction=True)
        opt.init(model.trainable_parameters())
        mx.eval(opt.state)
        x = mx.random.normal((6, 4))
        step = nn.value_and_grad(model, lambda x: mx.mean(mx.square(model(x))))
        counts = []
        for _ in range(3):
            _, g = step(x)
            mx.eval(g)
            opt.update(model, g)
            counts.append(graph(arrays(model.parameters(), opt.state)))
            mx.eval(model.parameters(), opt.state)
        return model.parameters(), opt.state, counts

    p1, s1, counts = run()
    assert all(f == 1 and n <= 20 for n, f in counts), counts
    eopt_module.FUSED = False
    try:
        p2, s2, counts = run()
    finally:
        eopt_module.FUSED = True
    assert all(f == 0 and n > 50 for n, f in counts), counts
    assert_identical(p1, p2, "params")
    assert_identical(s1, s2, "state")


def test_fallback_leaves(monkeypatch):
    """Leaves that need promotion or broadcasting go parameter by parameter, the others
    still fused, with the same results."""
    def params(seed):
        t = tree(seed, "bfloat16", big=False)
        t["wide"] = mx.array(np_tree(seed)["w"])  # float32
        return t

    def grads(seed):
        g = params(seed)
        g["b"] = g["b"].astype(mx.float32)  # float32 gradient of a bfloat16 parameter
        g["wide"] = g["wide"][0]  # a gradient that broadcasts
        return g

    for name in ["adamw_bias_correction", "sgd_momentum_wd", "adagrad"]:
        assert_paths_agree(VARIANTS[name], params, monkeypatch, name, grads=grads)
        n, fused = _count(VARIANTS[name], params(0), grads(1))
        assert fused == 1


def test_subclasses():
    class Overridden(eopt.Adam):
        def apply_single(self, gradient, parameter, state):
            return super().apply_single(gradient, parameter, state) * 2

    class Plain(eopt.AdamW):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.note = "unchanged rule"

    class OwnScalars(eopt.Lion):
        def _step_scalars(self, dtype):
            lr, decay = super()._step_scalars(dtype)
            return lr * 0.5, decay

    p, g = tree(0, "float32"), tree(1, "float32")
    assert _count(lambda: Overridden(1e-2), p, g)[1] == 0
    assert _count(lambda: Plain(1e-2), p, g)[1] == 1
    assert _count(lambda: OwnScalars(1e-2), p, g)[1] == 0
    instance = eopt.SGD(0.1)
    instance.apply_single = lambda g, p, s: p
    instance.init(p)
    new = instance.apply_gradients(g, p)
    assert graph(arrays(new))[1] == 0
    assert_identical(new, p, "instance override")
    # the overridden rule is the one applied
    a, b = Overridden(1e-2), eopt.Adam(1e-2)
    ra, rb = a.apply_gradients(g, p), b.apply_gradients(g, p)
    assert_identical(ra, tree_map(lambda x: x * 2, rb), "overridden")


def test_non_number_hyperparameters(monkeypatch):
    """Hyperparameters that are arrays: parameter by parameter."""
    makes = [lambda: eopt.SGD(0.1, momentum=mx.array(0.9)),
             lambda: eopt.Adam(1e-2, betas=[mx.array(0.9), 0.999]),
             lambda: eopt.Lion(1e-3, betas=mx.array([0.9, 0.99]))]
    for make in makes:
        assert _count(make, tree(0, "float32"), tree(1, "float32"))[1] == 0
        assert_paths_agree(make, partial(tree, dtype="float32"), monkeypatch, "hyper")


def test_learning_rate_dtypes(monkeypatch):
    """A learning rate set in another dtype than the parameters'."""
    def make():
        opt = eopt.AdamW(1e-2, bias_correction=True)
        opt.learning_rate = mx.array(0.25, mx.bfloat16)
        return opt

    for dtype in ["float32", "float16"]:
        assert_paths_agree(make, partial(tree, dtype=dtype), monkeypatch, dtype)


def test_missing_state_slot():
    """A state without the slots the rule reads fails as the per-parameter path does."""
    for fused in (True, False):
        eopt_module.FUSED = fused
        try:
            opt = eopt.Adam(1e-2)
            p, g = tree(0, "float32"), tree(1, "float32")
            opt.init(p)
            del opt.state["w"]["m"]
            with pytest.raises(KeyError):
                opt.apply_gradients(g, p)
        finally:
            eopt_module.FUSED = True


def test_compiled_train_step():
    """A compiled step (optimizer state as inputs and outputs) equals the plain one."""
    def run(compiled):
        mx.random.seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = eopt.AdamW(1e-2, bias_correction=True)
        opt.init(model.trainable_parameters())
        loss_and_grad = nn.value_and_grad(model, lambda x: mx.mean(mx.square(model(x))))
        state = [model.state, opt.state]

        def step(x):
            loss, g = loss_and_grad(x)
            opt.update(model, g)
            return loss

        if compiled:
            step = mx.compile(step, inputs=state, outputs=state,
                              shapeless=compiled == "shapeless")
        x = mx.random.normal((6, 4), key=mx.random.key(1))
        for _ in range(4):
            mx.eval(step(x), state)
        return model.parameters(), opt.state

    p, s = run(False)
    for mode in (True, "shapeless"):
        pc, sc = run(mode)
        assert_identical(pc, p, f"compiled {mode} params")
        assert_identical(sc, s, f"compiled {mode} state")


def test_transforms_take_the_per_parameter_path():
    """The fused node has no derivative or vmap rules: under grad and vmap the update
    goes parameter by parameter, and the results match upstream's."""
    import mlx.core as mlx
    import mlx.optimizers as mopt
    p, g = np.array([1.0, 2.0, 3.0], np.float32), np.array([0.5, -0.5, 0.25], np.float32)

    def stepped(m, o):
        def f(w):
            opt = o.AdamW(0.1)
            return (opt.apply_gradients({"w": w * m.array(g)}, {"w": w})["w"] ** 2).sum()
        return f
    assert np.allclose(np.array(mx.grad(stepped(mx, eopt))(mx.array(p))),
                       np.array(mlx.grad(stepped(mlx, mopt))(mlx.array(p))), rtol=1e-5)
    assert np.allclose(np.array(mx.vmap(stepped(mx, eopt))(mx.array(np.stack([p, 2 * p])))),
                       np.array(mlx.vmap(stepped(mlx, mopt))(mlx.array(np.stack([p, 2 * p])))),
                       rtol=1e-5)


ADAMS = [n for n in sorted(VARIANTS) if n.startswith("adam") and not n.startswith("adamax")]


def _count_generated_adam(monkeypatch):
    from ember.core._backend import triton_optim
    real, ran = triton_optim.adam, []

    def counted(*args):
        out = real(*args)
        ran.append(out is not None)
        return out
    monkeypatch.setattr(triton_optim, "adam", counted)
    return ran


@pytest.mark.parametrize("name", ADAMS)
def test_generated_adam_kernel_equals_per_parameter(name, monkeypatch):
    """The one-launch Triton kernel of Adam/AdamW (float32), here through Triton's
    interpreter on the CPU: it rounds every op as CUDA does, and as the per-parameter path
    does on the CPU (its square root correctly rounded), so the bits agree."""
    pytest.importorskip("triton")
    from ember.core._backend import triton_optim
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(triton_optim, "PER_KERNEL", 4)  # the tree's leaves take 3 kernels
    ran = _count_generated_adam(monkeypatch)
    with mx.stream(mx.cpu):
        assert_paths_agree(VARIANTS[name], partial(tree, dtype="float32"), monkeypatch, name)
    assert ran and all(ran)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ADAMS)
def test_gpu_generated_adam_kernel_equals_per_parameter_bit_for_bit(name, monkeypatch):
    ran = _count_generated_adam(monkeypatch)
    with mx.stream(mx.gpu):
        assert_paths_agree(VARIANTS[name], partial(tree, dtype="float32"), monkeypatch, name)
    assert ran and all(ran)
