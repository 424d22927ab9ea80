"""mx.cuda: the CUDA backend's status."""

from ember.core import _backend as _B

__all__ = ["is_available"]


def is_available():
    """Check if the CUDA back-end is available."""
    return _B.gpu_count() > 0
