"""Entries for the convolutions: conv1d/2d/3d, conv_transpose1d/2d/3d, conv_general and
convolve (channels-last inputs (N, *spatial, C), weights (O, *kernel, C / groups))."""

from tests.opdb import FLOATS, add, rand
from tests.opdb import Op as _Op

# integer and bool inputs are rejected upstream: the forward check compares the error
_DTYPES = FLOATS + ("int32", "bool")

# Upstream has no jvp for convolutions, so the shared vjp/jvp-vs-upstream check cannot run
# on these entries: their gradient checks (vjp vs upstream, jvp and vjp vs finite
# differences) run from tests/core/test_conv.py over GRADS instead.
GRADS = []
# upstream's cotangents have wrong shapes for these (input dilation with some strides,
# paddings and kernel dilations): the argnums not compared with upstream (finite
# differences still check them)
UPSTREAM_VJP_WRONG = {"conv_transpose1d_dilation": (0,), "conv_transpose2d": (0,),
                      "conv_general_broadcast_lists": (0,),
                      "conv_general_input_dilation": (0, 1),
                      "conv_general_input_dilation_flip": (0, 1)}


def Op(name, fn, samples, grad=True, **kw):  # noqa: N802 - stands in for the dataclass
    op = _Op(name, fn, samples, grad=False, **kw)
    if grad:
        GRADS.append(op)
    return op


def _singles(shapes, low=-1.0, high=1.0):
    def samples(rng, dt):
        return [tuple(rand(rng, s, dt, low, high) for s in group) for group in shapes]
    return samples


def _group(name, fn, valid, invalid=(), dtypes=_DTYPES, **kw):
    """An entry over the valid shapes, and a forward-only one over shapes upstream rejects."""
    add(Op(name, fn, _singles(valid), dtypes=dtypes, **kw))
    if invalid:
        add(Op(name + "_errors", fn, _singles(invalid), dtypes=("float32",), grad=False,
               vmap=False))


# -- conv1d ---------------------------------------------------------------------------

_C1 = [((2, 8, 4), (6, 3, 4)), ((1, 5, 2), (3, 5, 2)), ((3, 6, 1), (2, 1, 1))]
_C1_BAD = [((2, 8, 4), (6, 3, 3)), ((2, 8, 4), (6, 4)), ((8, 4), (6, 3, 4)),
           ((2, 2, 4), (6, 3, 4)), ((2, 8, 4), (6, 9, 4))]
_group("conv1d", lambda m, x, w: m.conv1d(x, w), _C1, _C1_BAD)
_group("conv1d_stride_padding", lambda m, x, w: m.conv1d(x, w, stride=2, padding=2, dilation=2),
       [((2, 9, 4), (6, 3, 4)), ((1, 4, 2), (3, 2, 2))])
_group("conv1d_negative_padding", lambda m, x, w: m.conv1d(x, w, padding=-1),
       [((2, 9, 4), (6, 3, 4))], [((1, 4, 2), (3, 3, 2))], dtypes=("float32",))
_group("conv1d_groups", lambda m, x, w: m.conv1d(x, w, 2, 1, 1, 2),
       [((2, 8, 4), (6, 3, 2)), ((1, 5, 6), (4, 2, 3))],
       [((2, 8, 4), (5, 3, 2)), ((2, 8, 3), (6, 3, 1)), ((2, 8, 4), (6, 3, 4))])
add(Op("conv1d_depthwise", lambda m, x, w: m.conv1d(x, w, groups=4),
       _singles([((2, 7, 4), (8, 3, 1))])))
add(Op("conv1d_empty", lambda m, x, w: m.conv1d(x, w, padding=1),
       _singles([((0, 5, 2), (3, 2, 2)), ((2, 0, 2), (3, 2, 2))]), dtypes=("float32",),
       grad=False, vmap=False))
add(Op("conv1d_mixed", lambda m, x, w: m.conv1d(x, w.astype(m.float16)),
       _singles([((2, 8, 4), (6, 3, 4))]), dtypes=("float32", "bfloat16", "float16"),
       grad=False))
add(Op("conv1d_int_weight", lambda m, x, w: m.conv1d(x.astype(m.bfloat16), w),
       _singles([((2, 8, 4), (6, 3, 4))]), dtypes=("int32", "int8"), grad=False))
add(Op("conv1d_float64", lambda m, x, w: m.conv1d(x.astype(m.float64), w.astype(m.float64)),
       _singles([((2, 8, 4), (6, 3, 4))]), dtypes=("float32",), rtol=1e-5))

# -- conv2d / conv3d -------------------------------------------------------------------

_C2 = [((2, 6, 7, 3), (4, 3, 2, 3)), ((1, 4, 4, 2), (2, 1, 1, 2))]
_C2_BAD = [((2, 6, 7, 3), (4, 3, 2, 2)), ((2, 6, 3), (4, 3, 3)), ((2, 2, 7, 3), (4, 3, 2, 3))]
_group("conv2d", lambda m, x, w: m.conv2d(x, w), _C2, _C2_BAD)
_group("conv2d_stride_padding",
       lambda m, x, w: m.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
       [((2, 7, 8, 3), (4, 3, 2, 3)), ((1, 3, 3, 1), (1, 2, 2, 1))])
_group("conv2d_lists", lambda m, x, w: m.conv2d(x, w, [2, 2], [0, 1], 1),
       [((2, 7, 8, 3), (4, 3, 2, 3))], dtypes=("float32",))
_group("conv2d_groups", lambda m, x, w: m.conv2d(x, w, padding=1, groups=3),
       [((2, 5, 6, 6), (9, 3, 2, 2))], [((2, 5, 6, 6), (8, 3, 2, 2)), ((2, 5, 6, 6), (9, 3, 2, 6))])
_C3 = [((2, 5, 4, 6, 3), (4, 3, 2, 3, 3)), ((1, 3, 3, 3, 2), (2, 1, 2, 1, 2))]
_C3_BAD = [((2, 5, 4, 6, 3), (4, 3, 2, 3, 2)), ((2, 5, 4, 3), (4, 3, 2, 3)),
           ((2, 5, 4, 6, 3), (4, 3, 2, 3))]
_group("conv3d", lambda m, x, w: m.conv3d(x, w), _C3, _C3_BAD)
_group("conv3d_stride_padding",
       lambda m, x, w: m.conv3d(x, w, stride=(1, 2, 2), padding=1, dilation=(2, 1, 1)),
       [((2, 5, 4, 6, 3), (4, 2, 2, 3, 3))])
_group("conv3d_groups", lambda m, x, w: m.conv3d(x, w, groups=2), [],
       [((1, 3, 3, 3, 4), (2, 1, 1, 1, 2))])

# -- transposed -----------------------------------------------------------------------

_group("conv_transpose1d", lambda m, x, w: m.conv_transpose1d(x, w),
       [((2, 5, 4), (6, 3, 4)), ((1, 1, 2), (3, 2, 2))], [((2, 5, 4), (6, 3, 3))])
_group("conv_transpose1d_stride",
       lambda m, x, w: m.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
       [((2, 5, 4), (6, 3, 4)), ((1, 3, 2), (3, 4, 2))])
_group("conv_transpose1d_dilation",
       lambda m, x, w: m.conv_transpose1d(x, w, stride=3, dilation=2, output_padding=3),
       [((2, 5, 4), (6, 3, 4))])
# padding beyond the kernel span crops the input upstream
_group("conv_transpose1d_big_padding", lambda m, x, w: m.conv_transpose1d(x, w, 2, 3),
       [((2, 7, 4), (6, 3, 4))], [((2, 3, 4), (6, 3, 4))], dtypes=("float32",))
_group("conv_transpose1d_groups", lambda m, x, w: m.conv_transpose1d(x, w, 2, groups=2),
       [((2, 5, 4), (6, 3, 2))], [((2, 5, 4), (5, 3, 2))])
_group("conv_transpose2d",
       lambda m, x, w: m.conv_transpose2d(x, w, stride=(2, 3), padding=(1, 0),
                                          dilation=(2, 1), output_padding=(1, 2)),
       [((2, 4, 3, 3), (4, 3, 2, 3))], [((2, 4, 3, 3), (4, 3, 2, 2))])
_group("conv_transpose2d_groups", lambda m, x, w: m.conv_transpose2d(x, w, 2, 1, groups=2),
       [((2, 4, 3, 4), (6, 3, 2, 2))])
_group("conv_transpose3d", lambda m, x, w: m.conv_transpose3d(x, w, stride=2, padding=1),
       [((1, 3, 2, 4, 3), (2, 3, 2, 3, 3))], [((1, 3, 2, 4, 3), (2, 3, 2, 3, 2))])

# -- conv_general -----------------------------------------------------------------------

_G = [((2, 7, 8, 3), (4, 3, 2, 3))]
add(Op("conv_general", lambda m, x, w: m.conv_general(x, w), _singles(_G)))
add(Op("conv_general_flip", lambda m, x, w: m.conv_general(x, w, flip=True), _singles(_G)))
add(Op("conv_general_asymmetric",
       lambda m, x, w: m.conv_general(x, w, [2, 3], ([1, 0], [2, 3])), _singles(_G)))
add(Op("conv_general_input_dilation",
       lambda m, x, w: m.conv_general(x, w, stride=[2, 3], padding=([1, 4], [0, 2]),
                                      kernel_dilation=[1, 2], input_dilation=[2, 3]),
       _singles(_G)))
add(Op("conv_general_input_dilation_flip",
       lambda m, x, w: m.conv_general(x, w, [2, 1], ([5, 0], [0, 6]), input_dilation=[3, 2],
                                      flip=True), _singles(_G)))
add(Op("conv_general_input_dilation_groups",
       lambda m, x, w: m.conv_general(x, w, padding=1, input_dilation=2, groups=3),
       _singles([((2, 5, 6), (9, 3, 2))])))
add(Op("conv_general_negative_padding",
       lambda m, x, w: m.conv_general(x, w, padding=([-1, 2], [3, -2])),
       _singles([((1, 8, 7, 2), (3, 2, 2, 2))]), dtypes=("float32",)))
add(Op("conv_general_broadcast_lists",
       lambda m, x, w: m.conv_general(x, w, [2], [[1], [2]], [1], [2]),
       _singles([((1, 5, 4, 5, 2), (3, 2, 2, 2, 2))]), dtypes=("float32",)))
add(Op("conv_general_errors", lambda m, x, w: m.conv_general(x, w, stride=[1, 2, 3]),
       _singles([((1, 5, 5, 2), (3, 2, 2, 2))]), dtypes=("float32",), grad=False, vmap=False))
add(Op("conv_general_padding_errors", lambda m, x, w: m.conv_general(x, w, padding=[1, 2, 3]),
       _singles([((1, 5, 5, 2), (3, 2, 2, 2))]), dtypes=("float32",), grad=False, vmap=False))
add(Op("conv_general_4d_errors", lambda m, x, w: m.conv_general(x, w),
       _singles([((1, 2, 2, 2, 2, 2), (1, 1, 1, 1, 1, 2)), ((3, 2), (1, 2))]),
       dtypes=("float32",), grad=False, vmap=False))

# -- convolve ---------------------------------------------------------------------------

_V = [((5,), (3,)), ((3,), (5,)), ((4,), (4,)), ((6,), (2,)), ((1,), (1,)), ((2,), (7,))]
_V_BAD = [((2, 3), (3,)), ((), (3,)), ((0,), (3,)), ((3,), (0,))]
for _mode in ("full", "same", "valid"):
    _group(f"convolve_{_mode}", lambda m, a, v, _mode=_mode: m.convolve(a, v, _mode), _V,
           _V_BAD)
add(Op("convolve_default", lambda m, a, v: m.convolve(a, v), _singles(_V[:2]),
       dtypes=("float32", "int32")))
add(Op("convolve_mixed", lambda m, a, v: m.convolve(a, v.astype(m.int32)),
       _singles(_V[:2]), dtypes=("float16", "float32"), grad=False, vmap=False))
add(Op("convolve_bad_mode", lambda m, a, v: m.convolve(a, v, "nope"), _singles(_V[:1]),
       dtypes=("float32",), grad=False, vmap=False))
