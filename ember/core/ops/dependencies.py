"""depends: arrays that are computed only after some others."""

from ember.core.array import array, nodes
from ember.core.ops._base import binding_error, resolve
from ember.core.primitives.dependencies import Depends

__all__ = ["depends"]


def _arrays(v, what):
    if isinstance(v, array):
        return [v], True
    if isinstance(v, (list, tuple)) and all(isinstance(x, array) for x in v):
        return list(v), False
    if v is None:
        raise binding_error("depends", "depends(inputs: array | Sequence[array], "
                            "dependencies: array | Sequence[array])")
    # upstream's bindings fail the same way (a C++ std::bad_cast)
    raise RuntimeError(f"[depends] Expected an array or a sequence of arrays for {what}.")


def depends(inputs, dependencies):
    xs, single = _arrays(inputs, "inputs")
    deps, _ = _arrays(dependencies, "dependencies")
    if not xs:
        return []
    s = xs[0]._stream if xs[0]._stream.device is resolve(None).device else resolve(None)
    outs = nodes(tuple(x._shape for x in xs), tuple(x._dtype for x in xs), Depends(len(xs)),
                 tuple(xs + deps), s)
    return outs[0] if single else outs
