"""Every op in the database, compiled: the same values, dtypes and shapes as eager Ember on
the same inputs, or the same exception type. Where only the compiled call raises, upstream's
compiled call must raise the same type (an op that reads values while tracing).

All samples of the op's first dtype run, and the first sample of each other dtype. Array
inputs are the compiled function's arguments; Python scalars are constants it closes over.
"""

import zlib

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import to_ember, to_mlx
from tests.opdb import OPS


def _call(op, mod, xs):
    """op.fn compiled over the array inputs `xs` (scalars closed over)."""
    pos = [i for i, x in enumerate(xs) if isinstance(x, mod.array)]

    def f(*arrays):
        args = list(xs)
        for i, a in zip(pos, arrays):
            args[i] = a
        return op.fn(mod, *args)
    return f, [xs[i] for i in pos]


def _run(fn, *args):
    try:
        out = fn(*args)
        mx.eval(out) if _is_ember(out) else mlx.eval(out)
        return out, None
    except Exception as err:  # noqa: BLE001 - compared by the caller
        return None, err


def _is_ember(out):
    while isinstance(out, (list, tuple)) and out:
        out = out[0]
    return isinstance(out, mx.array)


def _np(a):
    if a.dtype == mx.bfloat16:
        a = a.astype(mx.float32)
    return np.array(a)


def _same(got, want, msg):
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), msg
        for g, w in zip(got, want):
            _same(g, w, msg)
        return
    if not isinstance(want, mx.array):
        assert got == want, msg
        return
    assert isinstance(got, mx.array), f"{msg}: {type(got)}"
    assert got.shape == want.shape, f"{msg}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{msg}: dtype {got.dtype} != {want.dtype}"
    # the same kernels on the same inputs: bit-for-bit the same values
    np.testing.assert_array_equal(_np(got), _np(want), err_msg=msg)


def _samples(op, rng):
    for k, dt in enumerate(op.dtypes):
        samples = op.samples(rng, dt)
        for sample in samples if k == 0 else samples[:1]:
            yield dt, sample


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_compiled_equals_eager(op):
    rng = np.random.default_rng(zlib.crc32((op.name + "compile").encode()))
    for dt, sample in _samples(op, rng):
        msg = f"{op.name} {dt} shapes {[np.shape(x) for x in sample]}"
        xs = [to_ember(x, dt) for x in sample]
        want, werr = _run(op.fn, mx, *xs)
        f, arrays = _call(op, mx, xs)
        cf = mx.compile(f)
        got, gerr = _run(cf, *arrays)
        if werr is not None:
            assert gerr is not None, f"{msg}: eager raised {werr!r}, compiled did not"
            assert type(gerr) is type(werr), f"{msg}: {gerr!r} vs eager {werr!r}"
            continue
        if gerr is not None:
            fm, arrays_m = _call(op, mlx, [to_mlx(x, dt) for x in sample])
            _, uerr = _run(mlx.compile(fm), *arrays_m)
            assert uerr is not None, f"{msg}: compiled raised {gerr!r}; upstream's did not"
            assert type(gerr) is type(uerr), f"{msg}: {gerr!r} vs upstream {uerr!r}"
            continue
        _same(got, want, msg)
        again, err = _run(cf, *arrays)  # a cache hit: the tape without the function
        assert err is None, f"{msg}: second call raised {err!r}"
        _same(again, want, msg + " (cached)")
