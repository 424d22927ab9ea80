"""Sharded linear layers, sharding helpers and FullyShardedModule against upstream mlx.nn,
in a single process. Layers run with the real (size 1) group; construction and sharding
are also checked with a stand-in group of size 2, which needs no communication."""

import mlx.core as mlx
import mlx.nn as mnn
import mlx.nn.layers.distributed as mdist
import numpy as np
import pytest

import ember.core as mx
import ember.nn as nn
import ember.nn.layers.distributed as edist
from tests.nn.parity import TOL, E, M, assert_tree_same, both, names, raises_like, rand, sync


class FakeGroup:
    """Just what construction and sharding read from a group."""

    def __init__(self, size, rank):
        self._size, self._rank = size, rank

    def size(self):
        return self._size

    def rank(self):
        return self._rank


def loss(model, x):
    out = model(x)
    return (out.astype(mx.float32 if isinstance(out, mx.array) else mlx.float32) ** 2).sum()


def check_pair(e, m, x, dtype="float32", grads=True):
    assert_tree_same(e.parameters(), m.parameters(), 0, msg="params")
    assert names(e.trainable_parameters()) == names(m.trainable_parameters())
    assert repr(e) == repr(m)
    tol = TOL[dtype]
    assert_tree_same(e(E(x, dtype)), m(M(x, dtype)), rtol=tol, msg="forward")
    if grads:
        ve, ge = nn.value_and_grad(e, loss)(e, E(x, dtype))
        vm, gm = mnn.value_and_grad(m, loss)(m, M(x, dtype))
        assert_tree_same(ve, vm, rtol=tol, msg="loss")
        assert_tree_same(ge, gm, rtol=tol * 5, msg="grads")
    gxe = mx.grad(lambda x: loss(e, x))(E(x, dtype))
    gxm = mlx.grad(lambda x: loss(m, x))(M(x, dtype))
    assert_tree_same(gxe, gxm, rtol=tol * 5, msg="grad x")


# --- tensor-parallel linear layers ----------------------------------------------------

@pytest.mark.parametrize("cls", ["AllToShardedLinear", "ShardedToAllLinear"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_sharded_linear(cls, bias, dtype):
    e, m = both(lambda nn: getattr(nn, cls)(12, 8, bias=bias), s=1)
    e.set_dtype(getattr(mx, dtype))
    m.set_dtype(getattr(mlx, dtype))
    check_pair(e, m, rand((3, 12), 2), dtype)


@pytest.mark.parametrize("kind", ["all-to-sharded", "sharded-to-all"])
@pytest.mark.parametrize("segments", [1, 3, [0.25, 0.5]])
@pytest.mark.parametrize("bias", [True, False])
def test_from_linear_and_shard_linear(kind, segments, bias):
    e, m = both(lambda nn: nn.Linear(12, 24, bias=bias), s=3)
    se = edist.shard_linear(e, kind, segments=segments)
    sm = mdist.shard_linear(m, kind, segments=segments)
    assert type(se).__name__ == type(sm).__name__
    check_pair(se, sm, rand((2, 5, 12), 4))
    # the original layer is untouched and still equal to the sharded one (one member)
    assert_tree_same(e.parameters(), m.parameters(), 0)
    x = E(rand((2, 12), 5))
    np.testing.assert_allclose(np.array(e(x)), np.array(se(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ["QuantizedAllToShardedLinear",
                                 "QuantizedShardedToAllLinear"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cfg", [dict(), dict(group_size=32, bits=8),
                                 dict(group_size=32, bits=4, mode="mxfp4"),
                                 dict(group_size=16, bits=4, mode="nvfp4")])
def test_quantized_sharded_linear(cls, bias, cfg):
    e, m = both(lambda nn: getattr(nn, cls)(128, 16, bias=bias, **cfg), s=6)
    assert names(e.trainable_parameters()) == names(m.trainable_parameters()) == []
    check_pair(e, m, rand((3, 128), 7), grads=False)
    e.unfreeze()
    m.unfreeze()
    assert names(e.trainable_parameters()) == names(m.trainable_parameters()) == []


@pytest.mark.parametrize("kind", ["all-to-sharded", "sharded-to-all"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mode", ["affine", "mxfp8"])
def test_from_quantized_linear(kind, bias, mode):
    def build(nn):
        return nn.QuantizedLinear.from_linear(nn.Linear(128, 32, bias=bias), mode=mode)

    e, m = both(build, s=8)
    sync(e, m)
    se = edist.shard_linear(e, kind, segments=2)
    sm = mdist.shard_linear(m, kind, segments=2)
    assert type(se).__name__ == type(sm).__name__
    assert (se.group_size, se.bits, se.mode) == (sm.group_size, sm.bits, sm.mode)
    check_pair(se, sm, rand((4, 128), 9), grads=False)


def test_shard_linear_bad_kind():
    e, m = both(lambda nn: nn.Linear(4, 4))
    raises_like(lambda: edist.shard_linear(e, "rows"),
                lambda: mdist.shard_linear(m, "rows"), ValueError, same_message=True)
    raises_like(lambda: edist.shard_inplace(e, "cols"),
                lambda: mdist.shard_inplace(m, "cols"), ValueError, same_message=True)


# --- sharding with a stand-in group of two ---------------------------------------------

@pytest.mark.parametrize("rank", [0, 1])
@pytest.mark.parametrize("kind", ["all-to-sharded", "sharded-to-all"])
@pytest.mark.parametrize("segments", [1, 3, [0.5]])
def test_shard_two_members(rank, kind, segments):
    ge, gm = FakeGroup(2, rank), FakeGroup(2, rank)
    e, m = both(lambda nn: nn.Linear(12, 24), s=10)
    cls = {"all-to-sharded": "AllToShardedLinear", "sharded-to-all": "ShardedToAllLinear"}
    se = getattr(nn, cls[kind]).from_linear(e, segments=segments, group=ge)
    sm = getattr(mnn, cls[kind]).from_linear(m, segments=segments, group=gm)
    assert_tree_same(se.parameters(), sm.parameters(), 0)
    assert repr(se) == repr(sm)
    # shard_inplace with the same rule
    edist.shard_inplace(e, kind, segments=segments, group=ge)
    mdist.shard_inplace(m, kind, segments=segments, group=gm)
    assert_tree_same(e.parameters(), m.parameters(), 0)


@pytest.mark.parametrize("rank", [0, 1])
def test_shard_inplace_custom_predicate(rank):
    def build(nn):
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.qkv = nn.Linear(8, 24)
                self.out = nn.Linear(8, 8)
                self.layers = [nn.Linear(4, 6)]
        return Block()

    def pred(path, w):
        if path.startswith("qkv"):
            return (0, 3)
        if path.startswith("out"):
            return -1 if w.ndim == 2 else None
        return 0

    e, m = both(build, s=11)
    edist.shard_inplace(e, pred, group=FakeGroup(2, rank))
    mdist.shard_inplace(m, pred, group=FakeGroup(2, rank))
    assert_tree_same(e.parameters(), m.parameters(), 0)


def test_shard_bad_predicate_result():
    e, m = both(lambda nn: nn.Linear(4, 4))
    raises_like(lambda: edist.shard_inplace(e, lambda p, w: [0]),
                lambda: mdist.shard_inplace(m, lambda p, w: [0]), ValueError, same_message=True)


@pytest.mark.parametrize("cls,args", [
    ("AllToShardedLinear", (4, 7)), ("ShardedToAllLinear", (7, 4)),
    ("QuantizedAllToShardedLinear", (64, 7)), ("QuantizedShardedToAllLinear", (65, 4)),
])
def test_indivisible_sizes(cls, args):
    raises_like(lambda: getattr(nn, cls)(*args, group=FakeGroup(2, 0)),
                lambda: getattr(mnn, cls)(*args, group=FakeGroup(2, 0)),
                ValueError, same_message=True)


@pytest.mark.parametrize("cls", ["AllToShardedLinear", "ShardedToAllLinear",
                                 "QuantizedAllToShardedLinear",
                                 "QuantizedShardedToAllLinear"])
def test_two_member_init_and_repr(cls):
    e, m = both(lambda nn: getattr(nn, cls)(128, 32, group=FakeGroup(2, 1)), s=12)
    assert_tree_same(e.parameters(), m.parameters(), 0)
    assert repr(e) == repr(m)


def test_sum_gradients_single_member_is_identity():
    g = mx.distributed.init()
    f = edist.sum_gradients(g)
    x = mx.array([1.0, 2.0])
    assert f(x) is x
    assert edist.sum_gradients(g) is f  # cached per group


def test_split_fractions():
    w = np.arange(24, dtype=np.float32).reshape(2, 12)
    for seg in (3, [4, 8], [0.25, 0.75]):
        pe = edist._split(mx.array(w), seg, 1)
        pm = mdist._split(mlx.array(w), seg, 1)
        assert_tree_same(pe, pm, 0)


# --- FullyShardedModule / fully_shard -----------------------------------------------------

def mlp(nn):
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.LayerNorm(4))


def test_fully_shard_single_member_returns_module():
    e, m = both(mlp)
    assert edist.fully_shard(e) is e
    assert mdist.fully_shard(m) is m


@pytest.mark.parametrize("compute_dtype", [None, "float16", "bfloat16"])
def test_fully_sharded_module_single_member(compute_dtype):
    cd_e = getattr(mx, compute_dtype) if compute_dtype else None
    cd_m = getattr(mlx, compute_dtype) if compute_dtype else None
    e, m = both(mlp, s=13)
    fe = nn.FullyShardedModule(e, compute_dtype=cd_e)
    fm = mnn.FullyShardedModule(m, compute_dtype=cd_m)
    check_pair(fe, fm, rand((3, 8), 14), compute_dtype or "float32")
    # parameters are back to the (here: whole) shards after each call, in their dtype
    assert_tree_same(fe.parameters(), fm.parameters(), 0)
    assert fe._paths == fm._paths
    assert "_paths" not in fe


def test_fully_sharded_as_linear_and_nested():
    e, m = both(lambda nn: nn.Embedding(6, 8), s=15)
    sync(e, m)  # random.normal may differ from upstream's in the last bit
    fe, fm = nn.FullyShardedModule(e), mnn.FullyShardedModule(m)
    x = rand((2, 8), 16)
    assert_tree_same(fe.as_linear(E(x)), fm.as_linear(M(x)), rtol=1e-5)
    ids = np.array([[0, 5]], dtype=np.int32)
    assert_tree_same(fe(mx.array(ids)), fm(mlx.array(ids)), 0)

    # an inner FullyShardedModule keeps its own parameters out of the outer one's list
    def build(nn):
        inner = nn.FullyShardedModule(nn.Linear(8, 8))
        return nn.FullyShardedModule(nn.Sequential(inner, nn.Linear(8, 2)))

    e, m = both(build, s=17)
    assert e._paths == m._paths
    assert repr(e) == repr(m)
    check_pair(e, m, rand((3, 8), 18))


@pytest.mark.parametrize("rank", [0, 1])
def test_fully_sharded_two_members_construction(rank):
    e, m = both(mlp, s=19)
    fe = nn.FullyShardedModule(e, group=FakeGroup(2, rank))
    fm = mnn.FullyShardedModule(m, group=FakeGroup(2, rank))
    assert_tree_same(fe.parameters(), fm.parameters(), 0)
    assert repr(fe) == repr(fm)
    # fully_shard wraps, but not twice, and leaves parameter-free modules alone
    e2, m2 = both(mlp, s=19)
    we = edist.fully_shard(e2, group=FakeGroup(2, rank))
    wm = mdist.fully_shard(m2, group=FakeGroup(2, rank))
    assert type(we).__name__ == type(wm).__name__ == "FullyShardedModule"
    assert edist.fully_shard(we, group=FakeGroup(2, rank)) is we
    relu = nn.ReLU()
    assert edist.fully_shard(relu, group=FakeGroup(2, rank)) is relu


def test_fully_sharded_errors():
    def scalar(nn):
        class S(nn.Module):
            def __init__(self):
                super().__init__()
                self.w = nn.Linear(2, 2).weight
                self.s = (nn.Linear(2, 2).weight * 0).sum()

            def __call__(self, x):
                return x
        return S()

    e, m = both(scalar)
    raises_like(lambda: nn.FullyShardedModule(e),
                lambda: mnn.FullyShardedModule(m), ValueError, same_message=True)
    e, m = both(lambda nn: nn.Linear(3, 5))
    raises_like(lambda: nn.FullyShardedModule(e, group=FakeGroup(2, 0)),
                lambda: mnn.FullyShardedModule(m, group=FakeGroup(2, 0)),
                ValueError, same_message=True)
