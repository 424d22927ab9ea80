"""Optimizers, as in mlx.optimizers: per-parameter update rules applied over parameter trees.

The state is a plain tree of arrays: {"step": uint64, "learning_rate": ..., <parameter
path>: {<slot>: array}}, so it saves with mx.savez / mx.save_safetensors after tree_flatten
and restores with `opt.state = tree_unflatten(...)`.

Hot path: `update` walks the gradient tree once. Scalars that depend only on the step and
the learning rate (the learning rate cast to a parameter dtype, Adam's bias corrections,
Adafactor's decay) are built once per step and dtype instead of once per parameter. The
elementwise optimizers (SGD, RMSprop, Adagrad, AdaDelta, Adam, AdamW, Adamax, Lion) update
all parameters of one dtype with a single fused node (`_fused.py`), computing the same
bits as their `apply_single`; subclasses that override the update rule, and parameters
that need promotion or broadcasting, go parameter by parameter.
"""

from typing import Callable, List, Optional, Tuple, Union

import ember.core as mx
from ember.core.array import TRANSFORMING as _TRANSFORMING
from ember.nn import Module
from ember.optimizers import _fused
from ember.utils import tree_flatten, tree_map, tree_merge, tree_reduce, tree_unflatten

# upstream's module has no __all__: `import *` also brings its imports (mx, Module, the
# tree utilities, the typing names), which `ember.optimizers` re-exports in turn
__all__ = ["Optimizer", "MultiOptimizer", "SGD", "RMSprop", "Adagrad", "AdaDelta", "Adam",
           "AdamW", "Adamax", "Lion", "Adafactor", "Muon", "clip_grad_norm", "Callable",
           "List", "Optional", "Tuple", "Union", "Module", "mx", "tree_flatten", "tree_map",
           "tree_merge", "tree_reduce", "tree_unflatten"]

_array = mx.array

# False: every optimizer updates parameter by parameter. The fused node has no
# derivative or vmap rules, so under grad/jvp/vjp/vmap the per-parameter path runs anyway.
FUSED = True


class Optimizer:
    """Base class: subclasses give `init_single` (create a parameter's state slots) and
    `apply_single` (one parameter's update); the base applies them over trees."""

    def __init__(self, schedulers=None):
        self._initialized = False
        self._state = {"step": mx.array(0, mx.uint64)}
        self._schedulers = dict(schedulers or {})
        self._scalar_cache = None

    def update(self, model: Module, gradients: dict):
        """Apply `gradients` to `model`'s parameters and load the results into `model`."""
        model.update(self.apply_gradients(gradients, model))

    def init(self, parameters: dict):
        """Grow the state to the structure of `parameters`, creating the slots of every
        parameter that has none yet (slots restored from a saved state are kept)."""
        # upstream's two passes: grow the structure, then fill the empty slots. A state
        # list longer than the parameters' is an IndexError there, not cut short.
        def grow(params, state):
            if isinstance(params, (list, tuple)):
                state = list(state)
                for i in range(len(state)):
                    state[i] = grow(params[i], state[i])
                if len(state) != len(params):
                    state.extend(tree_map(lambda _: {}, params[len(state):]))
                return type(params)(state)
            if isinstance(params, dict):
                for k, v in params.items():
                    state[k] = grow(v, state[k]) if k in state else tree_map(lambda _: {}, v)
            return state

        grow(parameters, self._state)
        tree_map(lambda p, s: s or self.init_single(p, s), parameters, self._state)
        self._initialized = True

    def init_single(self, parameter: mx.array, state: dict):
        """Create the state slots of one parameter in `state` (subclasses)."""
        raise NotImplementedError()

    def apply_gradients(self, gradients: dict, parameters: dict):
        """The updated parameters, in the structure of `gradients` (`parameters` may hold
        more entries than `gradients`)."""
        if not self._initialized:
            self.init(gradients)
        state = self._state
        for name, schedule in self._schedulers.items():
            state[name] = schedule(state["step"])
        state["step"] = state["step"] + 1
        self._scalar_cache = [None, None, {}]
        try:
            rule = self._fused_rule() if FUSED and not _TRANSFORMING[0] \
                and _fusable(type(self)) else None
            if rule is None or "apply_single" in self.__dict__:
                return self._walk(gradients, parameters, state)
            return _fused.apply(self, rule, gradients, parameters, state)
        finally:
            # the scalars are shared within this update only: a later apply_single call
            # must see hyperparameters (weight_decay, betas, ...) changed in between
            self._scalar_cache = None

    def _walk(self, grads, params, state):
        apply = self.apply_single
        if isinstance(grads, dict):
            out = {}
            for k, g in grads.items():
                if type(g) is _array:
                    out[k] = apply(g, params[k], state[k])
                else:
                    out[k] = self._walk(g, params[k], state[k])
            return out
        if isinstance(grads, (list, tuple)):
            out = [self._walk(g, params[i], state[i]) for i, g in enumerate(grads)]
            # a namedtuple takes its fields positionally, as in tree_map
            return type(grads)(*out) if hasattr(grads, "_fields") else type(grads)(out)
        return apply(grads, params, state)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        """One parameter's update: returns the new parameter, updates `state` (subclasses)."""
        raise NotImplementedError()

    def _scalars(self, dtype):
        """The scalars of this step for parameters of `dtype`, made by `_step_scalars` once
        per dtype during `apply_gradients` (rebuilt when the step or learning rate array is
        replaced), and on every call outside it."""
        cache = self._scalar_cache
        if cache is None:
            return self._step_scalars(dtype)
        state = self._state
        step, lr = state["step"], state.get("learning_rate")
        if cache[0] is not step or cache[1] is not lr:
            cache = self._scalar_cache = [step, lr, {}]
        out = cache[2].get(dtype)
        if out is None:
            out = cache[2][dtype] = self._step_scalars(dtype)
        return out

    def _step_scalars(self, dtype):
        return self.learning_rate.astype(dtype)

    def _fused_rule(self):
        """(rule of OptimizerUpdate, its hyperparameters, state slots, dtype -> (scalar
        arrays, flags completing the hyperparameters)), or None: no fused update."""
        return None

    def _lr_only(self, dtype):
        return [self._scalars(dtype)], ()

    @property
    def state(self):
        """The optimizer's state tree."""
        return self._state

    @state.setter
    def state(self, state: dict):
        self._initialized = False
        self._state = state

    @property
    def step(self):
        return self.state["step"]

    @property
    def learning_rate(self):
        return self.state["learning_rate"]

    @learning_rate.setter
    def learning_rate(self, learning_rate: Union[float, mx.array]):
        self.state["learning_rate"] = mx.array(learning_rate)

    def _maybe_schedule(self, name: str, param: Union[float, Callable[[mx.array], mx.array]]):
        """Store hyperparameter `name` in the state; a callable is a schedule of the step,
        re-evaluated before every update."""
        if callable(param):
            self._schedulers[name] = param
            value = param(self.step)
        else:
            value = mx.array(param)
        self.state[name] = value


class MultiOptimizer(Optimizer):
    """Route each parameter to the first optimizer whose filter `fn(path, array)` accepts
    it; the last optimizer (which has no filter) takes the rest."""

    def __init__(self, optimizers, filters: list = []):  # noqa: B006 (upstream's default)
        super().__init__()
        self._state = {}
        if len(filters) != len(optimizers) - 1:
            raise ValueError(f"Given {len(filters)} filters but {len(optimizers) - 1} needed.")
        self.optimizers = optimizers
        # `filters` must be a list, as upstream (a tuple + list is a TypeError there)
        self.filters = filters + [lambda *args, **kwargs: True]

    def _split_dictionary(self, gradients: dict):
        if len(self.optimizers) == 1:
            return [gradients]
        parts = [[] for _ in self.optimizers]
        for k, g in tree_flatten(gradients):
            for part, accept in zip(parts, self.filters):
                if accept(k, g):
                    part.append((k, g))
                    break
        # an empty part must stay a dict (tree_unflatten([]) is a list)
        return [tree_unflatten(p) if p else {} for p in parts]

    def init(self, parameters: dict):
        for opt, p in zip(self.optimizers, self._split_dictionary(parameters)):
            opt.init(p)

    def apply_gradients(self, gradients: dict, parameters: dict):
        tree = {}
        for opt, g in zip(self.optimizers, self._split_dictionary(gradients)):
            tree = tree_merge(tree, opt.apply_gradients(g, parameters))
        return tree

    @property
    def state(self):
        return {"states": [opt.state for opt in self.optimizers]}

    @state.setter
    def state(self, state: dict):
        if "states" not in state or len(state["states"]) != len(self.optimizers):
            raise ValueError("Invalid state provided")
        for opt, s in zip(self.optimizers, state["states"]):
            opt.state = s

    @property
    def learning_rate(self):
        return self.optimizers[0].learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate: Union[float, mx.array]):
        for opt in self.optimizers:
            opt.learning_rate = learning_rate


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (v = mu v + (1 - dampening) g),
    L2 weight decay and Nesterov momentum."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 momentum: float = 0.0, weight_decay: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening.")
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dampening = dampening
        self.nesterov = nesterov

    def init_single(self, parameter: mx.array, state: dict):
        state["v"] = mx.zeros_like(parameter)

    def _fused_rule(self):
        h = _fused.hyperparameters(self.momentum, self.weight_decay, self.dampening,
                                   self.nesterov)
        return h and ("sgd", h, ("v",) if self.momentum > 0 else (), self._lr_only)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        if self.weight_decay != 0:
            gradient = gradient + self.weight_decay * parameter
        lr = self._scalars(gradient.dtype)
        momentum = self.momentum
        if momentum <= 0:
            return parameter - lr * gradient
        # .get as upstream: without a "v" slot this is its TypeError, not a KeyError
        v = momentum * state.get("v")
        if self.dampening > 0:
            v = v + (1 - self.dampening) * gradient
        else:
            v = v + gradient
        state["v"] = v
        if self.nesterov:
            return parameter - lr * (gradient + momentum * v)
        return parameter - lr * v


class RMSprop(Optimizer):
    """RMSprop: v = alpha v + (1 - alpha) g^2, w -= lr g / (sqrt(v) + eps)."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 alpha: float = 0.99, eps: float = 1e-8):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.alpha = alpha
        self.eps = eps
        if alpha < 0.0:
            raise ValueError(f"RMSprop alpha should be >=0, {alpha} was provided instead")
        if eps <= 0.0:
            raise ValueError(f"RMSprop epsilon should be >0, {eps} was provided instead")

    def init_single(self, parameter: mx.array, state: dict):
        state["v"] = mx.zeros_like(parameter)

    def _fused_rule(self):
        h = _fused.hyperparameters(self.alpha, self.eps)
        return h and ("rmsprop", h, ("v",), self._lr_only)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        lr = self._scalars(gradient.dtype)
        alpha = self.alpha
        v = alpha * state["v"] + (1 - alpha) * mx.square(gradient)
        state["v"] = v
        return parameter - lr * gradient / (mx.sqrt(v) + self.eps)


class Adagrad(Optimizer):
    """Adagrad: v += g^2, w -= lr g / (sqrt(v) + eps)."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 eps: float = 1e-8):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.eps = eps
        if eps <= 0.0:
            raise ValueError(f"Adagrad epsilon should be >0, {eps} was provided instead")

    def init_single(self, parameter: mx.array, state: dict):
        state["v"] = mx.zeros_like(parameter)

    def _fused_rule(self):
        h = _fused.hyperparameters(self.eps)
        return h and ("adagrad", h, ("v",), self._lr_only)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        lr = self._scalars(gradient.dtype)
        v = state["v"] + mx.square(gradient)
        state["v"] = v
        return parameter - lr * gradient / (mx.sqrt(v) + self.eps)


class AdaDelta(Optimizer):
    """AdaDelta (with a learning rate): running averages v of g^2 and u of the step^2;
    step d = sqrt(u + eps) / sqrt(v + eps) g, w -= lr d."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 rho: float = 0.9, eps: float = 1e-6):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.rho = rho
        self.eps = eps
        if rho < 0.0:
            raise ValueError(f"AdaDelta rho should be >=0, {rho} was provided instead")
        if eps <= 0.0:
            raise ValueError(f"AdaDelta epsilon should be >0, {eps} was provided instead")

    def init_single(self, parameter: mx.array, state: dict):
        state["v"] = mx.zeros_like(parameter)
        state["u"] = mx.zeros_like(parameter)

    def _fused_rule(self):
        h = _fused.hyperparameters(self.rho, self.eps)
        return h and ("adadelta", h, ("v", "u"), self._lr_only)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        lr = self._scalars(gradient.dtype)
        rho, eps = self.rho, self.eps
        v = rho * state["v"] + (1 - rho) * mx.square(gradient)
        u = state["u"]
        d = mx.sqrt(u + eps) / mx.sqrt(v + eps) * gradient
        state["v"] = v
        state["u"] = rho * u + (1 - rho) * mx.square(d)
        return parameter - lr * d


class Adam(Optimizer):
    """Adam: running averages m of g and v of g^2, w -= lr m / (sqrt(v) + eps); with
    `bias_correction`, m and v are divided by (1 - beta^step)."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 betas: List[float] = [0.9, 0.999], eps: float = 1e-8,  # noqa: B006
                 bias_correction: bool = False):
        super().__init__()
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"Adam beta{i + 1} should be in [0, 1), {beta} was provided instead")
        if not 0.0 <= eps:
            raise ValueError(f"Adam epsilon should be >=0, {eps} was provided instead")
        self._maybe_schedule("learning_rate", learning_rate)
        self.betas = betas
        self.eps = eps
        self.bias_correction = bias_correction

    def init_single(self, parameter: mx.array, state: dict):
        state["m"] = mx.zeros_like(parameter)
        state["v"] = mx.zeros_like(parameter)

    def _step_scalars(self, dtype):
        # (lr, lr / (1 - b1^t), 1 / sqrt(1 - b2^t), weight decay factor), in `dtype`
        lr = self.learning_rate.astype(dtype)
        decay = self._decay(lr)
        if not self.bias_correction:
            return lr, None, None, decay
        b1, b2 = self.betas
        step = self.step
        c1 = (lr / (1 - b1**step)).astype(dtype)
        c2 = mx.rsqrt(1 - b2**step).astype(dtype)
        return lr, c1, c2, decay

    def _decay(self, lr):
        return None

    def _fused_rule(self):
        h = _fused.hyperparameters(*self.betas, self.eps) if len(self.betas) == 2 else None
        return h and ("adam", h, ("m", "v"), self._adam_scalars)

    def _adam_scalars(self, dtype):
        lr, c1, c2, decay = self._scalars(dtype)
        out = [lr] if c1 is None else [lr, c1, c2]
        if decay is not None:
            out.append(decay)
        return out, (c1 is not None, decay is not None)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        lr, c1, c2, decay = self._scalars(gradient.dtype)
        if decay is not None:
            parameter = parameter * decay
        b1, b2 = self.betas
        m = b1 * state["m"] + (1 - b1) * gradient
        v = b2 * state["v"] + (1 - b2) * mx.square(gradient)
        state["m"] = m
        state["v"] = v
        if c1 is None:
            return parameter - lr * m / (mx.sqrt(v) + self.eps)
        return parameter - c1 * m / (mx.sqrt(v) * c2 + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay: w is first scaled by (1 - lr weight_decay)."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 betas: List[float] = [0.9, 0.999], eps: float = 1e-8,  # noqa: B006
                 weight_decay: float = 0.01, bias_correction: bool = False):
        super().__init__(learning_rate=learning_rate, betas=betas, eps=eps,
                         bias_correction=bias_correction)
        self.weight_decay = weight_decay

    def _decay(self, lr):
        # a zero decay scales by exactly 1: skip it
        return 1 - lr * self.weight_decay if self.weight_decay != 0 else None


class Adamax(Adam):
    """Adamax, Adam with the infinity norm: v = max(beta2 v, |g|), w -= lr m / (v + eps)."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 betas: List[float] = [0.9, 0.999], eps: float = 1e-8):  # noqa: B006
        super().__init__(learning_rate, betas, eps)

    def _step_scalars(self, dtype):
        return self.learning_rate.astype(dtype)

    def _fused_rule(self):
        h = _fused.hyperparameters(*self.betas, self.eps) if len(self.betas) == 2 else None
        return h and ("adamax", h, ("m", "v"), self._lr_only)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        lr = self._scalars(gradient.dtype)
        b1, b2 = self.betas
        m = b1 * state["m"] + (1 - b1) * gradient
        v = mx.maximum(b2 * state["v"], mx.abs(gradient))
        state["m"] = m
        state["v"] = v
        return parameter - lr * m / (v + self.eps)


class Lion(Optimizer):
    """Lion: w -= lr sign(beta1 m + (1 - beta1) g) (plus decoupled weight decay), then
    m = beta2 m + (1 - beta2) g."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 betas: List[float] = [0.9, 0.99], weight_decay: float = 0.0):  # noqa: B006
        super().__init__()
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"Lion beta{i + 1} should be in [0, 1), {beta} was provided instead")
        self._maybe_schedule("learning_rate", learning_rate)
        self.betas = betas
        self.weight_decay = weight_decay

    def init_single(self, parameter: mx.array, state: dict):
        state["m"] = mx.zeros_like(parameter)

    def _step_scalars(self, dtype):
        lr = self.learning_rate.astype(dtype)
        return lr, (1 - lr * self.weight_decay) if self.weight_decay > 0 else None

    def _fused_rule(self):
        h = _fused.hyperparameters(*self.betas) if len(self.betas) == 2 else None
        return h and ("lion", h, ("m",), self._lion_scalars)

    def _lion_scalars(self, dtype):
        lr, decay = self._scalars(dtype)
        return ([lr] if decay is None else [lr, decay]), (decay is not None,)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        lr, decay = self._scalars(gradient.dtype)
        b1, b2 = self.betas
        m = state["m"]
        c = b1 * m + (1 - b1) * gradient
        state["m"] = b2 * m + (1 - b2) * gradient
        if decay is not None:
            parameter = decay * parameter
        return parameter - lr * mx.sign(c)


class Adafactor(Optimizer):
    """Adafactor: second moments factored into row and column averages for parameters
    with 2+ dims, relative step sizes, update clipping by RMS, optional first moment."""

    def __init__(self,
                 learning_rate: Union[float, Callable[[mx.array], mx.array], None] = None,
                 eps: Tuple[float, float] = (1e-30, 1e-3), clip_threshold: float = 1.0,
                 decay_rate: float = -0.8, beta_1: Optional[float] = None,
                 weight_decay: float = 0.0, scale_parameter: bool = True,
                 relative_step: bool = True, warmup_init: bool = False):
        super().__init__()
        if learning_rate is not None:
            self._maybe_schedule("learning_rate", learning_rate)
        self.eps = eps
        self.clip_threshold = clip_threshold
        self.decay_rate = decay_rate
        self.beta_1 = beta_1
        self.weight_decay = weight_decay
        self.scale_parameter = scale_parameter
        self.relative_step = relative_step
        self.warmup_init = warmup_init

    def init_single(self, parameter: mx.array, state: dict):
        if parameter.ndim >= 2:
            shape, dtype = parameter.shape, parameter.dtype
            state["exp_avg_sq_row"] = mx.zeros(shape[:-1], dtype=dtype)
            state["exp_avg_sq_col"] = mx.zeros(shape[:-2] + shape[-1:], dtype=dtype)
        else:
            state["exp_avg_sq"] = mx.zeros_like(parameter)
        if self.beta_1 is not None:
            state["exp_avg"] = mx.zeros_like(parameter)

    def _compute_rms(self, inputs):
        return mx.sqrt(mx.mean(mx.square(inputs)))

    def _step_scalars(self, dtype):
        # (relative step size, beta_2, 1 - beta_2) in the parameter's dtype
        step = self.step
        if self.relative_step:
            min_step = 1e-6 * step if self.warmup_init else 1e-2
            relative = mx.minimum(min_step, mx.rsqrt(step))
        else:
            relative = self.learning_rate
        beta_2 = 1.0 - (step**self.decay_rate).astype(dtype)
        return relative.astype(dtype), beta_2, 1 - beta_2

    def _compute_learning_rate(self, step, parameter_rms):
        relative = self._scalars(parameter_rms.dtype)[0]
        if self.scale_parameter:
            return mx.maximum(self.eps[1], parameter_rms) * relative
        return relative

    def _approximate_exp_moving_avg(self, exp_avg_sq_row, exp_avg_sq_col):
        r_factor = mx.rsqrt(exp_avg_sq_row / mx.mean(exp_avg_sq_row, axis=-1, keepdims=True))
        c_factor = mx.rsqrt(exp_avg_sq_col)
        return mx.expand_dims(r_factor, axis=-1) * mx.expand_dims(c_factor, axis=-2)

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        parameter_rms = self._compute_rms(parameter)
        _, beta_2, one_minus_beta_2 = self._scalars(parameter_rms.dtype)
        learning_rate = self._compute_learning_rate(self.step, parameter_rms)
        update = mx.square(gradient) + self.eps[0]
        if gradient.ndim >= 2:
            row = (beta_2 * state["exp_avg_sq_row"]
                   + one_minus_beta_2 * mx.mean(update, axis=-1))
            col = (beta_2 * state["exp_avg_sq_col"]
                   + one_minus_beta_2 * mx.mean(update, axis=-2))
            state["exp_avg_sq_row"] = row
            state["exp_avg_sq_col"] = col
            update = self._approximate_exp_moving_avg(row, col) * gradient
        else:
            exp_avg_sq = beta_2 * state["exp_avg_sq"] + one_minus_beta_2 * update
            state["exp_avg_sq"] = exp_avg_sq
            update = mx.rsqrt(exp_avg_sq) * gradient
        update = update / mx.maximum(1.0, self._compute_rms(update) / self.clip_threshold)
        update = learning_rate * update
        if self.beta_1 is not None:
            update = self.beta_1 * state["exp_avg"] + (1 - self.beta_1) * update
            state["exp_avg"] = update
        if self.weight_decay != 0:
            parameter = parameter + parameter * (-self.weight_decay * learning_rate)
        return parameter - update


class Muon(Optimizer):
    """Muon: SGD momentum whose update, for parameters with 2+ dims (flattened past the
    first), is orthogonalised by a quintic Newton-Schulz iteration."""

    def __init__(self, learning_rate: Union[float, Callable[[mx.array], mx.array]],
                 momentum: float = 0.95, weight_decay: float = 0.01, nesterov: bool = True,
                 ns_steps: int = 5):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.ns_steps = ns_steps

    def init_single(self, parameter: mx.array, state: dict):
        state["v"] = mx.zeros_like(parameter)

    def _zeropower_via_newtonschulz5(self, X, steps: int):
        assert X.ndim == 2, (f"Expected a 2D array for Newton-Schulz iteration, got shape "
                             f"{X.shape} instead.")
        a, b, c = 3.4445, -4.7750, 2.0315
        # iterate on the wide orientation so X @ X.T is the smaller Gram matrix
        wide = X.shape[-2] <= X.shape[-1]
        if not wide:
            X = X.T
        X = X / (mx.linalg.norm(X, keepdims=True) + 1e-7)
        for _ in range(steps):
            A = X @ X.T
            B = mx.addmm(b * A, A, A, beta=1.0, alpha=c)
            X = mx.addmm(a * X, B, X, beta=1.0, alpha=1.0)
        return X if wide else X.T

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        if self.weight_decay != 0:
            gradient = gradient + self.weight_decay * parameter
        momentum = self.momentum
        v = momentum * state["v"] + (1 - momentum) * gradient
        state["v"] = v
        update = gradient * (1 - momentum) + v * momentum if self.nesterov else v
        lr = self._scalars(gradient.dtype)
        if update.ndim >= 2:
            shape = update.shape
            if update.ndim > 2:
                update = mx.reshape(update, (shape[0], -1))
            update = self._zeropower_via_newtonschulz5(update, steps=self.ns_steps)
            if len(shape) > 2:
                update = mx.reshape(update, shape)
            # upstream scales by the last two dims of the unflattened shape
            lr = lr * max(1, shape[-2] / shape[-1]) ** 0.5
        return parameter - lr * update


# what a subclass may not override and keep the fused update of its built-in base
_RULE_METHODS = ("apply_single", "_scalars", "_step_scalars", "_decay", "_fused_rule")
_FUSABLE = {}


def _fusable(cls):
    """Whether `cls` updates as the built-in optimizer it derives from."""
    ok = _FUSABLE.get(cls)
    if ok is None:
        base = next(c for c in cls.__mro__ if c.__module__ == __name__)
        ok = _FUSABLE[cls] = all(getattr(cls, n, None) is getattr(base, n, None)
                                 for n in _RULE_METHODS)
    return ok


def clip_grad_norm(grads, max_norm):
    """Rescale `grads` so that their global L2 norm is at most `max_norm`; returns
    (clipped gradients, norm before clipping)."""
    if max_norm < 0:
        raise ValueError(f"max_norm should be >=0, {max_norm} was provided instead")

    def add_squares(acc, g):
        # float16 squares would overflow: sum them in float32
        if g.dtype == mx.float16:
            g = g.astype(mx.float32)
        return acc + g.square().sum()

    total_norm = mx.sqrt(tree_reduce(add_squares, grads, 0.0))
    normalizer = mx.minimum(max_norm / (total_norm + 1e-6), 1.0)

    def scale(g):
        # scale in float32, then cast, so a small normalizer does not underflow
        if mx.issubdtype(g.dtype, mx.floating):
            return (g * normalizer).astype(g.dtype)
        return g * normalizer

    return tree_map(scale, grads), total_norm
