"""Sequential against upstream mlx.nn."""

import mlx.core as mlx
import mlx.nn as mnn
import pytest

import ember.core as mx
import ember.nn as nn
from tests.nn.parity import call_raises_like, check_layer, param_specs, rand


def _make(core, lib, kind):
    """The same Sequential built from `core`/`lib` (either framework)."""
    core.random.seed(1)
    relu = lambda x: core.maximum(x, 0)  # noqa: E731
    if kind == "mlp":
        return lib.Sequential(lib.Linear(4, 8), relu, lib.Linear(8, 3))
    if kind == "nested":
        return lib.Sequential(lib.Sequential(lib.Linear(4, 4), relu), lib.Identity(),
                              lib.Sequential(), lib.Linear(4, 2, bias=False))
    if kind == "empty":
        return lib.Sequential()
    if kind == "functions":
        return lib.Sequential(relu, core.tanh)
    raise ValueError(kind)


KINDS = ["mlp", "nested", "empty", "functions"]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("kind", KINDS)
def test_sequential_parity(kind, dtype):
    e, m = _make(mx, nn, kind), _make(mlx, mnn, kind)
    rtol = 6e-2 if dtype == "bfloat16" else None
    check_layer(e, m, rand((5, 4)), dtype=dtype, rtol=rtol)


@pytest.mark.parametrize("kind", KINDS)
def test_sequential_structure(kind):
    e, m = _make(mx, nn, kind), _make(mlx, mnn, kind)
    assert param_specs(e) == param_specs(m)
    assert repr(e) == repr(m)
    assert [k for k, _ in e.named_modules()] == [k for k, _ in m.named_modules()]
    assert isinstance(e.layers, list) and len(e.layers) == len(m.layers)


def test_sequential_layers_are_live():
    # the layer list is the module's own: appending a layer changes the model
    e, m = _make(mx, nn, "mlp"), _make(mlx, mnn, "mlp")
    e.layers.append(nn.Linear(3, 2))
    m.layers.append(mnn.Linear(3, 2))
    check_layer(e, m, rand((2, 4)))


def test_sequential_error_propagates():
    e, m = _make(mx, nn, "mlp"), _make(mlx, mnn, "mlp")
    call_raises_like(e, m, (2, 5))
