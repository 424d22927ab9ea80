"""Quantization: quantize, dequantize, quantized_matmul, gather_qmm, qqmm, gather_qqmm,
to_fp8, from_fp8 (upstream's packing, see shared notes/quantization.md)."""

import operator

from ember.core import dtypes as D
from ember.core.array import array, node, nodes
from ember.core.ops._base import PROMOTE, as_array, binding_error, broadcast_pair, resolve
from ember.core.ops.creation import arange
from ember.core.ops.elementwise import add, astype, subtract
from ember.core.ops.linalg import matmul
from ember.core.ops.misc import stop_gradient
from ember.core.ops.shape import reshape, squeeze, swapaxes
from ember.core.primitives import quantized as P

__all__ = ["quantize", "dequantize", "quantized_matmul", "gather_qmm", "qqmm", "gather_qqmm",
           "to_fp8", "from_fp8"]

# mode -> (default group size, default bits)
_DEFAULTS = {"affine": (64, 4), "mxfp4": (32, 4), "mxfp8": (32, 8), "nvfp4": (16, 4)}
_AFFINE_BITS = (1, 2, 3, 4, 5, 6, 8)
_FLOATS = (D.float16, D.bfloat16, D.float32)
_INT32 = 2 ** 31
_QUANTIZE_SIG = ("quantize(w: array, /, group_size: int | None = None, bits: "
                 "int | None = None, mode: str = 'affine', *, global_scale: array | None = None, "
                 "stream: StreamOrDevice = None) -> tuple[array, array, array]")


_QQ = ("group_size: int | None = None, bits: int | None = None, mode: str = 'nvfp4', "
       "global_scale_x: array | None = None, global_scale_w: array | None = None, *, ")
# the signatures upstream's bindings quote when group_size, bits or mode do not convert
_SIGS = {
    "quantize": _QUANTIZE_SIG,
    "dequantize": ("dequantize(w: array, /, scales: array, biases: array | None = None, "
                   "group_size: int | None = None, bits: int | None = None, mode: str = "
                   "'affine', global_scale: array | None = None, dtype: Dtype | None = None, "
                   "*, stream: StreamOrDevice = None) -> array"),
    "gather_qmm": ("gather_qmm(x: array, w: array, /, scales: array, biases: array | None = "
                   "None, lhs_indices: array | None = None, rhs_indices: array | None = None, "
                   "transpose: bool = True, group_size: int | None = None, bits: int | None = "
                   "None, mode: str = 'affine', global_scale: array | None = None, *, "
                   "sorted_indices: bool = False, stream: StreamOrDevice = None) -> array"),
    "qqmm": ("qqmm(x: array, w: array, scales: array | None = None, " + _QQ
             + "stream: StreamOrDevice = None) -> array"),
    "gather_qqmm": ("gather_qqmm(x: array, w: array, /, scales: array | None = None, "
                    "lhs_indices: array | None = None, rhs_indices: array | None = None, "
                    + _QQ + "sorted_indices: bool = False, stream: StreamOrDevice = None) -> "
                    "array"),
}


def _fmt(shape):
    return "(" + ",".join(map(str, shape)) + ")"


def _int_param(v, op):
    """group_size or bits as upstream's binding converts it: None, or an int32 from an int,
    a bool or anything with `__index__` but a float."""
    if v is None or type(v) is int and -_INT32 <= v < _INT32:
        return v
    if not isinstance(v, float) and hasattr(v, "__index__"):
        try:
            v = operator.index(v)
        except TypeError:
            pass
        else:
            if -_INT32 <= v < _INT32:
                return v
    raise binding_error(op, _SIGS[op])


def _param_types(op, mode, group_size, bits):
    """group_size and bits converted as the binding of `op` does (and mode checked a str)."""
    if not isinstance(mode, str):
        raise binding_error(op, _SIGS[op])
    return _int_param(group_size, op), _int_param(bits, op)


def _params(op, mode, group_size, bits, check=True):
    """check: True validates everything (quantize); "fp" only that the sizes are positive
    and the fixed ones of the fp modes (dequantize); False nothing (the products, whose
    kernels check the affine sizes)."""
    group_size, bits = _param_types(op, mode, group_size, bits)
    d = _DEFAULTS.get(mode)
    if d is None:
        raise ValueError(f"[{op}] Invalid quantization mode '{mode}'.")
    gs = d[0] if group_size is None else group_size
    b = d[1] if bits is None else bits
    if check == "fp":
        if b <= 0:
            raise ValueError(f"[{op}] Invalid value for bits: {b}")
        if gs <= 0:
            raise ValueError(f"[{op}] Invalid value for group_size: {gs}")
    if not check or check == "fp" and mode == "affine":
        pass
    elif mode == "affine":
        if gs not in (32, 64, 128):
            raise ValueError(f"[{op}] The requested group size {gs} is not supported. The "
                             "supported group sizes are 32, 64, and 128.")
        if b not in _AFFINE_BITS:
            raise ValueError(f"[{op}] The requested number of bits {b} is not supported. The "
                             "supported bits are 1, 2, 3, 4, 5, 6 and 8.")
    else:
        if gs != d[0]:
            raise ValueError(f"[{op}] {mode} quantization requires group size {d[0]} but got "
                             f"{gs}.")
        if b != d[1]:
            raise ValueError(f"[{op}] {mode} quantization requires bits to be {d[1]} but got "
                             f"{b}.")
    return gs, b


def _global_scale(op, mode, gs, s, scalar=True):
    if gs is None:
        return None
    if mode != "nvfp4":
        raise ValueError(f"[{op}] Global scale is only supported for 'nvfp4' quantization "
                         "mode.")
    gs = as_array(gs, s)
    if gs.dtype is not D.float32:
        raise ValueError(f"[{op}] Global scale must have dtype float32 but got "
                         f"{gs.dtype.name}.")
    if scalar and gs.size != 1:
        raise ValueError(f"[{op}] Global scale must be a scalar but got shape "
                         f"{_fmt(gs.shape)}.")
    return gs


def quantize(w, /, group_size=None, bits=None, mode="affine", *, global_scale=None,
             stream=None):
    s = resolve(stream)
    if not isinstance(w, array) or global_scale is not None and \
            not isinstance(global_scale, array):
        raise binding_error("quantize", _QUANTIZE_SIG)
    # upstream checks the matrix (dtype, rank, divisibility) before the group size and bits
    gs, b = _params("quantize", mode, group_size, bits, check=False)
    w = as_array(w, s)
    if w.dtype.kind != "f":
        raise ValueError(f"[quantize] Only real floating types can be quantized but w has "
                         f"type {w.dtype.name}.")
    if w.ndim < 2:
        raise ValueError(f"[quantize] The matrix to be quantized must have at least 2 "
                         f"dimension but it has only {w.ndim}.")
    if w.shape[-1] % gs:
        raise ValueError(f"[quantize] The last dimension of the matrix needs to be divisible "
                         f"by the quantization group size {gs}. However the provided  matrix "
                         f"has shape {_fmt(w.shape)}")
    g = _global_scale("quantize", mode, global_scale, s)
    _params("quantize", mode, group_size, bits)
    if w.dtype is D.float64:
        # upstream's CPU kernel refuses it (with the kernel's name)
        raise RuntimeError("[fast::Quantize::eval_cpu] Only supports floating point inputs")
    lead, k = w.shape[:-1], w.shape[-1]
    shapes = [lead + (k * b // 32,), lead + (k // gs,)]
    if mode == "affine":
        shapes.append(shapes[1])
        dts = [D.uint32, w.dtype, w.dtype]
    else:
        dts = [D.uint32, D.uint8]
    ins = (w,) if g is None else (w, g)
    return nodes(shapes, dts, P.Quantize(gs, b, mode), ins, s)


def _check_qparams(op, mode, w, scales, biases):
    if mode == "affine":
        if biases is None:
            raise ValueError(f"[{op}] Biases must be provided for affine quantization.")
    elif biases is not None:
        raise ValueError(f"[{op}] Biases must be null for quantization mode '{mode}'.")
    elif scales.dtype is not D.uint8:
        raise ValueError(f"[{op}] Scale type must be uint8 but received type "
                         f"{scales.dtype.name}.")
    if w.dtype is not D.uint32:
        raise ValueError(f"[{op}] The weight matrix should be uint32 but received "
                         f"{w.dtype.name}")
    if biases is None:
        return
    if PROMOTE[scales.dtype, biases.dtype].kind != "f":
        raise ValueError(f"[{op}] Only real floating types are supported but scales.dtype() == "
                         f"{scales.dtype.name} and biases.dtype() == {biases.dtype.name}.")
    if biases.shape != scales.shape:
        if op == "dequantize":
            raise ValueError(f"[{op}] Shape of scales and biases does not match the matrix")
        raise ValueError(f"[{op}] Scales and biases should have the same shape. Received scales "
                         f"with shape {_fmt(scales.shape)} and biases with "
                         f"{_fmt(biases.shape)}")


def dequantize(w, /, scales, biases=None, group_size=None, bits=None, mode="affine",
               global_scale=None, dtype=None, *, stream=None):
    s = resolve(stream)
    gs, b = _params("dequantize", mode, group_size, bits, check="fp")
    w, scales = as_array(w, s), as_array(scales, s)
    biases = None if biases is None else as_array(biases, s)
    g = _global_scale("dequantize", mode, global_scale, s)
    if w.dtype is not D.uint32:
        raise ValueError("[dequantize] The matrix should be given as a uint32")
    _check_qparams("dequantize", mode, w, scales, biases)
    if w.ndim < 2:
        raise ValueError(f"[dequantize] The matrix to be dequantized must have at least 2 "
                         f"dimension but it has only {w.ndim}.")
    if scales.ndim != w.ndim:
        raise ValueError("[dequantize] Shape of scales and biases does not match the matrix")
    k = w.shape[-1] * 32 // b
    if scales.shape != w.shape[:-1] + (k // gs,) or k % gs:
        raise ValueError(f"[dequantize] Shape of scales and biases does not match the matrix "
                         f"given the quantization parameters. Provided matrix of shape "
                         f"{_fmt(w.shape)} and scales/biases of shape {_fmt(scales.shape)} "
                         f"with group_size={gs} and bits={b}.")
    if dtype is None:
        dtype = PROMOTE[scales.dtype, biases.dtype] if mode == "affine" else \
            D.float32 if g is not None else D.bfloat16
    if dtype.kind != "f":
        raise ValueError(f"[dequantize] Only real floating types are supported but output "
                         f"dtype == {dtype.name}.")
    if g is not None:  # upstream returns float32 whatever dtype asks for
        dtype = D.float32
    ins = (w, scales) + ((biases,) if biases is not None else ()) + ((g,) if g is not None
                                                                      else ())
    prim = P.Dequantize(gs, b, mode, dtype, g is not None)
    return node(w.shape[:-1] + (k,), dtype, prim, ins, s)


def _qmm_shapes(op, x, w, scales, transpose, gs, b):
    """(N, K) of the product with the quantized w."""
    if w.ndim < 2 or scales.shape[:-2] != w.shape[:-2]:
        raise ValueError(f"[{op}] Weight and scales should have the same batch shape. "
                         f"Received weight with shape {_fmt(w.shape)}, scales with "
                         f"{_fmt(scales.shape)}.")
    rows, cols = w.shape[-2], w.shape[-1] * 32 // b if b else -1
    # (upstream reads past the scales when their rows are too few)
    if scales.shape[-1] * gs != cols or scales.shape[-2] != rows:
        raise ValueError(f"[{op}] The shapes of the weight and scales are incompatible based "
                         f"on bits and group_size. w.shape() == {_fmt(w.shape)} and "
                         f"scales.shape() == {_fmt(scales.shape)} with group_size={gs} and "
                         f"bits={b}")
    k, n = (cols, rows) if transpose else (rows, cols)
    if x.shape[-1] != k:
        t = "true" if transpose else "false"
        raise ValueError(f"[{op}] Last dimension of first input with shape (..., "
                         f"{x.shape[-1]}) does not match the expanded quantized matrix "
                         f"({k}, {n}) computed from shape {_fmt(w.shape)} with "
                         f"group_size={gs}, bits={b} and transpose={t}")
    return n, k


def _qmm_dtype(op, mode, x, scales, biases, gs, b):
    if x.dtype.kind == "c" or x.dtype.kind != "f" and mode != "affine":
        raise ValueError(f"[{op}] Only real floating types are supported but "
                         f"x.dtype() == {x.dtype.name}.")
    dt = x.dtype if mode != "affine" else PROMOTE[PROMOTE[x.dtype, scales.dtype],
                                                  biases.dtype]
    # upstream's CPU kernel refuses these when it runs; here they fail when the graph is built
    if dt is D.float64:
        raise RuntimeError("[quantized_matmul] only floating types are supported")
    if mode == "affine":
        if b not in _AFFINE_BITS:
            raise RuntimeError("Quantization bits must be 1, 2, 3, 4, 5, 6 or 8.")
        if gs not in (32, 64, 128):
            raise RuntimeError("Quantization group size must be 32, 64 or 128.")
    return dt


_QMM_SIG = ("quantized_matmul(x: array, w: array, /, scales: array, biases: array | None = None, "
            "transpose: bool = True, group_size: int | None = None, bits: int | None = None, "
            "mode: str = 'affine', *, stream: StreamOrDevice = None) -> array")
_SIGS["quantized_matmul"] = _QMM_SIG


def quantized_matmul(x, w, /, scales, biases=None, transpose=True, group_size=None,
                     bits=None, mode="affine", *, stream=None):
    s = resolve(stream)
    if not isinstance(x, array):
        raise binding_error("quantized_matmul", _QMM_SIG)
    gs, b = _params("quantized_matmul", mode, group_size, bits, check=False)
    x, w, scales = as_array(x, s), as_array(w, s), as_array(scales, s)
    biases = None if biases is None else as_array(biases, s)
    _check_qparams("quantized_matmul", mode, w, scales, biases)
    if x.ndim == 0:
        raise IndexError("[quantized_matmul] x must have at least one dimension.")
    n, _ = _qmm_shapes("quantized_matmul", x, w, scales, bool(transpose), gs, b)
    dt = _qmm_dtype("quantized_matmul", mode, x, scales, biases, gs, b)
    vec = x.ndim == 1
    if vec:
        x = reshape(x, (1, x.shape[0]), stream=s)
    x = astype(x, dt, s)
    batch = broadcast_pair(x.shape[:-2], w.shape[:-2], "broadcast_shapes")
    ins = (x, w, scales) + ((biases,) if biases is not None else ())
    out = node(batch + (x.shape[-2], n), dt, P.QuantizedMatmul(gs, b, mode, bool(transpose)),
               ins, s)
    return squeeze(out, -2, stream=s) if vec else out


def _indices(op, idx, batch, s):
    if idx is None:
        n = 1
        for d in batch:
            n *= d
        return reshape(arange(n, dtype=D.uint32, stream=s), batch, stream=s)
    idx = as_array(idx, s)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"[{op}] Got indices with invalid dtype. Indices must be integral.")
    return idx


def gather_qmm(x, w, /, scales, biases=None, lhs_indices=None, rhs_indices=None,
               transpose=True, group_size=None, bits=None, mode="affine", global_scale=None,
               *, sorted_indices=False, stream=None):
    s = resolve(stream)
    _param_types("gather_qmm", mode, group_size, bits)
    if lhs_indices is None and rhs_indices is None:
        if global_scale is not None:
            raise ValueError("[gather_qmm] Global scale is not supported without indices.")
        return quantized_matmul(x, w, scales, biases, transpose, group_size, bits, mode,
                                stream=s)
    gs, b = _params("gather_qmm", mode, group_size, bits, check=False)
    x, w, scales = as_array(x, s), as_array(w, s), as_array(scales, s)
    biases = None if biases is None else as_array(biases, s)
    if x.ndim < 2:
        raise ValueError(f"[gather_qmm] Input must have at least two dimensions but got input "
                         f"with shape {_fmt(x.shape)}.")
    if global_scale is not None:
        global_scale = _global_scale("gather_qmm", mode, global_scale, s, scalar=False)
        if global_scale.shape != w.shape[:-2]:
            raise ValueError(f"[gather_qmm] Global scale must have one entry per expert with "
                             f"shape {_fmt(w.shape[:-2])} but got "
                             f"{_fmt(global_scale.shape)}.")
        raise ValueError("[gather_qmm] Global scale is only supported on the GPU.")
    _check_qparams("gather_qmm", mode, w, scales, biases)
    n, _ = _qmm_shapes("gather_qmm", x, w, scales, bool(transpose), gs, b)
    dt = _qmm_dtype("gather_qmm", mode, x, scales, biases, gs, b)
    lhs = _indices("gather_qmm", lhs_indices, x.shape[:-2], s)
    rhs = _indices("gather_qmm", rhs_indices, w.shape[:-2], s)
    batch = broadcast_pair(lhs.shape, rhs.shape, "broadcast_shapes")
    x = astype(x, dt, s)
    ins = (x, w, scales) + ((biases,) if biases is not None else ()) + (lhs, rhs)
    prim = P.GatherQMM(gs, b, mode, bool(transpose), bool(sorted_indices))
    return node(batch + (x.shape[-2], n), dt, prim, ins, s)


def _fake_quant(x, gs, b, mode, g, s):
    """x rounded through quantization, with a straight-through gradient."""
    q = quantize(x, gs, b, mode, global_scale=g, stream=s)
    r = astype(dequantize(q[0], q[1], None, gs, b, mode, g, x.dtype, stream=s), x.dtype, s)
    return add(x, stop_gradient(subtract(r, x, stream=s)), stream=s)


def _qq_args(op, x, w, scales, group_size, bits, mode, gx, gw, s):
    if not isinstance(mode, str):
        raise binding_error(op, _SIGS[op])
    if mode not in ("nvfp4", "mxfp8"):
        if mode in _DEFAULTS:
            raise ValueError(f"[{op}] Only 'nvfp4' and 'mxfp8' quantization modes are "
                             f"supported but '{mode}' was provided.")
        _params(op, mode, group_size, bits)
    gs, b = _params(op, mode, group_size, bits)
    x, w = as_array(x, s), as_array(w, s)
    gx = _global_scale(op, mode, gx, s)
    gw = _global_scale(op, mode, gw, s)
    for name, a in (("first", x), ("second", w)):
        if a.dtype not in _FLOATS and (a is x or a.dtype is not D.uint32):
            raise ValueError(f"[{op}] Only real floating types except float64 are supported "
                             f"but {name} argument dtype == {a.dtype.name}.")
    if w.dtype is D.uint32:
        if scales is None:
            raise ValueError(f"[{op}] Scales must be provided if second argument is "
                             f"quantized.")
        scales = as_array(scales, s)
        _qmm_shapes(op, x, w, scales, True, gs, b)
        wd = astype(dequantize(w, scales, None, gs, b, mode, gw, x.dtype, stream=s), x.dtype, s)
    else:
        if x.shape[-1] != w.shape[-1]:
            raise ValueError(f"[{op}] Last dimension of first input with shape "
                             f"{_fmt(x.shape)} must match last dimension of second input "
                             f"with shape {_fmt(w.shape)}.")
        wd = _fake_quant(astype(w, x.dtype, s), gs, b, mode, gw, s)
    return _fake_quant(x, gs, b, mode, gx, s), wd


def qqmm(x, w, scales=None, group_size=None, bits=None, mode="nvfp4", global_scale_x=None,
         global_scale_w=None, *, stream=None):
    s = resolve(stream)
    xq, wd = _qq_args("qqmm", x, w, scales, group_size, bits, mode, global_scale_x,
                      global_scale_w, s)
    return matmul(xq, swapaxes(wd, -1, -2, stream=s), stream=s)


def gather_qqmm(x, w, /, scales=None, lhs_indices=None, rhs_indices=None, group_size=None,
                bits=None, mode="nvfp4", global_scale_x=None, global_scale_w=None, *,
                sorted_indices=False, stream=None):
    from ember.core.ops.index import take
    s = resolve(stream)
    xq, wd = _qq_args("gather_qqmm", x, w, scales, group_size, bits, mode, global_scale_x,
                      global_scale_w, s)
    lhs = _indices("gather_qqmm", lhs_indices, xq.shape[:-2], s)
    rhs = _indices("gather_qqmm", rhs_indices, wd.shape[:-2], s)
    xs = take(reshape(xq, (-1,) + xq.shape[-2:], stream=s), lhs, axis=0, stream=s)
    ws = take(reshape(wd, (-1,) + wd.shape[-2:], stream=s), rhs, axis=0, stream=s)
    broadcast_pair(lhs.shape, rhs.shape, "gather_qqmm")
    return matmul(xs, swapaxes(ws, -1, -2, stream=s), stream=s)


def to_fp8(x, *, stream=None):
    s = resolve(stream)
    if not isinstance(x, array):
        raise binding_error("to_fp8", "to_fp8(x: array, *, stream: StreamOrDevice = None) -> "
                            "array")
    x = as_array(x, s)
    if x.dtype.kind != "f":
        raise ValueError(f"[to_fp8] Only real floating types are supported but "
                         f"x.dtype() == {x.dtype.name}.")
    return node(x.shape, D.uint8, _TO_FP8, (x,), s)


def from_fp8(x, dtype=D.bfloat16, *, stream=None):
    s = resolve(stream)
    if not isinstance(x, array) or not isinstance(dtype, D.Dtype):
        raise binding_error("from_fp8", "from_fp8(x: array, dtype: Dtype = bfloat16, *, stream: "
                            "StreamOrDevice = None) -> array")
    x = as_array(x, s)
    if x.dtype is not D.uint8:
        raise ValueError(f"[from_fp8] Input must have type uint8 but x.dtype() == "
                         f"{x.dtype.name}.")
    if dtype.kind != "f":
        raise ValueError(f"[from_fp8] Only real floating types are supported but dtype == "
                         f"{dtype.name}.")
    return node(x.shape, dtype, P.FromFP8(dtype), (x,), s)


_TO_FP8 = P.ToFP8()
