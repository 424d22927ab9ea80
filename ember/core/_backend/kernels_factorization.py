"""Kernels of the factorizations and solvers (torch.linalg: LAPACK on CPU, cuSOLVER/MAGMA
on CUDA). Half-precision inputs (det and slogdet take them) are computed in float32."""

import re

import torch

from ember.core._backend.kernels import register
from ember.core.primitives import factorization as F

_HALF = (torch.float16, torch.bfloat16)


def _up(x):
    return x.float() if x.dtype in _HALF else x


def _eye_like(x):
    return torch.eye(x.shape[-1], dtype=x.dtype, device=x.device).expand(x.shape)


def _check_info(info, what):
    """Upstream's CPU kernels raise when LAPACK reports a singular matrix (info > 0): the
    first failing matrix of the batch names its info. The check reads the info back, so
    it runs on the CPU only, where upstream runs (CUDA results stay inf/nan, unsynced)."""
    if info.device.type != "cpu" or info.numel() == 0:
        return
    bad = info.reshape(-1).nonzero()
    if bad.numel():
        code = int(info.reshape(-1)[bad[0, 0]])
        raise RuntimeError(f"[Inverse::eval_cpu] {what} failed with error code {code}")


def _check_triangular(a):
    # LAPACK's triangular inversion fails on an exactly zero diagonal entry (1-based info)
    if a.device.type != "cpu" or a.numel() == 0:
        return
    zero = torch.diagonal(a, dim1=-2, dim2=-1).reshape(-1, a.shape[-1]) == 0
    info = torch.where(zero.any(-1), zero.int().argmax(-1) + 1, 0)
    _check_info(info, "triangular inversion")


@register(F.Inverse)
def _inverse(p, x):
    y = _up(x)
    if p.tri:
        _check_triangular(y)
        out = torch.linalg.solve_triangular(y, _eye_like(y), upper=p.upper)
        # the other triangle is zero, as LAPACK's triangular inverse leaves it, also where
        # a non-finite diagonal entry would spread into it
        out = out.triu() if p.upper else out.tril()
    else:
        # upstream's LAPACK call factorizes the transposed (row-major) matrix: its failure
        # code is the transpose's first zero pivot
        out, info = torch.linalg.inv_ex(y.mT)
        _check_info(info, "LU factorization")
        out = out.mT
    return out.to(x.dtype)


@register(F.Cholesky)
def _cholesky(p, x):
    # (no positive-definiteness check, as upstream: the factor is returned as computed)
    return torch.linalg.cholesky_ex(x, upper=p.upper)[0]


@register(F.Eigh)
def _eigh(p, x):
    # upstream's CPU LAPACK call sees the row-major matrix as its transpose, the other
    # triangle named: solving that one (the conjugate matrix) gives upstream's signs
    flip = x.device.type == "cpu"
    upper = p.upper != flip
    uplo = "U" if upper else "L"
    y = x.mT if flip else x
    if not p.vectors:
        return torch.linalg.eigvalsh(y, UPLO=uplo)
    w, v = torch.linalg.eigh(y, UPLO=uplo)
    return w, v.conj_physical() if flip and v.is_complex() else v


def _complex(x):
    return x.to(torch.complex64)


@register(F.Eig)
def _eig(p, x):
    # upstream's LAPACK call sees the transposed (row-major) matrix: its eigenvalues come
    # in the order that the transpose's iteration finds them. CUDA's eig runs on the host
    # anyway; running it there always keeps that order on every device.
    dev = x.device
    x = x.cpu()
    if not torch.isfinite(x).all():
        # (LAPACK's balancing rejects them as an illegal argument; upstream's process exits)
        raise RuntimeError("[Eig::eval_cpu] Eigenvalue decomposition failed with error code -3")
    wt = torch.linalg.eigvals(x.mT)
    if not p.vectors:
        return _complex(wt).to(dev)
    w, v = torch.linalg.eig(x)
    n = x.shape[-1]
    if n == 0:  # (nothing to match: argmin refuses empty rows)
        return _complex(wt).to(dev), _complex(v).to(dev)
    dist = (wt.unsqueeze(-1) - w.unsqueeze(-2)).abs()
    order = dist.argmin(-1)
    if not torch.equal(order.sort(-1)[0], torch.arange(n).expand(order.shape)):
        # a repeated eigenvalue: each of upstream's takes the nearest one not taken yet,
        # so that it keeps its distinct vectors
        for i in range(n):
            j = dist[..., i, :].argmin(-1, keepdim=True)
            order[..., i:i + 1] = j
            dist.scatter_(-1, j.unsqueeze(-2).expand(dist.shape[:-1] + (1,)), float("inf"))
    v = torch.gather(v, -1, order.unsqueeze(-2).expand(v.shape))
    return _complex(wt).to(dev), _complex(v).to(dev)


@register(F.SVD)
def _svd(p, x):
    try:
        if not p.uv:
            return torch.linalg.svdvals(x)
        if x.device.type != "cpu":
            return tuple(torch.linalg.svd(x, full_matrices=True))
        # the SVD of the transpose, as upstream's CPU LAPACK call sees the row-major
        # matrix: its singular vectors come with upstream's signs
        ut, sv, vht = torch.linalg.svd(x.mT, full_matrices=True)
        return vht.mT, sv, ut.mT
    except torch.linalg.LinAlgError as e:
        # upstream's error; its LAPACK call rejects non-finite input as argument 4
        m = re.search(r"error code: (-?\d+)", str(e))
        code = m.group(1) if m else -4
        raise RuntimeError(f"[SVD::eval_cpu] SVD failed with error code {code}") from None


@register(F.QR)
def _qr(p, x):
    return tuple(torch.linalg.qr(x, mode="reduced"))


@register(F.LUFactor)
def _lu(p, x):
    if not p.unpack:
        lu, piv = torch.linalg.lu_factor_ex(x)[:2]
        return lu, (piv - 1).to(torch.int64)
    perm, lower, upper = torch.linalg.lu(x)
    # perm @ lower @ upper = x: row i of x is row perm_i of lower @ upper (argmax refuses
    # the empty rows of a 0 x 0 permutation)
    rows = perm.argmax(-1) if perm.shape[-1] else perm.new_zeros(perm.shape[:-1])
    return rows.to(torch.int64), lower, upper


@register(F.Det)
def _det(p, x):
    return torch.linalg.det(_up(x)).to(x.dtype)


@register(F.SlogDet)
def _slogdet(p, x):
    sign, logabs = torch.linalg.slogdet(_up(x))
    return sign.to(x.dtype), logabs.to(x.dtype)


@register(F.Solve)
def _solve(p, a, b):
    # upstream inverts the triangles of the LU factors: it fails at the first zero pivot
    out, info = torch.linalg.solve_ex(a, b)
    _check_info(info, "triangular inversion")
    return out


@register(F.SolveTriangular)
def _solve_triangular(p, a, b):
    _check_triangular(a)
    return torch.linalg.solve_triangular(a, b, upper=p.upper)
