"""Fixtures of the benchmark tests."""

import pytest


@pytest.fixture(autouse=True)
def _keep_default_devices():
    # the cases set each framework's default device: put them back afterwards
    import ember.core as mx
    saved = [(mx, mx.default_device())]
    try:
        import mlx.core as mlx
        saved.append((mlx, mlx.default_device()))
    except ImportError:
        pass
    yield
    for mod, dev in saved:
        mod.set_default_device(dev)
