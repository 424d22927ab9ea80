import os

import pytest


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _default_device():
    # EMBER_DEFAULT_DEVICE picks the device the whole suite runs on
    yield os.environ.get("EMBER_DEFAULT_DEVICE")
