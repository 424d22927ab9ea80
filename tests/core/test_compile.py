"""compile, enable_compile, disable_compile: a compiled function gives what upstream's
gives (values, pytrees, constants, random state, composition with grad and vmap) and
rejects the same arguments."""

import os
import subprocess
import sys

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from ember.core.transforms import compile as C
from tests.core.test_custom import R, _run, _same

CASES = []


def case(f):
    CASES.append(pytest.param(f, id=f.__name__))
    return f


@pytest.fixture(autouse=True)
def _restore_flag():
    before = C._ENABLED[0]
    yield
    C._ENABLED[0] = before


@pytest.mark.parametrize("f", CASES)
def test_parity(f):
    want, werr = _run(f, mlx)
    got, gerr = _run(f, mx)
    if werr is not None:
        assert gerr is not None, f"upstream raised {werr!r}; Ember returned {got!r}"
        assert type(gerr) is type(werr), f"{gerr!r} vs upstream {werr!r}"
        assert str(gerr).split("\n")[0].split(" but ")[0] == \
            str(werr).split("\n")[0].split(" but ")[0]
        return
    assert gerr is None, f"Ember raised {gerr!r}; upstream returned {want!r}"
    _same(got, want)


def _fn(m):
    def f(x, y):
        return m.exp(x) * y + m.sum(x * y, axis=-1, keepdims=True)
    return f


@case
def simple(m):
    f = m.compile(_fn(m))
    x, y = R(m, 2, 3), R(m, 2, 3, seed=1)
    return f(x, y), f(y, x), f(R(m, 4, 3), R(m, 3))


@case
def shapeless(m):
    f = m.compile(_fn(m), shapeless=True)
    return f(R(m, 2, 3), R(m, 2, 3, seed=1)), f(R(m, 5, 3), R(m, 5, 3, seed=1))


@case
def pytrees_in_and_out(m):
    f = m.compile(lambda d, l: {"s": d["a"] + l[0], "t": [d["b"] * l[1], (l[0],)]})
    x = R(m, 3)
    return f({"a": x, "b": x}, [x, R(m, 3, seed=1)])


@case
def constants_and_keywords(m):
    f = m.compile(lambda x, n, name=None, scale=1.0: (x * n * scale, name, n))
    x = R(m, 3)
    return f(x, 3, name="a", scale=2.0), f(x, 2.5), f(x, True, scale=x)


@case
def non_array_results(m):
    x = R(m, 2)
    return m.compile(lambda x: 3.0)(x), m.compile(lambda x: None)(x), \
        m.compile(lambda x: (x, 3))(x)


@case
def no_arguments(m):
    return m.compile(lambda: m.ones((2,)) * 3)()


@case
def grad_of_compiled(m):
    f = m.compile(lambda x, w: m.tanh(x @ w).sum())
    return m.grad(f, argnums=(0, 1))(R(m, 2, 3), R(m, 3, 4, seed=1))


@case
def compiled_grad(m):
    g = m.compile(m.value_and_grad(lambda x: (m.sin(x) ** 2).sum()))
    return g(R(m, 4))


@case
def vmap_of_compiled(m):
    return m.vmap(m.compile(lambda x: m.exp(x).sum()))(R(m, 3, 4))


@case
def random_state_captured(m):
    m.random.seed(7)
    state = [m.random.state]
    f = m.compile(lambda x: x + m.random.uniform(shape=(3,)), inputs=state, outputs=state)
    x = R(m, 3)
    a, b = f(x), f(x)
    c = m.random.uniform(shape=(2,))
    return a, b, c


@case
def random_state_reseeded(m):
    state = [m.random.state]
    f = m.compile(lambda: m.random.normal((4,)), inputs=state, outputs=state)
    m.random.seed(3)
    a = f()
    m.random.seed(3)
    return a, f()


@case
def not_callable(m):
    return m.compile(3)


@case
def shapeless_not_bool(m):
    return m.compile(lambda x: x, shapeless=1)


@case
def bad_argument(m):
    class A:
        pass
    return m.compile(lambda x, a: x)(R(m, 2), A())


@case
def bad_keyword_argument(m):
    return m.compile(lambda x, a=None: x)(R(m, 2), a=[1 + 2j])


@case
def numpy_argument(m):
    return m.compile(lambda x, a: x)(R(m, 2), np.ones(2))


@case
def too_many_arguments(m):
    return m.compile(lambda x: x)(R(m, 2), R(m, 2))


@case
def disabled_gives_the_same(m):
    m.disable_compile()
    try:
        return m.compile(_fn(m))(R(m, 2, 3), R(m, 3))
    finally:
        m.enable_compile()


@case
def disabled_still_checks_arguments(m):
    m.disable_compile()
    try:
        return m.compile(lambda x, a: x)(R(m, 2), {"k": object()})
    finally:
        m.enable_compile()


def test_toggles_return_none_and_take_nothing():
    assert mx.disable_compile() is None and C._ENABLED[0] is False
    assert mx.enable_compile() is None and C._ENABLED[0] is True
    with pytest.raises(TypeError):
        mx.enable_compile(1)
    with pytest.raises(TypeError):
        mlx.enable_compile(1)


def test_compiled_keeps_the_name():
    def step(x):
        return x

    for m in (mx, mlx):
        assert m.compile(step).__name__ == "step"


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(code, value):
    env = dict(os.environ)
    env.pop("MLX_DISABLE_COMPILE", None)
    if value is not None:
        env["MLX_DISABLE_COMPILE"] = value
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return out.stdout.split()


@pytest.mark.parametrize("value", ["1", "0", "", None])
def test_environment_disables(value):
    # upstream evaluates inside a compiled function only when compilation is disabled:
    # the variable being set at all (even to "0" or "") disables it
    up = _python("import mlx.core as mx\ntry:\n mx.compile(lambda x: x.item())(mx.ones(()))"
                 "\n print(False)\nexcept ValueError:\n print(True)", value)
    ours = _python("import ember.core as mx; from ember.core.transforms import compile as C; "
                   "a = C._ENABLED[0]; mx.enable_compile(); print(a, C._ENABLED[0])", value)
    assert ours == [up[0], "True"]
