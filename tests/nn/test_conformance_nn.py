"""Conformance sweep of ember.nn and ember.optimizers against upstream MLX: layers built
and called with unusual but legal arguments and with bad ones, losses, initializers,
optimizers and schedules, and Module API corners.

Each case is a function `fn(core, nn, optim)`; it runs once on (mlx.core, mlx.nn,
mlx.optimizers) and once on Ember's, and the results must agree: arrays by shape, dtype
and values (to a tolerance), other values exactly, and when upstream raises, Ember raises
the same exception type with the same message (or, for messages from the argument
parsers of the core bindings, the same first words).
"""


import mlx.core as mlx
import mlx.nn as mnn
import mlx.optimizers as mopt
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
import ember.optimizers as optim
from tests.nn.parity import result_tree

UPSTREAM, EMBER = (mlx, mnn, mopt), (mx, nn, optim)


def _norm(x):
    return result_tree(x)


def _run(fn, lib):
    try:
        out = fn(*lib)
        if isinstance(out, (mx.array, mlx.array)):
            lib[0].eval(out)
        return "ok", _norm(out)
    except Exception as e:  # the exception is the result being compared
        return "raised", type(e), str(e)


def _assert_equal(e, m, tol, path="result"):
    if isinstance(m, tuple) and len(m) == 4 and m[0] == "array":
        assert isinstance(e, tuple) and e[0] == "array", f"{path}: {e!r:.200}"
        assert e[1:3] == m[1:3], f"{path}: shape/dtype {e[1:3]} != {m[1:3]}"
        np.testing.assert_allclose(e[3].astype(np.float64), m[3].astype(np.float64),
                                   rtol=tol, atol=tol, equal_nan=True, err_msg=path)
    elif isinstance(m, dict):
        assert isinstance(e, dict) and list(e) == list(m), f"{path}: {e!r:.200} != {m!r:.200}"
        for k in m:
            _assert_equal(e[k], m[k], tol, f"{path}.{k}")
    elif isinstance(m, (list, tuple)):
        assert type(e) is type(m) and len(e) == len(m), f"{path}: {e!r:.200} != {m!r:.200}"
        for i, (a, b) in enumerate(zip(e, m)):
            _assert_equal(a, b, tol, f"{path}[{i}]")
    elif isinstance(m, float):
        assert e == pytest.approx(m, rel=tol, abs=tol, nan_ok=True), path
    else:
        assert e == m, f"{path}: {e!r:.200} != {m!r:.200}"


# upstream's core bindings reject bad argument types with a list of overloads after this
_NANOBIND = "incompatible function arguments."


def same(fn, expect=None, tol=1e-5):
    """fn's result (or exception) on upstream equals the one on Ember."""
    up, ours = _run(fn, UPSTREAM), _run(fn, EMBER)
    if expect is not None:
        assert up[0] == expect, up
    if up[0] == "raised":
        assert ours[0] == "raised", f"upstream raised {up[1:]}, Ember returned {ours!r:.300}"
        assert ours[1] is up[1], f"{ours[1]} is not {up[1]} ({up[2]!r}; ours {ours[2]!r})"
        if _NANOBIND in up[2]:
            assert ours[2].startswith(up[2].split(_NANOBIND)[0] + _NANOBIND), ours[2]
        else:
            assert ours[2] == up[2]
        return
    assert ours[0] == "ok", f"Ember raised {ours[1:]}"
    _assert_equal(ours[1], up[1], tol)


def _x(core, shape, seed=0, dtype=np.float32):
    return core.array(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _layer(name, args, kw, shape, train=None):
    """Build the layer from a seeded state, call it on a seeded input: repr, items,
    output and parameters."""
    def fn(core, lib, _):
        core.random.seed(0)
        layer = getattr(lib, name)(*args, **kw)
        if train is not None:
            layer.train(train)
        y = layer(_x(core, shape) if isinstance(shape, tuple) else shape(core))
        return repr(layer), dict(layer.items()), y
    return fn


def _case_id(case):
    rest = ["input" if callable(c) else c for c in case[3:]]
    return f"{case[0]}{case[1]}{sorted(case[2].items())}{rest}"


# -- argument errors name the layer, not its private base class ----------------------

NAMED = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
         "ConvTranspose3d", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
         "AvgPool3d", "Dropout", "Dropout2d", "Dropout3d", "AllToShardedLinear",
         "ShardedToAllLinear", "QuantizedAllToShardedLinear", "QuantizedShardedToAllLinear"]


@pytest.mark.parametrize("name", NAMED)
@pytest.mark.parametrize("how", ["bogus_kwarg", "too_many", "missing"])
def test_constructor_argument_errors(name, how):
    args = {"bogus_kwarg": ((), {"bogus": 1}), "too_many": (tuple(range(1, 12)), {}),
            "missing": ((8,), {"bogus": 1} if name.startswith(("Drop", "MaxP", "AvgP"))
                        else {})}[how]
    same(lambda core, lib, _: getattr(lib, name)(*args[0], **args[1]), "raised")


@pytest.mark.parametrize("name, args, shape", [
    ("Conv1d", (2, 2, 1), (1, 3, 2)), ("Conv2d", (2, 2, 1), (1, 3, 3, 2)),
    ("ConvTranspose1d", (2, 2, 1), (1, 3, 2)), ("ConvTranspose2d", (2, 2, 1), (1, 3, 3, 2)),
    ("ConvTranspose3d", (2, 2, 1), (1, 3, 3, 3, 2)), ("Dropout", (), (2, 2)),
    ("Dropout2d", (), (1, 2, 2, 2)), ("Dropout3d", (), (1, 2, 2, 2, 2))])
@pytest.mark.parametrize("extra", [((), {"bogus": 1}), ((3,), {})])
def test_call_argument_errors(name, args, shape, extra):
    same(lambda core, lib, _: getattr(lib, name)(*args)(core.zeros(shape), *extra[0],
                                                        **extra[1]), "raised")


def test_layers_built_with_named_errors_still_work():
    def fn(core, lib, _):
        core.random.seed(0)
        conv = lib.Conv1d(2, 3, 2, stride=2, bias=False)
        drop = lib.Dropout2d(0.25)
        pool = lib.AvgPool2d(kernel_size=2, stride=1, padding=1)
        x = _x(core, (1, 4, 4, 2))
        return conv(x[:, 0]), drop(x), pool(x), repr(conv), repr(drop), repr(pool)
    same(fn, "ok")


# -- convolutions ----------------------------------------------------------------------

CONV = [
    ("Conv1d", (4, 6, 3), {}, (2, 10, 4)),
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, dilation=2, bias=False), (2, 10, 4)),
    ("Conv1d", (4, 6, 3), dict(groups=2), (2, 10, 4)),
    ("Conv1d", (4, 6, 3), dict(groups=3), (2, 10, 4)),
    ("Conv1d", (4, 6, 3), {}, (10, 4)),
    ("Conv1d", (4, 6, 3), {}, (2, 10, 5)),
    ("Conv1d", (4, 6, 11), {}, (2, 10, 4)),
    ("Conv1d", (4, 6, 3), dict(stride=(2,)), (2, 10, 4)),
    ("Conv1d", (4, 6, 3), dict(padding="same"), (2, 10, 4)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
     (2, 8, 8, 4)),
    ("Conv2d", (4, 6, 3), dict(padding=2, bias=False, groups=2), (2, 8, 8, 4)),
    ("Conv2d", (4, 6, [3, 3]), dict(padding=[1, 1]), (2, 8, 8, 4)),
    ("Conv2d", (4, 6, 3), {}, (8, 8, 4)),
    ("Conv2d", (4, 6, 3), dict(groups=5), (2, 8, 8, 4)),
    ("Conv2d", (4, 6, 3), dict(stride=(1, 2, 3)), (2, 8, 8, 4)),
    ("Conv3d", (2, 4, (1, 2, 3)), dict(stride=(1, 2, 1), padding=(0, 1, 2), dilation=2,
                                       bias=False), (1, 6, 6, 6, 2)),
    ("Conv3d", (2, 4, 3), {}, (5, 5, 5, 2)),
    ("ConvTranspose1d", (4, 6, 3), dict(stride=2, padding=1, dilation=2, output_padding=1,
                                        bias=False), (2, 10, 4)),
    ("ConvTranspose1d", (4, 6, 3), dict(output_padding=1), (2, 10, 4)),
    ("ConvTranspose1d", (4, 6, 3), {}, (2, 10, 3)),
    ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                                             output_padding=(1, 0)), (2, 8, 8, 4)),
    ("ConvTranspose2d", (4, 6, 3), {}, (8, 8, 4)),
    ("ConvTranspose3d", (2, 4, 3), dict(stride=2, output_padding=1), (1, 4, 4, 4, 2)),
]


@pytest.mark.parametrize("case", CONV, ids=_case_id)
def test_convolution(case):
    same(_layer(*case), tol=1e-4)


# -- pooling ---------------------------------------------------------------------------

POOL = []
for _n, _sh in [("MaxPool1d", (2, 9, 3)), ("AvgPool1d", (2, 9, 3))]:
    POOL += [(_n, a, kw, _sh) for a, kw in [
        ((2,), {}), ((3,), dict(stride=2, padding=1)),
        (((3,),), dict(stride=(2,), padding=(1,))), ((3,), dict(padding=2)),
        ((3,), dict(padding=-1)), ((0,), {}), ((3,), dict(stride=0)), ((10,), {}),
        ((2,), dict(stride=None)), ((2.0,), {}), (("2",), {})]]
    POOL += [(_n, (2,), {}, (9, 3)), (_n, (2,), {}, (1, 2, 9, 3))]
for _n, _sh in [("MaxPool2d", (2, 8, 7, 3)), ("AvgPool2d", (2, 8, 7, 3))]:
    POOL += [(_n, a, kw, _sh) for a, kw in [
        (((2, 3),), {}), ((3,), dict(stride=(1, 2))), ((3,), dict(padding=(1, 0))),
        (((2, 2, 2),), {}), ((3,), dict(stride=(1,))), (([2, 2],), dict(stride=[1, 1]))]]
for _n in ["MaxPool3d", "AvgPool3d"]:
    POOL += [(_n, ((2, 1, 3),), dict(stride=(1, 2, 1), padding=(1, 0, 1)), (1, 4, 5, 6, 2)),
             (_n, (2,), {}, (4, 5, 6, 2))]


@pytest.mark.parametrize("case", POOL, ids=_case_id)
def test_pooling(case):
    """Includes the module's items: upstream keeps `_axes` beside the window settings."""
    same(_layer(*case))


@pytest.mark.parametrize("dtype", ["int32", "uint8", "bool_", "float16"])
@pytest.mark.parametrize("name", ["MaxPool2d", "AvgPool2d"])
def test_pooling_dtypes(name, dtype):
    def fn(core, lib, _):
        x = (_x(core, (1, 4, 4, 2)) * 3).astype(getattr(core, dtype))
        return getattr(lib, name)(3, stride=1, padding=1)(x)
    same(fn, tol=1e-3)


# -- embeddings, norms, dropout --------------------------------------------------------

_IDS = (lambda core: core.array(np.array([[0, 3, 9], [2, 2, 1]], np.int32)))
MISC = [
    ("Embedding", (10, 4), {}, _IDS),
    ("Embedding", (10, 4), {}, lambda core: core.array(np.array([1.0, 2.0], np.float32))),
    ("Embedding", (10, 4), {}, lambda core: core.array(3)),
    ("LayerNorm", (4,), dict(eps=1e-3, affine=False, bias=False), (2, 3, 4)),
    ("LayerNorm", (4,), dict(bias=False), (2, 3, 4)),
    ("LayerNorm", (4,), {}, (2, 3, 5)),
    ("RMSNorm", (4,), dict(eps=0.1), (2, 3, 4)),
    ("GroupNorm", (2, 4), dict(pytorch_compatible=True), (2, 3, 3, 4)),
    ("GroupNorm", (2, 4), dict(affine=False, eps=0.1), (2, 3, 4)),
    ("GroupNorm", (3, 4), {}, (2, 3, 4)),
    ("GroupNorm", (3, 4), dict(pytorch_compatible=True), (2, 3, 4)),
    ("GroupNorm", (2, 4), dict(pytorch_compatible=True), (3, 4)),
    ("InstanceNorm", (4,), dict(affine=True), (2, 3, 3, 4)),
    ("InstanceNorm", (4,), {}, (5, 4)),
    ("InstanceNorm", (4,), dict(affine=True), (2, 5, 3)),
    ("BatchNorm", (4,), {}, (2, 3, 5, 5, 4)),
    ("BatchNorm", (4,), {}, (4,)),
    ("BatchNorm", (4,), dict(momentum=0.5, eps=0.1), (5, 4)),
    ("BatchNorm", (4,), dict(affine=False), (5, 4)),
    ("BatchNorm", (4,), dict(track_running_stats=False), (5, 4), False),
    ("BatchNorm", (4,), {}, (5, 4), False),
    ("BatchNorm", (4,), dict(momentum=None), (5, 4)),
    ("BatchNorm", (4,), {}, (5, 3)),
    ("Dropout", (0.0,), {}, (3, 4)), ("Dropout", (1.0,), {}, (3, 4)),
    ("Dropout", (-0.1,), {}, (3, 4)), ("Dropout", (0.5,), {}, (3, 4)),
    ("Dropout", (0.5,), {}, (3, 4), False),
    ("Dropout2d", (1.5,), {}, (2, 3, 3, 4)), ("Dropout2d", (0.5,), {}, (3, 4)),
    ("Dropout2d", (0.5,), {}, (3, 3, 4)), ("Dropout3d", (0.5,), {}, (2, 2, 3, 3, 4)),
    ("Dropout3d", (0.0,), {}, (2, 2, 3, 3, 4)), ("Dropout3d", (0.5,), {}, (2, 3, 3, 4)),
    ("Dropout3d", (0.5,), {}, (3, 4)),
    ("RoPE", (8,), dict(traditional=True), (2, 3, 5, 8)),
    ("RoPE", (4,), dict(base=100.0, scale=0.5), (2, 5, 8)),
    ("RoPE", (7,), {}, (2, 5, 8)),
    ("SinusoidalPositionalEncoding", (8,), dict(min_freq=0.01, max_freq=2, scale=3.0,
                                                cos_first=True, full_turns=True),
     lambda core: core.arange(5)),
    ("SinusoidalPositionalEncoding", (7,), {}, lambda core: core.arange(5)),
    ("ALiBi", (), {}, lambda core: core.zeros((2, 3, 5, 5), dtype=core.float16)),
    ("Upsample", (2.5,), {}, (1, 3, 4, 2)),
    ("Upsample", ((2, 3),), dict(mode="linear"), (1, 3, 4, 2)),
    ("Upsample", (1.5,), dict(mode="cubic", align_corners=True), (1, 3, 4, 2)),
    ("Upsample", (2,), dict(mode="bad"), (1, 3, 4, 2)),
    ("Upsample", ((2, 3),), {}, (1, 3, 2)),
    ("Upsample", (2,), dict(mode="linear"), (1, 3, 3, 3, 2)),
    ("RNN", (3, 4), dict(bias=False, nonlinearity="relu"), (5, 3)),
    ("GRU", (3, 4), dict(bias=False), (5, 3)),
    ("LSTM", (3, 4), {}, (2, 5, 2)),
]


@pytest.mark.parametrize("case", MISC, ids=_case_id)
def test_layer(case):
    same(_layer(*case), tol=1e-4)


@pytest.mark.parametrize("kw, modes", [({}, [True, True, False]),
                                       (dict(momentum=0.0), [True, False]),
                                       ({}, [False])])
def test_batchnorm_running_stats(kw, modes):
    def fn(core, lib, _):
        bn = lib.BatchNorm(4, **kw)
        outs = []
        for i, t in enumerate(modes):
            bn.train(t)
            outs.append(bn(_x(core, (6, 4), seed=i)))
        return outs, bn.state, repr(bn)
    same(fn, tol=1e-4)


# -- upsampling functions --------------------------------------------------------------

@pytest.mark.parametrize("fn_name", ["upsample_nearest", "upsample_linear", "upsample_cubic"])
@pytest.mark.parametrize("scale, shape", [((2, 2), (2, 7, 3)), ((3,), (1, 5, 6, 2)),
                                          ((2, 2, 2), (1, 5, 6, 2)), ((1.5, 0.7), (1, 5, 6, 2))])
def test_upsample_functions(fn_name, scale, shape):
    """A scale per spatial axis, or upstream's message (without a bracketed prefix)."""
    same(lambda core, lib, _: getattr(lib.upsample, fn_name)(_x(core, shape), scale),
         tol=1e-4)


# -- quantized layers ------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, dict(bits=3), dict(bits=2, group_size=32),
                                dict(group_size=16), dict(bits=7), dict(mode="mxfp4"),
                                dict(mode="bad")], ids=str)
def test_quantized_from_linear_and_embedding(kw):
    def fn(core, lib, _):
        core.random.seed(0)
        q = lib.QuantizedLinear.from_linear(lib.Linear(64, 32, bias=False), **kw)
        e = lib.QuantizedEmbedding.from_embedding(lib.Embedding(10, 64), **kw)
        ids = core.array([[0, 3], [9, 1]])
        return (repr(q), repr(e), q(_x(core, (3, 64))), e(ids), e.as_linear(_x(core, (2, 64))),
                q.parameters(), sorted(q.trainable_parameters()))
    same(fn, tol=1e-4)


# -- activations -----------------------------------------------------------------------

ACTS = [("celu", dict(alpha=2)), ("elu", dict(alpha=0.3)), ("glu", dict(axis=0)),
        ("hard_shrink", dict(lambd=0)), ("hard_tanh", dict(min_val=0, max_val=0)),
        ("leaky_relu", dict(negative_slope=2)), ("log_softmax", dict(axis=0)),
        ("softmin", dict(axis=0)), ("softshrink", dict(lambd=1.0)),
        ("step", dict(threshold=0.5)), ("relu6", {}), ("gelu_fast_approx", {}), ("selu", {})]


@pytest.mark.parametrize("dtype", ["float16", "int32"])
@pytest.mark.parametrize("name, kw", ACTS, ids=str)
def test_activation_functions(name, kw, dtype):
    def fn(core, lib, _):
        x = core.array(np.arange(-12, 12).reshape(4, 6) / 4).astype(getattr(core, dtype))
        return getattr(lib, name)(x, **kw)
    same(fn, tol=1e-2)


@pytest.mark.parametrize("name, kw", [
    ("GELU", dict(approx="fast")), ("GELU", dict(approx="bad")), ("PReLU", dict(init=0.5)),
    ("PReLU", dict(num_parameters=6)), ("HardTanh", dict(min_val=-2.0, max_val=0.5)),
    ("Step", dict(threshold=1.0)), ("Softshrink", dict(lambd=0.1)), ("CELU", dict(alpha=0.5))],
    ids=str)
def test_activation_classes(name, kw):
    def fn(core, lib, _):
        layer = getattr(lib, name)(**kw)
        return repr(layer), layer(_x(core, (4, 6)) * 3), layer.parameters()
    same(fn, tol=1e-4)


# every activation layer, the parameterless ones included (they share one __call__)
ACT_LAYERS = ["CELU", "ELU", "GELU", "GLU", "HardShrink", "HardTanh", "Hardswish",
              "LeakyReLU", "LogSigmoid", "LogSoftmax", "Mish", "PReLU", "ReLU", "ReLU2",
              "ReLU6", "SELU", "SiLU", "Sigmoid", "Softmax", "Softmin", "Softplus",
              "Softshrink", "Softsign", "Step", "Tanh"]


@pytest.mark.parametrize("how", ["none", "extra", "bogus_kwarg", "x_kwarg"])
@pytest.mark.parametrize("name", ACT_LAYERS)
def test_activation_layer_call_arguments(name, how):
    """Python's own TypeError for a bad call names the same function as upstream's."""
    def fn(core, lib, _):
        layer, x = getattr(lib, name)(), _x(core, (4, 6))
        args, kw = {"none": ((), {}), "extra": ((x, x), {}), "bogus_kwarg": ((x,), {"a": 1}),
                    "x_kwarg": ((), {"x": x})}[how]
        return layer(*args, **kw)
    same(fn, tol=1e-5)


# -- losses ----------------------------------------------------------------------------

def _n(shape, s=0):
    return np.random.default_rng(s).standard_normal(shape).astype(np.float32)


def _ci(shape, k, s=1):
    return np.random.default_rng(s).integers(0, k, shape).astype(np.int32)


def _u(shape, s=2):
    return np.random.default_rng(s).uniform(0.05, 0.95, shape).astype(np.float32)


LOSSES = [
    ("cross_entropy", (_n((6, 5)), _ci((6,), 5).astype(np.uint8)), {}),
    ("cross_entropy", (_n((6, 5)), np.eye(5, dtype=np.int32)[_ci((6,), 5)]), {}),
    ("cross_entropy", (_n((6, 5)), _ci((6,), 5)), dict(label_smoothing=1.5)),
    ("cross_entropy", (_n((6, 5)), _ci((6, 1), 5)), {}),
    ("cross_entropy", (_n((6, 5)), _u((6, 4))), {}),
    ("cross_entropy", (_n((6, 5)), _ci((6,), 5), _u((5,))), {}),
    ("cross_entropy", (_n((6, 5)), _ci((6,), 5)), dict(axis=2)),
    ("cross_entropy", (_n((6, 5)), _ci((6,), 5)), dict(reduction=None)),
    ("cross_entropy", (_n((5,)), np.array(2, np.int32)), {}),
    ("binary_cross_entropy", (_u((4, 5)), _u((4, 5), 3) > .5), dict(with_logits=False)),
    ("binary_cross_entropy", (_n((4, 5)), _u((4, 5)), _u((4, 3))), {}),
    ("binary_cross_entropy", (_n((4, 5)), _u((5,))), {}),
    ("l1_loss", (_ci((4, 5), 9), _ci((4, 5), 9, 3)), {}),
    ("mse_loss", (_n((4, 5)), _n((5,), 1)), {}),
    ("nll_loss", (_n((6, 5)), _ci((5,), 5)), {}),
    ("kl_div_loss", (_n((6, 5)), _n((6, 5), 1)), dict(axis=0, reduction="mean")),
    ("smooth_l1_loss", (_n((4, 5)), _n((4, 5), 1)), dict(beta=0.0)),
    ("triplet_loss", (_n((4, 5)), _n((4, 5), 1), _n((4, 5), 2)), dict(p=3, axis=0)),
    ("triplet_loss", (_n((4, 5)), _n((4, 5), 1), _n((4, 4), 2)), {}),
    ("hinge_loss", (_n((4, 5)), np.sign(_n((4, 5), 1)).astype(np.int32)), {}),
    ("huber_loss", (_n((4, 5)), _n((4, 5), 1)), dict(delta=0)),
    ("log_cosh_loss", (_n((4, 5)) * 100, _n((4, 5), 1)), {}),
    ("cosine_similarity_loss", (np.zeros((4, 5), np.float32), _n((4, 5), 1)), {}),
    ("cosine_similarity_loss", (_n((5,)), _n((5,), 1)), {}),
    ("margin_ranking_loss", (_n((6,)), _n((6,), 1), np.sign(_n((5,), 2))), {}),
    ("margin_ranking_loss", (_n((2, 3)), _n((2, 3), 1), np.sign(_n((3,), 2))), {}),
    ("gaussian_nll_loss", (_n((4, 5)), _n((4, 5), 1), _u((5,))), dict(reduction="sum")),
    ("gaussian_nll_loss", (_n((4, 5)), _n((4, 5), 1), _u((3, 5))), {}),
]


@pytest.mark.parametrize("name, args, kw", LOSSES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(LOSSES)])
def test_loss(name, args, kw):
    same(lambda core, lib, _: getattr(lib.losses, name)(*map(core.array, args), **kw),
         tol=1e-4)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "MEAN", ""])
@pytest.mark.parametrize("name, n", [
    ("binary_cross_entropy", 2), ("cosine_similarity_loss", 2), ("cross_entropy", 2),
    ("gaussian_nll_loss", 3), ("hinge_loss", 2), ("huber_loss", 2), ("kl_div_loss", 2),
    ("l1_loss", 2), ("log_cosh_loss", 2), ("margin_ranking_loss", 3), ("mse_loss", 2),
    ("nll_loss", 2), ("smooth_l1_loss", 2), ("triplet_loss", 3)])
def test_loss_reduction(name, n, reduction):
    def fn(core, lib, _):
        args = [core.array(_u((4, 5), i)) for i in range(n)]
        if name in ("cross_entropy", "nll_loss"):
            args[1] = core.array(_ci((4,), 5))
        return getattr(lib.losses, name)(*args, reduction=reduction)
    same(fn, tol=1e-4)


# -- initializers ----------------------------------------------------------------------

INITS = [("constant", (0.5,)), ("normal", ()), ("uniform", ()), ("identity", ()),
         ("glorot_normal", ()), ("glorot_uniform", ()), ("he_normal", ()),
         ("he_uniform", ()), ("orthogonal", ()), ("sparse", (0.5,))]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32"])
@pytest.mark.parametrize("shape", [(4, 6), (3,), (), (2, 3, 4), (0, 3)], ids=str)
@pytest.mark.parametrize("name, args", INITS, ids=str)
def test_init_shape_dtype_errors(name, args, shape, dtype):
    def fn(core, lib, _):
        core.random.seed(0)
        init = getattr(lib.init, name)(*args, dtype=getattr(core, dtype))
        out = init(core.zeros(shape))
        core.eval(out)
        if name in ("constant", "identity"):
            return out
        return tuple(out.shape), out.dtype
    same(fn)


@pytest.mark.parametrize("name, kw", [
    ("he_normal", dict(mode="fan_out")), ("he_uniform", dict(mode="fan_in", gain=0.5)),
    ("he_normal", dict(mode="bad")), ("he_uniform", dict(mode="fan_avg")),
    ("glorot_normal", dict(gain=2.0)), ("glorot_uniform", dict(gain=0.1))], ids=str)
def test_init_fan_modes_and_gain(name, kw):
    def fn(core, lib, _):
        out = np.array(getattr(lib.init, name)()(core.zeros((300, 200)), **kw))
        return round(float(out.std()), 2), out.shape
    same(fn, tol=0.01)


@pytest.mark.parametrize("args", [(0.0,), (1.0,), (1.5,), (-0.5,)], ids=str)
def test_init_sparse_fraction(args):
    def fn(core, lib, _):
        out = np.array(lib.init.sparse(*args)(core.zeros((40, 30))))
        return round(float((out == 0).mean(axis=0).mean()), 2)
    same(fn)


# -- optimizers ------------------------------------------------------------------------

def _params(core):
    return {"w": _x(core, (4, 3)), "b": _x(core, (3,), 1), "l": [_x(core, (2,), 2)],
            "t": _x(core, (2, 3, 4), 3)}


def _grads(core, step):
    return {k: _x(core, getattr(v, "shape", None) or v[0].shape, 10 + i + 10 * step)
            if k != "l" else [_x(core, (2,), 30 + step)]
            for i, (k, v) in enumerate(_params(core).items())}


OPTS = [
    ("SGD", (0.1,), dict(momentum=0.9, dampening=0.5, nesterov=True)),
    ("SGD", (0.1,), dict(nesterov=True)), ("SGD", (-0.1,), {}), ("SGD", ("a",), {}),
    ("RMSprop", (0.01,), dict(alpha=-0.1)), ("RMSprop", (0.01,), dict(eps=-1.0)),
    ("Adagrad", (0.1,), dict(eps=-1)), ("AdaDelta", (0.1,), dict(rho=-0.5)),
    ("Adam", (0.01,), dict(betas=[0.8, 0.9], bias_correction=True)),
    ("Adam", (0.01,), dict(betas=(0.9,))), ("Adam", (0.01,), dict(betas=(0.9, 0.99, 0.1))),
    ("AdamW", (0.01,), dict(weight_decay=0.1, bias_correction=True)),
    ("Adamax", (0.01,), dict(eps=-1.0)), ("Adamax", (0.01,), dict(betas=(-0.1, 0.5))),
    ("Lion", (0.01,), dict(betas=[0.5, 0.6], weight_decay=0.1)),
    ("Adafactor", (), {}), ("Adafactor", (), dict(relative_step=False)),
    ("Adafactor", (None,), dict(relative_step=False, warmup_init=True)),
    ("Adafactor", (0.01,), dict(beta_1=0.9, weight_decay=0.1, scale_parameter=False)),
    ("Muon", (0.01,), dict(nesterov=False, momentum=0.5, ns_steps=2, weight_decay=0.0)),
]


@pytest.mark.parametrize("name, args, kw", OPTS, ids=[f"{c[0]}-{i}" for i, c in enumerate(OPTS)])
def test_optimizer_state_and_steps(name, args, kw):
    """The state (key names, values) before and after init and after steps, the step
    count and the learning rate, or upstream's error."""
    def fn(core, lib, opt):
        o = getattr(opt, name)(*args, **kw)
        p = _params(core)
        out = {"before": dict(o.state)}
        o.init(p)
        out["init"] = o.state
        for s in range(3):
            p = o.apply_gradients(_grads(core, s), p)
            core.eval(p, o.state)
        out.update(params=p, state=o.state, step=o.step, lr=o.learning_rate)
        return out
    same(fn, tol=2e-4)


def test_learning_rate_getter_setter():
    def fn(core, lib, opt):
        o = opt.SGD(opt.linear_schedule(0.1, 0.0, 10))
        out = [o.learning_rate, o.step]
        o.init({"w": core.zeros((2,))})
        out.append(o.learning_rate)
        o.learning_rate = 0.5
        out += [o.learning_rate, o.state]
        o.learning_rate = core.array(0.25, dtype=core.float16)
        out += [o.learning_rate, o.state]
        return out
    same(fn)


SCHEDULES = [("cosine_decay", (0.1, 0)), ("cosine_decay", (0.1, -5)),
             ("exponential_decay", (0.1, 0)), ("linear_schedule", (0.1, 0.0, 0)),
             ("linear_schedule", (0.1, 0.0, -1)), ("linear_schedule", (0, 1, 3)),
             ("step_decay", (0.1, 0.5, 0)), ("step_decay", (1, 2, 1))]


@pytest.mark.parametrize("name, args", SCHEDULES, ids=str)
def test_schedule_values_and_errors(name, args):
    def fn(core, lib, opt):
        s = getattr(opt, name)(*args)
        return [s(i) for i in [0, 1, 3, 10, -3]] + [s(core.array(4)), s(2.5)]
    same(fn)


@pytest.mark.parametrize("schedules, boundaries", [
    (2, [5, 6]), (2, []), (1, []), (0, []), (3, [8, 5]), (2, [0]), (2, [-2]), (3, [5, 8])])
def test_join_schedules(schedules, boundaries):
    def fn(core, lib, opt):
        pool = [opt.linear_schedule(0, 0.1, 5), opt.cosine_decay(0.1, 10),
                opt.exponential_decay(0.01, 0.5)]
        s = opt.join_schedules(pool[:schedules], boundaries)
        return [s(i) for i in [0, 1, 5, 7, 20]] + [s(core.array(7))]
    same(fn)


@pytest.mark.parametrize("max_norm, scale", [(1.0, 1), (100.0, 1), (0.0, 1), (1.0, 0),
                                             (-1.0, 1)])
def test_clip_grad_norm(max_norm, scale):
    def fn(core, lib, opt):
        g = {"a": _x(core, (3, 4)) * scale, "b": [_x(core, (2,), 1) * scale]}
        return opt.clip_grad_norm(g, max_norm)
    same(fn)


def test_multi_optimizer_state():
    def fn(core, lib, opt):
        o = opt.MultiOptimizer([opt.SGD(opt.linear_schedule(0.1, 0, 5)), opt.Adam(0.01)],
                               [lambda name, p: name.startswith("b")])
        p = o.apply_gradients(_grads(core, 0), _params(core))
        return p, o.state, o.learning_rate
    same(fn, tol=1e-5)


# -- Module API ------------------------------------------------------------------------

def _model(core, lib):
    core.random.seed(0)

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.Linear(3, 4)
            self.norm = lib.LayerNorm(4)
            self.layers = [lib.Linear(4, 4), lib.ReLU(), {"x": lib.Linear(4, 2)}]
            self.scale = core.ones((2,))

    class Top(lib.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.head = lib.Sequential(lib.Linear(2, 2), lib.GELU())
            self.pool = lib.MaxPool1d(2)

    return Top()


MODULE = {
    "repr": lambda c, lib, m: repr(m),
    "named_modules": lambda c, lib, m: [(k, type(v).__name__) for k, v in m.named_modules()],
    "update_bad_name": lambda c, lib, m: m.update({"block": {"nope": c.zeros((2,))}}),
    "update_bad_name_lax": lambda c, lib, m: m.update({"nope": c.zeros(2)}, strict=False),
    "update_bad_shape": lambda c, lib, m: m.update({"block": {"scale": c.zeros((3,))}}),
    "update_list_too_long": lambda c, lib, m: m.update({"block": {"layers": [{}] * 4}}),
    "update_not_array": lambda c, lib, m: m.update({"block": {"scale": 3}}),
    "update_array_for_module": lambda c, lib, m: m.update({"block": {"lin": c.zeros(2)}}),
    "update_modules_bad": lambda c, lib, m: m.update_modules({"block": {"nope": lib.ReLU()}}),
    "update_modules_array": lambda c, lib, m: m.update_modules({"block": {"lin": c.zeros(2)}}),
    "freeze_keys_strict": lambda c, lib, m: m.freeze(keys=["nope"], strict=True),
    "freeze_keys": lambda c, lib, m: m.freeze(keys="bias").trainable_parameters(),
    "unfreeze_strict": lambda c, lib, m: m.freeze().unfreeze(keys=["nope"], strict=True),
    "apply_to_modules": lambda c, lib, m: (lambda seen: (m.apply_to_modules(
        lambda k, v: seen.append((k, type(v).__name__))), seen)[1])([]),
    "set_dtype_predicate": lambda c, lib, m: (m.set_dtype(
        c.float16, predicate=lambda d: d == c.float32), m.parameters())[1],
    "set_dtype_int": lambda c, lib, m: (m.set_dtype(c.int32), m.parameters())[1],
    "getattr_missing": lambda c, lib, m: m.nope,
    "getattr_missing_private": lambda c, lib, m: m.block._nope,
    "delattr_missing": lambda c, lib, m: delattr(m.block, "nope"),
    "items_of_pool": lambda c, lib, m: dict(m.pool.items()),
}


@pytest.mark.parametrize("name", MODULE)
def test_module_api(name):
    same(lambda core, lib, _: MODULE[name](core, lib, _model(core, lib)))


def _flat(core, m):
    from mlx.utils import tree_flatten as up_flatten

    from ember.utils import tree_flatten
    return (tree_flatten if core is mx else up_flatten)(m.parameters())


LOAD = {
    "missing": (lambda c, m: _flat(c, m)[1:], True),
    "missing_lax": (lambda c, m: _flat(c, m)[1:], False),
    "extra": (lambda c, m: _flat(c, m) + [("nope.w", c.zeros(2)), ("aaa", c.zeros(2))], True),
    "bad_shape": (lambda c, m: [(k, c.zeros(7) if k == "block.scale" else v)
                                for k, v in _flat(c, m)], True),
    "bad_shape_lax": (lambda c, m: [(k, c.zeros(7) if k == "block.scale" else v)
                                    for k, v in _flat(c, m)], False),
    "not_array": (lambda c, m: [(k, 3 if k == "block.scale" else v)
                                for k, v in _flat(c, m)], True),
    "bad_extension": (lambda c, m: "/tmp/ember_conformance_missing.xyz", True),
    "empty": (lambda c, m: [], True),
}


@pytest.mark.parametrize("name", LOAD)
def test_load_weights(name):
    weights, strict = LOAD[name]

    def fn(core, lib, _):
        m = _model(core, lib)
        return m.load_weights(weights(core, m), strict=strict).parameters()
    same(fn)


def _nested(core, lib):
    """Modules in a Sequential, lists, dicts and a tuple, beside arrays, a private array,
    empty containers, a plain attribute and a list mixing arrays with other values."""
    core.random.seed(0)

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.seq = lib.Sequential(lib.Linear(2, 3), lib.ReLU(),
                                      lib.Sequential(lib.Linear(3, 3), lib.Dropout(0.1)))
            self.lst = [lib.Linear(3, 2), [lib.GELU(), lib.LayerNorm(2)]]
            self.dct = {"a": lib.Linear(2, 2), "b": {"c": lib.RMSNorm(2)}, "w": core.ones(2)}
            self.arr = core.zeros((2, 2))
            self.tup = (core.ones(1), lib.Identity())
            self._priv = core.ones(3)
            self.empty = []
            self.other = 3
            self.mixed = [core.ones(2), {"x": core.ones(1)}, 4, "s"]

    return Net()


def _loss(m):
    return lambda x, y=1.0: (m.arr * x * y).sum() + m.dct["a"](x[None]).sum()


NESTED = {
    "tree": lambda c, lib, m: (str(m), list(m.keys()), m.parameters(), m.children(),
                               m.leaf_modules(), [k for k, _ in m.named_modules()]),
    "freeze_norec_keys": lambda c, lib, m: m.freeze(keys=["arr", "dct"], recurse=False)
    .trainable_parameters(),
    "freeze_norec_strict": lambda c, lib, m: m.freeze(keys=["weight"], strict=True,
                                                      recurse=False),
    "unfreeze_norec": lambda c, lib, m: m.freeze().unfreeze(recurse=False)
    .trainable_parameters(),
    "freeze_plain_attr": lambda c, lib, m: m.freeze(keys="other", strict=True)
    .trainable_parameters(),
    "set_array_over_attr": lambda c, lib, m: (setattr(m, "other", c.ones(1)), list(m.keys()),
                                              m.parameters()["other"])[1:],
    "set_none_over_array": lambda c, lib, m: (setattr(m, "arr", None), list(m.keys()),
                                              m.arr)[1:],
    "set_module": lambda c, lib, m: (setattr(m, "new", lib.Linear(1, 1)), m.children())[1],
    "set_over_method": lambda c, lib, m: setattr(m, "parameters", c.ones(1)),
    "del_array": lambda c, lib, m: (delattr(m, "arr"), list(m.keys()))[1],
    "del_missing": lambda c, lib, m: delattr(m, "nope"),
    "update_array_with_list": lambda c, lib, m: m.update({"arr": [c.ones(1)]}),
    "update_dict_for_array": lambda c, lib, m: m.update({"arr": {"a": c.ones(1)}}),
    "update_plain_attr": lambda c, lib, m: m.update({"other": c.zeros(1)}),
    "update_mixed_list": lambda c, lib, m: m.update({"mixed": [{}, {}, c.ones(1)]}),
    "update_not_a_dict": lambda c, lib, m: m.update([c.ones(1)]),
    "update_modules_lax": lambda c, lib, m: m.update_modules(
        {"nope": lib.ReLU(), "lst": [lib.ReLU()]}, strict=False).children(),
    "update_modules_nested": lambda c, lib, m: m.update_modules(
        {"seq": {"layers": [lib.Linear(2, 5)]}}).children(),
    "update_modules_array": lambda c, lib, m: m.update_modules({"arr": lib.ReLU()}),
    "update_modules_list_oob": lambda c, lib, m: m.update_modules({"lst": [{}, {}, {}]}),
    "filter_and_map_modules": lambda c, lib, m: m.filter_and_map(
        lambda mod, k, v: True, lambda x: type(x).__name__,
        lambda mod, k, v: isinstance(v, lib.Module)),
    "set_dtype_all": lambda c, lib, m: (m.set_dtype(c.int8, predicate=None),
                                        m.parameters())[1],
    "vag_frozen": lambda c, lib, m: lib.value_and_grad(m.freeze(), _loss(m))(c.ones(2)),
    "vag_kwargs": lambda c, lib, m: lib.value_and_grad(m, _loss(m))(c.ones(2), y=c.array(3.0)),
    "vag_aux": lambda c, lib, m: lib.value_and_grad(
        m, lambda x: (_loss(m)(x), {"x": x}))(c.ones(2)),
    "vag_non_scalar": lambda c, lib, m: lib.value_and_grad(m, lambda x: m.arr * x)(c.ones(2)),
    "checkpoint_vag": lambda c, lib, m: lib.value_and_grad(
        m, lambda x: lib.utils.checkpoint(m.dct["a"])(x).sum())(c.ones((1, 2))),
    "average_gradients": lambda c, lib, m: [lib.average_gradients(m.parameters(), **kw)
                                            for kw in ({}, {"all_reduce_size": 0})],
    "clip_grad_norm_sharded": lambda c, lib, m: lib.utils.clip_grad_norm_sharded(
        m.parameters(), 0.5),
    "load_some_missing": lambda c, lib, m: m.load_weights(_flat(c, m)[:2]),
    "load_some_extra": lambda c, lib, m: m.load_weights(
        _flat(c, m) + [(f"q{i}", c.ones(1)) for i in range(4)]),
}


@pytest.mark.parametrize("name", NESTED)
def test_nested_module_api(name):
    same(lambda core, lib, _: NESTED[name](core, lib, _nested(core, lib)))
