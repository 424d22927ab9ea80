"""Entries for mx.random samplers whose parameters are arrays, each with a fixed key (so the
forward check compares upstream's numbers, and vmap over the parameters matches a loop).

Gradients with respect to bounds are checked in tests/core/test_random.py: these samplers
refuse float64 (upstream does), which the finite-difference check needs.
"""

import numpy as np

from tests.opdb import FLOATS, INTS, Op, add, rand


def _key(m):
    return m.random.key(3)


def _bounds(rng, dt):
    return [(rand(rng, (3,), dt, -2.0, -0.5), rand(rng, (4, 1), dt, 0.5, 2.0)),
            (rand(rng, (), dt, -2.0, -0.5), rand(rng, (), dt, 0.5, 2.0))]


add(Op("random_uniform", lambda m, lo, hi: m.random.uniform(lo, hi, (4, 3), lo.dtype, key=_key(m)),
       _bounds, grad=False))
add(Op("random_uniform_float32",
       lambda m, lo, hi: m.random.uniform(lo, hi, (4, 3), key=_key(m)), _bounds, grad=False))
add(Op("random_truncated_normal",
       lambda m, lo, hi: m.random.truncated_normal(lo, hi, (4, 3), lo.dtype, key=_key(m)),
       _bounds, grad=False))
add(Op("random_normal_loc_scale",
       lambda m, loc, scale: m.random.normal((4, 3), loc.dtype, loc, scale, key=_key(m)),
       lambda rng, dt: [(rand(rng, (3,), dt), rand(rng, (4, 1), dt, 0.5, 2.0)),
                        (rand(rng, (), dt), rand(rng, (), dt, 0.5, 2.0))]))


def _int_bounds(rng, dt):
    dt = "float32" if dt == "bfloat16" else dt
    lo = rng.integers(0, 5, size=(3,)).astype(dt)
    hi = rng.integers(5, 10, size=(4, 1)).astype(dt)
    return [(lo, hi), (lo[0], hi[0, 0])]


add(Op("random_randint", lambda m, lo, hi: m.random.randint(lo, hi, (4, 3), key=_key(m)),
       _int_bounds, dtypes=INTS + FLOATS, grad=False))
add(Op("random_randint_int8",
       lambda m, lo, hi: m.random.randint(lo, hi, (4, 3), m.int8, key=_key(m)),
       _int_bounds, dtypes=("int32", "float32"), grad=False))
add(Op("random_bernoulli", lambda m, p: m.random.bernoulli(p, (4, 3), key=_key(m)),
       lambda rng, dt: [(rand(rng, (3,), dt, 0.0, 1.0),), (rand(rng, (), dt, 0.0, 1.0),)],
       grad=False))
add(Op("random_bernoulli_shape_of_p", lambda m, p: m.random.bernoulli(p, key=_key(m)),
       lambda rng, dt: [(rand(rng, (5, 3), dt, 0.0, 1.0),)], grad=False))


def _logits(shapes):
    return lambda rng, dt: [(rand(rng, s, dt),) for s in shapes]


add(Op("random_categorical", lambda m, x: m.random.categorical(x, key=_key(m)),
       _logits([(3, 5), (7,), (2, 3, 4)]), grad=False))
add(Op("random_categorical_axis0", lambda m, x: m.random.categorical(x, 0, key=_key(m)),
       _logits([(3, 5), (2, 3, 4)]), grad=False))
add(Op("random_categorical_num_samples",
       lambda m, x: m.random.categorical(x, num_samples=6, key=_key(m)),
       _logits([(3, 5), (7,), (1, 4)]), grad=False))
add(Op("random_categorical_shape",
       lambda m, x: m.random.categorical(x, shape=(6, 3), key=_key(m)),
       _logits([(3, 5), (7,), (1, 4)]), grad=False))
# (upstream's vjp of an empty permutation fails, so gradients skip the empty sample)
add(Op("random_permutation", lambda m, x: m.random.permutation(x, key=_key(m)),
       _logits([(6, 3), (9,), (0, 2)]), dtypes=FLOATS + INTS + ("bool",),
       fd_samples=_logits([(6, 3), (9,)])))
add(Op("random_permutation_axis1", lambda m, x: m.random.permutation(x, 1, key=_key(m)),
       _logits([(2, 6, 3), (2, 9)])))


def _mvn(rng, dt):
    a = rand(rng, (3, 3), "float32")
    cov = a @ a.T + 0.5 * np.eye(3, dtype=np.float32)
    return [(rand(rng, (3,), dt), cov), (rand(rng, (2, 3), dt), cov)]


add(Op("random_multivariate_normal",
       lambda m, mean, cov: m.random.multivariate_normal(mean, cov, (4, 1), key=_key(m)),
       _mvn, dtypes=("float32",), grad=False, rtol=1e-4))
