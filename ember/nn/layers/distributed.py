"""Tensor-parallel linear layers and fully sharded (FSDP-style) modules over a
`mx.distributed` group.

"all-to-sharded" layers take the full input and produce this member's slice of the output
features (weight rows sharded); "sharded-to-all" layers take a slice of the input features
and all-sum the partial products (weight columns sharded). With a group of size 1 every
layer computes exactly what the unsharded one does.
"""

import math
from functools import lru_cache
from typing import Callable, Optional, Union

import ember.core as mx
from ember.nn.layers._naming import own_methods
from ember.nn.layers.base import Module
from ember.nn.layers.linear import Linear
from ember.utils import tree_flatten, tree_map_with_path, tree_unflatten

__all__ = ["AllToShardedLinear", "ShardedToAllLinear", "QuantizedAllToShardedLinear",
           "QuantizedShardedToAllLinear", "FullyShardedModule", "fully_shard"]


@lru_cache
def sum_gradients(group):
    """Identity in the forward pass, all-sum of the cotangent over `group` in the backward
    pass (each member's input gradient is partial when the input fed sharded weights)."""
    if group.size() == 1:
        return lambda x: x

    @mx.custom_function
    def f(x):
        return x

    @f.vjp
    def f(x, dx, _):
        return mx.distributed.all_sum(dx, group=group)

    return f


def _split(weight, segments, axis):
    """mx.split, where `segments` may also be a list of fractions of the axis length."""
    if isinstance(segments, int) or isinstance(segments[0], int):
        return mx.split(weight, segments, axis=axis)
    n = weight.shape[axis]
    return mx.split(weight, [int(s * n) for s in segments], axis=axis)


def _shard(parameters: dict, sharding_predicate: Callable,
           group: Optional[mx.distributed.Group] = None):
    """The tree `parameters` with each array replaced by this member's shard.

    `sharding_predicate(path, weight)` returns None (keep whole), an axis, or
    (axis, segments): the weight is first cut into `segments` (e.g. 3 for a fused QKV
    matrix), each segment is split across the group, and this member's pieces are
    concatenated back."""
    group = group or mx.distributed.init()
    n, r = group.size(), group.rank()

    def shard_fn(path, weight):
        if not isinstance(weight, mx.array):
            return weight
        s = sharding_predicate(path, weight)
        if s is None:
            return weight
        segments = 1
        if isinstance(s, int):
            axis = s
        elif isinstance(s, tuple):
            axis, segments = s
        else:
            raise ValueError("The sharding function should return int or tuple[int, list]")
        parts = [_split(part, n, axis)[r] for part in _split(weight, segments, axis)]
        return mx.contiguous(mx.concatenate(parts, axis=axis))

    return tree_map_with_path(shard_fn, parameters)


def _all_to_sharded(segments):
    """Shard output features: weight rows (axis -2, or 0 for vectors) and the bias."""
    def shard_fn(path, weight):
        if path.endswith("bias"):
            return -1, segments
        return max(weight.ndim - 2, 0), segments
    return shard_fn


def _sharded_to_all(segments):
    """Shard input features: weight columns; the bias stays whole."""
    def shard_fn(path, weight):
        if path.endswith("bias"):
            return None
        return -1, segments
    return shard_fn


def _check_sharding(sharding):
    if sharding not in ("all-to-sharded", "sharded-to-all"):
        raise ValueError(f"Sharding type {sharding=} not supported, "
                         "choose one of 'all-to-sharded' or 'sharded-to-all'")


def shard_inplace(module: Module, sharding: Union[str, Callable], *,
                  segments: Union[int, list] = 1,
                  group: Optional[mx.distributed.Group] = None):
    """Replace `module`'s parameters by this member's shards. `sharding` is
    "all-to-sharded", "sharded-to-all" or a predicate as for `_shard`. The module's code
    is unchanged, so it must communicate by itself for the result to be right."""
    if isinstance(sharding, str):
        _check_sharding(sharding)
        sharding = (_all_to_sharded(segments) if sharding == "all-to-sharded"
                    else _sharded_to_all(segments))
    module.update(_shard(module.parameters(), sharding, group))


def shard_linear(module: Module, sharding: str, *, segments: Union[int, list] = 1,
                 group: Optional[mx.distributed.Group] = None):
    """A new sharded layer (communicating as needed) made from a Linear or
    QuantizedLinear; `module` itself is left unchanged."""
    _check_sharding(sharding)
    make = {
        ("all-to-sharded", True): AllToShardedLinear.from_linear,
        ("all-to-sharded", False): QuantizedAllToShardedLinear.from_quantized_linear,
        ("sharded-to-all", True): ShardedToAllLinear.from_linear,
        ("sharded-to-all", False): QuantizedShardedToAllLinear.from_quantized_linear,
    }[sharding, isinstance(module, Linear)]
    return make(module, segments=segments, group=group)


def _uniform(scale, shape):
    return mx.random.uniform(low=-scale, high=scale, shape=shape)


class _Sharded(Module):
    """Shared by the four sharded linear layers. `_shards_output` says which weight axis is
    split across the group: rows (all-to-sharded) or columns (sharded-to-all)."""

    _shards_output: bool

    def _local_shape(self, group, input_dims, output_dims):
        """Set `self.group`; this member's (rows, columns) of the full weight."""
        self.group = group or mx.distributed.init()
        n = self.group.size()
        if self._shards_output:
            if output_dims % n != 0:
                raise ValueError(
                    f"Cannot shard the output of size {output_dims} across {n} devices.")
            return output_dims // n, input_dims
        if input_dims % n != 0:
            raise ValueError(
                f"The input of size {input_dims} cannot be sharded across {n} devices.")
        return output_dims, input_dims // n

    def _repr_dims(self, in_dims) -> str:
        """The repr's full sizes, given this member's (unpacked) input size."""
        out_dims, n = self.weight.shape[0], self.group.size()
        if self._shards_output:
            out_dims *= n
        else:
            in_dims *= n
        return f"input_dims={in_dims}, output_dims={out_dims}, bias={'bias' in self}"

    @classmethod
    def _sharding(cls, segments):
        return (_all_to_sharded if cls._shards_output else _sharded_to_all)(segments)


class _ShardedLinear(_Sharded):
    """Shared by `AllToShardedLinear` and `ShardedToAllLinear`."""

    def __init__(self, input_dims: int, output_dims: int, bias: bool = True,
                 group: Optional[mx.distributed.Group] = None):
        super().__init__()
        scale = math.sqrt(1.0 / input_dims)
        shape = self._local_shape(group, input_dims, output_dims)
        self.weight = _uniform(scale, shape)
        if bias:
            self.bias = _uniform(scale, shape[:1])

    def _extra_repr(self) -> str:
        return self._repr_dims(self.weight.shape[1])

    @classmethod
    def from_linear(cls, linear_layer: Module, *, segments: Union[int, list] = 1,
                    group: Optional[mx.distributed.Group] = None):
        """This member's shard of `linear_layer`."""
        group = group or mx.distributed.init()
        output_dims, input_dims = linear_layer.weight.shape
        sl = cls(input_dims, output_dims, hasattr(linear_layer, "bias"), group)
        sl.update(_shard(linear_layer.parameters(), cls._sharding(segments), group))
        return sl


@own_methods("__init__")
class AllToShardedLinear(_ShardedLinear):
    """Linear layer holding rows `output_dims / N` of the weight: full input in, this
    member's slice of the output out. Input gradients are summed over the group.

    Args:
        input_dims, output_dims: full feature sizes (`output_dims` divisible by N).
        bias: whether to add a bias. Default: True.
        group: the group to shard over (default: the global group).
    """

    _shards_output = True

    def __call__(self, x: mx.array) -> mx.array:
        x = sum_gradients(self.group)(x)
        if "bias" in self:
            return mx.addmm(self["bias"], x, self["weight"].T)
        return x @ self["weight"].T


@own_methods("__init__")
class ShardedToAllLinear(_ShardedLinear):
    """Linear layer holding columns `input_dims / N` of the weight: this member's slice of
    the input in, the all-summed full output out.

    Args:
        input_dims, output_dims: full feature sizes (`input_dims` divisible by N).
        bias: whether to add a bias. Default: True.
        group: the group to shard over (default: the global group).
    """

    _shards_output = False

    def __call__(self, x: mx.array) -> mx.array:
        x = mx.distributed.all_sum(x @ self["weight"].T, group=self.group)
        if "bias" in self:
            x = x + self["bias"]
        return x


class _QuantizedSharded(_Sharded):
    """Shared by the quantized sharded layers: packed weight, frozen parameters."""

    def __init__(self, input_dims: int, output_dims: int, bias: bool = True,
                 group_size: int = 64, bits: int = 4, mode: str = "affine",
                 group: Optional[mx.distributed.Group] = None):
        super().__init__()
        scale = math.sqrt(1.0 / input_dims)
        shape = self._local_shape(group, input_dims, output_dims)
        self.group_size = group_size
        self.bits = bits
        self.mode = mode
        self.weight, self.scales, *biases = mx.quantize(_uniform(scale, shape), group_size,
                                                        bits, mode=mode)
        self.biases = biases[0] if biases else None
        if bias:
            self.bias = mx.zeros(shape[:1])
        self.freeze()

    def _extra_repr(self) -> str:
        return (f"{self._repr_dims((self.weight.shape[1] * 32) // self.bits)}, "
                f"group_size={self.group_size}, bits={self.bits}, mode={self.mode}")

    def unfreeze(self, *args, **kwargs):
        """Unfreeze any submodules; this layer's own parameters stay frozen."""
        super().unfreeze(*args, **kwargs)
        self.freeze(recurse=False)

    def _qmm(self, x):
        return mx.quantized_matmul(x, self["weight"], scales=self["scales"],
                                   biases=self.get("biases"), transpose=True,
                                   group_size=self.group_size, bits=self.bits, mode=self.mode)

    @classmethod
    def from_quantized_linear(cls, quantized_linear_layer: Module, *,
                              segments: Union[int, list] = 1,
                              group: Optional[mx.distributed.Group] = None):
        """This member's shard of a QuantizedLinear."""
        layer = quantized_linear_layer
        group = group or mx.distributed.init()
        output_dims, input_dims = layer.weight.shape
        input_dims = (input_dims * 32) // layer.bits
        sl = cls(input_dims, output_dims, hasattr(layer, "bias"), group_size=layer.group_size,
                 bits=layer.bits, mode=getattr(layer, "mode", "affine"), group=group)
        sl.update(_shard(layer.parameters(), cls._sharding(segments), group))
        return sl


@own_methods("__init__")
class QuantizedAllToShardedLinear(_QuantizedSharded):
    """The quantized `AllToShardedLinear`, its parameters frozen: the same arguments plus the
    quantization settings `group_size`, `bits`, `mode` (default 64, 4, "affine")."""

    _shards_output = True

    def __call__(self, x: mx.array) -> mx.array:
        x = self._qmm(sum_gradients(self.group)(x))
        if "bias" in self:
            x = x + self["bias"]
        return x


@own_methods("__init__")
class QuantizedShardedToAllLinear(_QuantizedSharded):
    """The quantized `ShardedToAllLinear`, its parameters frozen: the same arguments plus the
    quantization settings `group_size`, `bits`, `mode` (default 64, 4, "affine")."""

    _shards_output = False

    def __call__(self, x: mx.array) -> mx.array:
        x = mx.distributed.all_sum(self._qmm(x), group=self.group)
        if "bias" in self:
            x = x + self["bias"]
        return x


def _make_gather_fn(group, full_shapes, shard_sizes, compute_dtype):
    """A custom function: list of axis-0 shards -> list of full parameters (one
    all_gather of all shards flattened side by side, optionally cast to `compute_dtype`);
    its vjp reduce-scatters the cotangents and averages them over the group."""
    n = group.size()
    offsets = [0]
    for size in shard_sizes:
        offsets.append(offsets[-1] + size)
    split_at = offsets[1:-1]
    shard_shapes = [(shape[0] // n,) + tuple(shape[1:]) for shape in full_shapes]

    def cast(x, dtype):
        return x if dtype is None or x.dtype == dtype else x.astype(dtype)

    @mx.custom_function
    def gather(shards):
        flat = mx.concatenate([cast(s.reshape(1, -1), compute_dtype) for s in shards], axis=1)
        full = mx.distributed.all_gather(flat, group=group)  # (n, sum of shard sizes)
        return [p.reshape(shape) for p, shape in
                zip(mx.split(full, split_at, axis=1), full_shapes)]

    @gather.vjp
    def gather_vjp(shards, cotangents, _):
        local = mx.concatenate([c.reshape(n, -1) for c in cotangents], axis=1)
        mine = mx.distributed.sum_scatter(local, group=group) / n
        return [cast(p.reshape(shape), s.dtype) for p, shape, s in
                zip(mx.split(mine, split_at, axis=1), shard_shapes, shards)]

    return gather


def _maybe_shard(m, k, v):
    # nested FullyShardedModules keep and gather their own shards
    if isinstance(v, FullyShardedModule):
        return False
    return Module.valid_parameter_filter(m, k, v)


class FullyShardedModule(Module):
    """Wraps `module` so that each member of `group` stores only an axis-0 shard of every
    parameter: calls gather the full parameters first and the backward pass
    reduce-scatters (averages) their gradients back onto the shards.

    Args:
        module: the module to shard (axis 0 of each parameter divisible by N).
        group: the group to shard over (default: the global group).
        compute_dtype: dtype the gathered parameters are cast to (default: none).
    """

    def __init__(self, module: Module, group: Optional[mx.distributed.Group] = None,
                 compute_dtype: Optional[mx.Dtype] = None):
        super().__init__()
        group = group or mx.distributed.init()
        n = group.size()
        shard_params = module.filter_and_map(_maybe_shard)
        flat = tree_flatten(shard_params)
        for path, a in flat:
            if a.ndim == 0:
                raise ValueError(f"Cannot shard parameter '{path}' because it is a scalar.")
            if a.shape[0] % n != 0:
                raise ValueError(f"Cannot shard parameter '{path}' with shape {a.shape} "
                                 f"across {n} devices: axis 0 must be divisible by {n}.")
        # a plain attribute, not a parameter list
        object.__setattr__(self, "_paths", [k for k, _ in flat])
        full_shapes = [a.shape for _, a in flat]
        shard_sizes = [a.size // n for _, a in flat]
        module.update(_shard(shard_params, lambda p, w: 0, group))
        self.module = module
        self._gather_fn = _make_gather_fn(group, full_shapes, shard_sizes, compute_dtype)

    def _extra_repr(self) -> str:
        return f"num_sharded_params={len(self._paths)}"

    def _gathered_call(self, fn, *args, **kwargs):
        shard_tree = self.module.filter_and_map(_maybe_shard)
        fulls = self._gather_fn([a for _, a in tree_flatten(shard_tree)])
        self.module.update(tree_unflatten(list(zip(self._paths, fulls))))
        try:
            return fn(*args, **kwargs)
        finally:
            self.module.update(shard_tree)

    def __call__(self, *args, **kwargs):
        return self._gathered_call(self.module, *args, **kwargs)

    def as_linear(self, *args, **kwargs):
        return self._gathered_call(self.module.as_linear, *args, **kwargs)


def fully_shard(module: Module, *, group: Optional[mx.distributed.Group] = None,
                compute_dtype: Optional[mx.Dtype] = None) -> Module:
    """`module` wrapped in a FullyShardedModule; returned unchanged when the group has
    one member, it is already wrapped, or it has no parameters to shard."""
    group = group or mx.distributed.init()
    if group.size() == 1 or isinstance(module, FullyShardedModule):
        return module
    wrapped = FullyShardedModule(module, group=group, compute_dtype=compute_dtype)
    return wrapped if wrapped._paths else module
