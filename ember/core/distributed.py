"""mx.distributed for a single process.

Ember has no communication backend yet, so every group is the singleton group, as in
upstream when no backend can be initialised: the collectives return their input (a new
array object over the same value), and point-to-point calls raise.
"""

from ember.core.array import array as _array
from ember.core.ops import _identity
from ember.core.ops._base import as_array, resolve
from ember.core.transforms.graph import signature_error

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
        raise RuntimeError("Cannot split the distributed group further.")


def _singleton():
    return object.__new__(Group)


def is_available(backend="any"):
    """Check if a communication backend is available (none is, in Ember)."""
    return False


def init(strict=False, backend="any", *, all_gather_factory=None):
    """Initialize the communication backend and create the global communication group."""
    if backend not in _BACKENDS:
        raise ValueError("[distributed] The only valid values for backend are 'any', 'mpi', "
                         f"'nccl', 'jaccl' and 'ring' but '{backend}' was provided.")
    if strict:
        raise RuntimeError(_STRICT_ERRORS[backend])
    return _singleton()


def _check(name, sig, x, group, stream, extra=()):
    if group is not None and not isinstance(group, Group):
        raise signature_error(name, sig, (x,) + extra, {"group": group})
    if isinstance(x, (list, tuple, str, bytes)) or x is None:
        raise ValueError(f"Invalid type {type(x).__name__} received in array initialization.")
    s = resolve(stream)
    return x if isinstance(x, _array) else as_array(x, s), s


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
    if group is not None and not isinstance(group, Group):
        raise signature_error("recv", "recv(shape: Sequence[int], dtype: Dtype, src: int, *, "
                              "group: Group | None = None, stream: StreamOrDevice = None) "
                              "-> array", (shape, dtype, src), {"group": group})
    raise ValueError("Cannot recv from a singleton group")


def recv_like(x, src, *, group=None, stream=None):
    """Recv an array with shape and type like ``x`` from process ``src``."""
    _check("recv_like", "recv_like(x: array, src: int, *, group: Group | None = None, "
           "stream: StreamOrDevice = None) -> array", x, group, stream, (src,))
    raise ValueError("Cannot recv from a singleton group")
