"""Ops on whole arrays: identity copies, stop_gradient, device transfer."""

import inspect

from ember.core.array import array, node
from ember.core.ops._base import as_array, binding_error, resolve
from ember.core.primitives.misc import Identity, StopGradient

__all__ = ["stop_gradient"]

_IDENTITY = Identity()
_STOP = StopGradient()


def _identity(a, stream=None):
    s = resolve(stream)
    a = as_array(a, s)
    return node(a._shape, a._dtype, _IDENTITY, (a,), s)


def stop_gradient(a, /, *, stream=None):
    if not isinstance(a, array):
        raise binding_error("stop_gradient", "stop_gradient(a: array, /, *, stream: Stream | "
                            "Device | None = None) -> array")
    s = resolve(stream)
    a = as_array(a, s)
    return node(a._shape, a._dtype, _STOP, (a,), s)


# upstream's signature (Ember's own code also passes the stream by position)
stop_gradient.__signature__ = inspect.signature(lambda a, /, *, stream=None: None)
