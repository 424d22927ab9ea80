"""Shared vmap helpers."""

import ember.core.ops as O


def to_front(x, ax):
    """Move batch axis `ax` of x to the front (None: unbatched, returned as is)."""
    if ax is None or ax == 0:
        return x
    return O.moveaxis(x, ax, 0)


def align_elementwise(inputs, axes):
    """Batched inputs with the batch axis first, padded so they broadcast against the
    unbatched ones (which broadcast from the right)."""
    core = 0
    for x, ax in zip(inputs, axes):
        core = max(core, x.ndim - (ax is not None))
    out = []
    for x, ax in zip(inputs, axes):
        if ax is None:
            out.append(x)
            continue
        x = to_front(x, ax)
        missing = core - (x.ndim - 1)
        if missing:
            x = O.reshape(x, (x.shape[0],) + (1,) * missing + x.shape[1:])
        out.append(x)
    return out
