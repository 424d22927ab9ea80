"""The op database: one entry per op drives the forward-parity, vjp, jvp and vmap checks.

An entry names the op, how to call it on a framework module (`ember.core` or upstream
`mlx.core`), and how to draw sample inputs. Each family has its own module here; they
all append to `OPS`.
"""

from dataclasses import dataclass, field

import numpy as np

FLOATS = ("float32", "float16", "bfloat16")
INTS = ("int32", "int8", "uint8", "int64", "uint32", "int16", "uint16")
ALL_REAL = ("bool",) + INTS + FLOATS


@dataclass
class Op:
    name: str
    fn: object                  # fn(mod, *arrays) -> array or list of arrays
    samples: object             # samples(rng, dtype) -> list of tuples of numpy arrays
    dtypes: tuple = FLOATS      # forward parity dtypes
    grad: bool = True           # check vjp/jvp (float inputs)
    vmap: bool = True
    grad_argnums: tuple = None  # which inputs are differentiable (None: all)
    rtol: float = None          # override of the dtype tolerance
    fd_samples: object = None   # samples for finite differences (default: samples)
    marks: tuple = field(default_factory=tuple)

    def __repr__(self):
        return self.name


OPS = []


def add(*ops):
    OPS.extend(ops)


def rand(rng, shape, dtype, low=-2.0, high=2.0):
    """Random numpy values for `dtype` (a name); bfloat16 comes as float32."""
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith("uint"):
        return rng.integers(0, 10, size=shape).astype(dtype)
    if dtype.startswith("int"):
        return rng.integers(-10, 10, size=shape).astype(dtype)
    if dtype == "complex64":
        return (rng.uniform(low, high, shape) + 1j * rng.uniform(low, high, shape)).astype(
            np.complex64)
    a = rng.uniform(low, high, size=shape)
    return a.astype("float32" if dtype == "bfloat16" else dtype)


def _load():
    # every module in this package is a family of entries
    import importlib
    import pkgutil
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


_load()
