"""Kernels of the Fourier transforms (torch.fft: pocketfft/MKL on CPU, cuFFT on CUDA)."""

import torch

from ember.core._backend.kernels import register
from ember.core.primitives.fft import FFT


def _empty_out(p, x):
    shape = list(x.shape)
    dt = torch.complex64
    if p.kind == "r2c":
        shape[p.axes[-1]] = shape[p.axes[-1]] // 2 + 1
    elif p.kind == "c2r":
        shape[p.axes[-1]], dt = p.n, torch.float32
    return torch.zeros(shape, dtype=dt, device=x.device)


@register(FFT)
def _fft(p, x):
    axes, norm = p.axes, p.norm
    if x.numel() == 0:  # (MKL refuses empty batches)
        return _empty_out(p, x)
    if p.kind == "c2c":
        f = torch.fft.ifftn if p.inverse else torch.fft.fftn
        return f(x, dim=axes, norm=norm)
    if p.kind == "r2c":
        return torch.fft.rfftn(x, dim=axes, norm=norm)
    s = [x.shape[a] for a in axes[:-1]] + [p.n]
    return torch.fft.irfftn(x, s=s, dim=axes, norm=norm)
