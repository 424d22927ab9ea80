"""Entries for mx.fast: rms_norm, layer_norm, rope, scaled_dot_product_attention,
cross_entropy and gated_delta_update."""

import numpy as np

from tests.opdb import FLOATS, Op, add, rand


def _singles(shapes, low=-2.0, high=2.0):
    def samples(rng, dt):
        return [tuple(rand(rng, s, dt, low, high) for s in group) for group in shapes]
    return samples


_NORM_SHAPES = [((2, 3, 8), (8,)), ((5,), (5,)), ((4, 1), (1,)), ((0, 4), (4,))]
_NORM_BAD = [((2, 3, 8), (4,)), ((2, 8), (1, 8)), ((), ())]

add(Op("fast.rms_norm", lambda m, x, w: m.fast.rms_norm(x, w, 1e-5), _singles(_NORM_SHAPES)))
add(Op("fast.rms_norm_noweight", lambda m, x: m.fast.rms_norm(x, None, 1e-4),
       _singles([((2, 3, 8),), ((7,),)])))
add(Op("fast.rms_norm_errors", lambda m, x, w: m.fast.rms_norm(x, w, 1e-5),
       _singles(_NORM_BAD), dtypes=FLOATS[:1], grad=False, vmap=False))
add(Op("fast.rms_norm_ints", lambda m, x, w: m.fast.rms_norm(x, w.astype(m.int32), 1e-5),
       _singles(_NORM_SHAPES[:1]), dtypes=("float32", "int32"), grad=False, vmap=False))
add(Op("fast.rms_norm_mixed", lambda m, x, w: m.fast.rms_norm(x.astype(m.float16), w, 1e-5),
       _singles(_NORM_SHAPES[:2]), dtypes=("float32", "bfloat16"), grad=False, rtol=5e-3))

_LN3 = [((2, 3, 8), (8,), (8,)), ((5,), (5,), (5,)), ((0, 4), (4,), (4,))]
add(Op("fast.layer_norm", lambda m, x, w, b: m.fast.layer_norm(x, w, b, 1e-5), _singles(_LN3)))
add(Op("fast.layer_norm_weight", lambda m, x, w: m.fast.layer_norm(x, w, None, 1e-5),
       _singles(_NORM_SHAPES[:3])))
add(Op("fast.layer_norm_bias", lambda m, x, b: m.fast.layer_norm(x, None, b, 1e-5),
       _singles(_NORM_SHAPES[:3])))
add(Op("fast.layer_norm_plain", lambda m, x: m.fast.layer_norm(x, None, None, 1e-5),
       _singles([((2, 3, 8),), ((3, 6),)])))
add(Op("fast.layer_norm_errors", lambda m, x, w, b: m.fast.layer_norm(x, w, b, 1e-5),
       _singles([((2, 8), (4,), (8,)), ((2, 8), (8,), (2, 8)), ((), (1,), (1,))]),
       dtypes=FLOATS[:1], grad=False, vmap=False))
add(Op("fast.layer_norm_mixed",
       lambda m, x, w, b: m.fast.layer_norm(x.astype(m.float16), w, b.astype(m.bfloat16), 1e-5),
       _singles(_LN3[:1]), dtypes=("float32",), grad=False, rtol=5e-3))

_ROPE_SHAPES = [((2, 3, 4, 8),), ((1, 5, 6),), ((2, 1, 3, 2, 8),)]


def _rope(dims, **kw):
    base = dict(traditional=False, base=10000.0, scale=1.0, offset=0)
    base.update(kw)
    return lambda m, x: m.fast.rope(x, dims, **base)


add(Op("fast.rope", _rope(6, offset=3), _singles(_ROPE_SHAPES)))
add(Op("fast.rope_traditional", _rope(4, traditional=True, base=100.0, scale=0.5),
       _singles(_ROPE_SHAPES)))
add(Op("fast.rope_full", _rope(8, base=500.0, offset=-2), _singles(_ROPE_SHAPES[:1])))
add(Op("fast.rope_offset_array",
       lambda m, x: m.fast.rope(x, 8, traditional=False, base=10000.0, scale=2.0,
                                offset=m.array([1, 7])), _singles(_ROPE_SHAPES[:1])))
add(Op("fast.rope_offset_scalar_array",
       lambda m, x: m.fast.rope(x, 4, traditional=True, base=10.0, scale=1.0,
                                offset=m.array(5)), _singles(_ROPE_SHAPES[:2])))
add(Op("fast.rope_freqs",
       lambda m, x, f: m.fast.rope(x, 8, traditional=False, base=None, scale=1.0, offset=2,
                                   freqs=f), _singles([((2, 3, 4, 8), (4,))], 0.5, 3.0)))
add(Op("fast.rope_freqs_traditional",
       lambda m, x, f: m.fast.rope(x, 4, traditional=True, base=None, scale=0.5, offset=1,
                                   freqs=f), _singles([((1, 3, 6), (2,))], 0.5, 3.0)))
add(Op("fast.rope_errors", _rope(6), _singles([((4, 8),), ((2, 3, 4),), ((2, 3, 5),)]),
       dtypes=("float32", "int32"), grad=False, vmap=False))


def _sdpa(**kw):
    return lambda m, q, k, v: m.fast.scaled_dot_product_attention(q, k, v, scale=0.5, **kw)


_ATTN = [((1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 6)), ((2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8)),
         ((1, 3, 6, 4), (1, 1, 2, 4), (1, 1, 2, 4)), ((1, 2, 1, 8), (1, 2, 5, 8), (1, 2, 5, 8))]
_ATTN_BAD = [((1, 4, 3, 8), (1, 3, 5, 8), (1, 3, 5, 8)), ((4, 3, 8), (4, 5, 8), (4, 5, 8)),
             ((1, 2, 3, 8), (1, 2, 5, 4), (1, 2, 5, 8)), ((2, 2, 3, 8), (1, 2, 5, 8),
                                                           (1, 2, 5, 8))]

add(Op("fast.sdpa", _sdpa(), _singles(_ATTN)))
add(Op("fast.sdpa_causal", _sdpa(mask="causal"), _singles(_ATTN)))
add(Op("fast.sdpa_errors", _sdpa(), _singles(_ATTN_BAD), dtypes=("float32", "int32"),
       grad=False, vmap=False))
add(Op("fast.sdpa_empty", _sdpa(), _singles([((1, 2, 0, 4), (1, 2, 3, 4), (1, 2, 3, 4)),
                                              ((1, 2, 3, 4), (1, 2, 0, 4), (1, 2, 0, 4))]),
       grad=False))
add(Op("fast.sdpa_mask_add",
       lambda m, q, k, v, mask: m.fast.scaled_dot_product_attention(q, k, v, scale=0.3,
                                                                     mask=mask),
       _singles([((1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 6), (3, 5)),
                 ((2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8), (2, 1, 4, 4)),
                 ((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 4), (1, 2, 3, 5))])))


def _bool_mask_samples(rng, dt):
    out = []
    for q, k, v, m in [((1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 6), (3, 5)),
                       ((2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8), (2, 1, 4, 4))]:
        mask = rng.random(m) > 0.4
        mask[..., 0, :] = False  # a query that sees no key
        out.append((rand(rng, q, dt), rand(rng, k, dt), rand(rng, v, dt), mask))
    return out


add(Op("fast.sdpa_mask_bool",
       lambda m, q, k, v, mask: m.fast.scaled_dot_product_attention(q, k, v, scale=0.3,
                                                                     mask=mask),
       _bool_mask_samples, grad_argnums=(0, 1, 2)))
add(Op("fast.sdpa_causal_long_queries", _sdpa(mask="causal"),
       _singles([((1, 2, 5, 4), (1, 1, 3, 4), (1, 1, 3, 4))])))
add(Op("fast.sdpa_sinks",
       lambda m, q, k, v, s: m.fast.scaled_dot_product_attention(q, k, v, scale=0.5, sinks=s),
       _singles([((1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 6), (4,)),
                 ((2, 2, 4, 8), (2, 2, 4, 8), (2, 2, 4, 8), (2,))])))
add(Op("fast.sdpa_sinks_causal",
       lambda m, q, k, v, s: m.fast.scaled_dot_product_attention(q, k, v, scale=0.5,
                                                                 mask="causal", sinks=s),
       _singles([((1, 4, 3, 8), (1, 2, 5, 8), (1, 2, 5, 6), (4,)),
                 ((1, 2, 4, 4), (1, 2, 2, 4), (1, 2, 2, 4), (2,))])))


def _ce_samples(rng, dt):
    out = []
    for shape in [(3, 5), (2, 3, 4), (7,)]:
        logits = rand(rng, shape, dt)
        out.append((logits, rng.integers(0, shape[-1], size=shape[:-1]).astype(np.int32)))
    return out


def _ce_bad(rng, dt):
    return [(rand(rng, (3, 5), dt), np.array([1, 2], np.int32)),
            (rand(rng, (), dt), np.array(1, np.int32)),
            (rand(rng, (3, 5), dt), np.zeros((3,), np.float32))]


# the output is float32 whatever the logits: finite differences in float64 cannot work, so
# grads are checked against upstream in tests/core/test_fast.py
_ce = lambda m, x, t: m.fast.cross_entropy(x, t)  # noqa: E731
add(Op("fast.cross_entropy", _ce, _ce_samples, dtypes=("float32",), grad=False))
add(Op("fast.cross_entropy_half", _ce, _ce_samples, dtypes=("float16", "bfloat16"),
       grad=False, rtol=1e-2))
add(Op("fast.cross_entropy_errors", _ce, _ce_bad, dtypes=("float32", "int32"), grad=False,
       vmap=False))


def _gdn_samples(rng, dt):
    out = []
    for b, t, hk, hv, dk, dv, vec in [(2, 3, 1, 2, 4, 5, False), (1, 4, 2, 2, 3, 2, True)]:
        q = rand(rng, (b, t, hk, dk), dt, -1, 1)
        k = rand(rng, (b, t, hk, dk), dt, -1, 1)
        v = rand(rng, (b, t, hv, dv), dt, -1, 1)
        g = rand(rng, (b, t, hv, dk) if vec else (b, t, hv), dt, 0.5, 1.0)
        beta = rand(rng, (b, t, hv), dt, 0.0, 1.0)
        out.append((q, k, v, g, beta))
    return out


add(Op("fast.gated_delta_update", lambda m, *xs: list(m.fast.gated_delta_update(*xs)),
       _gdn_samples, rtol=1e-4))


def _gdn_state_samples(rng, dt):
    return [s + (rand(rng, (s[0].shape[0], s[2].shape[2], s[2].shape[3], s[0].shape[3]), dt,
                      -1, 1), (rng.random(s[0].shape[:2]) > 0.3))
            for s in _gdn_samples(rng, dt)]


add(Op("fast.gated_delta_update_state_mask",
       lambda m, *xs: list(m.fast.gated_delta_update(*xs)), _gdn_state_samples,
       grad_argnums=(0, 1, 2, 3, 4, 5), rtol=1e-4))
