"""mx.metal, mx.cuda and mx.distributed against upstream (single process, CPU)."""

import mlx.core as mlx
import numpy as np
import pytest

import ember.core as mx
from ember.core import cuda, distributed, metal
from ember.core._backend import gpu_count

x_np = np.arange(6, dtype=np.int32).reshape(2, 3)


def test_metal():
    assert metal.is_available() is False is mlx.metal.is_available()
    assert metal.start_capture("/tmp/x.gputrace") is None
    assert metal.stop_capture() is None


@pytest.mark.parametrize("name", ["clear_cache", "get_active_memory", "get_cache_memory",
                                  "get_peak_memory", "reset_peak_memory", "device_info"])
def test_metal_deprecated_aliases(name, capfd):
    r = getattr(metal, name)()
    getattr(metal, name)()
    err = capfd.readouterr().err
    assert err.count(f"mx.metal.{name} is deprecated") == 1
    if name == "device_info":
        assert r == {}
    elif name.startswith("get"):
        assert isinstance(r, int)


def test_metal_setters_forward():
    prev = metal.set_cache_limit(5)
    assert mx.set_cache_limit(prev) == 5
    prev = metal.set_wired_limit(0)
    assert mx.set_wired_limit(prev) == 0


def test_cuda():
    assert cuda.is_available() is (gpu_count() > 0)


def test_group():
    g, ug = distributed.init(), mlx.distributed.init()
    assert (g.rank(), g.size()) == (ug.rank(), ug.size()) == (0, 1)
    for mod in (distributed, mlx.distributed):
        with pytest.raises(RuntimeError):
            mod.init().split(0)
        with pytest.raises(TypeError):
            mod.Group()
        with pytest.raises(RuntimeError):
            mod.init(strict=True)
        with pytest.raises(ValueError, match="backend"):
            mod.init(backend="bogus")
        assert mod.init(backend="ring").size() == 1
    assert distributed.is_available() is False


@pytest.mark.parametrize("name", ["all_sum", "all_gather", "all_max", "all_min",
                                  "sum_scatter"])
def test_collectives_are_identity(name):
    for val in (x_np, np.float32(1.5), np.array([True, False])):
        up = getattr(mlx.distributed, name)(mlx.array(val))
        a = mx.array(val)
        ours = getattr(distributed, name)(a)
        assert ours is not a
        assert ours.shape == up.shape and ours.dtype.name == str(up.dtype).split(".")[-1]
        np.testing.assert_array_equal(np.array(ours), np.array(up))
    g = getattr(distributed, name)(1.0, group=distributed.init(), stream=mx.cpu)
    assert g.item() == 1.0
    with pytest.raises(TypeError):
        getattr(distributed, name)(mx.array(1), group=3)
    with pytest.raises(ValueError):
        getattr(distributed, name)([1, 2])


def test_collective_transforms():
    f = lambda a: distributed.all_sum(a).sum()  # noqa: E731
    uf = lambda a: mlx.distributed.all_sum(a).sum()  # noqa: E731
    np.testing.assert_array_equal(np.array(mx.grad(f)(mx.array([1.0, 2.0]))),
                                  np.array(mlx.grad(uf)(mlx.array([1.0, 2.0]))))
    v = mx.vmap(distributed.all_max)(mx.ones((2, 3)))
    assert v.shape == (2, 3)


def test_point_to_point_raise():
    for mod, arr in ((distributed, mx.array(x_np)), (mlx.distributed, mlx.array(x_np))):
        with pytest.raises(ValueError, match="singleton"):
            mod.send(arr, 0)
        with pytest.raises(ValueError, match="singleton"):
            mod.recv((2, 3), mod is distributed and mx.float32 or mlx.float32, 0)
        with pytest.raises(ValueError, match="singleton"):
            mod.recv_like(arr, 0)
