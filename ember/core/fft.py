"""mx.fft: discrete Fourier transforms, their frequencies and shifts, and the short-time
transform with its inverse."""


import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.array import array
from ember.core.ops._base import binding_error, index_arg, resolve
from ember.core.primitives.fft import FFT, apply_fft

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2",
           "irfft2", "rfftn", "irfftn", "fftshift", "ifftshift", "fftfreq", "rfftfreq",
           "stft", "istft"]

_NORMS = ("backward", "ortho", "forward")


_STREAM = ("stream: mlx.core.Stream | mlx.core.ThreadLocalStream | mlx.core.Device | "
           "mlx.core.DeviceType | None = None) -> mlx.core.array")
_ONE = "(a: mlx.core.array, n: int | None = None, axis: int = -1, norm: str = 'backward', "
_MULTI = ("(a: mlx.core.array, s: tuple[int, ...] | None = None, axes: "
          "collections.abc.Sequence[int] | None = {}, norm: str = 'backward', ")
# upstream's signatures, quoted by its binding when an argument does not convert
_SIGS = {
    **{op: op + _ONE + _STREAM for op in ("fft", "ifft", "rfft", "irfft")},
    **{op: op + _MULTI.format("[-2, -1]") + _STREAM
       for op in ("fft2", "ifft2", "rfft2", "irfft2")},
    **{op: op + _MULTI.format("None") + _STREAM for op in ("fftn", "ifftn", "rfftn", "irfftn")},
    **{op: op + "(a: mlx.core.array, axes: int | collections.abc.Sequence[int] | None = None, "
       + _STREAM for op in ("fftshift", "ifftshift")},
    **{op: op + "(n: int, d: float = 1.0, " + _STREAM for op in ("fftfreq", "rfftfreq")},
    "stft": "stft(x: mlx.core.array, n_fft: int = 2048, hop_length: int | None = None, "
            "win_length: int | None = None, window: mlx.core.array | None = None, center: "
            "bool = True, pad_mode: str = 'reflect', norm: str = 'backward', onesided: bool | "
            "None = None, " + _STREAM,
    "istft": "istft(stft_matrix: mlx.core.array, n_fft: int | None = None, hop_length: int | "
             "None = None, win_length: int | None = None, window: mlx.core.array | None = "
             "None, center: bool = True, norm: str = 'backward', onesided: bool | None = None, "
             "length: int | None = None, " + _STREAM,
}


def _refuse(op):
    return binding_error(op, _SIGS[op])


def _array(a, op):
    if not isinstance(a, array):
        raise _refuse(op)
    return a


def _int(v, op):
    return index_arg(v, _refuse, op)


def _ints(v, op):
    """A sequence of ints as the binding takes one: a list, tuple, range or 1-D integer
    array, not an iterator, a set or a mapping."""
    if v is None:
        return None
    if isinstance(v, (str, bytes, dict)) or not hasattr(type(v), "__getitem__"):
        raise _refuse(op)
    try:
        items = list(v)  # (0-d arrays refuse to iterate)
    except TypeError:
        raise _refuse(op) from None
    return tuple(_int(x, op) for x in items)


def _check_norm(norm, op):
    if not isinstance(norm, str):
        raise _refuse(op)
    if norm not in _NORMS:
        raise ValueError(f"[{op}] Invalid norm. Expected one of {{'backward', 'ortho', "
                         "'forward'}.")


def _resize(x, axis, size, s):
    """x truncated or zero-padded to `size` along `axis`."""
    d = x.shape[axis]
    if d == size:
        return x
    if d > size:
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(0, size)
        return x[tuple(idx)]
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - d)
    return O.pad(x, widths, stream=s)


def _fftn(a, s, axes, norm, stream, op, kind, inverse):
    _array(a, op)
    _check_norm(norm, op)
    s_ = _ints(s, op)
    if axes is None:
        if s_ is not None:
            raise ValueError(f"[{op}] `axes` should not be `None` if `s` is not `None`.")
        if a.ndim == 0:
            raise ValueError("[fftn] Requires array with at least one dimension.")
        axes = tuple(range(a.ndim))
    else:
        axes = _ints(axes, op)
    nd = a.ndim

    def check_axes():
        for ax in axes:
            if not -nd <= ax < nd:
                raise IndexError(f"[fftn] Invalid axis received for array with {nd} "
                                 "dimensions.")

    if s_ is None:  # (upstream reads the sizes off the axes before any other check)
        check_axes()
    if nd == 0:
        raise ValueError("[fftn] Requires array with at least one dimension.")
    if s_ is not None and len(s_) != len(axes):
        raise ValueError("[fftn] Shape and axes have different sizes.")
    check_axes()
    real = tuple(ax % nd for ax in axes)
    if len(set(real)) != len(real):
        raise ValueError(f"[fftn] Duplicated axis received ({','.join(map(str, axes))})")
    if s_ is None:
        s_ = [a.shape[ax] for ax in real]
        if kind == "c2r" and s_:
            s_[-1] = 2 * (s_[-1] - 1)
    if any(n <= 0 for n in s_):
        raise ValueError(f"[fftn] Invalid FFT output size requested ({','.join(map(str, s_))})")
    if not real:
        return a
    st = resolve(stream)
    x = O.astype(a, D.float32 if kind == "r2c" else D.complex64, stream=st)
    for i, (ax, n) in enumerate(zip(real, s_)):
        last = i == len(real) - 1
        x = _resize(x, ax, n // 2 + 1 if last and kind == "c2r" else n, st)
    if x._stream is not st:
        x = O.as_array(x, st)
    return apply_fft(FFT(real, kind, inverse, norm, s_[-1] if kind == "c2r" else None), x)


def _one(n, axis, op):
    return (None if n is None else (_int(n, op),)), (_int(axis, op),)


def fft(a, n=None, axis=-1, norm="backward", stream=None):
    n, axes = _one(n, axis, "fft")
    return _fftn(a, n, axes, norm, stream, "fft", "c2c", False)


def ifft(a, n=None, axis=-1, norm="backward", stream=None):
    n, axes = _one(n, axis, "ifft")
    return _fftn(a, n, axes, norm, stream, "ifft", "c2c", True)


def rfft(a, n=None, axis=-1, norm="backward", stream=None):
    n, axes = _one(n, axis, "rfft")
    return _fftn(a, n, axes, norm, stream, "rfft", "r2c", False)


def irfft(a, n=None, axis=-1, norm="backward", stream=None):
    n, axes = _one(n, axis, "irfft")
    return _fftn(a, n, axes, norm, stream, "irfft", "c2r", True)


def fft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "fft2", "c2c", False)


def ifft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "ifft2", "c2c", True)


def rfft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "rfft2", "r2c", False)


def irfft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "irfft2", "c2r", True)


def fftn(a, s=None, axes=None, norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "fftn", "c2c", False)


def ifftn(a, s=None, axes=None, norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "ifftn", "c2c", True)


def rfftn(a, s=None, axes=None, norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "rfftn", "r2c", False)


def irfftn(a, s=None, axes=None, norm="backward", stream=None):
    return _fftn(a, s, axes, norm, stream, "irfftn", "c2r", True)


# -- shifts and frequencies ------------------------------------------------------------

def _shift(a, axes, stream, op, inverse):
    _array(a, op)
    nd = a.ndim
    if axes is None:
        axes = tuple(range(nd))
    elif hasattr(axes, "__index__") and not getattr(axes, "ndim", 0):
        axes = (_int(axes, op),)
    else:
        axes = _ints(axes, op)
    for ax in axes:
        if not -nd <= ax < nd:
            raise IndexError(f"[{op}] Invalid axis {ax} for array with {nd} dimensions.")
    if not axes:
        return a
    shifts = tuple(-(a.shape[ax] // 2) if inverse else a.shape[ax] // 2 for ax in axes)
    return O.roll(a, shifts, axis=axes, stream=stream)


def fftshift(a, axes=None, stream=None):
    return _shift(a, axes, stream, "fftshift", False)


def ifftshift(a, axes=None, stream=None):
    return _shift(a, axes, stream, "ifftshift", True)


def _freq_args(n, d, op):
    n = _int(n, op)
    # the binding takes anything float() takes but text (a one-element array too)
    if isinstance(d, (str, bytes, complex)):
        raise _refuse(op)
    try:
        d = float(d)
    except (TypeError, ValueError):
        raise _refuse(op) from None
    if n <= 0:
        raise ValueError(f"[{op}] `n` must be greater than 0.")
    if d == 0:
        raise ValueError(f"[{op}] `d` must be non-zero.")
    return n, d


def fftfreq(n, d=1.0, stream=None):
    n, d = _freq_args(n, d, "fftfreq")
    s = resolve(stream)
    i = O.arange(n, stream=s)
    i = O.where(O.less(i, (n + 1) // 2, stream=s), i, O.subtract(i, n, stream=s), stream=s)
    return O.divide(O.astype(i, D.float32, stream=s), n * d, stream=s)


def rfftfreq(n, d=1.0, stream=None):
    n, d = _freq_args(n, d, "rfftfreq")
    s = resolve(stream)
    return O.divide(O.arange(n // 2 + 1, dtype=D.float32, stream=s), n * d, stream=s)


# -- short-time transforms -------------------------------------------------------------

def _window(window, win_length, n_fft, dt, s, op):
    """The window as `dt`, zero-padded on both sides to `n_fft` (centred)."""
    if window is not None:
        _array(window, op)
        if window.ndim != 1:
            raise ValueError(f"[{op}] window must be a one-dimensional array.")
        wl = window.shape[0]
    else:
        wl = n_fft if win_length is None else _int(win_length, op)
    if wl > n_fft:
        raise ValueError(f"[{op}] window length must not exceed n_fft.")
    w = O.ones((max(wl, 0),), dt, stream=s) if window is None else O.astype(window, dt, stream=s)
    left = (n_fft - w.shape[0]) // 2
    if w.shape[0] == n_fft:
        return w
    return O.pad(w, [(left, n_fft - w.shape[0] - left)], stream=s)


def _frame_index(n_frames, n_fft, hop, s):
    starts = O.multiply(O.arange(n_frames, stream=s), hop, stream=s)
    return O.add(O.expand_dims(starts, 1, stream=s), O.arange(n_fft, stream=s), stream=s)


def _stft_sizes(n_fft, hop_length, op):
    n_fft = _int(n_fft, op)
    if n_fft <= 0:
        raise ValueError(f"[{op}] n_fft must be positive.")
    hop = n_fft // 4 if hop_length is None else _int(hop_length, op)
    if hop <= 0:
        raise ValueError(f"[{op}] hop_length must be positive.")
    return n_fft, hop


def _bool(v, op, optional=False):
    if not isinstance(v, bool) and not (optional and v is None):
        raise _refuse(op)
    return v


def stft(x, n_fft=2048, hop_length=None, win_length=None, window=None, center=True,
         pad_mode="reflect", norm="backward", onesided=None, stream=None):
    _array(x, "stft")
    _bool(center, "stft")
    _bool(onesided, "stft", True)
    if not isinstance(pad_mode, str):
        raise _refuse("stft")
    if x.ndim < 1:
        raise ValueError("[stft] Input must have at least one dimension.")
    n_fft, hop = _stft_sizes(n_fft, hop_length, "stft")
    _check_norm(norm, "stft")
    s = resolve(stream)
    cplx = x.dtype is D.complex64
    # frames are windowed in the input's own inexact dtype (float32 for integers)
    dt = x.dtype if x.dtype.kind in "fc" else D.float32
    w = _window(window, win_length, n_fft, dt, s, "stft")
    x = O.astype(x, dt, stream=s)
    if center:
        widths = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        x = O.pad(x, widths, mode=pad_mode, stream=s)
    length = x.shape[-1]
    if length < n_fft:
        raise ValueError("[stft] Input is too short for the given n_fft.")
    n_frames = 1 + (length - n_fft) // hop
    frames = O.take(x, _frame_index(n_frames, n_fft, hop, s), axis=-1, stream=s)
    frames = O.multiply(frames, w, stream=s)
    onesided = not cplx if onesided is None else onesided
    spec = (rfft if onesided else fft)(frames, norm=norm, stream=s)
    return O.swapaxes(spec, -1, -2, stream=s)


def _overlap_add(y, hop, length, s):
    """Frames y (..., F, n) summed into (..., length) with frame f starting at f * hop."""
    idx = _frame_index(y.shape[-2], y.shape[-1], hop, s)
    out = O.zeros(y.shape[:-2] + (length,), y.dtype, stream=s)
    if 0 in y.shape[:-2]:  # (no frames to add; a scatter into an empty batch refuses)
        return out
    return out.at[..., idx].add(y)


def istft(stft_matrix, n_fft=None, hop_length=None, win_length=None, window=None,
          center=True, norm="backward", onesided=None, length=None, stream=None):
    a = _array(stft_matrix, "istft")
    _bool(center, "istft")
    _bool(onesided, "istft", True)
    if a.ndim < 2:
        raise ValueError("[istft] Input must have at least two dimensions (freq, frames).")
    onesided = True if onesided is None else onesided
    n_freq, n_frames = a.shape[-2:]
    if n_fft is None:
        n_fft = 2 * (n_freq - 1) if onesided else n_freq
    n_fft, hop = _stft_sizes(n_fft, hop_length, "istft")
    _check_norm(norm, "istft")
    s = resolve(stream)
    w = _window(window, win_length, n_fft, D.float32, s, "istft")
    if n_frames == 0:
        raise ValueError("[istft] Cannot invert an STFT with no frames.")
    spec = O.swapaxes(O.astype(a, D.complex64, stream=s), -1, -2, stream=s)
    if onesided:
        frames = irfft(spec, n=n_fft, norm=norm, stream=s)
    else:
        frames = O.real(ifft(spec, n=n_fft, norm=norm, stream=s), stream=s)
    total = n_fft + hop * (n_frames - 1)
    y = _overlap_add(O.multiply(frames, w, stream=s), hop, total, s)
    tiles = O.broadcast_to(O.square(w, stream=s), (n_frames, n_fft), stream=s)
    env = _overlap_add(tiles, hop, total, s)
    # (a vanishing window envelope is clamped rather than divided by)
    y = O.divide(y, O.maximum(env, 1e-8, stream=s), stream=s)
    start = n_fft // 2 if center else 0
    if length is None:
        stop = total - start
    else:
        stop = start + max(_int(length, "istft"), 0)
    if stop > total:
        widths = [(0, 0)] * (y.ndim - 1) + [(0, stop - total)]
        y = O.pad(y, widths, stream=s)
    return y[..., start:max(stop, start)]
