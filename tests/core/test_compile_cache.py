"""When a compiled function traces again: each case makes a sequence of calls, counting
how often the Python function runs, and the counts after each call must be upstream's.
Then Ember's own cache: the LRU bound, the counters, sharing between wrappers."""

import gc

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from ember.core.transforms import compile as C

SEQUENCES = []


def sequence(f):
    SEQUENCES.append(pytest.param(f, id=f.__name__))
    return f


def _counted(fn):
    count = [0]

    def f(*args, **kwargs):
        count[0] += 1
        return fn(*args, **kwargs)
    return f, count


def _counts(case, m):
    """The trace count after each call of the case's calls."""
    f, count = _counted(case.fun(m))
    cf = m.compile(f, **case.kwargs(m)) if hasattr(case, "kwargs") else m.compile(f)
    seen = []
    for call in case.calls(m):
        out = cf(*call[0], **call[1]) if isinstance(call, tuple) and len(call) == 2 and \
            isinstance(call[1], dict) else cf(*call)
        m.eval(out)
        seen.append(count[0])
    return seen


def ones(m, *shape, dtype=None):
    return m.ones(shape, dtype=dtype or m.float32)


class case:
    def __init__(self, fun, calls, **kwargs):
        self.fun, self.calls = fun, calls
        if kwargs:
            self.kwargs = lambda m: {k: v(m) if callable(v) else v for k, v in kwargs.items()}


CASES = {
    "same_call": case(lambda m: lambda x: x * 2, lambda m: [(ones(m, 2),)] * 3),
    "shape": case(lambda m: lambda x: x * 2,
                  lambda m: [(ones(m, 2),), (ones(m, 3),), (ones(m, 2),), (ones(m, 2, 1),)]),
    "dtype": case(lambda m: lambda x: x * 2,
                  lambda m: [(ones(m, 2),), (ones(m, 2, dtype=m.int32),),
                             (ones(m, 2, dtype=m.float16),), (ones(m, 2),)]),
    "constants": case(lambda m: lambda x, c: x * c,
                      lambda m: [(ones(m, 2), 2), (ones(m, 2), 2), (ones(m, 2), 3),
                                 (ones(m, 2), 2.0), (ones(m, 2), True), (ones(m, 2), 1),
                                 (ones(m, 2), 1.0), (ones(m, 2), -0.0), (ones(m, 2), 0.0)]),
    "strings_and_none": case(lambda m: lambda x, s: x,
                             lambda m: [(ones(m, 2), "a"), (ones(m, 2), "b"),
                                        (ones(m, 2), "a"), (ones(m, 2), None),
                                        (ones(m, 2), None)]),
    "array_or_constant": case(lambda m: lambda x, c: x * c,
                              lambda m: [(ones(m, 2), 2.0), (ones(m, 2), ones(m, 2)),
                                         (ones(m, 2), 2.0)]),
    "list_or_tuple": case(lambda m: lambda t: t[0] + t[1],
                          lambda m: [([ones(m, 2), ones(m, 2)],), ((ones(m, 2), ones(m, 2)),),
                                     ([ones(m, 2), ones(m, 2), ones(m, 2)],)]),
    "dict_keys": case(lambda m: lambda d: d["a"] + d["b"],
                      lambda m: [({"a": ones(m, 2), "b": ones(m, 2)},),
                                 ({"b": ones(m, 2), "a": ones(m, 2)},),
                                 ({"a": ones(m, 2), "b": ones(m, 2), "c": 1},),
                                 ({"a": ones(m, 2), "b": ones(m, 2)},)]),
    "keywords": case(lambda m: lambda x, **kw: x + sum(kw.values()),
                     lambda m: [((ones(m, 2),), {"a": ones(m, 2), "b": ones(m, 2)}),
                                ((ones(m, 2),), {"b": ones(m, 2), "a": ones(m, 2)}),
                                ((ones(m, 2),), {"a": ones(m, 2), "b": ones(m, 2)}),
                                ((ones(m, 2),), {"a": ones(m, 2), "c": ones(m, 2)}),
                                ((), {"x": ones(m, 2), "a": ones(m, 2), "b": ones(m, 2)})]),
    "shapeless": case(lambda m: lambda x: m.exp(x) * 2,
                      lambda m: [(ones(m, 2),), (ones(m, 5),), (ones(m, 5, 2),),
                                 (ones(m, 3, 7),), (ones(m, 3, dtype=m.int32),)],
                      shapeless=True),
    "inputs_state_shape": case(
        lambda m: lambda x: x * 2,
        lambda m: [(ones(m, 2),), (ones(m, 2),)],
        inputs=lambda m: [ones(m, 3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_trace_counts(name):
    c = CASES[name]
    assert _counts(c, mx) == _counts(c, mlx)


def test_state_shape_change_retraces():
    for m in (mx, mlx):
        state = [m.ones((2,))]
        f, count = _counted(lambda x: x + state[0])
        cf = m.compile(f, inputs=state, outputs=state)
        m.eval(cf(m.ones((2,))))
        state[0] = m.ones((3,))
        m.eval(cf(m.ones((3,))))
        m.eval(cf(m.ones((3,))))
        assert count[0] == 2, m


def test_side_effects_run_only_when_tracing():
    log = []

    def f(x):
        log.append(x.shape)
        return x + 1

    cf = mx.compile(f)
    for _ in range(3):
        mx.eval(cf(mx.ones((2,))))
    assert log == [(2,)]


def test_wrappers_of_one_function_share_its_cache():
    for m in (mx, mlx):
        f, count = _counted(lambda x: x * 2)
        a, b = m.compile(f), m.compile(f)
        m.eval(a(m.ones((2,))))
        m.eval(b(m.ones((2,))))
        assert count[0] == 1
        del a
        gc.collect()
        m.eval(b(m.ones((2,))))  # the cache went with `a`
        assert count[0] == 2


# -- Ember's cache: bound, counters ------------------------------------------------------------

@pytest.fixture
def small_cache():
    before = C.cache_size()
    C.set_cache_size(2)
    yield
    C.set_cache_size(before)


def test_lru_bound_and_counters(small_cache):
    f, count = _counted(lambda x: x * 2)
    cf = mx.compile(f)
    for n in (1, 2, 1, 3, 1, 2):
        mx.eval(cf(mx.ones((n,))))
    # 1, 2 traced; 1 hit; 3 traced (evicts 2); 1 hit; 2 traced again (evicts 3)
    assert count[0] == 4
    s = C.stats(cf)
    assert s == {"hits": 2, "misses": 4, "recompiles": 3, "evictions": 2, "entries": 2}
    assert [t.shape[t.inputs[0]] for t in C.tapes(cf)] == [(1,), (2,)]


def test_global_stats_add_up():
    before = C.stats()
    cf = mx.compile(lambda x: x - 1)
    for n in (1, 1, 2):
        mx.eval(cf(mx.ones((n,))))
    after = C.stats()
    assert after["hits"] - before["hits"] == 1
    assert after["misses"] - before["misses"] == 2
    assert after["recompiles"] - before["recompiles"] == 1


def test_cache_size_must_be_positive():
    with pytest.raises(ValueError):
        C.set_cache_size(0)
    with pytest.raises(ValueError):
        C.set_cache_size(2.5)


def test_clear_cache_retraces():
    f, count = _counted(lambda x: x * 3)
    cf = mx.compile(f)
    mx.eval(cf(mx.ones((2,))))
    C.clear_cache()
    mx.eval(cf(mx.ones((2,))))
    assert count[0] == 2


def test_cache_size_from_environment():
    import subprocess
    import sys
    code = "from ember.core.transforms import compile as C; print(C.cache_size())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"EMBER_COMPILE_CACHE_SIZE": "5", "PATH": ""},
                         cwd=C.__file__.rsplit("/ember/", 1)[0])
    assert out.stdout.split() == ["5"]


def test_shapeless_tape_that_cannot_take_a_shape_traces_again():
    # a reshape to a traced shape cannot take other sizes: traced again, right values
    f, count = _counted(lambda x: x.reshape(-1) * 2)
    cf = mx.compile(f, shapeless=True)
    for shape in ((2, 3), (4, 3), (2, 3), (4, 3)):
        x = mx.array(np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
        got = cf(x)
        np.testing.assert_array_equal(np.array(got), np.arange(np.prod(shape)) * 2)
    assert count[0] == 2
    assert C.stats(cf)["recompiles"] == 1
