"""Second conformance sweep of ember.nn against upstream MLX: errors for bad constructor
arguments and short inputs, parameters in one dtype called on inputs of another, losses
on mixed dtypes with their gradients, activation gradients at the kinks, dropout and
transformers in training (same random draws), initializers' values in low precision,
ALiBi's helpers and the recurrent layers' hidden states.

Each case is a function `fn(core, nn, optim)` run on upstream's modules and on Ember's by
`same` (results equal; where upstream raises, the same exception and message).
"""

import numpy as np
import pytest

from tests.nn.test_conformance_nn import same


def _x(core, shape, seed=0, dtype="float32"):
    a = core.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))
    return a.astype(getattr(core, dtype))


# -- constructor arguments of the wrong type fail where upstream's do ------------------

@pytest.mark.parametrize("name", ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
                                  "ConvTranspose2d", "ConvTranspose3d"])
@pytest.mark.parametrize("in_channels", [None, "a", (2,), 2.5])
def test_convolution_bad_in_channels(name, in_channels):
    same(lambda core, lib, _: getattr(lib, name)(in_channels, 3, 2))


# -- inputs with too few axes ----------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (4,), (0, 4), (3, 4)], ids=str)
@pytest.mark.parametrize("pytorch_compatible", [False, True])
def test_group_norm_ranks(shape, pytorch_compatible):
    same(lambda core, lib, _: lib.GroupNorm(2, 4, pytorch_compatible=pytorch_compatible)(
        _x(core, shape)), tol=1e-4)


@pytest.mark.parametrize("shape", [(4,), (5,), (), (0,), (2, 0, 4), (5, 4)], ids=str)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_recurrent_input_ranks(name, bias, shape):
    def fn(core, lib, _):
        core.random.seed(0)
        return getattr(lib, name)(4, 3, bias=bias)(_x(core, shape))
    same(fn, tol=1e-4)


@pytest.mark.parametrize("case", ["h", "h1d", "h_bad", "x1d_h", "x4d", "cell_only"])
@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_recurrent_hidden_states(name, case):
    def fn(core, lib, _):
        core.random.seed(0)
        m = getattr(lib, name)(4, 3)
        x, h = _x(core, (2, 5, 4)), _x(core, (2, 3), 1)
        hc = (h, h) if name == "LSTM" else (h,)
        if case == "h":
            return m(x, *hc)
        if case == "h1d":
            return m(x, *[a[0] for a in hc])
        if case == "h_bad":
            return m(x, _x(core, (2, 4)))
        if case == "x1d_h":
            return m(x[0], *[a[0] for a in hc])
        if case == "x4d":
            return m(_x(core, (2, 2, 5, 4)))
        return m(x, None, h) if name == "LSTM" else m(x, hidden=h)
    same(fn, tol=1e-4)


def test_quantized_classes_importable_from_their_float_modules():
    def fn(core, lib, _):
        from importlib import import_module
        root = lib.__name__
        lin = import_module(f"{root}.layers.linear")
        emb = import_module(f"{root}.layers.embedding")
        return [c is getattr(lib, n) for c, n in [
            (lin.QuantizedLinear, "QuantizedLinear"), (lin.QQLinear, "QQLinear"),
            (emb.QuantizedEmbedding, "QuantizedEmbedding")]]
    same(fn, "ok")


# -- parameters in one dtype, inputs in another -----------------------------------------

_DTYPE_LAYERS = [
    ("Linear", (4, 3), (2, 4)), ("Conv1d", (4, 3, 3), (2, 6, 4)),
    ("ConvTranspose2d", (4, 3, 3), (2, 5, 5, 4)), ("LayerNorm", (4,), (2, 4)),
    ("RMSNorm", (4,), (2, 4)), ("GroupNorm", (2, 4), (2, 3, 4)),
    ("BatchNorm", (4,), (3, 4)), ("InstanceNorm", (4,), (2, 3, 4)),
    ("Embedding", (10, 4), None), ("GRU", (4, 3), (2, 5, 4)), ("LSTM", (4, 3), (2, 5, 4)),
    ("PReLU", (), (2, 4)), ("Bilinear", (4, 4, 3), (2, 4)),
    ("MultiHeadAttention", (8, 2), (2, 3, 8)), ("TransformerEncoderLayer", (8, 2), (2, 3, 8))]


@pytest.mark.parametrize("params, inputs", [("float16", "float32"), ("bfloat16", "float16"),
                                            ("bfloat16", "int32"), ("float32", "bfloat16")])
@pytest.mark.parametrize("name, args, shape", _DTYPE_LAYERS, ids=lambda v: str(v))
def test_parameter_and_input_dtypes(name, args, shape, params, inputs):
    def fn(core, lib, _):
        core.random.seed(0)
        m = getattr(lib, name)(*args, **({"affine": True} if name == "InstanceNorm" else {}))
        m.set_dtype(getattr(core, params))
        if shape is None:
            return m(core.array([[1, 2], [3, 4]])), m.as_linear(_x(core, (2, 4), 0, inputs))
        x = _x(core, shape, 0, inputs) * 2
        if name == "Bilinear":
            return m(x, x)
        if name == "MultiHeadAttention":
            return m(x, x, x, None)
        if name == "TransformerEncoderLayer":
            return m(x, None)
        return m(x), (m.running_mean if name == "BatchNorm" else None)
    same(fn, tol=5e-2)


# -- losses on mixed dtypes, and their gradients ------------------------------------------

def _n(shape, s=0):
    return np.random.default_rng(s).standard_normal(shape).astype(np.float32)


def _u(shape, s=2):
    return np.random.default_rng(s).uniform(0.05, 0.95, shape).astype(np.float32)


def _ci(shape, k, s=1):
    return np.random.default_rng(s).integers(0, k, shape).astype(np.int32)


# (name, [(input, role)], kwargs): role "l" inputs take the first dtype, "t" the second
_LOSSES = [
    ("cross_entropy", [(_n((6, 5)), "l"), (_ci((6,), 5), "t"), (_u((6,)), "t")], {}),
    ("cross_entropy", [(_n((6, 5)), "l"), (_u((6, 5)), "t")], dict(label_smoothing=0.1)),
    ("binary_cross_entropy", [(_n((4, 5)), "l"), ((_u((4, 5), 3) > .5).astype(np.float32), "t"),
                              (_u((4, 5), 5), "t")], {}),
    ("binary_cross_entropy", [(_u((4, 5)), "l"), (_u((4, 5), 3), "t")], dict(with_logits=False)),
    ("nll_loss", [(_n((6, 5)), "l"), (_ci((6,), 5), "t")], {}),
    ("kl_div_loss", [(_n((6, 5)), "l"), (_n((6, 5), 1), "t")], {}),
    ("smooth_l1_loss", [(_n((4, 5)), "l"), (_n((4, 5), 1), "t")], dict(beta=0.5)),
    ("triplet_loss", [(_n((4, 5)), "l"), (_n((4, 5), 1), "t"), (_n((4, 5), 2), "t")], {}),
    ("hinge_loss", [(_n((4, 5)), "l"), (np.sign(_n((4, 5), 1)), "t")], {}),
    ("huber_loss", [(_n((4, 5)), "l"), (_n((4, 5), 1), "t")], {}),
    ("log_cosh_loss", [(_n((4, 5)), "l"), (_n((4, 5), 1), "t")], {}),
    ("cosine_similarity_loss", [(_n((4, 5)), "l"), (_n((4, 5), 1), "t")], {}),
    ("margin_ranking_loss", [(_n((6,)), "l"), (_n((6,), 1), "l"), (np.sign(_n((6,), 2)), "t")],
     {}),
    ("gaussian_nll_loss", [(_n((4, 5)), "l"), (_n((4, 5), 1), "t"), (_u((4, 5)), "t")],
     dict(full=True)),
]


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("dtypes", [("float16", "float32"), ("bfloat16", "float16")], ids=str)
@pytest.mark.parametrize("name, spec, kw", _LOSSES, ids=[c[0] for c in _LOSSES])
def test_loss_mixed_dtypes_and_grads(name, spec, kw, dtypes, reduction):
    def fn(core, lib, _):
        args = []
        for a, role in spec:
            arr = core.array(a)
            if a.dtype.kind == "f":
                arr = arr.astype(getattr(core, dtypes[0] if role == "l" else dtypes[1]))
            args.append(arr)

        def f(*a):
            return getattr(lib.losses, name)(*a, reduction=reduction, **kw)
        grad = core.grad(lambda *a: f(*a).astype(core.float32).sum())(*args)
        return f(*args), grad
    same(fn, tol=5e-2)


# -- activation gradients at the kinks -----------------------------------------------------

_KINKS = np.array([-6, -3, -1, -0.5, 0, 0.5, 1, 3, 6, -20, 20, 1e-8], np.float32)
_ACTIVATIONS = ["celu", "elu", "gelu", "gelu_approx", "gelu_fast_approx", "hard_shrink",
                "hard_tanh", "hardswish", "leaky_relu", "log_sigmoid", "mish", "relu",
                "relu2", "relu6", "selu", "silu", "sigmoid", "softplus", "softshrink",
                "softsign", "step", "tanh", "log_softmax", "softmax", "softmin"]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", _ACTIVATIONS)
def test_activation_grads_at_kinks(name, dtype):
    def fn(core, lib, _):
        a = core.array(_KINKS).astype(getattr(core, dtype))
        f = getattr(lib, name)
        g = core.grad(lambda z: f(z).astype(core.float32).sum())(a)
        per_row = core.vmap(core.grad(lambda z: f(z).sum()))(a.reshape(12, 1))
        return g, per_row
    same(fn, tol=1e-4 if dtype == "float32" else 2e-2)


@pytest.mark.parametrize("name, kw", [
    ("leaky_relu", dict(negative_slope=0.2)), ("hard_tanh", dict(min_val=-0.5, max_val=0.5)),
    ("softshrink", dict(lambd=0.5)), ("hard_shrink", dict(lambd=0.5)),
    ("step", dict(threshold=0.5)), ("celu", dict(alpha=0.5)), ("elu", dict(alpha=0.5))],
    ids=str)
def test_activation_grads_with_arguments(name, kw):
    same(lambda core, lib, _: core.grad(lambda z: getattr(lib, name)(z, **kw).sum())(
        core.array(_KINKS)))


# -- the same random draws in training ----------------------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "int32", "bool_"])
@pytest.mark.parametrize("p", [0, 0.25, 1, True])
@pytest.mark.parametrize("name, shape", [("Dropout", (4, 6)), ("Dropout2d", (3, 3, 4)),
                                         ("Dropout3d", (2, 2, 3, 3, 4))], ids=str)
def test_dropout_draws_and_dtypes(name, shape, p, dtype):
    def fn(core, lib, _):
        core.random.seed(3)
        y = getattr(lib, name)(p)((_x(core, shape) * 4).astype(getattr(core, dtype)))
        return y, core.random.uniform(shape=(2,))  # the key left afterwards
    same(fn, tol=1e-2)


@pytest.mark.parametrize("cls, kw, mask", [
    ("TransformerEncoderLayer", dict(dims=8, num_heads=2, norm_first=False), "causal"),
    ("TransformerDecoder", dict(num_layers=2, dims=8, num_heads=2), "bool"),
    ("TransformerEncoder", dict(num_layers=2, dims=8, num_heads=2, checkpoint=True), "causal"),
    ("Transformer", dict(dims=8, num_heads=2, num_encoder_layers=1, num_decoder_layers=1),
     None)], ids=lambda v: str(v))
def test_transformer_dropout_in_training(cls, kw, mask):
    def fn(core, lib, _):
        core.random.seed(0)
        m = getattr(lib, cls)(dropout=0.3, **kw)
        a, b = _x(core, (2, 4, 8)), _x(core, (2, 3, 8), 1)

        def masks(n):
            if mask == "causal":
                return lib.MultiHeadAttention.create_additive_causal_mask(n)
            return core.array(np.tril(np.ones((n, n), bool))) if mask else None

        def run():
            if cls.startswith("TransformerEncoder"):
                return m(a, masks(4))
            if cls.startswith("TransformerDecoder"):
                return m(b, a, masks(3), None)
            return m(a, b, masks(4), masks(3), None)
        core.random.seed(5)
        return run(), lib.value_and_grad(m, lambda: run().sum())(), core.random.uniform(shape=(2,))
    same(fn, tol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("mask", [None, "bool", "bool_broadcast", "additive16"])
def test_attention_masks(mask, dtype):
    def fn(core, lib, _):
        core.random.seed(0)
        m = lib.MultiHeadAttention(8, 2, bias=True)
        q, k = _x(core, (2, 3, 8), 0, dtype), _x(core, (2, 4, 8), 1, dtype)
        rng = np.random.default_rng(3)
        mk = {None: None, "bool": core.array(rng.random((2, 1, 3, 4)) > 0.3),
              "bool_broadcast": core.array(rng.random((3, 4)) > 0.3),
              "additive16": _x(core, (3, 4), 5, "float16")}[mask]
        return m(q, k, k, mask=mk)
    same(fn, tol=1e-4 if dtype == "float32" else 3e-2)


# -- initializers: the same values in low precision ---------------------------------------

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name, args, call_kw", [
    ("normal", (1.0, 2.0), {}), ("uniform", (-2, 3), {}), ("glorot_normal", (), dict(gain=0.5)),
    ("glorot_uniform", (), {}), ("he_normal", (), dict(mode="fan_out")),
    ("he_uniform", (), dict(gain=2.0)), ("orthogonal", (2.0,), {}),
    ("sparse", (0.5, 0.0, 2.0), {})], ids=str)
def test_init_values_in_low_precision(name, args, call_kw, dtype):
    def fn(core, lib, _):
        core.random.seed(0)
        init = getattr(lib.init, name)(*args, dtype=getattr(core, dtype))
        return [init(core.zeros(s), **call_kw) for s in [(4, 6), (6, 4), (2, 3, 4)]]
    same(fn, tol=2e-2)


# -- ALiBi's helpers --------------------------------------------------------------------

@pytest.mark.parametrize("num_heads", [1, 3, 6, 12, 0])
def test_alibi_slopes(num_heads):
    same(lambda core, lib, _: [lib.ALiBi.create_alibi_slope(num_heads, dtype=getattr(core, d))
                               for d in ("float32", "float16", "int32")])


@pytest.mark.parametrize("q, k, heads, offset", [(3, 5, 3, 1), (2, 4, 4, 3), (0, 3, 2, 0),
                                                 (4, 4, 6, 5)])
def test_alibi_matrix_and_call(q, k, heads, offset):
    def fn(core, lib, _):
        mat = lib.ALiBi.create_alibi_matrix(q, k, heads, offset, dtype=core.float16)
        y = lib.ALiBi()(_x(core, (1, heads, q, k), 0, "bfloat16"), offset=offset)
        return mat, y
    same(fn, tol=2e-2)


# -- activation arguments: upstream compiles the functions, whose compile refuses
# -- arguments that are not trees of arrays and constants -----------------------------

_COMPILED = ["celu", "elu", "gelu", "gelu_approx", "gelu_fast_approx", "hard_shrink",
             "hard_tanh", "hardswish", "leaky_relu", "log_sigmoid", "log_softmax", "mish",
             "relu", "relu2", "relu6", "selu", "silu", "sigmoid", "softmax", "softmin",
             "softplus", "softshrink", "softsign", "step", "tanh"]


@pytest.mark.filterwarnings("ignore:Casting complex values")  # (tanh of a complex)
@pytest.mark.parametrize("kind", ["ndarray", "numpy_scalar", "complex", "nested_ndarray",
                                  "float", "list", "bool"])
@pytest.mark.parametrize("name", _COMPILED)
def test_activation_argument_types(name, kind):
    def fn(core, lib, _):
        x = {"ndarray": np.array([1.0, -2.0], np.float32), "numpy_scalar": np.float32(-1.5),
             "complex": 1 + 2j, "nested_ndarray": [np.ones(2)], "float": -1.5,
             "list": [1.0, -2.0], "bool": True}[kind]
        return getattr(lib, name)(x)
    same(fn, tol=1e-5)


@pytest.mark.parametrize("name, kw", [
    ("leaky_relu", dict(negative_slope=np.float32(0.2))), ("softmax", dict(axis=np.int64(0))),
    ("softmin", dict(axis=(0, 1))), ("hard_tanh", dict(min_val="array")),
    ("elu", dict(alpha=np.float32(0.5))), ("step", dict(threshold=None)),
    ("celu", dict(alpha=2)), ("softshrink", dict(lambd=np.ones(1)))], ids=str)
def test_activation_keyword_argument_types(name, kw):
    def fn(core, lib, _):
        kw2 = {k: core.array(0.0) if v == "array" else v for k, v in kw.items()}
        return getattr(lib, name)(_x(core, (2, 3)), **kw2)
    same(fn, tol=1e-5)


@pytest.mark.parametrize("name", ["Sigmoid", "ReLU", "GELU", "Softmax", "LeakyReLU", "PReLU",
                                  "Tanh"])
def test_activation_layers_on_numpy_input(name):
    same(lambda core, lib, _: getattr(lib, name)()(np.array([[1.0, -2.0]], np.float32)))


def test_prelu_alpha_types():
    def fn(core, lib, _):
        x = _x(core, (2, 3))
        return [lib.prelu(x, a) for a in (core.array([0.25]), 0.25)], lib.prelu(x, np.ones(1))
    same(fn)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_gelu_half_precision_bits(dtype):
    """gelu's argument to erf is x / sqrt(2), as upstream's (the same bits in float16 and
    bfloat16, where each step rounds)."""
    same(lambda core, lib, _: lib.gelu(_x(core, (4000,), 0, dtype) * 4), tol=0)
