"""mx.distributed for a single process.

Ember has no communication backend yet, so every group is the singleton group, as in
upstream when no backend can be initialised: the collectives return their input (a new
array object over the same value), and point-to-point calls raise.
"""

import operator as _operator
import os as _os

from ember.core import dtypes as _D
from ember.core.array import array as _array
from ember.core.ops import _identity
from ember.core.ops._base import as_array as _as_array
from ember.core.ops._base import resolve as _resolve
from ember.core.transforms.graph import signature_error as _signature_error

__all__ = ["Group", "init", "is_available", "all_sum", "all_gather", "all_max", "all_min",
           "sum_scatter", "send", "recv", "recv_like"]

_BACKENDS = ("any", "mpi", "ring", "nccl", "jaccl")
_STRICT_ERRORS = {
    "any": "[distributed] Couldn't initialize any backend",
    "mpi": "Cannot initialize MPI",
    "ring": "[ring] You need to provide via environment variables both a rank (MLX_RANK) "
            "and a hostfile (MLX_HOSTFILE)",
    "nccl": "Cannot initialize nccl distributed backend.",
    "jaccl": "Cannot initialize jaccl distributed backend.",
}
_INIT_SIG = ("init(strict: bool = False, backend: str = 'any', *, all_gather_factory: "
             "Callable[[int, int], Callable[[bytes, int], bytes]] | None = None) -> Group")


def _int32(v):
    """`v` as a C int, as upstream's bindings take it (bools and numpy integers too), or
    None when it is not one."""
    try:
        v = _operator.index(v)
    except TypeError:
        return None
    return v if -2 ** 31 <= v < 2 ** 31 else None


class Group:
    """An :class:`mlx.core.distributed.Group` represents a group of independent mlx
    processes that can communicate."""

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        raise TypeError("mlx.core.distributed.Group: no constructor defined!")

    def rank(self):
        """Get the rank of this process"""
        return 0

    def size(self):
        """Get the size of the group"""
        return 1

    def split(self, color, key=-1):
        """Split the group to subgroups based on the provided color."""
        if _int32(color) is None or _int32(key) is None:
            raise _signature_error("split", "split(self, color: int, key: int = -1) -> Group",
                                   (self, color, key), {})
        raise RuntimeError("Cannot split the distributed group further.")


def is_available(backend="any"):
    """Check if a communication backend is available (none is, in Ember)."""
    if not isinstance(backend, str):
        raise _signature_error("is_available", "is_available(backend: str = 'any') -> bool",
                               (backend,), {})
    return False


def init(strict=False, backend="any", *, all_gather_factory=None):
    """Initialize the communication backend and create the global communication group."""
    if type(strict) is not bool or not isinstance(backend, str) or not (
            all_gather_factory is None or callable(all_gather_factory)):
        raise _signature_error("init", _INIT_SIG, (), {
            "strict": strict, "backend": backend, "all_gather_factory": all_gather_factory})
    if all_gather_factory is not None and backend != "jaccl":
        raise ValueError("all_gather_factory is only supported with backend='jaccl'.")
    if backend not in _BACKENDS:
        raise ValueError("[distributed] The only valid values for backend are 'any', 'mpi', "
                         f"'nccl', 'jaccl' and 'ring' but '{backend}' was provided.")
    if strict:
        msg = _STRICT_ERRORS[backend]
        if backend == "ring":
            msg += (f' but provided MLX_RANK="{_os.environ.get("MLX_RANK", "")}" and '
                    f'MLX_HOSTFILE="{_os.environ.get("MLX_HOSTFILE", "")}"')
        raise RuntimeError(msg)
    return object.__new__(Group)


def _check(name, sig, x, group, stream, extra=()):
    """`x` as an array and the stream to run on, after upstream's argument checks."""
    if x is None or (group is not None and not isinstance(group, Group)) or \
            any(_int32(v) is None for v in extra):
        raise _signature_error(name, sig, (x,) + extra, {"group": group, "stream": stream})
    if isinstance(x, (list, tuple, str, bytes)):
        raise ValueError(f"Invalid type {type(x).__name__} received in array initialization.")
    s = _stream(stream, lambda: _signature_error(name, sig, (x,) + extra, {"stream": stream}))
    return x if isinstance(x, _array) else _as_array(x, s), s


def _stream(stream, type_error):
    try:
        return _resolve(stream)
    except TypeError:
        raise type_error() from None
    except ValueError:
        # upstream checks only the type of `stream` on a singleton group: a device this
        # machine lacks leaves the work on the default stream
        return _resolve(None)


def _collective(name, doc):
    sig = (f"{name}(x: array, *, group: Group | None = None, stream: StreamOrDevice = None)"
           " -> array")

    def f(x, *, group=None, stream=None):
        x, s = _check(name, sig, x, group, stream)
        return _identity(x, s)  # the reduction over one process

    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    return f


all_sum = _collective("all_sum", "All reduce sum.")
all_max = _collective("all_max", "All reduce max.")
all_min = _collective("all_min", "All reduce min.")
all_gather = _collective("all_gather", "Gather arrays from all processes.")
sum_scatter = _collective(
    "sum_scatter", "Sum ``x`` across all processes in the group and shard the result along "
    "the first axis across ranks.")


def send(x, dst, *, group=None, stream=None):
    """Send an array from the current process to the process that has rank ``dst``."""
    _check("send", "send(x: array, dst: int, *, group: Group | None = None, "
           "stream: StreamOrDevice = None) -> array", x, group, stream, (dst,))
    raise ValueError("Cannot send to a singleton group")


def recv(shape, dtype, src, *, group=None, stream=None):
    """Recv an array with shape ``shape`` and dtype ``dtype`` from process ``src``."""
    try:
        ok = not isinstance(shape, (str, bytes)) and all(_int32(n) is not None for n in shape)
    except TypeError:  # (not iterable)
        ok = False
    def error():
        return _signature_error("recv", "recv(shape: Sequence[int], dtype: Dtype, src: int, *, "
                                "group: Group | None = None, stream: StreamOrDevice = None) "
                                "-> array", (shape, dtype, src), {"group": group,
                                                                  "stream": stream})

    if not ok or not isinstance(dtype, _D.Dtype) or _int32(src) is None or (
            group is not None and not isinstance(group, Group)):
        raise error()
    _stream(stream, error)
    raise ValueError("Cannot recv from a singleton group")


def recv_like(x, src, *, group=None, stream=None):
    """Recv an array with shape and type like ``x`` from process ``src``."""
    _check("recv_like", "recv_like(x: array, src: int, *, group: Group | None = None, "
           "stream: StreamOrDevice = None) -> array", x, group, stream, (src,))
    raise ValueError("Cannot recv from a singleton group")
