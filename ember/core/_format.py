"""repr/str of arrays, formatted as MLX formats them, and the print options."""

import math
import operator

from ember.core import _backend as B

_EDGE = 3        # a dimension longer than 2 * _EDGE shows its first and last _EDGE items
_state = {"precision": -1}


def _precision(p, fn):
    """`p` as a precision: an int (upstream takes nothing else, not even a float)."""
    try:
        p = operator.index(p)
    except TypeError:
        raise TypeError(f"{fn}(): incompatible function arguments: precision must be an int, "
                        f"got {type(p).__name__}.") from None
    if not -2 ** 31 <= p < 2 ** 31:  # (a C int upstream)
        raise TypeError(f"{fn}(): incompatible function arguments: precision {p} is out of "
                        "the range of int.")
    return p


class PrintOptions:
    """The options used to print arrays: `precision` (decimal places; -1: MLX's default)."""

    __slots__ = ("_precision",)

    def __init__(self, precision=-1):
        self._precision = _precision(precision, "__init__")

    @property
    def precision(self):
        return self._precision

    @precision.setter
    def precision(self, p):
        self._precision = _precision(p, "precision")


def get_printoptions():
    return PrintOptions(_state["precision"])


def set_printoptions(precision=-1):
    _state["precision"] = _precision(precision, "set_printoptions")


class _PrintOptionsContext:
    """Sets `options` while the context is entered; restores the options found on entry."""

    __slots__ = ("_precision", "_saved")

    def __init__(self, options, /):
        if not isinstance(options, PrintOptions):
            raise TypeError("__init__(): incompatible function arguments: the options must be a "
                            f"PrintOptions, got {type(options).__name__}.")
        self._precision = options.precision  # (a copy, as upstream takes)
        self._saved = -1  # (what __exit__ restores upstream even without __enter__)

    def __enter__(self):
        self._saved = _state["precision"]
        _state["precision"] = self._precision
        return self

    def __exit__(self, *exc):
        _state["precision"] = self._saved


def printoptions(precision=-1):
    return _PrintOptionsContext(PrintOptions(_precision(precision, "printoptions")))


def fmt_float(v, precision=None):
    if precision is None:
        precision = _state["precision"]
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if precision == -1:
        return f"{v:g}"
    # (any other negative precision is C's: fixed notation with the default 6 places)
    return f"{v:.{precision if precision >= 0 else 6}f}"


def _formatter(kind, precision):
    if kind == "b":
        return lambda v: "True" if v else "False"
    if kind in "ui":
        return lambda v: str(int(v))
    if kind == "c":
        def fmt_complex(v):
            re, im = float(v.real), float(v.imag)
            sign, im = ("-", -im) if im < 0 else ("+", im)
            return f"{fmt_float(re, precision)}{sign}{fmt_float(im, precision)}j"
        return fmt_complex
    return lambda v: fmt_float(float(v), precision)


def format_array(a):
    t = a._tensor()
    shape = a._shape
    # keep only the items that are shown: the edges of every long dimension
    elided = []
    for d, n in enumerate(shape):
        if n > 2 * _EDGE:
            idx = list(range(_EDGE)) + list(range(n - _EDGE, n))
            t = t[(slice(None),) * d + (idx,)]
            elided.append(True)
        else:
            elided.append(False)
    x = B.to_numpy(t, a._dtype)
    fmt = _formatter(a._dtype.kind, _state["precision"])
    if x.ndim == 0:
        body = fmt(x.item() if a._dtype.kind != "c" else complex(x))
    else:
        body = _format_nd(x.tolist(), x.ndim, elided, fmt, 7)
    return f"array({body}, dtype={a._dtype.name})"


def _format_nd(x, ndim, elided, fmt, col):
    if ndim == 1:
        items = [fmt(v) for v in x]
    else:
        items = [_format_nd(r, ndim - 1, elided[1:], fmt, col + 1) for r in x]
    if elided[0]:
        items.insert(_EDGE, "...")
    sep = ", " if ndim == 1 else ",\n" + " " * col
    return "[" + sep.join(items) + "]"
