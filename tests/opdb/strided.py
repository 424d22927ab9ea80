"""Entries for as_strided and depends."""

from tests.opdb import ALL_REAL, Op, add, rand


def _singles(shapes):
    def samples(rng, dt):
        return [(rand(rng, s, dt),) for s in shapes]
    return samples


add(Op("as_strided", lambda m, a: m.as_strided(a, (3, 3), (1, 1)), _singles([(5,), (2, 4)]),
       dtypes=ALL_REAL + ("complex64",)))
add(Op("as_strided_offset", lambda m, a: m.as_strided(a, (2, 3), (4, 1), 2),
       _singles([(3, 4), (12,)])))
add(Op("as_strided_negative", lambda m, a: m.as_strided(a, (2, 3), (-1, 2), 5),
       _singles([(3, 4)]), dtypes=("float32", "int32")))
add(Op("as_strided_default", lambda m, a: m.as_strided(a), _singles([(3, 4), ()])))
add(Op("as_strided_default_empty", lambda m, a: m.as_strided(a), _singles([(0, 2)]), grad=False))
add(Op("as_strided_shape", lambda m, a: m.as_strided(a, (2, 2)), _singles([(2, 4), (7,)])))
add(Op("as_strided_broadcast", lambda m, a: m.as_strided(a, (3, 2), (0, 1), 1),
       _singles([(4,), (2, 2)])))
add(Op("as_strided_empty", lambda m, a: m.as_strided(a, (0, 3), (5, 1)), _singles([(2,)])))
add(Op("as_strided_transposed", lambda m, a: m.as_strided(a.T, (4,), (2,)),
       _singles([(3, 4)]), dtypes=("float32", "bool")))

# upstream has no jvp for depends: grads in tests/core/test_strided.py
add(Op("depends", lambda m, a, b: m.depends(a * 2, b),
       lambda rng, dt: [(rand(rng, (3,), dt), rand(rng, (2,), dt)),
                        (rand(rng, (), dt), rand(rng, (2, 2), dt))],
       dtypes=("float32", "int32"), grad=False))
add(Op("depends_list", lambda m, a, b: m.depends([a, b + 1], [a * b]),
       lambda rng, dt: [(rand(rng, (3,), dt), rand(rng, (3,), dt))], grad=False))
