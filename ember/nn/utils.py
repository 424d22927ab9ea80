"""Transforms over a module's trainable parameters, and gradient averaging."""

from functools import wraps
from typing import Any, Callable, Optional

import ember.core as mx
from ember.nn.layers.base import Module
from ember.utils import tree_flatten, tree_map, tree_reduce, tree_unflatten

__all__ = ["value_and_grad", "checkpoint", "average_gradients", "clip_grad_norm_sharded"]


def _over_parameters(transform, module, fn):
    """`transform` applied to fn as a function of (trainable parameters, *args)."""
    def inner(params, *args, **kwargs):
        module.update(params)
        return fn(*args, **kwargs)
    transformed = transform(inner)

    @wraps(fn)
    def wrapped(*args, **kwargs):
        return transformed(module.trainable_parameters(), *args, **kwargs)
    return wrapped


def value_and_grad(model: Module, fn: Callable):
    """`fn`'s value and its gradient with respect to `model`'s trainable parameters."""
    return _over_parameters(mx.value_and_grad, model, fn)


def checkpoint(module: Module, fn: Optional[Callable] = None):
    """`fn` (the module itself by default) recomputed in the backward pass instead of
    keeping its intermediate values."""
    # the module, not module.__call__, so that a later monkey-patched __call__ is used
    return _over_parameters(mx.checkpoint, module, module if fn is None else fn)


def average_gradients(gradients: Any, group: Optional[mx.distributed.Group] = None,
                      all_reduce_size: int = 32 * 1024**2,
                      communication_stream: Optional[mx.Stream] = None):
    """Average a tree of gradients over the processes of `group`. Small arrays are
    concatenated into buckets of about `all_reduce_size` bytes, one all-reduce each."""
    group = group or mx.distributed.init()
    n = group.size()
    if n == 1:
        return gradients

    def all_mean(x):
        return mx.distributed.all_sum(x, group=group, stream=communication_stream) / n

    flat = tree_flatten(gradients)
    if all_reduce_size <= 0 or len({g.dtype for _, g in flat}) > 1:
        return tree_map(all_mean, gradients)
    if not flat:
        return gradients
    out, bucket, size = [], [], 0
    for i, (_, g) in enumerate(flat):
        bucket.append(i)
        size += g.nbytes
        if size >= all_reduce_size or i == len(flat) - 1:
            parts = [flat[j][1] for j in bucket]
            offsets, total = [], 0
            for p in parts[:-1]:
                total += p.size
                offsets.append(total)
            merged = all_mean(mx.concatenate([p.reshape(-1) for p in parts]))
            out += [(flat[j][0], piece.reshape(flat[j][1].shape))
                    for j, piece in zip(bucket, mx.split(merged, offsets))]
            bucket, size = [], 0
    return tree_unflatten(out)


def clip_grad_norm_sharded(gradients: Any, max_norm: float,
                           group: Optional[mx.distributed.Group] = None):
    """Clip gradients sharded over `group` by their global norm; returns (clipped tree,
    global norm)."""
    local = tree_reduce(lambda acc, g: acc + g.square().sum(), gradients, 0.0)
    norm = mx.sqrt(mx.distributed.all_sum(local, group=group))
    scale = mx.minimum(max_norm / (norm + 1e-6), 1.0)
    return tree_map(lambda g: g * scale, gradients), norm
