"""ember.nn.losses against upstream mlx.nn.losses: values, gradients, every argument
variant and reduction, and the errors for bad shapes / arguments."""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from tests.helpers import assert_same, on_cpu
from tests.nn.parity import FLOATS, raises_like

REDUCTIONS = ["none", "mean", "sum"]
ALL = ["binary_cross_entropy", "cosine_similarity_loss", "cross_entropy",
       "gaussian_nll_loss", "hinge_loss", "huber_loss", "kl_div_loss", "l1_loss",
       "log_cosh_loss", "margin_ranking_loss", "mse_loss", "nll_loss", "smooth_l1_loss",
       "triplet_loss"]


def _rng(seed):
    return np.random.default_rng(seed)


def _normal(shape, seed, scale=1.0):
    return (_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _log_probs(shape, seed, axis=-1):
    x = _normal(shape, seed, 2.0)
    x = x - x.max(axis=axis, keepdims=True)
    return (x - np.log(np.exp(x).sum(axis=axis, keepdims=True))).astype(np.float32)


def _probs(shape, seed, axis=-1):
    return np.exp(_log_probs(shape, seed, axis)).astype(np.float32)


def _classes(shape, n, seed):
    return _rng(seed).integers(0, n, shape).astype(np.int32)


def _signs(shape, seed):
    return np.where(_rng(seed).random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _bits(shape, seed):
    return (_rng(seed).random(shape) < 0.5).astype(np.float32)


def _uniform(shape, seed, lo, hi):
    return _rng(seed).uniform(lo, hi, shape).astype(np.float32)


# (id, function, inputs (numpy; float32 ones are cast to the test dtype), kwargs)
CASES = [
    ("ce_idx", "cross_entropy", lambda: (_normal((6, 5), 0, 3), _classes((6,), 5, 1)), {}),
    ("ce_idx_axis0", "cross_entropy",
     lambda: (_normal((5, 6), 0, 3), _classes((6,), 5, 1)), {"axis": 0}),
    ("ce_idx_3d_axis1", "cross_entropy",
     lambda: (_normal((2, 5, 3), 0, 3), _classes((2, 3), 5, 1)), {"axis": 1}),
    ("ce_probs", "cross_entropy", lambda: (_normal((6, 5), 0, 3), _probs((6, 5), 1)), {}),
    ("ce_probs_axis0", "cross_entropy",
     lambda: (_normal((5, 6), 0, 3), _probs((5, 6), 1, axis=0)), {"axis": 0}),
    ("ce_idx_smooth", "cross_entropy",
     lambda: (_normal((6, 5), 0, 3), _classes((6,), 5, 1)), {"label_smoothing": 0.1}),
    ("ce_probs_smooth", "cross_entropy",
     lambda: (_normal((6, 5), 0, 3), _probs((6, 5), 1)), {"label_smoothing": 0.3}),
    ("ce_weights", "cross_entropy",
     lambda: (_normal((6, 5), 0, 3), _classes((6,), 5, 1), _uniform((6,), 2, 0, 2)), {}),
    ("ce_weights_smooth_axis0", "cross_entropy",
     lambda: (_normal((5, 6), 0, 3), _classes((6,), 5, 1), _uniform((6,), 2, 0, 2)),
     {"axis": 0, "label_smoothing": 0.2}),
    ("ce_big_logits", "cross_entropy",
     lambda: (_normal((4, 3), 0, 100), _classes((4,), 3, 1)), {}),
    ("bce_logits", "binary_cross_entropy", lambda: (_normal((4, 5), 0, 3), _bits((4, 5), 1)),
     {}),
    ("bce_logits_int_targets", "binary_cross_entropy",
     lambda: (_normal((7,), 0, 3), _bits((7,), 1).astype(np.int32)), {}),
    ("bce_logits_weights", "binary_cross_entropy",
     lambda: (_normal((4, 5), 0, 3), _bits((4, 5), 1), _uniform((4, 5), 2, 0, 2)), {}),
    ("bce_probs", "binary_cross_entropy",
     lambda: (_uniform((4, 5), 0, 0.02, 0.98), _bits((4, 5), 1)), {"with_logits": False}),
    ("bce_probs_soft_targets_weights", "binary_cross_entropy",
     lambda: (_uniform((4, 5), 0, 0.02, 0.98), _uniform((4, 5), 1, 0, 1),
              _uniform((4, 5), 2, 0, 2)), {"with_logits": False}),
    ("l1", "l1_loss", lambda: (_normal((4, 5), 0), _normal((4, 5), 1)), {}),
    ("mse", "mse_loss", lambda: (_normal((4, 5), 0), _normal((4, 5), 1)), {}),
    ("mse_3d", "mse_loss", lambda: (_normal((2, 3, 4), 0), _normal((2, 3, 4), 1)), {}),
    ("nll", "nll_loss", lambda: (_log_probs((6, 5), 0), _classes((6,), 5, 1)), {}),
    ("nll_axis0", "nll_loss",
     lambda: (_log_probs((5, 6), 0, axis=0), _classes((6,), 5, 1)), {"axis": 0}),
    ("gnll", "gaussian_nll_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1), _uniform((4, 5), 2, 0.1, 2)), {}),
    ("gnll_full", "gaussian_nll_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1), _uniform((4, 5), 2, 0.1, 2)),
     {"full": True}),
    ("gnll_eps_clamps", "gaussian_nll_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1), _uniform((4, 5), 2, 0.0, 0.2)),
     {"eps": 0.1}),
    ("kl", "kl_div_loss", lambda: (_log_probs((4, 5), 0), _log_probs((4, 5), 1)), {}),
    ("kl_axis0", "kl_div_loss",
     lambda: (_log_probs((4, 5), 0, axis=0), _log_probs((4, 5), 1, axis=0)), {"axis": 0}),
    ("smooth_l1", "smooth_l1_loss", lambda: (_normal((4, 5), 0), _normal((4, 5), 1)), {}),
    ("smooth_l1_beta", "smooth_l1_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1)), {"beta": 0.4}),
    ("triplet", "triplet_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1), _normal((4, 5), 2)), {}),
    ("triplet_p1_margin", "triplet_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1), _normal((4, 5), 2)),
     {"p": 1, "margin": 0.5}),
    ("triplet_p3_axis0_eps", "triplet_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1), _normal((4, 5), 2)),
     {"p": 3, "axis": 0, "eps": 1e-3}),
    ("hinge", "hinge_loss", lambda: (_normal((4, 5), 0), _signs((4, 5), 1)), {}),
    ("huber", "huber_loss", lambda: (_normal((4, 5), 0, 2), _normal((4, 5), 1)), {}),
    ("huber_delta", "huber_loss",
     lambda: (_normal((4, 5), 0, 2), _normal((4, 5), 1)), {"delta": 0.3}),
    ("log_cosh", "log_cosh_loss", lambda: (_normal((4, 5), 0, 3), _normal((4, 5), 1)), {}),
    ("cosine", "cosine_similarity_loss",
     lambda: (_normal((4, 5), 0), _normal((4, 5), 1)), {}),
    ("cosine_axis_last_3d", "cosine_similarity_loss",
     lambda: (_normal((2, 3, 4), 0), _normal((2, 3, 4), 1)), {"axis": -1}),
    ("cosine_axis0_eps", "cosine_similarity_loss",
     lambda: (_normal((4, 5), 0, 0.01), _normal((4, 5), 1, 0.01)), {"axis": 0, "eps": 0.1}),
    ("margin_ranking", "margin_ranking_loss",
     lambda: (_normal((6,), 0), _normal((6,), 1), _signs((6,), 2)), {}),
    ("margin_ranking_margin", "margin_ranking_loss",
     lambda: (_normal((6,), 0), _normal((6,), 1), _signs((6,), 2)), {"margin": 0.5}),
]
CIDS = [c[0] for c in CASES]


def _inputs(make, dt):
    """(Ember, MLX) argument lists; float inputs in dtype `dt`, int targets untouched."""
    es, ms, floats = [], [], []
    for i, a in enumerate(make()):
        e, m = mx.array(a), mlx.array(a)
        if a.dtype == np.float32:
            e, m = e.astype(getattr(mx, dt)), m.astype(getattr(mlx, dt))
            floats.append(i)
        es.append(e)
        ms.append(m)
    return es, ms, floats


def _split(args, kw, name):
    # weights are a keyword (cross_entropy / binary_cross_entropy take them third)
    if name in ("cross_entropy", "binary_cross_entropy") and len(args) == 3:
        return args[:2], {**kw, "weights": args[2]}
    return args, kw


def test_covers_every_loss():
    assert sorted(nn.losses.__all__) == ALL
    assert {c[1] for c in CASES} == set(ALL)
    for n in ALL:
        assert hasattr(mnn.losses, n)


@pytest.mark.parametrize("reduction", REDUCTIONS + [None])
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("cid,name,make,kw", CASES, ids=CIDS)
def test_forward(cid, name, make, kw, dt, reduction):
    es, ms, _ = _inputs(make, dt)
    kw = kw if reduction is None else {**kw, "reduction": reduction}  # None: the default
    ea, ekw = _split(es, kw, name)
    ma, mkw = _split(ms, kw, name)
    assert_same(getattr(nn.losses, name)(*ea, **ekw), getattr(mnn.losses, name)(*ma, **mkw),
                msg=cid)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("cid,name,make,kw", CASES, ids=CIDS)
def test_grad(cid, name, make, kw, dt, reduction):
    es, ms, floats = _inputs(make, dt)
    kw = {**kw, "reduction": reduction}
    # weight 'none' outputs so every element's gradient is distinct
    def loss(mod, fw):
        def f(*args):
            ea, ekw = _split(list(args), kw, name)
            out = getattr(mod.losses, name)(*ea, **ekw)
            return (out * fw(out.shape)).sum()
        return f

    def fe(shape):
        return mx.array(_normal(shape, 99))

    def fm(shape):
        return mlx.array(_normal(shape, 99))

    ge = mx.grad(loss(nn, fe), argnums=tuple(floats))(*es)
    gm = mlx.grad(loss(mnn, fm), argnums=tuple(floats))(*ms)
    assert_same(list(ge), list(gm), msg=cid)


def test_weights_promote_dtype():
    # float16 loss times float32 weights is float32, as upstream
    lg, t, w = _normal((4, 3), 0), _classes((4,), 3, 1), _uniform((4,), 2, 0, 1)
    e = nn.losses.cross_entropy(mx.array(lg).astype(mx.float16), mx.array(t),
                                weights=mx.array(w))
    m = mnn.losses.cross_entropy(mlx.array(lg).astype(mlx.float16), mlx.array(t),
                                 weights=mlx.array(w))
    assert_same(e, m, tol_dtype="float16")


def _same_error(fe, fm):
    raises_like(lambda: mx.eval(fe()), fm, same_message=True)


@pytest.mark.parametrize("cid,name,make,kw", CASES, ids=CIDS)
def test_bad_reduction(cid, name, make, kw):
    es, ms, _ = _inputs(make, "float32")
    ea, ekw = _split(es, {**kw, "reduction": "max"}, name)
    ma, mkw = _split(ms, {**kw, "reduction": "max"}, name)
    _same_error(lambda: getattr(nn.losses, name)(*ea, **ekw),
                lambda: getattr(mnn.losses, name)(*ma, **mkw))


def _n(shape, dtype=np.float32, seed=0):
    return _normal(shape, seed).astype(dtype)


# (function, numpy args, kwargs): each raises upstream
BAD = [
    ("cross_entropy", (_n((4, 3)), _n((4,), np.int32)), {"label_smoothing": 1.0}),
    ("cross_entropy", (_n((4, 3)), _n((4,), np.int32)), {"label_smoothing": -0.1}),
    ("cross_entropy", (_n((4, 3)), _n((3,), np.int32)), {}),
    ("cross_entropy", (_n((4, 3)), _n((4, 2))), {}),
    ("cross_entropy", (_n((4, 3)), _n((3,), np.int32)), {"axis": 1}),
    ("cross_entropy", (_n((4, 3)), _n((4,), np.int32)), {"axis": 2}),
    ("cross_entropy", (_n((4, 3)), _n((4,), np.int32)), {"weights": _n((3,))}),
    ("cross_entropy", (_n((4, 3)), _n((4, 3))), {"weights": _n((4, 3))}),
    ("binary_cross_entropy", (_n((4, 3)), _n((3,))), {}),
    ("binary_cross_entropy", (_n((4, 3)), _n((4, 3))), {"weights": _n((4,))}),
    ("binary_cross_entropy", (_n((4,)), _n((4,))), {"weights": _n((4, 1)),
                                                    "with_logits": False}),
    ("l1_loss", (_n((4, 3)), _n((4, 1))), {}),
    ("mse_loss", (_n((4, 3)), _n((3,))), {}),
    ("smooth_l1_loss", (_n((4, 3)), _n((3, 4))), {}),
    ("gaussian_nll_loss", (_n((4, 3)), _n((4, 1)), _n((4, 3))), {}),
    ("gaussian_nll_loss", (_n((4, 3)), _n((4, 3)), _n((4, 1))), {}),
    ("margin_ranking_loss", (_n((4,)), _n((4,)), _n((3,))), {}),
    ("margin_ranking_loss", (_n((4,)), _n((1,)), _n((4,))), {}),
    ("cosine_similarity_loss", (_n((3, 4)), _n((2, 4))), {}),
    ("kl_div_loss", (_n((4, 3)), _n((2, 3))), {}),
    ("triplet_loss", (_n((4, 3)), _n((2, 3)), _n((4, 3))), {}),
    ("cross_entropy", (_n((4, 3)), _n((4,), np.int32)), {"weights": _n((4, 1))}),
    ("nll_loss", (_n((4, 3)), _n((4,), np.int32)), {"axis": 2}),
]


@pytest.mark.parametrize("name,args,kw", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_errors(name, args, kw):
    def call(mod, lib):
        conv = {k: lib.array(v) for k, v in kw.items() if isinstance(v, np.ndarray)}
        return getattr(mod.losses, name)(*[lib.array(a) for a in args], **{**kw, **conv})
    _same_error(lambda: call(nn, mx), lambda: call(mnn, mlx))


def test_shape_error_before_reduction_error():
    # the shape check runs first, so its message wins over the reduction's
    _same_error(lambda: nn.losses.mse_loss(mx.zeros((2,)), mx.zeros((3,)), reduction="x"),
                lambda: mnn.losses.mse_loss(mlx.zeros((2,)), mlx.zeros((3,)), reduction="x"))


def test_defaults_match_upstream():
    import inspect
    for n in ALL:
        ours = inspect.signature(getattr(nn.losses, n))
        theirs = inspect.signature(getattr(mnn.losses, n))
        assert [(p.name, p.default, p.kind) for p in ours.parameters.values()] == \
            [(p.name, p.default, p.kind) for p in theirs.parameters.values()], n


def test_loss_of_matmul_value_and_grad():
    # a loss on a layer's output, differentiated with nn.value_and_grad in both frameworks
    x, t = _normal((8, 4), 0), _classes((8,), 3, 1)
    w = _normal((3, 4), 2)
    ew, mw = {"w": mx.array(w)}, {"w": mlx.array(w)}

    def fe(p):
        return nn.losses.cross_entropy(mx.array(x) @ p["w"].T, mx.array(t),
                                       label_smoothing=0.1, reduction="mean")

    def fm(p):
        return mnn.losses.cross_entropy(mlx.array(x) @ p["w"].T, mlx.array(t),
                                        label_smoothing=0.1, reduction="mean")

    ve, ge = mx.value_and_grad(fe)(ew)
    vm, gm = mlx.value_and_grad(fm)(mw)
    assert_same(ve, vm)
    assert_same(ge["w"], gm["w"])


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("kw,fused", [({}, True), ({"axis": 1}, True),
                                      ({"label_smoothing": 0.1}, False),
                                      ({"axis": 0}, False)])
def test_cross_entropy_gpu_path(monkeypatch, kw, fused, dt):
    # with the GPU as default device, class-index targets over the last axis take the
    # fused mx.fast.cross_entropy (as upstream); seen here through a patched default
    calls = []
    fast = mx.fast.cross_entropy
    monkeypatch.setattr(mx, "default_device", lambda: mx.gpu)
    monkeypatch.setattr(mx.fast, "cross_entropy", lambda *a, **k: calls.append(1) or fast(*a))
    shape = (6, 5) if kw.get("axis", -1) != 0 else (5, 6)
    lg, t = _normal(shape, 0, 3), _classes((6,), 5, 1)
    e = nn.losses.cross_entropy(mx.array(lg).astype(getattr(mx, dt)), mx.array(t), **kw)
    m = mnn.losses.cross_entropy(mlx.array(lg).astype(getattr(mlx, dt)), mlx.array(t), **kw)
    assert len(calls) == int(fused)
    assert_same(e, m)
    ge = mx.grad(lambda x: nn.losses.cross_entropy(x, mx.array(t), **kw).sum())(
        mx.array(lg))
    gm = mlx.grad(lambda x: mnn.losses.cross_entropy(x, mlx.array(t), **kw).sum())(
        mlx.array(lg))
    assert_same(ge, gm)


_INF, _NAN = np.inf, np.nan
_SPECIAL_LOGITS = np.array([[0, 1, 2], [-_INF, 0, 1], [_INF, 0, 1], [_NAN, 0, 1],
                            [-_INF, -_INF, 0], [_INF, _INF, 0], [-_INF, -_INF, -_INF],
                            [1e30, -1e30, 0]], np.float32)
_SPECIAL = np.array([0, _INF, -_INF, _NAN, 1e30, -1e30, 1e4, 100, 1e-30], np.float32)
_PROB_EDGES = np.array([0, 1, 1e-45, 1e-8, 1 - 1e-8, 0.5, _NAN, 1e-30], np.float32)


def _f(x):
    return np.asarray(x, np.float32)


# (id, function, numpy args (float32 ones cast to the test dtype), kwargs): special values,
# empty batches, target dtypes, broadcasting, arguments at their limits
EDGES = [
    ("ce_special_idx", "cross_entropy",
     lambda: (_SPECIAL_LOGITS, np.full(8, 2, np.int32)), {}),
    ("ce_special_idx_smooth", "cross_entropy",
     lambda: (_SPECIAL_LOGITS, np.zeros(8, np.int32)), {"label_smoothing": 0.1}),
    ("ce_special_probs", "cross_entropy",
     lambda: (_SPECIAL_LOGITS, np.tile(_f([0.2, 0.3, 0.5]), (8, 1))), {}),
    ("ce_special_onehot", "cross_entropy",
     lambda: (_SPECIAL_LOGITS, np.tile(_f([0, 0, 1]), (8, 1))), {}),
    ("ce_smooth_near_1", "cross_entropy",
     lambda: (_normal((4, 3), 0, 3), _classes((4,), 3, 1)), {"label_smoothing": 0.999999}),
    ("ce_probs_smooth_near_1", "cross_entropy",
     lambda: (_normal((4, 3), 0, 3), _probs((4, 3), 1)), {"label_smoothing": 1 - 1e-12}),
    ("ce_int8_targets", "cross_entropy",
     lambda: (_normal((4, 3), 0), _classes((4,), 3, 1).astype(np.int8)), {}),
    ("ce_uint32_targets", "cross_entropy",
     lambda: (_normal((4, 3), 0), _classes((4,), 3, 1).astype(np.uint32)), {}),
    ("ce_bool_probs", "cross_entropy", lambda: (_normal((4, 3), 0), _probs((4, 3), 1) > 0.3),
     {}),
    ("ce_probs_broadcast", "cross_entropy",
     lambda: (_normal((4, 3), 0), _probs((1, 3), 1)), {}),
    ("ce_weights_scalar", "cross_entropy",
     lambda: (_normal((4, 3), 0), _classes((4,), 3, 1), _f(2.0)), {}),
    ("ce_1d", "cross_entropy", lambda: (_normal((3,), 0), np.int32(1)), {}),
    ("ce_empty", "cross_entropy", lambda: (np.zeros((0, 3), np.float32),
                                           np.zeros((0,), np.int32)), {}),
    ("ce_empty_probs", "cross_entropy", lambda: (np.zeros((0, 3), np.float32),
                                                 np.zeros((0, 3), np.float32)), {}),
    ("ce_empty_classes", "cross_entropy",
     lambda: (np.zeros((4, 0), np.float32), np.zeros((4, 0), np.float32)), {}),
    ("bce_special_logits", "binary_cross_entropy",
     lambda: (_SPECIAL, _bits((9,), 1)), {"reduction": "none"}),
    ("bce_probs_0_1", "binary_cross_entropy",
     lambda: (_PROB_EDGES, _f([0, 1, 0, 1, 0, 1, 0, 1])),
     {"with_logits": False, "reduction": "none"}),
    ("bce_probs_0_1_flipped", "binary_cross_entropy",
     lambda: (_PROB_EDGES, _f([1, 0, 1, 0, 1, 0, 1, 0])),
     {"with_logits": False, "reduction": "none"}),
    ("bce_bool_targets", "binary_cross_entropy",
     lambda: (_normal((6,), 0), _bits((6,), 1) > 0), {}),
    ("bce_scalar_target", "binary_cross_entropy", lambda: (_normal((6,), 0), _f(1.0)), {}),
    ("bce_empty", "binary_cross_entropy",
     lambda: (np.zeros(0, np.float32), np.zeros(0, np.float32)), {}),
    ("nll_special", "nll_loss",
     lambda: (_f([[-_INF, 0, _NAN], [-_INF, 0, _NAN]]), np.int32([0, 2])), {}),
    ("nll_empty", "nll_loss", lambda: (np.zeros((0, 3), np.float32),
                                       np.zeros((0,), np.int32)), {"reduction": "mean"}),
    ("gnll_nonpositive_vars", "gaussian_nll_loss",
     lambda: (_normal((4,), 0), _normal((4,), 1), _f([0, -1, 1e-8, _INF])), {"eps": 0.0}),
    ("gnll_broadcast_vars", "gaussian_nll_loss",
     lambda: (_normal((4,), 0), _normal((4,), 1), _f(1.0)), {}),
    ("kl_neg_inf", "kl_div_loss", lambda: (_f([[-_INF, 0.0]]), _f([[-_INF, 0.0]])), {}),
    ("l1_special", "l1_loss", lambda: (_SPECIAL, np.zeros(9, np.float32)), {}),
    ("mse_special", "mse_loss", lambda: (_SPECIAL, np.zeros(9, np.float32)), {}),
    ("mse_empty", "mse_loss", lambda: (np.zeros(0, np.float32), np.zeros(0, np.float32)), {}),
    ("smooth_l1_special", "smooth_l1_loss",
     lambda: (_SPECIAL, np.zeros(9, np.float32)), {"beta": 0.5}),
    ("smooth_l1_beta0", "smooth_l1_loss",
     lambda: (_f([0, 0.25, -1]), np.zeros(3, np.float32)), {"beta": 0.0}),
    ("huber_special", "huber_loss", lambda: (_SPECIAL, np.zeros(9, np.float32)), {}),
    ("huber_delta0", "huber_loss",
     lambda: (_f([0, 0.25, -1]), np.zeros(3, np.float32)), {"delta": 0.0}),
    ("huber_broadcast", "huber_loss", lambda: (_normal((3, 4), 0), _normal((4,), 1)), {}),
    ("log_cosh_huge", "log_cosh_loss",
     lambda: (_f([1e4, -1e4, 89, 90, 0, 1e30]), np.zeros(6, np.float32)), {}),
    ("log_cosh_special", "log_cosh_loss", lambda: (_SPECIAL, np.zeros(9, np.float32)), {}),
    ("hinge_broadcast", "hinge_loss", lambda: (_normal((3, 4), 0), _signs((4,), 1)), {}),
    ("triplet_p0", "triplet_loss",
     lambda: (_normal((3, 4), 0), _normal((3, 4), 1), _normal((3, 4), 2)), {"p": 1.5}),
    ("triplet_broadcast", "triplet_loss",
     lambda: (_normal((3, 4), 0), _normal((1, 4), 1), _normal((3, 4), 2)), {}),
    ("triplet_same_eps0", "triplet_loss",
     lambda: (_normal((3, 4), 0), _normal((3, 4), 0), _normal((3, 4), 2)), {"eps": 0.0}),
    ("cosine_zero_vector", "cosine_similarity_loss",
     lambda: (np.zeros((2, 3), np.float32), np.ones((2, 3), np.float32)), {}),
    ("cosine_1d_axis0", "cosine_similarity_loss",
     lambda: (_normal((4,), 0), _normal((4,), 1)), {"axis": 0}),
    ("margin_ranking_special", "margin_ranking_loss",
     lambda: (_SPECIAL[:4], _SPECIAL[4:8], _signs((4,), 2)), {"margin": 0.5}),
]


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("cid,name,make,kw", EDGES, ids=[c[0] for c in EDGES])
@on_cpu  # (special values: upstream's CPU bits, nan signs included)
def test_edges(cid, name, make, kw, dt):
    es, ms, floats = _inputs(make, dt)
    ea, ekw = _split(es, kw, name)
    ma, mkw = _split(ms, kw, name)
    try:
        m = getattr(mnn.losses, name)(*ma, **mkw)
        mlx.eval(m)
    except ValueError:  # refused upstream: refused alike here
        _same_error(lambda: getattr(nn.losses, name)(*ea, **ekw),
                    lambda: getattr(mnn.losses, name)(*ma, **mkw))
        return
    assert_same(getattr(nn.losses, name)(*ea, **ekw), m, msg=cid)

    def total(mod, args):
        def f(*xs):
            full = list(args)
            for i, x in zip(floats, xs):
                full[i] = x
            a, k = _split(full, kw, name)
            return getattr(mod.losses, name)(*a, **k).sum()
        return f

    ge = mx.grad(total(nn, es), argnums=tuple(floats))(*[es[i] for i in floats])
    gm = mlx.grad(total(mnn, ms), argnums=tuple(floats))(*[ms[i] for i in floats])
    assert_same(list(ge), list(gm), msg=cid)


def test_mse_grad_near_float_max():
    """square's derivative multiplies x by 2 * cotangent, as upstream: no overflow."""
    x = _f([3.4e38, 1.0])
    ge = mx.grad(lambda a: nn.losses.mse_loss(a, mx.zeros((2,))))(mx.array(x))
    gm = mlx.grad(lambda a: mnn.losses.mse_loss(a, mlx.zeros((2,))))(mlx.array(x))
    assert_same(ge, gm)
