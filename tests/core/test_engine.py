"""The lazy engine: laziness, iterative eval, shared subgraphs, memory release."""

import gc
import weakref

import numpy as np

import ember.core as mx


def _pending(y):
    """How many arrays `y` needs that hold no data yet."""
    seen, stack = set(), [y]
    while stack:
        a = stack.pop()
        if a._data is None and id(a) not in seen:
            seen.add(id(a))
            stack.extend(a._inputs)
    return len(seen)


def test_nothing_runs_before_eval():
    y = mx.ones(())
    for _ in range(100_000):
        y = y + 1
    assert y._data is None
    assert _pending(y) == 100_001  # every node pending, no buffer yet
    assert y.item() == 100_001


def test_long_chain_evaluates_without_recursion():
    y = mx.array(0.0)
    for _ in range(200_000):
        y = y * 1.0 + 1.0
    mx.eval(y)
    assert y.item() == 200_000


def test_eval_takes_every_array_of_a_tree():
    """Arrays in lists, tuples, dicts (and dict subclasses such as modules), at any depth;
    other leaves are ignored."""
    import ember.nn as nn
    a, b, c, d = (mx.ones((2,)) + i for i in range(4))
    model = nn.Linear(2, 2)
    deep = d
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = [deep]
    mx.eval([a, (1, {"x": b, "y": [None, "s", c]}), model], deep)
    assert all(x._data is not None for x in (a, b, c, d, model.weight, model.bias))


def test_shared_subgraph_computed_once():
    calls = []
    from ember.core._backend import kernels
    from ember.core.primitives.elementwise import UNARY
    exp_cls = UNARY["arctan"]  # (no in-place form, so every run goes through KERNELS)
    orig = kernels.KERNELS[exp_cls]
    kernels.KERNELS[exp_cls] = lambda p, x: (calls.append(1), orig(p, x))[1]
    try:
        a = mx.arctan(mx.array([1.0, 2.0]))
        b = a + a
        c = a * b
        mx.eval(b, c)
    finally:
        kernels.KERNELS[exp_cls] = orig
    assert len(calls) == 1
    np.testing.assert_allclose(np.array(c), 2 * np.arctan([1.0, 2.0]) ** 2, rtol=1e-6)


def test_eval_detaches_graph_and_frees_intermediates():
    x = mx.ones((256, 256))
    mid = x + 1
    ref = weakref.ref(mid)
    y = mid * 2
    del mid
    mx.eval(y)
    gc.collect()
    assert y._prim is None and y._inputs == ()
    assert ref() is None


def test_memory_returns_to_baseline_after_long_chain():
    import torch  # noqa: F401  (the CPU allocator is reached through tensor storage)
    x = mx.ones((1024,))
    mx.eval(x)
    live = []
    y = x
    for _ in range(2000):
        y = y + 1
        live.append(weakref.ref(y))
    mx.eval(y)
    del y
    gc.collect()
    assert sum(r() is not None for r in live) == 0


def test_async_eval_then_item():
    a = mx.arange(10) * 2
    mx.async_eval(a)
    assert a.tolist() == list(range(0, 20, 2))
