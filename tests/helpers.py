"""Conversions and comparisons between Ember, upstream MLX and numpy."""

import functools
import re

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx

TOL = {"float64": (1e-9, 1e-9), "float32": (2e-5, 2e-5), "float16": (5e-3, 5e-3),
       "bfloat16": (3e-2, 3e-2), "complex64": (2e-5, 2e-5)}


def to_ember(x, dt=None):
    if isinstance(x, (int, float, bool, complex)):
        return x
    if dt == "bfloat16" and x.dtype == np.float32:
        return mx.array(x, mx.bfloat16)
    return mx.array(x)


def to_mlx(x, dt=None):
    if isinstance(x, (int, float, bool, complex)):
        return x
    if dt == "bfloat16" and x.dtype == np.float32:
        return mlx.array(x).astype(mlx.bfloat16)
    if isinstance(x, np.ndarray) and x.size == 0:
        # upstream's CPU evaluation of a reduction over an empty axis of an array made from
        # numpy hangs now and then (a lost wakeup); over a lazy mlx.zeros it does not
        return mlx.zeros(x.shape, mlx.array(np.zeros((), x.dtype)).dtype)
    return mlx.array(x)


def np_of(a):
    """numpy value of an Ember or MLX array (bfloat16 as float32)."""
    if isinstance(a, mx.array):
        return np.array(a.astype(mx.float32) if a.dtype == mx.bfloat16 else a)
    if a.dtype == mlx.bfloat16:
        a = a.astype(mlx.float32)
    return np.array(a)


def dtype_name(a):
    return str(a.dtype).split(".")[-1]


def assert_same(e, m, tol_dtype=None, rtol=None, msg=""):
    """Ember result `e` equals MLX result `m`: structure, shape, dtype, values."""
    if isinstance(m, (list, tuple)):
        assert isinstance(e, (list, tuple)) and len(e) == len(m), msg
        for a, b in zip(e, m):
            assert_same(a, b, tol_dtype, rtol, msg)
        return
    if not isinstance(m, mlx.array):
        assert e == m, msg
        return
    assert isinstance(e, mx.array), f"{msg}: got {type(e)}"
    assert tuple(e.shape) == tuple(m.shape), f"{msg}: shape {e.shape} != {m.shape}"
    assert dtype_name(e) == dtype_name(m), f"{msg}: dtype {e.dtype} != {m.dtype}"
    assert_close(np_of(e), np_of(m), tol_dtype or dtype_name(m), rtol, msg)


def assert_close(a, b, dt, rtol=None, msg=""):
    r, at = TOL.get(dt, (0, 0))
    if rtol is not None:
        r = at = rtol
    if a.dtype.kind in "biu" and r == 0:
        np.testing.assert_array_equal(a, b, err_msg=msg)
    else:
        np.testing.assert_allclose(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64),
                                   b, rtol=r, atol=at, equal_nan=True, err_msg=msg)


def on_cpu(fn):
    """Run test `fn` with the CPU as the default device: for the CPU kernels' own
    semantics (upstream's CPU bits), which the GPU kernels need not share."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with mx.stream(mx.cpu):
            return fn(*args, **kwargs)
    return run


def sample_of(rng, shape, dt):
    """Random numpy values of dtype name `dt` (bfloat16 as float32): integers over their
    whole range, floats spread to +-100s."""
    if dt == "bool_":
        return rng.integers(0, 2, shape).astype(bool)
    if dt.startswith(("uint", "int")):
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    if dt == "complex64":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return (rng.standard_normal(shape) * 100).astype("float32" if dt == "bfloat16" else dt)


def raises_like(fe, fm, exc=Exception, same_message=False):
    """Upstream's `fm()` raises `exc`, and Ember's `fe()` raises exactly the same type
    (and, with `same_message`, the same message)."""
    with pytest.raises(exc) as up:
        fm()
    with pytest.raises(up.type) as ours:
        fe()
    assert ours.type is up.type, f"{ours.type} is not {up.type}"
    if same_message:
        assert str(ours.value) == str(up.value)


def errors_alike(f):
    """`f(upstream)` and `f(ember)`, evaluated, raise the same type with the same message
    (upstream's binding TypeErrors also list the argument types: not compared)."""
    with pytest.raises(Exception) as up:
        mlx.eval(f(mlx))
    with pytest.raises(up.type) as got:
        mx.eval(f(mx))
    assert str(got.value) == str(up.value).split("\n\nInvoked with")[0]


# messages of upstream's C++ internals (no words of its own to match): the type only
NO_MESSAGE = ("std::bad_cast",)


def outcome(m, call):
    """(call(m) evaluated, None), or (None, the exception it raised)."""
    try:
        out = call(m)
        m.eval(out)
        return out, None
    except Exception as e:  # noqa: BLE001 - the exception itself is compared
        return None, e


def check_like_upstream(call, rtol=None, whole=False, others=True):
    """`call(m)` gives upstream's result, or raises its exception type: a binding's refusal
    compared less its last line, a bracketed message by its `[op]` head (`whole`: all of
    it), any other message whole (unless not `others`)."""
    want, want_err = outcome(mlx, call)
    got, got_err = outcome(mx, call)
    if want_err is not None:
        assert got_err is not None, f"upstream raised {want_err!r}, Ember returned {got}"
        assert type(got_err) is type(want_err), f"{got_err!r} vs upstream {want_err!r}"
        msg, got_msg = str(want_err), str(got_err)
        if "incompatible function arguments" in msg:
            assert got_msg == msg.split("\n\nInvoked with")[0]
        elif msg.startswith("[") and not whole:
            head = re.match(r"\[[^\]]*\]", msg).group(0)
            assert got_msg.startswith(head), f"{got_msg!r} vs upstream {msg!r}"
        elif msg.startswith("[") or others:
            assert got_msg == msg
        return
    assert got_err is None, f"Ember raised {got_err!r}, upstream returned {want}"
    assert_same(got, want, rtol=rtol)


def same_tree(got, want, path="result"):
    """Ember's result tree `got` is upstream's `want`: the same containers and keys, arrays
    by `assert_same` (float32 to 2e-4, float64 to 1e-6), other leaves equal and of one
    type."""
    if isinstance(want, mlx.array):
        rtol = {mlx.float32: 2e-4, mlx.float64: 1e-6}.get(want.dtype)
        assert_same(got, want, rtol=rtol, msg=path)
    elif isinstance(want, dict):
        assert type(got) is dict and list(got) == list(want), f"{path}: {got!r} vs {want!r}"
        for k in want:
            same_tree(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, (list, tuple)):
        assert type(got).__name__ == type(want).__name__, f"{path}: {type(got)} vs {type(want)}"
        assert len(got) == len(want), f"{path}: length {len(got)} vs {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            same_tree(g, w, f"{path}.{i}")
    else:
        assert got == want and type(got) is type(want), f"{path}: {got!r} vs {want!r}"
