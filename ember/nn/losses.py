"""Loss functions of `mlx.nn.losses`: each returns the element-wise loss reduced by
`reduction` ('none', 'mean' or 'sum'). Shape checks and their ValueErrors follow upstream,
and run before the reduction is validated, as upstream's do."""

import math
from typing import Literal, Optional

import ember.core as mx

__all__ = [
    "binary_cross_entropy", "cosine_similarity_loss", "cross_entropy", "gaussian_nll_loss",
    "hinge_loss", "huber_loss", "kl_div_loss", "l1_loss", "log_cosh_loss",
    "margin_ranking_loss", "mse_loss", "nll_loss", "smooth_l1_loss", "triplet_loss",
]

Reduction = Literal["none", "mean", "sum"]
_REDUCTIONS = ("none", "mean", "sum")
_LOG_2 = math.log(2)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _reduce(loss, reduction: Reduction = "none"):
    if reduction == "mean":
        return mx.mean(loss)
    if reduction == "sum":
        return mx.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"Invalid reduction. Must be one of {_REDUCTIONS}.")


def _weighted(loss, weights):
    if weights is None:
        return loss
    if weights.shape != loss.shape:
        raise ValueError(f"Weights with shape {weights.shape} is not the same as "
                         f"output loss with shape {loss.shape}.")
    return loss * weights


def _check_pred_targets(predictions, targets):
    if predictions.shape != targets.shape:
        raise ValueError(f"Predictions shape {predictions.shape} does not match "
                         f"targets shape {targets.shape}.")


def cross_entropy(logits: mx.array, targets: mx.array, weights: Optional[mx.array] = None,
                  axis: int = -1, label_smoothing: float = 0.0,
                  reduction: Reduction = "none") -> mx.array:
    """Cross entropy of `logits` (unnormalised, classes along `axis`) against `targets`:
    class indices (logits' shape without `axis`) or probabilities (logits' shape).
    `label_smoothing` in [0, 1) mixes the targets with the uniform distribution."""
    if label_smoothing < 0 or label_smoothing >= 1:
        raise ValueError(f"Label smoothing must be in [0, 1), got {label_smoothing}.")

    as_probs = targets.ndim == logits.ndim
    if as_probs:
        expected = logits.shape
    else:
        expected = list(logits.shape)
        expected.pop(axis)
        expected = tuple(expected)
    if targets.shape != expected:
        raise ValueError(
            f"Targets shape {targets.shape} does not match logits shape {logits.shape}.")

    if (not as_probs and label_smoothing == 0 and axis in (-1, logits.ndim - 1)
            and mx.default_device() == mx.gpu
            and mx.issubdtype(logits.dtype, mx.floating)
            and mx.issubdtype(targets.dtype, mx.integer)):
        # fused kernel, accumulating in float32 (upstream takes it on the GPU too)
        loss = mx.fast.cross_entropy(logits, targets).astype(logits.dtype)
    else:
        logits = logits - mx.stop_gradient(mx.max(logits, axis=axis, keepdims=True))
        if as_probs:
            score = mx.sum(logits * targets, axis=axis)
        else:
            score = mx.take_along_axis(logits, mx.expand_dims(targets, axis), axis)
            score = mx.squeeze(score, axis)
        lse = mx.logsumexp(logits, axis=axis)
        if label_smoothing > 0:
            # (1 - s) * (lse - score) + s * (lse - mean(logits))
            loss = (lse - (1 - label_smoothing) * score
                    + -mx.mean(logits, axis=axis) * label_smoothing)
        else:
            loss = lse - score

    return _reduce(_weighted(loss, weights), reduction)


def binary_cross_entropy(inputs: mx.array, targets: mx.array,
                         weights: Optional[mx.array] = None, with_logits: bool = True,
                         reduction: Reduction = "mean") -> mx.array:
    """Binary cross entropy of logits (`with_logits=True`) or probabilities against
    targets in {0, 1}; with probabilities the logs are clipped at -100."""
    if inputs.shape != targets.shape:
        raise ValueError(f"Inputs shape {inputs.shape} does not match targets shape "
                         f"{targets.shape}.")
    if with_logits:
        # log(1 + e^x) - x t, stable for large |x|
        loss = mx.logaddexp(0.0, inputs) - inputs * targets
    else:
        log_p = mx.clip(mx.log(inputs), -100, None)
        log_q = mx.clip(mx.log(1 - inputs), -100, None)
        loss = -(targets * log_p + (1 - targets) * log_q)
    return _reduce(_weighted(loss, weights), reduction)


def l1_loss(predictions: mx.array, targets: mx.array,
            reduction: Reduction = "mean") -> mx.array:
    """|predictions - targets|."""
    _check_pred_targets(predictions, targets)
    return _reduce(mx.abs(predictions - targets), reduction)


def mse_loss(predictions: mx.array, targets: mx.array,
             reduction: Reduction = "mean") -> mx.array:
    """(predictions - targets) ** 2."""
    _check_pred_targets(predictions, targets)
    return _reduce(mx.square(predictions - targets), reduction)


def nll_loss(inputs: mx.array, targets: mx.array, axis: int = -1,
             reduction: Reduction = "none") -> mx.array:
    """Minus the log-probability (`inputs`, along `axis`) of the target class indices."""
    picked = mx.take_along_axis(inputs, mx.expand_dims(targets, axis), axis)
    return _reduce(-mx.squeeze(picked, axis), reduction)


def gaussian_nll_loss(inputs: mx.array, targets: mx.array, vars: mx.array,
                      full: bool = False, eps: float = 1e-6,
                      reduction: Reduction = "mean") -> mx.array:
    """Negative log-likelihood of `targets` under N(inputs, vars), variances clamped
    below at `eps`; `full` adds the constant log(2 pi) / 2."""
    if inputs.shape != targets.shape:
        raise ValueError(f"Inputs shape {inputs.shape} does not match targets shape "
                         f"{targets.shape}.")
    if inputs.shape != vars.shape:
        raise ValueError(f"Inputs shape {inputs.shape} does not match vars shape "
                         f"{vars.shape}.")
    vars = mx.maximum(vars, eps)
    loss = 0.5 * (mx.log(vars) + mx.square(targets - inputs) / vars)
    if full:
        loss = loss + _HALF_LOG_2PI
    return _reduce(loss, reduction)


def kl_div_loss(inputs: mx.array, targets: mx.array, axis: int = -1,
                reduction: Reduction = "none") -> mx.array:
    """KL(targets || inputs), both given as log-probabilities along `axis`."""
    loss = mx.sum(mx.exp(targets) * (targets - inputs), axis)
    return _reduce(loss, reduction)


def smooth_l1_loss(predictions: mx.array, targets: mx.array, beta: float = 1.0,
                   reduction: Reduction = "mean") -> mx.array:
    """0.5 d^2 / beta where d = |predictions - targets| < beta, else d - 0.5 beta."""
    _check_pred_targets(predictions, targets)
    diff = mx.abs(predictions - targets)
    loss = mx.where(diff < beta, 0.5 * mx.square(diff) / beta, diff - 0.5 * beta)
    return _reduce(loss, reduction)


def triplet_loss(anchors: mx.array, positives: mx.array, negatives: mx.array,
                 axis: int = -1, p: int = 2, margin: float = 1.0, eps: float = 1e-6,
                 reduction: Reduction = "none") -> mx.array:
    """max(|a - pos|_p - |a - neg|_p + margin, 0), the p-norms taken along `axis`
    (with `eps` added under the root)."""
    def dist(b):
        return mx.power(mx.sum(mx.power(mx.abs(anchors - b), p), axis) + eps, 1.0 / p)

    loss = mx.maximum(dist(positives) - dist(negatives) + margin, 0)
    return _reduce(loss, reduction)


def hinge_loss(inputs: mx.array, targets: mx.array,
               reduction: Reduction = "none") -> mx.array:
    """max(0, 1 - inputs * targets), targets in {-1, 1}."""
    return _reduce(mx.maximum(1 - inputs * targets, 0), reduction)


def huber_loss(inputs: mx.array, targets: mx.array, delta: float = 1.0,
               reduction: Reduction = "none") -> mx.array:
    """a^2 / 2 for |a| <= delta, else delta (|a| - delta / 2), a = inputs - targets."""
    abs_err = mx.abs(inputs - targets)
    quadratic = mx.minimum(abs_err, delta)
    loss = 0.5 * quadratic**2 + delta * (abs_err - quadratic)
    return _reduce(loss, reduction)


def log_cosh_loss(inputs: mx.array, targets: mx.array,
                  reduction: Reduction = "none") -> mx.array:
    """log(cosh(inputs - targets)), computed stably as logaddexp(e, -e) - log 2."""
    err = inputs - targets
    return _reduce(mx.logaddexp(err, -err) - _LOG_2, reduction)


def cosine_similarity_loss(x1: mx.array, x2: mx.array, axis: int = 1, eps: float = 1e-8,
                           reduction: Reduction = "none") -> mx.array:
    """x1 . x2 / max(|x1| |x2|, eps) along `axis`."""
    # the product first: with mismatched shapes its broadcast error is the one raised
    dot = mx.sum(x1 * x2, axis=axis)
    norms = mx.linalg.norm(x1, axis=axis) * mx.linalg.norm(x2, axis=axis)
    loss = dot / mx.maximum(norms, eps)
    return _reduce(loss, reduction)


def margin_ranking_loss(inputs1: mx.array, inputs2: mx.array, targets: mx.array,
                        margin: float = 0.0, reduction: Reduction = "none") -> mx.array:
    """max(0, -targets * (inputs1 - inputs2) + margin), targets in {-1, 1}."""
    if not (inputs1.shape == inputs2.shape == targets.shape):
        raise ValueError(
            "The shapes of the arguments do not match. The provided shapes are "
            f"inputs1.shape={inputs1.shape}, inputs2.shape={inputs2.shape}, and "
            f"targets.shape={targets.shape}.")
    loss = mx.maximum(0, -targets * (inputs1 - inputs2) + margin)
    return _reduce(loss, reduction)
