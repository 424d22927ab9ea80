"""Entries for mx.fft: the transforms (every norm, padded and truncated sizes, axes),
shifts, frequencies and the short-time transforms.

Every transform returns complex64 (float32 precision) even for float64 inputs, as upstream,
so the op database's float64 finite differences cannot see its derivatives: entries are
registered with grad=False and their derivatives are checked by tests/core/test_fft.py
(against upstream's vjp/jvp, and against float32 differences, exact for linear maps).
`GRADS` maps each differentiable entry to whether upstream's own derivative is right.
"""

from tests.opdb import ALL_REAL, FLOATS, Op, add, rand

_ALL = ALL_REAL + ("complex64",)


def _singles(shapes):
    def samples(rng, dt):
        return [tuple(rand(rng, s, dt) for s in group) for group in shapes]
    return samples


GRADS = {}


def _op(name, fn, samples, grad=True, upstream_grad=True, **kw):
    if grad:
        GRADS[name] = upstream_grad
    add(Op(name, fn, samples, grad=False, **kw))


def _entry(name, fn, shapes, dtypes=FLOATS + ("complex64",), **kw):
    _op(name, fn, _singles(shapes), dtypes=dtypes, **kw)


_ND = [((6,),), ((3, 5),), ((2, 3, 4),), ((0, 4),), ((1,),)]
_BAD = [((),), ((3, 0),)]

for _name in ("fft", "ifft", "rfft"):
    _entry(_name, lambda m, a, f=_name: getattr(m.fft, f)(a), _ND)
    _entry(_name + "_dtypes", lambda m, a, f=_name: getattr(m.fft, f)(a), [((3, 4),)],
           dtypes=_ALL, grad=False, vmap=False)
    _entry(_name + "_errors", lambda m, a, f=_name: getattr(m.fft, f)(a), _BAD,
           dtypes=("float32",), grad=False, vmap=False)
    for _norm in ("ortho", "forward"):
        _entry(f"{_name}_{_norm}", lambda m, a, f=_name, n=_norm: getattr(m.fft, f)(a, norm=n),
               [((3, 5),)])
    _entry(_name + "_pad", lambda m, a, f=_name: getattr(m.fft, f)(a, n=8, axis=0),
           [((5, 3),), ((8, 2),)])
    _entry(_name + "_trunc", lambda m, a, f=_name: getattr(m.fft, f)(a, n=3, axis=-2),
           [((5, 3),), ((2, 6, 2),)])

_entry("irfft", lambda m, a: m.fft.irfft(a), [((5,),), ((3, 5),), ((2, 3, 4),), ((0, 4),)])
_entry("irfft_dtypes", lambda m, a: m.fft.irfft(a), [((3, 4),)], dtypes=_ALL, grad=False,
       vmap=False)
_entry("irfft_errors", lambda m, a: m.fft.irfft(a), [((),), ((3, 1),), ((3, 0),)],
       dtypes=("float32",), grad=False, vmap=False)
for _norm in ("ortho", "forward"):
    _entry(f"irfft_{_norm}", lambda m, a, n=_norm: m.fft.irfft(a, norm=n), [((3, 5),)])
for _n in (1, 7, 8, 12):
    # (upstream's derivatives of odd-sized inverse real transforms have the wrong size)
    _entry(f"irfft_n{_n}", lambda m, a, n=_n: m.fft.irfft(a, n=n, axis=0), [((4, 3),)],
           upstream_grad=_n % 2 == 0 and _n > 1)

_2D = [((3, 5),), ((2, 3, 4),), ((4, 6),)]
for _name in ("fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn"):
    _f = lambda m, a, f=_name: getattr(m.fft, f)(a)
    _entry(_name, _f, _2D)
    _entry(_name + "_errors", _f, [((4,),), ((),), ((0, 3),)] if "2" in _name else [((),)],
           dtypes=("float32",), grad=False, vmap=False)
    _entry(_name + "_s", lambda m, a, f=_name: getattr(m.fft, f)(a, s=(3, 6), axes=(0, 2)),
           [((2, 3, 4),), ((5, 1, 7),)])
    _entry(_name + "_axes", lambda m, a, f=_name: getattr(m.fft, f)(a, axes=(-1, 0),
                                                                    norm="ortho"),
           [((4, 3, 5),)])
    _entry(_name + "_bad_args", lambda m, a, f=_name: getattr(m.fft, f)(a, s=(3, 0),
                                                                        axes=(0, 1)),
           [((4, 4),)], dtypes=("float32",), grad=False, vmap=False)
    _entry(_name + "_dup_axes", lambda m, a, f=_name: getattr(m.fft, f)(a, axes=(0, -2)),
           [((4, 4),)], dtypes=("float32",), grad=False, vmap=False)
    _entry(_name + "_bad_axis", lambda m, a, f=_name: getattr(m.fft, f)(a, axes=(0, 2)),
           [((4, 4),)], dtypes=("float32",), grad=False, vmap=False)
_entry("fftn_s_no_axes", lambda m, a: m.fft.fftn(a, s=(3, 3)), [((4, 4),)],
       dtypes=("float32",), grad=False, vmap=False)
_entry("fftn_s_len", lambda m, a: m.fft.fftn(a, s=(3,), axes=(0, 1)), [((4, 4),)],
       dtypes=("float32",), grad=False, vmap=False)
_entry("fftn_no_axes", lambda m, a: m.fft.fftn(a, axes=()), [((4, 4),)], dtypes=_ALL,
       grad=False)
_entry("fft_bad_norm", lambda m, a: m.fft.fft(a, norm="none"), [((4,),)],
       dtypes=("float32",), grad=False, vmap=False)

for _name in ("fftshift", "ifftshift"):
    _f = lambda m, a, f=_name: getattr(m.fft, f)(a)
    _entry(_name, _f, [((5,),), ((4, 5),), ((2, 3, 4),), ((),), ((0, 3),)], dtypes=_ALL)
    _entry(_name + "_axes", lambda m, a, f=_name: getattr(m.fft, f)(a, axes=[-1, 0]),
           [((4, 5),), ((3, 5, 2),)])
    _entry(_name + "_axis", lambda m, a, f=_name: getattr(m.fft, f)(a, axes=1),
           [((4, 5),), ((3, 5, 2),)])
    _entry(_name + "_dup", lambda m, a, f=_name: getattr(m.fft, f)(a, axes=[0, 0]),
           [((5, 3),)])
    _entry(_name + "_bad_axis", lambda m, a, f=_name: getattr(m.fft, f)(a, axes=[2]),
           [((5, 3),)], dtypes=("float32",), grad=False, vmap=False)


def _none(rng, dt):
    return [()]


for _n, _d in ((1, 1.0), (6, 1.0), (7, 0.3), (8, -2.0), (5, 4)):
    for _name in ("fftfreq", "rfftfreq"):
        add(Op(f"{_name}_{_n}_{_d}", lambda m, f=_name, n=_n, d=_d: getattr(m.fft, f)(n, d),
               _none, dtypes=("float32",), grad=False, vmap=False))
for _n, _d in ((0, 1.0), (-3, 1.0), (4, 0.0)):
    add(Op(f"fftfreq_bad_{_n}_{_d}", lambda m, n=_n, d=_d: m.fft.fftfreq(n, d), _none,
           dtypes=("float32",), grad=False, vmap=False))
    add(Op(f"rfftfreq_bad_{_n}_{_d}", lambda m, n=_n, d=_d: m.fft.rfftfreq(n, d), _none,
           dtypes=("float32",), grad=False, vmap=False))

_SIG = [((37,),), ((2, 29),)]
_STFT = {
    "": dict(n_fft=8),
    "_hop": dict(n_fft=8, hop_length=3),
    "_win": dict(n_fft=8, hop_length=2, win_length=5),
    "_nocenter": dict(n_fft=8, center=False),
    "_constant": dict(n_fft=8, pad_mode="constant"),
    "_edge": dict(n_fft=6, pad_mode="edge", hop_length=2),
    "_ortho": dict(n_fft=8, norm="ortho"),
    "_forward": dict(n_fft=7, hop_length=2, norm="forward"),
    "_twosided": dict(n_fft=8, onesided=False),
}
for _sfx, _kw in _STFT.items():
    _entry("stft" + _sfx, lambda m, x, kw=_kw: m.fft.stft(x, **kw), _SIG)
_entry("stft_window", lambda m, x, w: m.fft.stft(x, n_fft=8, hop_length=2, window=w),
       [((37,), (8,)), ((2, 29), (5,))])
_entry("stft_dtypes", lambda m, x: m.fft.stft(x, n_fft=8), [((30,),)], dtypes=_ALL,
       grad=False, vmap=False)
_entry("stft_short", lambda m, x: m.fft.stft(x, n_fft=8), [((3,),), ((2, 5),)], dtypes=FLOATS)
_entry("stft_errors", lambda m, x: m.fft.stft(x, n_fft=8, center=False),
       [((),), ((5,),)], dtypes=("float32",), grad=False, vmap=False)
for _sfx, _kw in {"n0": dict(n_fft=0), "hop0": dict(n_fft=8, hop_length=0),
                  "win": dict(n_fft=8, win_length=9), "norm": dict(n_fft=8, norm="x"),
                  "pad": dict(n_fft=8, pad_mode="wrap")}.items():
    _entry("stft_bad_" + _sfx, lambda m, x, kw=_kw: m.fft.stft(x, **kw), [((30,),)],
           dtypes=("float32",), grad=False, vmap=False)


def _spec(shapes, n_fft, hop, onesided=True, win=None):
    """STFT-shaped complex inputs (float32 draws become real spectra)."""
    def samples(rng, dt):
        out = []
        for s in shapes:
            n_freq = n_fft // 2 + 1 if onesided else n_fft
            shape = s[:-1] + (n_freq, s[-1])
            x = rand(rng, shape, dt)
            out.append((x,) if win is None else (x, rand(rng, (win,), "float32", 0.5, 1.5)))
        return out
    return samples


_ISTFT = {
    "": (dict(n_fft=8, hop_length=2), True),
    "_default": (dict(hop_length=2), True),
    "_length": (dict(n_fft=8, hop_length=2, length=20), True),
    "_long": (dict(n_fft=8, hop_length=2, length=40), True),
    "_nocenter": (dict(n_fft=8, hop_length=2, center=False), True),
    "_ortho": (dict(n_fft=8, hop_length=2, norm="ortho"), True),
    "_forward": (dict(n_fft=8, hop_length=2, norm="forward"), True),
    "_win": (dict(n_fft=8, hop_length=2, win_length=6), True),
    "_gap": (dict(n_fft=8, hop_length=9), True),
    "_odd": (dict(n_fft=7, hop_length=2), True),
    "_twosided": (dict(n_fft=8, hop_length=2, onesided=False), False),
}
for _sfx, (_kw, _one) in _ISTFT.items():
    _op("istft" + _sfx, lambda m, x, kw=_kw: m.fft.istft(x, **kw),
        _spec([(10,), (2, 7)], _kw.get("n_fft", 8), 2, _one),
        dtypes=("complex64", "float32"), upstream_grad=_sfx != "_odd")
_op("istft_window", lambda m, x, w: m.fft.istft(x, n_fft=8, hop_length=2, window=w),
    _spec([(10,), (2, 7)], 8, 2, True, 8), dtypes=("complex64",))
add(Op("istft_errors", lambda m, x: m.fft.istft(x, n_fft=8),
       lambda rng, dt: [(rand(rng, (5,), dt),)], dtypes=("complex64",), grad=False,
       vmap=False))
for _sfx, _kw in {"n0": dict(n_fft=0), "hop0": dict(n_fft=8, hop_length=0),
                  "win": dict(n_fft=8, win_length=9), "norm": dict(n_fft=8, norm="x")}.items():
    add(Op("istft_bad_" + _sfx, lambda m, x, kw=_kw: m.fft.istft(x, **kw),
           _spec([(10,)], 8, 2), dtypes=("complex64",), grad=False, vmap=False))
