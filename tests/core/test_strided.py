"""as_strided and depends beyond the op database: argument rules, bounds, grads."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.core.test_opdb import test_grads_match_finite_differences as _fd_check
from tests.helpers import assert_same
from tests.opdb import Op


def _raises_like(f):
    with pytest.raises(Exception) as info:
        mlx.eval(f(mlx))
    with pytest.raises(info.type):
        mx.eval(f(mx))


@pytest.mark.parametrize("call", [
    lambda m: m.as_strided(m.arange(12), (2.0,), (1,)),
    lambda m: m.as_strided(m.arange(12), (-2,), (1,)),
    lambda m: m.as_strided(m.arange(12), (3,), (1,), -1),
    lambda m: m.as_strided(np.arange(3), (3,), (1,)),
])
def test_as_strided_errors(call):
    _raises_like(call)


def test_as_strided_keyword_and_extra_strides():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    for kw in ({"shape": [2], "strides": [3], "offset": 1}, {"shape": (2,), "strides": (1, 2)},
               {"shape": None, "strides": (1, 1)}, {"offset": 3, "shape": (3,)}):
        assert_same(mx.as_strided(mx.array(a), **kw), mlx.as_strided(mlx.array(a), **kw))


def test_as_strided_out_of_bounds_raises():
    # upstream reads past the buffer (undefined values); Ember refuses
    with pytest.raises(ValueError):
        mx.as_strided(mx.arange(12), (20,), (1,))
    with pytest.raises(ValueError):
        mx.as_strided(mx.arange(12), (2, 2), (1,))


def test_as_strided_overlapping_grad():
    f = lambda m: m.grad(lambda x: (m.as_strided(x, (3, 3), (1, 1)) *  # noqa: E731
                                    m.arange(9).reshape(3, 3)).sum())(m.ones(5))
    assert_same(f(mx), f(mlx))


def test_as_strided_vmap_and_grad_of_vmap():
    x = mx.arange(8.0).reshape(2, 4)
    got = mx.vmap(lambda r: mx.as_strided(r, (2, 2), (1, 1)))(x)
    want = mx.stack([mx.as_strided(r, (2, 2), (1, 1)) for r in x])
    assert_same(got, mlx.array(np.array(want)))


def test_depends_forms():
    for mod in (mx, mlx):
        a, b = mod.array([1.0, 2.0]), mod.array([3.0])
        assert isinstance(mod.depends(a, b), mod.array)
        assert isinstance(mod.depends([a], [b]), list)
        assert len(mod.depends((a, a * 2), b)) == 2
    _raises_like(lambda m: m.depends(m.ones(2), 3))
    _raises_like(lambda m: m.depends(3, m.ones(2)))


def test_depends_grads():
    f = lambda m: m.grad(lambda x, y: m.depends(x * 2, y * y).sum(),  # noqa: E731
                         argnums=(0, 1))(m.ones(2), m.ones(1))
    assert_same(list(f(mx)), list(f(mlx)))
    rng = np.random.default_rng(0)
    _fd_check(Op("depends", lambda m, x, y: m.depends([x * y, y], [x]),
                 lambda r, dt: [(rng.standard_normal(3), rng.standard_normal(3))]))
    out = mx.vmap(lambda x, y: mx.depends(x * 2, y))(mx.ones((2, 3)), mx.ones(2))
    assert_same(out, mlx.full((2, 3), 2.0))
