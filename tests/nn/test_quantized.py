"""QuantizedLinear, QuantizedEmbedding, QQLinear and nn.quantize against upstream mlx.nn."""

import re

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.utils import tree_flatten
from tests.nn.parity import FLOATS, E, M, assert_tree_same, both, names, raises_like, rand, sync

# (group_size, bits, mode) combinations upstream's CPU backend supports
CONFIGS = [
    (None, None, "affine"), (32, 2, "affine"), (64, 3, "affine"), (128, 5, "affine"),
    (64, 6, "affine"), (32, 8, "affine"), (None, None, "mxfp4"), (None, None, "nvfp4"),
    (None, None, "mxfp8"),
]
# quantized matmuls accumulate differently from upstream's (whose half-precision sums are
# rounded more often); values here are O(1), so these still catch any real mistake
TOL = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 1e-1}


def grads_wrt_input(e_layer, m_layer, x, dtype="float32", call=lambda layer, x: layer(x)):
    ge = mx.grad(lambda x: (call(e_layer, x) ** 2).sum())(E(x, dtype))
    gm = mlx.grad(lambda x: (call(m_layer, x) ** 2).sum())(M(x, dtype))
    return ge, gm


# --- QuantizedLinear -----------------------------------------------------------------

@pytest.mark.parametrize("gs,bits,mode", CONFIGS)
@pytest.mark.parametrize("bias", [True, False])
def test_quantized_linear_init_matches(gs, bits, mode, bias):
    # the same seed gives bit-identical packed weights, scales and biases
    e, m = both(lambda nn: nn.QuantizedLinear(128, 16, bias, gs, bits, mode))
    assert_tree_same(e.parameters(), m.parameters(), 0)
    assert names(e.trainable_parameters()) == names(m.trainable_parameters()) == []
    assert (e.group_size, e.bits, e.mode) == (m.group_size, m.bits, m.mode)
    assert repr(e) == repr(m)


@pytest.mark.parametrize("gs,bits,mode", CONFIGS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_quantized_linear_forward_and_grad(gs, bits, mode, dtype):
    e, m = both(lambda nn: nn.QuantizedLinear(128, 24, True, gs, bits, mode), s=1)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    e.bias = E(rand((24,), 5), dtype)
    sync(e, m)
    x = rand((3, 5, 128), 2)
    assert_tree_same(e(E(x, dtype)), m(M(x, dtype)), rtol=TOL[dtype], msg="forward")
    ge, gm = grads_wrt_input(e, m, x, dtype)
    assert_tree_same(ge, gm, rtol=TOL[dtype], msg="grad x")


def loss(model, x):
    return (model(x) ** 2).mean()


@pytest.mark.parametrize("gs,bits,mode", CONFIGS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", FLOATS)
def test_quantized_linear_from_linear(gs, bits, mode, bias, dtype):
    e, m = both(lambda nn: nn.Linear(256, 32, bias=bias), s=3)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    qe = nn.QuantizedLinear.from_linear(e, gs, bits, mode)
    qm = mnn.QuantizedLinear.from_linear(m, gs, bits, mode)
    assert_tree_same(qe.parameters(), qm.parameters(), 0, msg="packed")
    # the copied bias stays trainable, everything else is frozen
    assert names(qe.trainable_parameters()) == names(qm.trainable_parameters())
    assert repr(qe) == repr(qm)
    x = rand((4, 256), 4)
    assert_tree_same(qe(E(x, dtype)), qm(M(x, dtype)), rtol=TOL[dtype])
    if not bias:  # nothing trainable: both refuse to differentiate
        raises_like(lambda: nn.value_and_grad(qe, loss)(qe, E(x, dtype)),
                    lambda: mnn.value_and_grad(qm, loss)(qm, M(x, dtype)), ValueError)
        return
    ve, ge = nn.value_and_grad(qe, loss)(qe, E(x, dtype))
    vm, gm = mnn.value_and_grad(qm, loss)(qm, M(x, dtype))
    assert_tree_same(ve, vm, rtol=TOL[dtype])
    assert_tree_same(ge, gm, rtol=TOL[dtype])


def test_quantized_linear_freeze_and_unfreeze():
    e, m = both(lambda nn: nn.QuantizedLinear(64, 8))
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())
    e.unfreeze()
    m.unfreeze()
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())


def test_quantized_linear_no_biases_attribute_in_fp_modes():
    e, m = both(lambda nn: nn.QuantizedLinear(64, 8, mode="mxfp4"))
    assert e.biases is None and m.biases is None
    assert "biases" not in e.parameters()


@pytest.mark.parametrize("kwargs", [dict(mode="int4"), dict(mode="mxfp4", group_size=16),
                                    dict(bits=7), dict(group_size=48)])
def test_quantized_linear_errors(kwargs):
    with pytest.raises(Exception) as m_err:
        mnn.QuantizedLinear(96, 8, **kwargs)
    with pytest.raises(type(m_err.value)) as e_err:
        nn.QuantizedLinear(96, 8, **kwargs)
    if type(m_err.value) is ValueError and "Invalid quantization mode" in str(m_err.value):
        assert str(e_err.value) == str(m_err.value)


# --- QuantizedEmbedding --------------------------------------------------------------

def dequantized(layer, fw):
    return np.array(fw.dequantize(layer.weight, layer.scales, layer.get("biases"),
                                  layer.group_size, layer.bits,
                                  mode=layer.mode).astype(fw.float32))


@pytest.mark.parametrize("gs,bits,mode", CONFIGS)
def test_quantized_embedding_init_forward(gs, bits, mode):
    e, m = both(lambda nn: nn.QuantizedEmbedding(10, 128, gs, bits, mode), s=7)
    # random.normal may differ from upstream's in the last bit, so a rare code can round
    # the other way: compare the tables they encode, then continue from equal parameters
    assert [(k, v.shape, str(v.dtype)[-7:]) for k, v in tree_flatten(e.parameters())] == \
        [(k, v.shape, str(v.dtype)[-7:]) for k, v in tree_flatten(m.parameters())]
    assert np.mean(np.isclose(dequantized(e, mx), dequantized(m, mlx), 1e-5, 1e-6)) > 0.99
    assert names(e.trainable_parameters()) == names(m.trainable_parameters()) == []
    assert repr(e) == repr(m)
    sync(e, m)
    ids = np.array([[0, 3, 9], [9, 1, 1]], dtype=np.int32)
    assert_tree_same(e(mx.array(ids)), m(mlx.array(ids)), 0)
    x = rand((2, 3, 128), 8)
    assert_tree_same(e.as_linear(E(x)), m.as_linear(M(x)), rtol=TOL["float32"])
    ge, gm = grads_wrt_input(e, m, x, call=lambda layer, x: layer.as_linear(x))
    assert_tree_same(ge, gm, rtol=TOL["float32"])


@pytest.mark.parametrize("gs,bits,mode", CONFIGS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_quantized_embedding_from_embedding(gs, bits, mode, dtype):
    e, m = both(lambda nn: nn.Embedding(12, 128), s=9)
    sync(e, m)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    qe = nn.QuantizedEmbedding.from_embedding(e, gs, bits, mode)
    qm = mnn.QuantizedEmbedding.from_embedding(m, gs, bits, mode)
    assert_tree_same(qe.parameters(), qm.parameters(), 0)
    assert names(qe.trainable_parameters()) == names(qm.trainable_parameters()) == []
    assert repr(qe) == repr(qm)
    ids = np.ascontiguousarray(np.arange(12, dtype=np.int32)[::-1].reshape(3, 4))
    assert_tree_same(qe(mx.array(ids)), qm(mlx.array(ids)), 0)
    x = rand((5, 128), 10)
    assert_tree_same(qe.as_linear(E(x, dtype)), qm.as_linear(M(x, dtype)), rtol=TOL[dtype])


def test_quantized_embedding_errors():
    raises_like(lambda: nn.QuantizedEmbedding(4, 64, mode="bad"),
                lambda: mnn.QuantizedEmbedding(4, 64, mode="bad"), ValueError, same_message=True)


# --- QQLinear ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["nvfp4", "mxfp8"])
def test_qqlinear_train_eval_cycle(mode):
    e, m = both(lambda nn: nn.QQLinear(64, 16, mode=mode), s=11)
    assert_tree_same(e.parameters(), m.parameters(), 0)
    assert repr(e) == repr(m)
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())
    e.eval()
    m.eval()
    assert_tree_same(e.parameters(), m.parameters(), 0, msg="quantized")
    assert repr(e) == repr(m)
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())
    e.eval()  # quantizing twice is a no-op
    m.eval()
    assert_tree_same(e.parameters(), m.parameters(), 0, msg="quantized twice")
    e.train()
    m.train()
    assert_tree_same(e.parameters(), m.parameters(), 0, msg="dequantized")
    assert "scales" not in e and "scales" not in m


def fake_quant(a, fw, mode):
    """a quantized and dequantized again along its last axis, in float32."""
    return fw.dequantize(*fw.quantize(a, mode=mode), mode=mode).astype(fw.float32)


@pytest.mark.parametrize("mode", ["nvfp4", "mxfp8"])
def test_qqlinear_call(mode):
    # upstream's CPU qqmm is "NYI for the general case"; where it raises, Ember's result
    # must equal upstream's own quantize -> dequantize -> matmul of input and weight
    e, m = both(lambda nn: nn.QQLinear(64, 16, mode=mode), s=12)
    x = rand((2, 3, 64), 1)
    for train in (True, False):
        e.train(train)
        m.train(train)
        ye = e(E(x))
        try:
            ym = m(M(x))
            mlx.eval(ym)
        except RuntimeError as err:
            assert "NYI" in str(err)
            w = m.weight if train else mlx.dequantize(m.weight, m.scales, mode=mode)
            ym = fake_quant(M(x), mlx, mode) @ fake_quant(w, mlx, mode).T
        assert tuple(ye.shape) == tuple(ym.shape)
        np.testing.assert_allclose(np.array(ye.astype(mx.float32)), np.array(ym),
                                   rtol=2e-2, atol=2e-2)


def test_qqlinear_from_linear():
    e, m = both(lambda nn: nn.Linear(64, 16, bias=False), s=13)
    e.eval()
    m.eval()
    qe = nn.QQLinear.from_linear(e, mode="mxfp8")
    qm = mnn.QQLinear.from_linear(m, mode="mxfp8")
    assert qe.training is qm.training is False
    assert_tree_same(qe.parameters(), qm.parameters(), 0)
    assert repr(qe) == repr(qm)
    eb, mb = both(lambda nn: nn.Linear(64, 16), s=13)
    raises_like(lambda: nn.QQLinear.from_linear(eb), lambda: mnn.QQLinear.from_linear(mb),
                NotImplementedError)


def test_qqlinear_bad_mode():
    raises_like(lambda: nn.QQLinear(64, 16, mode="int8"),
                lambda: mnn.QQLinear(64, 16, mode="int8"), ValueError, same_message=True)


# --- quantize ------------------------------------------------------------------------

def make_model(nn):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(16, 128)
            self.layers = [nn.Linear(128, 256), nn.Linear(256, 128, bias=False)]
            self.norm = nn.LayerNorm(128)
            self.head = {"out": nn.Linear(128, 32)}

        def __call__(self, ids):
            x = self.emb(ids)
            for layer in self.layers:
                x = layer(x)
            x = self.norm(x)
            return self.head["out"](x), self.emb.as_linear(x)

    return Model()


def check_outputs(e_out, m_out, mode, dtype):
    # fp modes dequantize embeddings to bfloat16, which then flows through the model
    tol = TOL["bfloat16" if mode != "affine" else dtype]
    for a, b in zip(e_out, m_out):
        assert_tree_same(a, b, rtol=tol)


def quantized_pair(dtype="float32", **kwargs):
    e, m = both(make_model, s=21)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    sync(e, m)
    nn.quantize(e, **kwargs)
    mnn.quantize(m, **kwargs)
    return e, m


@pytest.mark.parametrize("gs,bits,mode", CONFIGS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_quantize_model(gs, bits, mode, dtype):
    e, m = quantized_pair(dtype, group_size=gs, bits=bits, mode=mode)
    assert_tree_same(e.parameters(), m.parameters(), 0, msg="packed")
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())
    assert repr(e) == repr(m)
    ids = np.array([[1, 5, 15], [0, 2, 2]], dtype=np.int32)
    check_outputs(e(mx.array(ids)), m(mlx.array(ids)), mode, dtype)


def test_quantize_class_predicate_bool_and_dict():
    # only the list's layers, the first with its own settings
    def pred(path, module):
        if path == "layers.0":
            return {"group_size": 32, "bits": 8, "quantize_input": False}
        return path.startswith("layers")

    e, m = quantized_pair(group_size=64, bits=2, class_predicate=pred)
    assert type(e.emb).__name__ == type(m.emb).__name__ == "Embedding"
    assert type(e.head["out"]).__name__ == "Linear"
    assert (e.layers[0].bits, e.layers[1].bits) == (m.layers[0].bits, m.layers[1].bits)
    assert_tree_same(e.parameters(), m.parameters(), 0)
    ids = np.array([[3, 4]], dtype=np.int32)
    check_outputs(e(mx.array(ids)), m(mlx.array(ids)), "affine", "float32")


def test_quantize_predicate_errors():
    for pred in (lambda p, mod: 1, lambda p, mod: p == "norm"):
        e, m = both(make_model)
        with pytest.raises(ValueError) as m_err:
            mnn.quantize(m, class_predicate=pred)
        with pytest.raises(ValueError) as e_err:
            nn.quantize(e, class_predicate=pred)
        # the type name differs between frameworks, the rest must not
        msg = re.sub(r"<class '[^']*'>", "T", str(m_err.value))
        assert re.sub(r"<class '[^']*'>", "T", str(e_err.value)) == msg


def test_quantize_input_errors_and_mode_errors():
    e, m = both(make_model)
    raises_like(lambda: nn.quantize(e, quantize_input=True),
                lambda: mnn.quantize(m, quantize_input=True), ValueError, same_message=True)
    e, m = both(make_model)
    raises_like(lambda: nn.quantize(e, mode="fp3"),
                lambda: mnn.quantize(m, mode="fp3"), ValueError, same_message=True)


def test_quantize_input_linear_only():
    def pred(path, module):
        return isinstance(module, (nn.Linear, mnn.Linear)) and "bias" not in module

    e, m = quantized_pair(mode="nvfp4", quantize_input=True, class_predicate=pred)
    assert type(e.layers[1]).__name__ == type(m.layers[1]).__name__ == "QQLinear"
    assert type(e.layers[0]).__name__ == "Linear"
    assert_tree_same(e.parameters(), m.parameters(), 0)
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())


def test_quantize_dict_drops_false_quantize_input():
    # a layer whose to_quantized takes no quantize_input still gets quantized
    def build(nn):
        class Custom(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Linear(64, 8).weight

            def to_quantized(self, group_size=None, bits=None, mode="affine"):
                return nn.QuantizedLinear.from_linear(nn.Linear(64, 8, bias=False),
                                                      group_size, bits, mode)

        class Outer(nn.Module):
            def __init__(self):
                super().__init__()
                self.c = Custom()
        return Outer()

    e, m = both(build, s=30)
    kw_e = {"group_size": 32, "bits": 8, "quantize_input": False}
    kw_m = dict(kw_e)
    nn.quantize(e, class_predicate=lambda p, mod: kw_e if p == "c" else False)
    mnn.quantize(m, class_predicate=lambda p, mod: kw_m if p == "c" else False)
    assert type(e.c).__name__ == type(m.c).__name__ == "QuantizedLinear"
    assert e.c.bits == m.c.bits == 8
    assert kw_e == kw_m  # upstream removes the key from the predicate's dict
