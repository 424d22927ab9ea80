"""Spatial resampling of channels-last arrays (N, *spatial, C): `Upsample` and the
functions behind it, `upsample_nearest`, `upsample_linear`, `upsample_cubic`.

Interpolation is separable: one gather per tap along each spatial axis, weighted and
summed. The source indices and weights of an axis depend only on its size, the scale
and the mode, so they are computed once in float32 numpy (the same float32 arithmetic
as MLX, so the chosen source pixels agree) and cached as Ember arrays.
"""

from functools import lru_cache
from math import ceil
from typing import Literal, Tuple, Union

import numpy as np

import ember.core as mx
from ember.nn.layers.base import Module

__all__ = ["Upsample"]

_f32 = np.float32


def _scaled_positions(n, scale, align_corners):
    """Source coordinate (float32) of each output position along one axis."""
    m = int(scale * n)
    r = np.arange(m, dtype=_f32)
    if align_corners:
        return r * _f32((n - 1) / max(m - 1, 1))
    step = 1 / scale
    return r * _f32(step) - _f32(((m - 1) * step - n + 1) / 2)


def _nearest_taps(n, scale, align_corners):
    m = int(scale * n)
    r = np.arange(m, dtype=_f32)
    if m > n:
        idx = np.round((r + _f32(0.5)) * _f32(n / m) - _f32(0.5))
    else:
        idx = r * _f32(n / m)
    return [(idx, None)]


def _linear_taps(n, scale, align_corners):
    pos = np.clip(_scaled_positions(n, scale, align_corners), _f32(0), _f32(n - 1))
    left = np.floor(pos)
    w = pos - left
    return [(left, _f32(1) - w), (np.ceil(pos), w)]


def _keys_inner(x, a):
    # Keys' cubic convolution kernel for |x| <= 1 ...
    return (_f32(a + 2) * x - _f32(a + 3)) * x * x + _f32(1)


def _keys_outer(x, a):
    # ... and for 1 < |x| <= 2
    return (((x - _f32(5)) * x + _f32(8)) * x - _f32(4)) * _f32(a)


def _cubic_taps(n, scale, align_corners):
    # a = -0.75 as OpenCV (and PyTorch without antialiasing); the border is replicated
    pos = _scaled_positions(n, scale, align_corners)
    l1 = np.floor(pos)
    r1 = np.floor(pos + _f32(1))
    taps = []
    for grid, inner in ((l1, True), (r1, True), (l1 - _f32(1), False), (r1 + _f32(1), False)):
        d = np.abs(pos - grid)
        w = _keys_inner(d, -0.75) if inner else _keys_outer(d, -0.75)
        taps.append((np.clip(grid, _f32(0), _f32(n - 1)), w))
    return taps


def _triangle(d):
    return np.maximum(_f32(1) - d, _f32(0))


def _cubic_aa(d):
    # a = -0.5 (PIL's convention), which PyTorch uses when antialiasing
    inner, outer = _keys_inner(d, -0.5), _keys_outer(d, -0.5)
    return np.where(d <= _f32(1), inner, np.where(d <= _f32(2), outer, _f32(0))).astype(_f32)


def _antialiased_taps(n, scale, align_corners, kernel, radius):
    # downscaling widens the kernel by 1/scale so that it low-pass filters; taps that
    # fall outside the input get no weight and the rest are renormalized
    pos = _scaled_positions(n, scale, align_corners)
    widen = 1.0 / scale if scale < 1 else 1.0
    count = ceil(radius * widen) + 1
    base = np.floor(pos)
    idxs, ws = [], []
    for k in range(1 - count, count):
        idx = base + _f32(k)
        w = kernel(np.abs(pos - idx) / _f32(widen))
        ws.append(np.where((idx >= 0) & (idx < n), w, _f32(0)).astype(_f32))
        idxs.append(idx)
    total = ws[0]
    for w in ws[1:]:
        total = total + w
    total = np.where(total > 0, total, _f32(1)).astype(_f32)
    return [(np.clip(i, _f32(0), _f32(n - 1)), w / total) for i, w in zip(idxs, ws)]


_TAPS = {
    "nearest": _nearest_taps,
    "linear": _linear_taps,
    "cubic": _cubic_taps,
    "linear_aa": lambda n, s, ac: _antialiased_taps(n, s, ac, _triangle, 1.0),
    "cubic_aa": lambda n, s, ac: _antialiased_taps(n, s, ac, _cubic_aa, 2.0),
}


@lru_cache(maxsize=512)
def _axis_taps(kind, n, scale, align_corners, trailing):
    """[(uint32 source indices, float32 weights or None)] for one axis; the weights are
    shaped to broadcast over the `trailing` axes after it."""
    wshape = (-1,) + (1,) * trailing
    return tuple(
        (mx.array(idx.astype(np.uint32)),
         None if w is None else mx.array(w.astype(_f32).reshape(wshape)))
        for idx, w in _TAPS[kind](n, scale, align_corners))


def _resample(x, scale_factor, kind, align_corners):
    dims = x.ndim - 2
    if dims != len(scale_factor):
        raise ValueError("A scale needs to be provided for each spatial dimension")
    out = x
    for i, (n, s) in enumerate(zip(x.shape[1:-1], scale_factor)):
        acc = None
        for idx, w in _axis_taps(kind, n, float(s), align_corners, dims - i):
            sample = mx.take(out, idx, axis=i + 1)
            if w is not None:
                sample = sample * w
            acc = sample if acc is None else acc + sample
        out = acc
    return out


def _check_antialias(align_corners, antialias):
    if antialias and align_corners:
        raise ValueError(
            "[Upsample] antialias=True with align_corners=True is not supported. "
            "Use align_corners=False for antialiased interpolation.")


def upsample_nearest(x: mx.array, scale_factor: Tuple):
    """Nearest-neighbour resampling of x (N, *spatial, C) by one scale per spatial axis."""
    dims = x.ndim - 2
    if dims != len(scale_factor):
        raise ValueError("A scale needs to be provided for each spatial dimension")
    if tuple(map(int, scale_factor)) != scale_factor:
        return _resample(x, scale_factor, "nearest", False)
    # integer scales: repeat each pixel by broadcasting a new axis after each spatial one
    shape = x.shape
    expanded = [shape[0]]
    for n in shape[1:-1]:
        expanded += [n, 1]
    x = x.reshape(expanded + [shape[-1]])
    target = [shape[0]]
    for n, s in zip(shape[1:-1], scale_factor):
        target += [n, int(s)]
    x = mx.broadcast_to(x, target + [shape[-1]])
    out = [shape[0]] + [n * int(s) for n, s in zip(shape[1:-1], scale_factor)] + [shape[-1]]
    return x.reshape(out)


def upsample_linear(x: mx.array, scale_factor: Tuple, align_corners: bool = False,
                    antialias: bool = False):
    """(Multi-)linear resampling of x (N, *spatial, C); `antialias` low-pass filters
    when downscaling. The result is float32 for half-precision and integer inputs."""
    _check_antialias(align_corners, antialias)
    return _resample(x, scale_factor, "linear_aa" if antialias else "linear", align_corners)


def upsample_cubic(x: mx.array, scale_factor: Tuple, align_corners: bool = False,
                   antialias: bool = False):
    """(Multi-)cubic resampling of x (N, *spatial, C), replicating the border;
    `antialias` low-pass filters when downscaling (and uses Keys' a = -0.5)."""
    _check_antialias(align_corners, antialias)
    return _resample(x, scale_factor, "cubic_aa" if antialias else "cubic", align_corners)


class Upsample(Module):
    """Resamples the spatial axes (all but the first and last) of the input by
    `scale_factor` (one number, or one per spatial axis) with nearest-neighbour,
    linear or cubic interpolation.

    `align_corners` maps the corner pixels of input and output onto each other (linear
    and cubic only); `antialias` filters when downscaling (linear and cubic only).
    """

    def __init__(self, scale_factor: Union[float, Tuple],
                 mode: Literal["nearest", "linear", "cubic"] = "nearest",
                 align_corners: bool = False, antialias: bool = False):
        super().__init__()
        if mode not in ("nearest", "linear", "cubic"):
            raise ValueError(f"[Upsample] Got unsupported upsampling algorithm: {mode}")
        if antialias and mode == "nearest":
            raise ValueError(
                "[Upsample] Antialiasing is not supported for nearest neighbor upsampling")
        if isinstance(scale_factor, (list, tuple)):
            scale_factor = tuple(float(s) for s in scale_factor)
        else:
            scale_factor = float(scale_factor)
        _check_antialias(align_corners, antialias)
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.antialias = antialias

    def _extra_repr(self) -> str:
        s = (f"scale_factor={self.scale_factor}, mode={self.mode!r}, "
             f"align_corners={self.align_corners}")
        return s + ", antialias=True" if self.antialias else s

    def __call__(self, x: mx.array) -> mx.array:
        dims = x.ndim - 2
        if dims <= 0:
            raise ValueError(
                "[Upsample] The input should have at least 1 spatial dimension which "
                f"means it should be at least 3D but {x.ndim}D was provided")
        scale = self.scale_factor
        if isinstance(scale, tuple):
            if len(scale) != dims:
                raise ValueError(
                    f"[Upsample] One scale per spatial dimension is required but "
                    f"scale_factor={scale} and the number of spatial dimensions were "
                    f"{dims}")
        else:
            scale = (scale,) * dims
        if self.mode == "nearest":
            return upsample_nearest(x, scale)
        if self.mode == "linear":
            return upsample_linear(x, scale, self.align_corners, self.antialias)
        return upsample_cubic(x, scale, self.align_corners, self.antialias)
