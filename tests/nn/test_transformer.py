"""MultiHeadAttention and the Transformer family against upstream mlx.nn."""

import mlx.core as mlx
import mlx.nn as mnn
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
from ember.utils import tree_flatten
from tests.nn.parity import FLOATS, TOL, E, M, assert_tree_same, both, names, raises_like, rand


def check_pair(e, m, inputs, dtype="float32", rtol=None):
    """Same parameters, repr, outputs, and gradients w.r.t. params and float inputs."""
    assert_tree_same(e.parameters(), m.parameters(), 0, msg="init")
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())
    assert repr(e) == repr(m)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    tol = rtol or TOL[dtype]
    ein = [E(x, dtype) for x in inputs]
    min_ = [M(x, dtype) for x in inputs]
    assert_tree_same(e(*ein), m(*min_), rtol=tol, msg="forward")

    def loss(model, *a):
        out = model(*a)
        f32 = mx.float32 if isinstance(out, mx.array) else mlx.float32
        return (out.astype(f32) ** 2).mean()

    ve, ge = nn.value_and_grad(e, loss)(e, *ein)
    vm, gm = mnn.value_and_grad(m, loss)(m, *min_)
    assert_tree_same(ve, vm, rtol=tol, msg="loss")
    assert_tree_same(ge, gm, rtol=tol * 5, msg="grad params")
    return ge, gm


# --- MultiHeadAttention ----------------------------------------------------------------

MHA_ARGS = [
    dict(dims=16, num_heads=4),
    dict(dims=16, num_heads=2, bias=True),
    dict(dims=12, num_heads=3, query_input_dims=5, key_input_dims=7),
    dict(dims=8, num_heads=2, key_input_dims=6, value_input_dims=9, value_dims=10,
         value_output_dims=11, bias=True),
    dict(dims=8, num_heads=1, value_dims=4),
]


def mha_inputs(kw, B=2, Lq=5, Lk=7):
    q = rand((B, Lq, kw.get("query_input_dims") or kw["dims"]), 1)
    kd = kw.get("key_input_dims") or kw["dims"]
    k = rand((B, Lk, kd), 2)
    v = rand((B, Lk, kw.get("value_input_dims") or kd), 3)
    return q, k, v


@pytest.mark.parametrize("kw", MHA_ARGS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_mha_matches_upstream(kw, dtype):
    e, m = both(lambda nn: nn.MultiHeadAttention(**kw), s=4)
    check_pair(e, m, mha_inputs(kw), dtype)


def _mha_fns(kw):
    """(Ember fn, upstream fn) of (queries, keys, values) through one set of weights."""
    e, m = both(lambda nn: nn.MultiHeadAttention(**kw), s=4)
    m.update(tree_unflatten_mlx(e))
    return (lambda q, k, v: e(q, k, v, mask="causal")), (lambda q, k, v: m(q, k, v,
                                                                           mask="causal"))


def tree_unflatten_mlx(e):
    from mlx.utils import tree_unflatten
    return tree_unflatten([(k, mlx.array(np.array(v))) for k, v in tree_flatten(e.parameters())])


def _close(a, b, rtol=1e-4):
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.array(x), np.array(y), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("kw", MHA_ARGS[:3])
def test_mha_input_grads_jvp_vmap(kw):
    """The heads split and merged as single nodes, under every transform, against
    upstream's unflatten/transpose."""
    fe, fm = _mha_fns(kw)
    ins = mha_inputs(kw, Lk=5)
    ie, im = [mx.array(x) for x in ins], [mlx.array(x) for x in ins]

    def loss(f, core):
        return lambda *a: core.sum(f(*a) ** 2)
    _close(mx.grad(loss(fe, mx), (0, 1, 2))(*ie), mlx.grad(loss(fm, mlx), (0, 1, 2))(*im))
    ts = [rand(x.shape, 11 + i) for i, x in enumerate(ins)]
    _close(mx.jvp(fe, ie, [mx.array(t) for t in ts])[1],
           mlx.jvp(fm, im, [mlx.array(t) for t in ts])[1])
    # a batch of batches: vmap over a new leading axis of the queries and values
    big = [rand((3,) + x.shape, 20 + i) for i, x in enumerate(ins)]
    axes = (0, None, 0)
    args_e = [mx.array(b) if a == 0 else x for b, a, x in zip(big, axes, ie)]
    args_m = [mlx.array(b) if a == 0 else x for b, a, x in zip(big, axes, im)]
    _close([mx.vmap(fe, axes)(*args_e)], [mlx.vmap(fm, axes)(*args_m)])
    # second order: the gradient's norm differentiated again
    def gnorm(f, core):
        return lambda *a: core.sum(core.grad(loss(f, core))(*a) ** 2)
    _close(mx.grad(gnorm(fe, mx), (0, 2))(*ie), mlx.grad(gnorm(fm, mlx), (0, 2))(*im),
           rtol=1e-3)


MASKS = {
    "none": lambda: None,
    "additive": lambda: np.triu(np.full((5, 7), -1e9, np.float32), 1),
    "boolean": lambda: np.tril(np.ones((5, 7), bool)),
    "per_head": lambda: rand((2, 4, 5, 7), 9),
    "causal": lambda: "causal",
}


@pytest.mark.parametrize("mask", list(MASKS))
def test_mha_masks(mask):
    kw = dict(dims=16, num_heads=4)
    e, m = both(lambda nn: nn.MultiHeadAttention(**kw), s=5)
    q, k, v = mha_inputs(kw, Lk=7 if mask != "causal" else 5)
    check_pair(e, m, (q, k, v, MASKS[mask]()))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("N", [0, 1, 6])
def test_create_additive_causal_mask(dtype, N):
    e = nn.MultiHeadAttention.create_additive_causal_mask(N, getattr(mx, dtype))
    m = mnn.MultiHeadAttention.create_additive_causal_mask(N, getattr(mlx, dtype))
    assert_tree_same(e, m, 0)
    e = nn.MultiHeadAttention.create_additive_causal_mask(N)
    m = mnn.MultiHeadAttention.create_additive_causal_mask(N)
    assert_tree_same(e, m, 0)


def test_causal_mask_in_attention():
    e, m = both(lambda nn: nn.MultiHeadAttention(8, 2), s=6)
    x = rand((1, 6, 8), 0)
    me = nn.MultiHeadAttention.create_additive_causal_mask(6)
    mm = mnn.MultiHeadAttention.create_additive_causal_mask(6)
    assert_tree_same(e(E(x), E(x), E(x), me), m(M(x), M(x), M(x), mm), rtol=1e-4)


def test_mha_bad_heads():
    raises_like(lambda: nn.MultiHeadAttention(10, 4), lambda: mnn.MultiHeadAttention(10, 4),
                ValueError, same_message=True)


def test_mha_unbatched_input_raises_like_upstream():
    e, m = both(lambda nn: nn.MultiHeadAttention(8, 2))
    x = rand((6, 8), 0)
    raises_like(lambda: e(E(x), E(x), E(x)), lambda: m(M(x), M(x), M(x)), ValueError)


# --- encoder / decoder ----------------------------------------------------------------

VARIANTS = [
    dict(),
    dict(norm_first=False),
    dict(mlp_dims=24, activation=lambda nn: nn.gelu),
    dict(norm_first=False, activation=lambda nn: (lambda x: x * 0.5)),
]


def layer_kwargs(nn, kw):
    kw = dict(kw)
    if "activation" in kw:
        kw["activation"] = kw["activation"](nn)
    return kw


def seqs(B=2, L=5, S=4, D=16):
    return rand((B, L, D), 1), rand((B, S, D), 2)


@pytest.mark.parametrize("kw", VARIANTS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("layer", ["TransformerEncoderLayer", "TransformerDecoderLayer"])
def test_encoder_and_decoder_layer(layer, kw, dtype):
    e, m = both(lambda nn: getattr(nn, layer)(16, 4, **layer_kwargs(nn, kw)), s=7)
    x, mem = seqs()
    mask = np.asarray(mnn.MultiHeadAttention.create_additive_causal_mask(5))
    inputs = (x, mask) if layer == "TransformerEncoderLayer" else (x, mem, mask, None)
    check_pair(e, m, inputs, dtype)


@pytest.mark.parametrize("kw", VARIANTS + [dict(checkpoint=True),
                                           dict(checkpoint=True, norm_first=False)])
def test_encoder_and_decoder(kw):
    x, mem = seqs()
    mask = np.asarray(mnn.MultiHeadAttention.create_additive_causal_mask(5))
    e, m = both(lambda nn: nn.TransformerEncoder(2, 16, 4, **layer_kwargs(nn, kw)), s=9)
    check_pair(e, m, (x, mask))
    e, m = both(lambda nn: nn.TransformerDecoder(3, 16, 4, **layer_kwargs(nn, kw)), s=10)
    check_pair(e, m, (x, mem, mask, None))


@pytest.mark.parametrize("kw", [dict(), dict(norm_first=False, checkpoint=True),
                                dict(mlp_dims=8, activation=lambda nn: nn.gelu)])
@pytest.mark.parametrize("dtype", FLOATS)
def test_transformer(kw, dtype):
    e, m = both(lambda nn: nn.Transformer(16, 4, 2, 1, **layer_kwargs(nn, kw)), s=11)
    tgt, src = seqs(L=5, S=3)  # tgt (2, 5, 16), src (2, 3, 16)
    tgt_mask = np.asarray(mnn.MultiHeadAttention.create_additive_causal_mask(5))
    check_pair(e, m, (src, tgt, None, tgt_mask, None), dtype)


def test_transformer_defaults():
    e, m = both(lambda nn: nn.Transformer(), s=12)
    assert_tree_same(e.parameters(), m.parameters(), 0)
    assert repr(e) == repr(m)
    assert len(e.encoder.layers) == len(e.decoder.layers) == 6
    assert e.encoder.layers[0].linear1.weight.shape == (2048, 512)


def test_transformer_custom_encoder_decoder():
    def build(nn):
        enc = nn.TransformerEncoder(1, 16, 2, norm_first=False)
        dec = nn.TransformerDecoder(2, 16, 2, mlp_dims=20)
        return nn.Transformer(16, 4, custom_encoder=enc, custom_decoder=dec)

    e, m = both(build, s=13)
    assert len(e.encoder.layers) == 1 and len(e.decoder.layers) == 2
    src, tgt = seqs()
    check_pair(e, m, (src, tgt, None, None, None))


@pytest.mark.parametrize("norm_first", [True, False])
def test_dropout_train_and_eval(norm_first):
    e, m = both(lambda nn: nn.TransformerEncoderLayer(16, 4, dropout=0.5,
                                                      norm_first=norm_first), s=14)
    x, _ = seqs()
    # eval mode: dropout is the identity
    e.eval()
    m.eval()
    assert_tree_same(e(E(x), None), m(M(x), None), rtol=1e-4)
    # train mode: outputs differ from eval and, for the same seed, match upstream's
    e.train()
    m.train()
    mx.random.seed(3)
    mlx.random.seed(3)
    ye, ym = e(E(x), None), m(M(x), None)
    assert not np.allclose(np.array(ye), np.array(e.eval()(E(x), None)))
    assert_tree_same(ye, ym, rtol=1e-4)


def test_checkpoint_matches_plain():
    # the checkpointed encoder computes the same values and gradients as the plain one
    e1, _ = both(lambda nn: nn.TransformerEncoder(2, 16, 4, checkpoint=True), s=15)
    e2, _ = both(lambda nn: nn.TransformerEncoder(2, 16, 4), s=15)
    x, _ = seqs()

    def loss(model, x):
        return (model(x, None) ** 2).sum()

    v1, g1 = nn.value_and_grad(e1, loss)(e1, E(x))
    v2, g2 = nn.value_and_grad(e2, loss)(e2, E(x))
    for (k, a), (_, b) in zip(tree_flatten(g1), tree_flatten(g2)):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(np.array(v1), np.array(v2), rtol=1e-6)
