"""Public op functions, one module per family (mirroring `primitives/`)."""

from ember.core.ops._base import as_array, broadcast_shapes, resolve, to_device  # noqa: F401
from ember.core.ops.creation import *  # noqa: F401,F403
from ember.core.ops.creation import arange, full, full_like, ones, ones_like, zeros, zeros_like  # noqa: F401
from ember.core.ops.elementwise import *  # noqa: F401,F403
from ember.core.ops.elementwise import apply_binary, apply_unary, astype  # noqa: F401
from ember.core.ops.linalg import *  # noqa: F401,F403
from ember.core.ops.misc import _identity, stop_gradient  # noqa: F401
from ember.core.ops.reduce import *  # noqa: F401,F403
from ember.core.ops.reduce import apply_reduce  # noqa: F401
from ember.core.ops.shape import *  # noqa: F401,F403
