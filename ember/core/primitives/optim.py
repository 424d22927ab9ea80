"""The fused optimizer update: one node for a whole step of an elementwise optimizer.

An optimizer step over N parameters would otherwise build about a dozen small nodes per
parameter. `OptimizerUpdate` takes every parameter of one dtype at once and its kernel
runs torch's multi-tensor (`_foreach_*`) ops over all of them, with the same operations,
in the same order and dtype, as the parameter-by-parameter rules of `ember.optimizers`.

Inputs, in order: the step's scalars (0-d arrays already in the parameters' dtype: the
learning rate and whatever else the rule reads, see RULES), then the n gradients, the n
parameters, and the n arrays of each state slot. Outputs: the n new parameters, then the
n new arrays of each updated slot. Hyperparameters that are Python numbers are
parameters of the primitive.
"""

from ember.core.primitives.base import Primitive

# rule -> its hyperparameters (in `hyper`, in this order) and its state slots; the adam and
# lion rules also read, after the learning rate, the bias corrections (lr / (1 - b1^t),
# 1 / sqrt(1 - b2^t)) when `bias_correction` and the weight decay factor when `decay`
RULES = {
    "sgd": (("momentum", "weight_decay", "dampening", "nesterov"), ("v",)),
    "rmsprop": (("alpha", "eps"), ("v",)),
    "adagrad": (("eps",), ("v",)),
    "adadelta": (("rho", "eps"), ("v", "u")),
    "adam": (("b1", "b2", "eps", "bias_correction", "decay"), ("m", "v")),
    "adamax": (("b1", "b2", "eps"), ("m", "v")),
    "lion": (("b1", "b2", "decay"), ("m",)),
}


class OptimizerUpdate(Primitive):
    """`rule` (a key of RULES) with hyperparameters `hyper` over `n` parameters, reading
    `n_scalars` leading scalar inputs; `slots` are the state slots it reads and writes
    (those of RULES; none for SGD without momentum)."""

    __slots__ = ("rule", "hyper", "n", "n_scalars", "slots")
    name = "OptimizerUpdate"

    def __init__(self, rule, hyper, n, n_scalars, slots):
        self.rule, self.hyper, self.n = rule, hyper, n
        self.n_scalars, self.slots = n_scalars, slots

    def params(self):
        return (self.rule, self.hyper, self.n, self.n_scalars, self.slots)

    def _refuse(self, what):
        raise ValueError(
            f"[{self.name}] {what} cannot go through an optimizer's fused update; set "
            "ember.optimizers.optimizers.FUSED = False to update parameter by parameter.")

    def vjp(self, primals, cotangents, argnums, outputs):
        self._refuse("vjp (grad)")

    def jvp(self, primals, tangents, argnums):
        self._refuse("jvp")

    def vmap(self, inputs, axes):
        self._refuse("vmap")
