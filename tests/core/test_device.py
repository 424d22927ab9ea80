"""Devices and streams against upstream: reprs, equality, defaults, the stream context,
and the `stream=` keyword. Upstream here is the CPU-only build, so the GPU cases that are
compared are the ones for a machine without a GPU; GPU behaviour is checked in test_gpu."""

import threading

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from tests.helpers import errors_alike

HAS_GPU = mx.is_available(mx.gpu)
needs_no_gpu = pytest.mark.skipif(HAS_GPU, reason="upstream here has no GPU to compare with")

VALUES = [
    "repr(m.cpu)", "str(m.gpu)", "repr(m.DeviceType.cpu)", "repr(m.Device(m.cpu))",
    "str(m.Device(m.cpu, 1))", "repr(m.Device(m.gpu, 3))", "m.Device(m.cpu) == m.cpu",
    "m.cpu == m.Device(m.cpu)", "m.Device(m.cpu, 1) == m.cpu", "m.Device(m.cpu) == m.Device(m.cpu)",
    "m.Device(m.cpu) == 'cpu'", "m.Device(m.cpu) != m.Device(m.gpu)", "m.Device(m.gpu) == m.gpu",
    "m.Device(m.cpu) == m.gpu", "m.cpu == m.gpu", "m.cpu == 0", "repr(m.Device(m.cpu).type)",
    "repr(m.Device(0))", "repr(m.DeviceType(0))", "m.DeviceType.gpu.value",
    "hash(m.Device(m.cpu)) == hash(m.Device(m.cpu))", "m.is_available(m.cpu)",
    "m.is_available(m.Device(m.cpu, 1))", "m.device_count(m.cpu)",
    "m.default_stream(m.cpu) == m.default_stream(m.cpu)", "repr(m.default_stream(m.cpu).device)",
    "m.new_stream(m.cpu) == m.new_stream(m.cpu)", "m.default_stream(m.cpu) == m.Device(m.cpu)",
    "m.default_stream(m.cpu) == 1", "repr(m.new_thread_local_stream(m.cpu).device)",
    "m.new_thread_local_stream(m.cpu) == m.new_thread_local_stream(m.cpu)",
    "m.add(1, 2, stream=m.cpu).item()", "m.add(1, 2, stream=m.DeviceType.cpu).item()",
    "m.add(1, 2, stream=m.Device(m.cpu)).item()",
    "m.add(1, 2, stream=m.default_stream(m.cpu)).item()",
    "m.add(1, 2, stream=m.new_stream(m.cpu)).item()",
    "m.add(1, 2, stream=m.new_thread_local_stream(m.cpu)).item()",
    "m.synchronize(m.default_stream(m.cpu))", "m.synchronize(m.cpu)",
    "type(m.stream(m.cpu)).__name__", "sorted(m.device_info(m.cpu))", "m.device_info(m.cpu)",
    "m.zeros(1, stream=0).tolist()",
    # a DeviceType's value (a bool too) stands for it; a bool index is its int
    "repr(m.Device(False))", "repr(m.Device(m.cpu, True))", "m.device_count(0)",
    "type(m.stream(0)).__name__", "type(m.stream(True)).__name__",
    "m.add(1, 2, stream=False).item()", "m.Device(m.cpu, -1) == m.Device(m.cpu, -1)",
    "repr(m.Device(m.cpu, np.int64(0)))", "repr(m.Device(np.int64(0)))",
    "m.device_count(np.int64(0))", "m.add(1, 2, stream=np.int64(0)).item()",
    "m.device_info(m.Device(m.cpu, 1))", "m.stream(m.cpu).__exit__(None, None, None)",
    "m.stream(m.cpu).__exit__()", "m.metal.start_capture('a.gputrace')",
    "sorted(n for n in dir(m.metal) if not n.startswith('_'))",
    "sorted(n for n in dir(m.cuda) if not n.startswith('_'))",
]
GPU_LESS = ["m.is_available(m.gpu)", "m.device_count(m.gpu)", "m.device_count(True)",
            "m.device_info(m.gpu)", "repr(m.default_device())",
            "repr(m.default_stream(m.default_device()))"]
ERRORS = [
    "m.Device('cpu')", "m.Stream(m.cpu)", "m.Stream(m.cpu, 0)", "m.device_count(m.Device(m.cpu))",
    "m.stream('cpu')", "m.add(1, 2, stream='cpu')", "m.zeros(1, stream=7)",
    "m.set_default_stream(m.new_thread_local_stream(m.cpu))",
    # upstream's == takes no None, so neither does `in` over a list holding None
    "m.Device(m.cpu) == None", "m.cpu != None", "m.default_stream(m.cpu) == None",
    "m.new_stream(m.cpu) in [None]", "m.new_thread_local_stream(m.cpu) == None",
    "m.Device(m.cpu, 2**31)", "m.Device(m.cpu, 1.0)", "m.device_count(2)", "m.device_count(None)",
    "m.stream(2)", "m.stream(None)", "m.metal.start_capture(1)",
]
GPU_LESS_ERRORS = ["m.default_stream(m.gpu)", "m.new_stream(m.gpu)",
                   "m.set_default_device(m.gpu)", "m.add(1, 2, stream=m.gpu)",
                   "m.zeros(1, stream=m.gpu)", "m.zeros(1, stream=1)",
                   "m.add(1, 2, stream=True)", "m.stream(m.gpu).__enter__()",
                   "m.stream(1).__enter__()"]


def _run(m, expr):
    return eval(expr, {"m": m, "np": np})  # noqa: S307


@pytest.mark.parametrize("expr", VALUES)
def test_values_match_upstream(expr):
    assert _run(mx, expr) == _run(mlx, expr)


@needs_no_gpu
@pytest.mark.parametrize("expr", GPU_LESS)
def test_values_without_gpu_match_upstream(expr):
    assert _run(mx, expr) == _run(mlx, expr)


def _same_error(expr):
    """`expr` raises the exception type upstream raises, with its `[op]` prefix."""
    with pytest.raises(Exception) as want:
        _run(mlx, expr)
    with pytest.raises(want.type) as got:
        _run(mx, expr)
    msg = str(want.value)
    if msg.startswith("["):
        assert str(got.value).startswith(msg[:msg.index("]") + 1])


@pytest.mark.parametrize("expr", ERRORS)
def test_errors_match_upstream(expr):
    _same_error(expr)


@needs_no_gpu
@pytest.mark.parametrize("expr", GPU_LESS_ERRORS)
def test_errors_without_gpu_match_upstream(expr):
    _same_error(expr)


def test_stream_repr_format():
    s = mx.new_stream(mx.cpu)
    assert repr(s) == f"Stream(Device(cpu, 0), {s.index})"
    assert str(s) == repr(s)
    t = mx.new_thread_local_stream(mx.cpu)
    assert repr(t).startswith("ThreadLocalStream(Device(cpu, 0), ")
    u = mlx.new_stream(mlx.cpu)
    assert repr(u).rsplit(",", 1)[0] == repr(s).rsplit(",", 1)[0]


def test_new_streams_are_distinct_and_ordered():
    a, b = mx.new_stream(mx.cpu), mx.new_stream(mx.cpu)
    assert a != b and b.index > a.index
    assert a.device == mx.Device(mx.cpu) == b.device
    assert mx.new_thread_unsafe_stream(mx.cpu) not in (a, b)


def test_stream_context_sets_and_restores_defaults():
    before_dev, before = mx.default_device(), mx.default_stream(mx.cpu)
    s = mx.new_stream(mx.cpu)
    with mx.stream(s) as r:
        assert r is None
        assert mx.default_stream(mx.cpu) == s
        assert mx.default_device() == mx.Device(mx.cpu)
        a = mx.arange(3)
        assert a._stream is s
    assert mx.default_stream(mx.cpu) == before
    assert mx.default_device() == before_dev
    assert mx.arange(3)._stream is not s
    with mx.stream(mx.cpu):
        assert mx.arange(2)._stream.device == mx.Device(mx.cpu)
    # nested, and restored on error
    with pytest.raises(RuntimeError):
        with mx.stream(s):
            with mx.stream(mx.new_stream(mx.cpu)):
                raise RuntimeError("boom")
    assert mx.default_stream(mx.cpu) == before


def test_set_default_stream_and_clear_streams():
    device = mx.default_device()
    mx.set_default_device(mx.cpu)  # (new arrays take the default device's default stream)
    try:
        _default_stream_and_clear_streams()
    finally:
        mx.set_default_device(device)


def _default_stream_and_clear_streams():
    before = mx.default_stream(mx.cpu)
    s = mx.new_stream(mx.cpu)
    try:
        mx.set_default_stream(s)
        assert mx.default_stream(mx.cpu) == s
        assert mx.ones(2)._stream is s
    finally:
        mx.set_default_stream(before)
    assert mx.ones(2)._stream is before
    mx.clear_streams()
    fresh = mx.default_stream(mx.cpu)
    assert fresh != before and mx.ones(2)._stream is fresh


def test_set_default_device_cpu():
    before = mx.default_device()
    try:
        mx.set_default_device(mx.cpu)
        assert mx.default_device() == mx.cpu
        assert mx.zeros(1)._stream.device == mx.Device(mx.cpu)
    finally:
        mx.set_default_device(before)
    with pytest.raises(ValueError):
        mx.set_default_device(mx.Device(mx.cpu, 1))


def test_thread_local_stream_differs_per_thread():
    t = mx.new_thread_local_stream(mx.cpu)
    seen = []

    def work():
        seen.append(mx.add(1, 2, stream=t)._stream)

    th = threading.Thread(target=work)
    th.start()
    th.join()
    mine = mx.add(1, 2, stream=t)._stream
    assert mx.add(3, 4, stream=t)._stream is mine
    assert seen[0] is not mine and seen[0].device == mine.device


def test_pickle_devices():
    import pickle
    assert pickle.loads(pickle.dumps(mx.cpu)) is mx.cpu
    assert pickle.loads(pickle.dumps(mx.Device(mx.cpu))) == mx.Device(mx.cpu)


def test_synchronize_refuses_other_objects_as_upstream():
    errors_alike(lambda m: m.synchronize("cpu"))
