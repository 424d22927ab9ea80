"""Every op in the database: forward parity with upstream MLX in each dtype, vjp and jvp
against float64 central differences and upstream's own vjp/jvp, vmap against a loop."""

import zlib

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import TOL, assert_close, assert_same, np_of, to_ember, to_mlx
from tests.opdb import OPS


def _rng(op, salt=""):
    return np.random.default_rng(zlib.crc32((op.name + salt).encode()))


def _rtol(op, dt):
    # an op's own tolerance loosens the dtype's, never tightens it below its precision
    return op.rtol and max(op.rtol, TOL.get(dt, (0, 0))[0])


def _listify(r):
    return list(r) if isinstance(r, (list, tuple)) else [r]


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_forward(op):
    rng = _rng(op)
    for dt in op.dtypes:
        for i, sample in enumerate(op.samples(rng, dt)):
            msg = f"{op.name} {dt} sample {i} shapes {[np.shape(x) for x in sample]}"
            try:
                expected = op.fn(mlx, *[to_mlx(x, dt) for x in sample])
                if isinstance(expected, mlx.array):
                    mlx.eval(expected)
            except Exception as err:  # upstream rejects it: so must we, the same way
                with pytest.raises(type(err)):
                    r = op.fn(mx, *[to_ember(x, dt) for x in sample])
                    mx.eval(r)
                continue
            got = op.fn(mx, *[to_ember(x, dt) for x in sample])
            assert_same(got, expected, rtol=_rtol(op, dt), msg=msg)


def _float_samples(op, rng):
    return [s for s in (op.fd_samples or op.samples)(rng, "float32")]


def _argnums(op, sample):
    nums = op.grad_argnums if op.grad_argnums is not None else range(len(sample))
    return [i for i in nums if np.asarray(sample[i]).dtype.kind == "f"]


def _partial(op, mod, sample, argnums, conv):
    fixed = [conv(x) for x in sample]

    def f(*xs):
        args = list(fixed)
        for i, x in zip(argnums, xs):
            args[i] = x
        return op.fn(mod, *args)
    return f


GRAD_OPS = [op for op in OPS if op.grad]


@pytest.mark.parametrize("op", GRAD_OPS, ids=repr)
def test_vjp_jvp_match_upstream(op):
    rng = _rng(op, "grad")
    for sample in _float_samples(op, rng):
        nums = _argnums(op, sample)
        if not nums:
            continue
        f_m = _partial(op, mlx, sample, nums, to_mlx)
        f_e = _partial(op, mx, sample, nums, to_ember)
        prim_m = [mlx.array(sample[i]) for i in nums]
        prim_e = [mx.array(sample[i]) for i in nums]
        outs_m = _listify(f_m(*prim_m))
        cots = [rng.standard_normal(o.shape).astype(np.float32) for o in outs_m]
        tans = [rng.standard_normal(np.shape(sample[i])).astype(np.float32) for i in nums]
        _, vm = mlx.vjp(lambda *xs: _listify(f_m(*xs)), prim_m, [to_mlx(c) for c in cots])
        _, ve = mx.vjp(lambda *xs: _listify(f_e(*xs)), prim_e, [mx.array(c) for c in cots])
        for a, b in zip(ve, vm):
            assert_same(a, b, rtol=op.rtol or 1e-4, msg=f"{op.name} vjp")
        _, jm = mlx.jvp(lambda *xs: _listify(f_m(*xs)), prim_m, [to_mlx(t) for t in tans])
        _, je = mx.jvp(lambda *xs: _listify(f_e(*xs)), prim_e, [mx.array(t) for t in tans])
        for a, b in zip(je, jm):
            assert_same(a, b, rtol=op.rtol or 1e-4, msg=f"{op.name} jvp")


def _f64(x):
    # numpy float64 would become float32 (as upstream converts it): ask for float64
    x = np.asarray(x)
    return mx.array(x, mx.float64) if x.dtype.kind == "f" else to_ember(x)


@pytest.mark.parametrize("op", GRAD_OPS, ids=repr)
def test_grads_match_finite_differences(op):
    rng = _rng(op, "fd")
    h = 1e-6
    for sample in _float_samples(op, rng):
        sample = [np.asarray(x).astype(np.float64) if np.asarray(x).dtype.kind == "f" else x
                  for x in sample]
        nums = _argnums(op, sample)
        if not nums:
            continue
        f = _partial(op, mx, sample, nums, _f64)
        prim = [_f64(sample[i]) for i in nums]
        tans = [np.asarray(rng.standard_normal(np.shape(sample[i]))) for i in nums]
        outs, jv = mx.jvp(lambda *xs: _listify(f(*xs)), prim, [_f64(t) for t in tans])
        plus = _listify(f(*[_f64(sample[i] + h * t) for i, t in zip(nums, tans)]))
        minus = _listify(f(*[_f64(sample[i] - h * t) for i, t in zip(nums, tans)]))
        for j, p, m in zip(jv, plus, minus):
            fd = (np_of(p) - np_of(m)) / (2 * h)
            assert_close(np_of(j), fd, "fd", rtol=1e-4, msg=f"{op.name} jvp vs fd")
        cots = [np.asarray(rng.standard_normal(o.shape)) for o in outs]
        _, vj = mx.vjp(lambda *xs: _listify(f(*xs)), prim, [_f64(c) for c in cots])
        lhs = sum(float(np.sum(c * np_of(j))) for c, j in zip(cots, jv))
        rhs = sum(float(np.sum(np_of(v) * t)) for v, t in zip(vj, tans))
        assert abs(lhs - rhs) <= 1e-6 * max(1.0, abs(lhs)), f"{op.name}: <c, Jt> != <J^T c, t>"


@pytest.mark.parametrize("op", [op for op in OPS if op.vmap], ids=repr)
def test_vmap_matches_loop(op):
    rng = _rng(op, "vmap")
    dt = op.dtypes[0]
    draws = [op.samples(rng, dt) for _ in range(3)]
    for k in range(len(draws[0])):
        batch = [draws[b][k] for b in range(3)]
        if any(np.shape(x) != np.shape(y) for x, y in zip(batch[0], batch[1])):
            continue
        stacked = [to_ember(np.stack([b[i] for b in batch]), dt) for i in range(len(batch[0]))]
        got = _listify(mx.vmap(lambda *xs: op.fn(mx, *xs))(*stacked))
        loop = [_listify(op.fn(mx, *[to_ember(x, dt) for x in b])) for b in batch]
        for j, g in enumerate(got):
            want = np.stack([np_of(lp[j]) for lp in loop])
            assert tuple(g.shape) == want.shape, f"{op.name} vmap shape"
            assert_close(np_of(g), want, dt, rtol=op.rtol, msg=f"{op.name} vmap")
