"""Sequential: call layers one after the other."""

from ember.nn.layers.base import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Calls its modules (or any callables) in order, each on the previous output."""

    def __init__(self, *modules):
        super().__init__()
        self.layers = list(modules)

    def __call__(self, x):
        for layer in self["layers"]:
            x = layer(x)
        return x
