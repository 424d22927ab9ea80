"""The primitive protocol: math only (shapes, vjp, jvp, vmap, equivalence), never kernels.

A primitive instance is the recipe stored in a lazy array. Parameter-free primitives are
singletons; parametrised ones keep their parameters in slots and compare by `params()`.
Kernels are registered per class in `ember.core._backend.kernels`.
"""


class Primitive:
    __slots__ = ()
    name = "Primitive"

    def params(self):
        """The parameters that, with the class, make two nodes interchangeable (for CSE)."""
        return ()

    def is_equivalent(self, other):
        return type(self) is type(other) and self.params() == other.params()

    def vjp(self, primals, cotangents, argnums, outputs):
        """Cotangents of the inputs named by `argnums`, given cotangents of every output."""
        raise ValueError(f"[Primitive::vjp] Not implemented for {self.name}.")

    def jvp(self, primals, tangents, argnums):
        """Tangents of every output, given tangents of the inputs named by `argnums`."""
        raise ValueError(f"[Primitive::jvp] Not implemented for {self.name}.")

    def vmap(self, inputs, axes):
        """Outputs over batched inputs (`axes[i]` is None when input i is unbatched) and
        the batch axis of each output."""
        raise ValueError(f"[Primitive::vmap] Not implemented for {self.name}.")

    def __repr__(self):
        p = self.params()
        return f"{self.name}{p if p else ''}"
