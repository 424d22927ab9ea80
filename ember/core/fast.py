"""mx.fast: fused normalization, rope, attention and user CUDA kernels."""

from ember.core import dtypes as D
from ember.core.array import array, node
from ember.core.device import _CURRENT
from ember.core.ops._base import _fmt, as_array, binding_error, broadcast_pair, index_arg, resolve
from ember.core.primitives import fast as P

__all__ = ["rms_norm", "layer_norm", "rope", "scaled_dot_product_attention", "cross_entropy",
           "gated_delta_update", "cuda_kernel", "precompiled_cuda_kernel", "metal_kernel"]

_FLOATS = (D.float16, D.bfloat16, D.float32, D.float64)


_SIGS = {
    "rms_norm": "rms_norm(x: array, weight: array | None, eps: float, *, stream: "
                "StreamOrDevice = None) -> array",
    "layer_norm": "layer_norm(x: array, weight: array | None, bias: array | None, eps: float, "
                  "*, stream: StreamOrDevice = None) -> array",
    "rope": "rope(a: array, dims: int, *, traditional: bool, base: float | None, scale: float, "
            "offset: int | array, freqs: array | None = None, stream: StreamOrDevice = None) "
            "-> array",
    "scaled_dot_product_attention": "scaled_dot_product_attention(q: array, k: array, v: "
                                    "array, *, scale: float,  mask: None | str | array = None, "
                                    "sinks: array | None = None, force_fused: bool = False, "
                                    "stream: StreamOrDevice = None) -> array",
}


def _refuse(op):
    return binding_error(op, _SIGS[op])


def _arr(x, s, op, what="x"):
    if type(x) is array and x._stream.device is s.device:
        return x
    if isinstance(x, array) or hasattr(x, "__mlx_array__"):
        return as_array(x, s)
    if op in _SIGS:
        raise _refuse(op)
    raise TypeError(f"[{op}] Expected {what} to be an array, got {type(x).__name__}.")


def _float(v, op):
    """v as a float the way upstream's bindings take one (numbers and objects with
    __float__, not strings or None)."""
    if type(v) is float:
        return v
    if isinstance(v, (str, bytes)) or not hasattr(v, "__float__"):
        raise _refuse(op)
    try:
        return float(v)
    except OverflowError:  # (an int past a double's range: upstream's binding refuses it)
        raise _refuse(op) from None


def _bool(v, op):
    if type(v) is not bool:  # (upstream's binding takes only Python's True and False)
        raise _refuse(op)
    return v


def _cast(x, dt):
    if x._dtype is dt:
        return x
    from ember.core.ops import astype
    return astype(x, dt)


def _check_param(p, name, d, op):
    if p.ndim != 1:
        raise ValueError(f"[{op}] {name} must have 1 dimension but has {p.ndim} dimensions.")
    if p.shape[0] != d:
        raise ValueError(f"[{op}] {name} must have the same size as the last dimension of x "
                         f"but has {p.shape[0]} elements.")


def _norm_args(x, weight, weight_label, s, op):
    """x and the optional weight of a normalization, checked; and their common dtype."""
    x = _arr(x, s, op)
    if x.ndim == 0:
        raise ValueError(f"[{op}] Input must have at least 1 dimension but got input with 0 "
                         "dimensions.")
    dt = x.dtype
    if weight is not None:
        weight = _arr(weight, s, op)
        _check_param(weight, weight_label, x.shape[-1], op)
        dt = D.result_type(dt, weight.dtype)
    return x, weight, dt


def rms_norm(x, weight, eps, *, stream=None):
    """Root Mean Square normalization (RMS norm) over the last axis of ``x``."""
    if stream is None and type(eps) is float:
        st = _plain(x, weight, None)
        if st is not None:
            return P.rms_node(x, weight, eps, st)
    op = "rms_norm"
    s = resolve(stream)
    eps = _float(eps, op)
    x, weight, dt = _norm_args(x, weight, "(*weight)", s, op)
    if dt not in _FLOATS:
        raise ValueError(f"[{op}] Received unsupported type {dt.name}.")
    return P.rms_node(_cast(x, dt), None if weight is None else _cast(weight, dt), eps, s)


def _plain(x, w, b):
    """Whether a normalization's operands need no checks, casts or moves: arrays of one
    floating dtype on the current stream, x at least 1-D, w and b (or None) 1-D of x's
    last size. Returns that stream or None."""
    if _CURRENT and type(x) is array:
        st = _CURRENT[-1]
        sh = x._shape
        dt = x._dtype
        if st is x._stream and sh and dt in _FLOATS:
            for p in (w, b):
                if p is not None and (type(p) is not array or p._stream is not st
                                      or p._dtype is not dt or p._shape != sh[-1:]):
                    return None
            return st
    return None


def layer_norm(x, weight, bias, eps, *, stream=None):
    """Layer normalization over the last axis of ``x``."""
    if stream is None and type(eps) is float:
        st = _plain(x, weight, bias)
        if st is not None:
            return P.ln_node(x, weight, bias, eps, st)
    op = "layer_norm"
    s = resolve(stream)
    eps = _float(eps, op)
    x, weight, dt = _norm_args(x, weight, "weight", s, op)
    if bias is not None:
        bias = _arr(bias, s, op)
        _check_param(bias, "bias", x.shape[-1], op)
        if weight is not None:  # (upstream promotes with the bias only alongside a weight)
            dt = D.result_type(dt, bias.dtype)
    if dt not in _FLOATS:
        raise ValueError(f"[{op}] Received unsupported type {dt.name}.")
    w = None if weight is None else _cast(weight, dt)
    b = None if bias is None else _cast(bias, dt)
    return P.ln_node(_cast(x, dt), w, b, eps, s)


def rope(a, dims, *, traditional, base, scale, offset, freqs=None, stream=None):
    """Apply rotary positional encoding to the input ``a`` of shape ``(B, *, T, D)``."""
    op = "rope"
    s = resolve(stream)
    a = _arr(a, s, op)
    dims = index_arg(dims, _refuse, op)
    traditional = _bool(traditional, op)
    base = None if base is None else _float(base, op)
    scale = _float(scale, op)
    if not -2**31 <= dims < 2**31:  # (upstream's binding takes an int32)
        raise _refuse(op)
    if freqs is not None:
        freqs = _arr(freqs, s, op)
    if offset is None:
        raise _refuse(op)
    # upstream makes an array of anything but an int first, then checks in this order:
    # the input, base / freqs, the offset, dims, the shape of freqs
    if isinstance(offset, (list, tuple, str)) or not (
            isinstance(offset, (int, float, complex, array)) or hasattr(offset, "__array__")
            or hasattr(offset, "__index__")):
        raise ValueError(f"Invalid type {type(offset).__name__} received in array "
                         "initialization.")
    offset = as_array(offset, s)
    if a.ndim < 3:
        raise ValueError(f"[{op}] Input must have at least 3 dimensions but got input with "
                         f"{a.ndim} dimensions.")
    if a.dtype not in _FLOATS:
        raise ValueError(f"[{op}] Input must be a floating type but got {a.dtype.name}.")
    if base is None and freqs is None:
        raise ValueError(f"[{op}] Neither base nor freqs has a value.")
    if base is not None and freqs is not None:
        raise ValueError(f"[{op}] Only one of base or freqs can have a value.")
    if offset.ndim > 1:
        raise ValueError(f"[{op}] offset must have at most one dimension but has shape "
                         f"{_fmt(offset.shape)}.")
    if offset.ndim == 1 and offset.shape[0] not in (1, a.shape[0]):
        raise ValueError(f"[{op}] offset must be a scalar or vector with {a.shape[0]} elements "
                         f"but has shape {_fmt(offset.shape)}.")
    if offset.dtype.kind not in "iu":
        raise ValueError(f"[{op}] offset must be an integer but got type {offset.dtype.name}.")
    if dims <= 0:
        raise ValueError(f"[{op}] dims must be positive but got {dims}.")
    if dims % 2:
        raise ValueError(f"[{op}] dims must be even but got {dims}.")
    if dims > a.shape[-1]:
        raise ValueError(f"[{op}] dims must not exceed the input's last dimension "
                         f"({a.shape[-1]}) but got {dims}.")
    if freqs is not None and freqs.shape != (dims // 2,):
        raise ValueError(f"[{op}] freqs must be one dimensional with size {dims // 2} but "
                         f"got shape {_fmt(freqs.shape)}.")
    prim = P.RoPE(dims, traditional, base, scale)
    return P.rope_node(a, offset, freqs, prim, s)


_SDPA = "scaled_dot_product_attention"


def scaled_dot_product_attention(q, k, v, *, scale, mask=None, sinks=None, force_fused=False,
                                 stream=None):
    """Multi-head attention ``softmax(scale * q @ k.T + mask) @ v`` (grouped-query when
    ``k`` and ``v`` have fewer heads than ``q``)."""
    op = _SDPA
    s = resolve(stream)
    q, k, v = _arr(q, s, op), _arr(k, s, op), _arr(v, s, op)
    scale = _float(scale, op)
    force_fused = _bool(force_fused, op)
    if mask is not None and not isinstance(mask, str):
        mask = _arr(mask, s, op)
    if sinks is not None:
        sinks = _arr(sinks, s, op)
    for x in (q, k, v):
        if len(x._shape) != 4:
            raise ValueError(f"[{op}] input with shape {_fmt(x.shape)} expected to be rank 4")
    dt = q._dtype
    if dt is not k._dtype or dt is not v._dtype:
        dt = D.result_type(dt, k._dtype, v._dtype)
    if dt not in _FLOATS:
        raise ValueError(f"[{op}] Received unsupported type {dt.name}.")
    b, hq, tq, d = q._shape
    for x in (k, v):
        if x._shape[0] != b:
            raise ValueError(f"[{op}] mismatching batch dimension for input with shape "
                             f"{_fmt(x.shape)}.")
    hk, tk = k._shape[1], k._shape[2]
    if hk == 0 or hq % hk:
        raise ValueError(f"[{op}] n_heads must be a multiple of n_kv_heads, found n_heads "
                         f"{hq} for n_kv_heads {hk}.")
    if v._shape[1] != hk:
        raise ValueError(f"[{op}] keys, values expected to have matching n_kv_heads; found keys "
                         f"with n_heads {hk} for values with n_heads {v.shape[1]}.")
    if k._shape[3] != d:
        raise ValueError(f"[{op}] query, keys expected to have matching last dimension; found "
                         f"query shape {_fmt(q.shape)} for keys shape {_fmt(k.shape)}.")
    causal, kind = False, None
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"[{op}] invalid mask option '{mask}'. Must be 'causal', or an "
                             "array.")
        causal, mask = True, None
    elif mask is not None:
        if len(mask._shape) > 4:
            raise ValueError(f"[{op}] the mask with shape {_fmt(mask.shape)} expected to have "
                             "at most rank 4.")
        full = (b, hq, tq, tk)
        if broadcast_pair(mask._shape, full, "broadcast_shapes") != full:
            raise ValueError(f"Cannot broadcast array of shape {_fmt(mask.shape)} into shape "
                             f"{_fmt(full)}.")
        if mask._dtype is D.bool_:
            kind = "bool"
        else:
            if mask._dtype is not dt and D.result_type(mask._dtype, dt) is not dt:
                raise ValueError(f"[{op}] Mask type must promote to output type {dt.name}.")
            kind, mask = "add", _cast(mask, dt)
    if sinks is not None:
        if sinks.shape != (hq,):
            raise ValueError(f"[{op}] Received invalid shape for sinks {_fmt(sinks.shape)}.")
        if D.result_type(sinks.dtype, dt) is not dt:
            raise ValueError(f"[{op}] Type of sinks must promote to output type {dt.name}.")
        sinks = _cast(sinks, dt)
    if force_fused and not s.is_gpu:
        raise ValueError(f"[{op}] force_fused=True but no fused kernel is available in CPU "
                         "backend.")
    if v._shape[2] != tk:  # (upstream's check is that of its scores @ v)
        g = hq // hk
        sc, vs = (b, hq, tq, tk), v.shape
        if g > 1:
            sc, vs = (b, hk, g, tq, tk), vs[:2] + (1,) + vs[2:]
        raise ValueError(f"[matmul] Last dimension of first input with shape {_fmt(sc)} must "
                         "match second to last dimension of second input with shape "
                         f"{_fmt(vs)}.")
    ins = (_cast(q, dt), _cast(k, dt), _cast(v, dt))
    if mask is not None:
        ins += (mask,)
    if sinks is not None:
        ins += (sinks,)
    prim = P.SDPA(scale, causal, kind, sinks is not None)
    return node((b, hq, tq, v._shape[3]), dt, prim, ins, s)


def cross_entropy(logits, targets, *, stream=None):
    """Cross entropy loss with class indices as targets: ``logsumexp(logits, axis=-1) -
    logits[..., target]``, in float32."""
    from ember.core import ops as O
    op = "cross_entropy"
    s = resolve(stream)
    logits = _arr(logits, s, op, "logits")
    targets = _arr(targets, s, op, "targets")
    if logits.ndim == 0:
        raise ValueError(f"[{op}] logits must have at least 1 dimension but got input with 0 "
                         "dimensions.")
    if logits.dtype not in _FLOATS:
        raise ValueError(f"[{op}] Received unsupported logits type {logits.dtype.name}.")
    if targets.dtype.kind not in "iu":
        raise ValueError(f"[{op}] targets must be integer class indices but got "
                         f"{targets.dtype.name}.")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"[{op}] targets shape {_fmt(targets.shape)} does not match logits "
                         f"shape {_fmt(logits.shape)} with the last axis removed.")
    if s.is_gpu:  # the fused CUDA kernel accumulates in float32
        logits = _cast(logits, D.float32)
    lse = O.logsumexp(logits, axis=-1, stream=s)
    picked = O.take_along_axis(logits, O.expand_dims(targets, -1, stream=s), axis=-1, stream=s)
    loss = O.subtract(lse, O.squeeze(picked, -1, stream=s), stream=s)
    return _cast(loss, D.float32)


def gated_delta_update(q, k, v, gamma, beta, initial_state=None, mask=None, stream=None):
    """Gated delta network recurrence over time.

    Shapes: q, k ``[B, T, Hk, Dk]``; v ``[B, T, Hv, Dv]``; gamma ``[B, T, Hv]`` (or
    ``[B, T, Hv, Dk]``); beta ``[B, T, Hv]``; state ``[B, Hv, Dv, Dk]``; mask ``[B, T]``.
    Returns ``(output [B, T, Hv, Dv], final_state [B, Hv, Dv, Dk])``."""
    from ember.core import ops as O
    op = "gated_delta_update"
    s = resolve(stream)
    q, k, v = _arr(q, s, op, "q"), _arr(k, s, op, "k"), _arr(v, s, op, "v")
    gamma, beta = _arr(gamma, s, op, "gamma"), _arr(beta, s, op, "beta")
    for x in (q, k, v):
        if x.ndim != 4:
            raise ValueError(f"[{op}] q, k and v must have 4 dimensions but got shape "
                             f"{_fmt(x.shape)}.")
    out_dt = D.result_type(q.dtype, k.dtype, v.dtype)
    if out_dt not in _FLOATS:
        raise ValueError(f"[{op}] Received unsupported type {out_dt.name}.")
    ct = D.result_type(out_dt, D.float32)
    bsz, t, hk, dk = k.shape
    hv, dv = v.shape[2], v.shape[3]
    rep = hv // hk if hk else 0
    qf, kf, vf = _cast(q, ct), _cast(k, ct), _cast(v, ct)
    if rep != 1:
        qf = O.repeat(qf, rep, axis=2, stream=s)
        kf = O.repeat(kf, rep, axis=2, stream=s)
    gf, bf = _cast(gamma, ct), _cast(beta, ct)
    if initial_state is None:
        state = O.zeros((bsz, hv, dv, dk), ct, stream=s)
    else:
        state = _cast(_arr(initial_state, s, op, "initial_state"), ct)
    if mask is not None:
        mask = _cast(_arr(mask, s, op, "mask"), D.bool_)
    outs = []
    for i in range(t):
        g = O.take(gf, i, axis=1, stream=s)
        g = O.expand_dims(g, (-1, -2), stream=s) if g.ndim == 2 else O.expand_dims(g, -2,
                                                                                  stream=s)
        kt = O.expand_dims(O.take(kf, i, axis=1, stream=s), -2, stream=s)
        qt = O.expand_dims(O.take(qf, i, axis=1, stream=s), -1, stream=s)
        new = O.multiply(state, g, stream=s)
        kv = O.sum(O.multiply(new, kt, stream=s), axis=-1, stream=s)
        delta = O.multiply(O.subtract(O.take(vf, i, axis=1, stream=s), kv, stream=s),
                           O.expand_dims(O.take(bf, i, axis=1, stream=s), -1, stream=s),
                           stream=s)
        new = O.add(new, O.multiply(O.expand_dims(delta, -1, stream=s), kt, stream=s),
                    stream=s)
        o = O.squeeze(O.matmul(new, qt, stream=s), -1, stream=s)
        if mask is not None:
            m = O.take(mask, i, axis=1, stream=s)
            new = O.where(O.reshape(m, m.shape + (1, 1, 1), stream=s), new, state, stream=s)
            o = O.where(O.reshape(m, m.shape + (1, 1), stream=s), o, 0.0, stream=s)
        state = new
        outs.append(o)
    if outs:
        out = O.stack(outs, axis=1, stream=s)
    else:
        out = O.zeros((bsz, 0, hv, dv), ct, stream=s)
    return [_cast(out, out_dt), state]


def cuda_kernel(name, input_names, output_names, source, header="", ensure_row_contiguous=True,
                shared_memory=0):
    """A jit-compiled custom CUDA kernel defined from a source string (the body of the
    kernel; its signature is generated from the names)."""
    from ember.core._backend import cuda_kernel as CK
    if not CK.available():
        raise RuntimeError("[cuda_kernel] No CUDA back-end.")
    return _CudaKernel(name, list(input_names), list(output_names), source, header,
                       bool(ensure_row_contiguous), int(shared_memory))


class _CudaKernel:
    __slots__ = ("name", "input_names", "output_names", "source", "header", "contiguous",
                 "shared_memory")

    def __init__(self, name, input_names, output_names, source, header, contiguous, shmem):
        self.name, self.input_names, self.output_names = name, input_names, output_names
        self.source, self.header = source, header
        self.contiguous, self.shared_memory = contiguous, shmem

    def __call__(self, *, inputs, output_shapes, output_dtypes, grid, threadgroup,
                 template=None, init_value=None, verbose=False, stream=None):
        from ember.core._backend import cuda_kernel as CK
        op = "cuda_kernel"
        s = resolve(stream)
        if not s.is_gpu:
            raise RuntimeError(f"[{op}] Custom CUDA kernels run only on the GPU, got {s}.")
        if len(inputs) != len(self.input_names):
            raise ValueError(f"[{op}] Expected {len(self.input_names)} inputs but got "
                             f"{len(inputs)}.")
        if len(output_shapes) != len(self.output_names) or len(output_dtypes) != len(
                self.output_names):
            raise ValueError(f"[{op}] Expected {len(self.output_names)} output shapes and "
                             "dtypes.")
        arrays, scalars = [], []
        for n, x in zip(self.input_names, inputs):
            if isinstance(x, (bool, int, float)):
                scalars.append((n, x))
            else:
                arrays.append(as_array(x, s))
        shapes = [tuple(int(d) for d in sh) for sh in output_shapes]
        src = CK.generate(self.name, self.input_names, list(inputs), arrays, self.output_names,
                          list(output_dtypes), self.source, self.header, template or [],
                          self.contiguous)
        if verbose:
            print(src)
        launch = CK.Launcher(self.name, src, arrays, scalars, shapes, list(output_dtypes),
                             _dims(grid), _dims(threadgroup), self.shared_memory, init_value,
                             self.contiguous, self.input_names, self.source)
        return _launch_nodes(launch, arrays, shapes, output_dtypes, s)


def precompiled_cuda_kernel(*, name, compiled_source, inputs, output_shapes, output_dtypes,
                            scalars, grid, threadgroup, shared_memory=0, init_value=None,
                            ensure_row_contiguous=False, stream=None):
    """Run a precompiled CUDA kernel (PTX or cubin bytes) taking the inputs, then the
    outputs, then the scalars as its arguments."""
    from ember.core._backend import cuda_kernel as CK
    op = "cuda_kernel"
    if not CK.available():
        raise RuntimeError(f"[{op}] No CUDA back-end.")
    s = resolve(stream)
    if not s.is_gpu:
        raise RuntimeError(f"[{op}] Custom CUDA kernels run only on the GPU, got {s}.")
    arrays = [as_array(x, s) for x in inputs]
    shapes = [tuple(int(d) for d in sh) for sh in output_shapes]
    launch = CK.PrecompiledLauncher(name, bytes(compiled_source), list(scalars), shapes,
                                    list(output_dtypes), _dims(grid), _dims(threadgroup),
                                    int(shared_memory), init_value,
                                    bool(ensure_row_contiguous), [a.dtype for a in arrays])
    return _launch_nodes(launch, arrays, shapes, output_dtypes, s)


def _dims(t):
    t = tuple(int(d) for d in t)
    if len(t) != 3:
        raise ValueError("[cuda_kernel] grid and threadgroup must have 3 dimensions.")
    return t


def _launch_nodes(launch, arrays, shapes, dtypes, s):
    from ember.core.array import nodes
    return nodes(shapes, list(dtypes), P.CustomKernel(launch), tuple(arrays), s)


def metal_kernel(name, input_names, output_names, source, header="", ensure_row_contiguous=True,
                 atomic_outputs=False, compile_options=None):
    """A custom Metal kernel: Metal is not available here, so calling it raises."""
    return _MetalKernel(name)


class _MetalKernel:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __call__(self, *args, **kwargs):
        # (upstream's words first, then a hint)
        raise RuntimeError("[metal_kernel] No Metal back-end. Metal is not available here "
                           "(use mx.fast.cuda_kernel on NVIDIA GPUs).")
