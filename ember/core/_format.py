"""repr/str of arrays, formatted as MLX formats them."""

import numpy as np

from ember.core import _backend as B
from ember.core import dtypes as D


def _fmt_float(v):
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:g}"


def _fmt_scalar(v, dtype):
    k = dtype.kind
    if k == "b":
        return "True" if v else "False"
    if k in "ui":
        return str(int(v))
    if k == "c":
        re, im = _fmt_float(v.real), _fmt_float(abs(v.imag))
        return f"{re}{'-' if v.imag < 0 or (v.imag == 0 and np.signbit(v.imag)) else '+'}{im}j"
    return _fmt_float(float(v))


def format_array(a, with_dtype=True):
    t = a._tensor()
    data = B.to_numpy(t, a._dtype)
    body = _format(data, a._dtype, indent=6 if with_dtype else 0)
    if not with_dtype:
        return body
    return f"array({body}, dtype={a._dtype.name})"


def _format(x, dtype, indent):
    if x.ndim == 0:
        return _fmt_scalar(x.item() if dtype is not D.bfloat16 else float(x), dtype)
    return _format_nd(x, dtype, indent + 1)


def _format_nd(x, dtype, col):
    if x.ndim == 1:
        n = x.shape[0]
        if n > 1000:
            items = [_fmt_scalar(v, dtype) for v in x[:3]] + ["..."] + \
                [_fmt_scalar(v, dtype) for v in x[-3:]]
        else:
            items = [_fmt_scalar(v, dtype) for v in x]
        return "[" + ", ".join(items) + "]"
    rows = [_format_nd(r, dtype, col + 1) for r in x]
    sep = "," + "\n" * (x.ndim - 1) + " " * col
    return "[" + sep.join(rows) + "]"
