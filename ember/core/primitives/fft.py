"""Discrete Fourier transforms over given axes: complex-to-complex, real-to-complex (the
last transformed axis halved) and complex-to-real (the last axis grown back to `n`).

Ops pad or truncate the input beforehand, so each transform sees exactly its sizes. All
three are linear: the jvp applies the transform to the tangent; the vjp applies the
adjoint, which is the opposite transform under the dual normalisation.
"""

import ember.core.ops as O
from ember.core import dtypes as D
from ember.core.primitives.base import Primitive
from ember.core.primitives.vmap import to_front

# the adjoint of a transform normalised one way is the opposite one normalised the other
DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


class FFT(Primitive):
    """`kind` is "c2c" (inverse or not), "r2c" (forward) or "c2r" (inverse, output size
    `n` along the last of `axes`). Axes are non-negative, in the caller's order."""

    __slots__ = ("axes", "kind", "inverse", "norm", "n")
    name = "FFT"

    def __init__(self, axes, kind, inverse, norm, n=None):
        self.axes, self.kind, self.inverse, self.norm, self.n = axes, kind, inverse, norm, n

    def params(self):
        return (self.axes, self.kind, self.inverse, self.norm, self.n)

    def vjp(self, primals, cotangents, argnums, outputs):
        x, g = primals[0], cotangents[0]
        axes, dual = self.axes, DUAL[self.norm]
        if self.kind == "c2c":
            g = O.astype(g, D.complex64)
            return [apply_fft(FFT(axes, "c2c", not self.inverse, dual), g)]
        if self.kind == "r2c":
            # pad the half spectrum back to full length; its real part is the cotangent
            last = axes[-1]
            widths = [(0, 0)] * g.ndim
            widths[last] = (0, x.shape[last] - g.shape[last])
            g = O.pad(O.astype(g, D.complex64), widths)
            return [O.real(apply_fft(FFT(axes, "c2c", True, dual), g))]
        # c2r: each bin but DC (and Nyquist for even n) stands for two conjugate bins
        g = apply_fft(FFT(axes, "r2c", False, dual), O.astype(g, D.float32))
        m = g.shape[axes[-1]]
        w = [1.0] + [2.0] * (m - 1)
        if self.n % 2 == 0 and m > 1:
            w[-1] = 1.0
        shape = [1] * g.ndim
        shape[axes[-1]] = m
        w = O.as_array(O.array(w, D.float32), g._stream)
        return [O.multiply(g, O.reshape(w, tuple(shape)))]

    def jvp(self, primals, tangents, argnums):
        t = O.astype(tangents[0], primals[0].dtype)
        return [apply_fft(self, t)]

    def vmap(self, inputs, axes):
        x = to_front(inputs[0], axes[0])
        p = FFT(tuple(a + 1 for a in self.axes), self.kind, self.inverse, self.norm, self.n)
        return [apply_fft(p, x)], [0]


def out_shape(p, shape):
    if p.kind == "c2c":
        return shape
    shape = list(shape)
    last = p.axes[-1]
    shape[last] = shape[last] // 2 + 1 if p.kind == "r2c" else p.n
    return tuple(shape)


def apply_fft(p, x):
    """The node of transform `p` over `x` (already of the input dtype for its kind)."""
    from ember.core.array import node
    dt = D.float32 if p.kind == "c2r" else D.complex64
    return node(out_shape(p, x.shape), dt, p, (x,), x._stream)
