"""Loss functions. Each returns ``(loss, dloss/dinput)``: a Python float and an
array of the input's shape.

- ``mse(y, d)``: the course's squared error E = ½ Σ_k (d_k − y_k)², summed over
  the output units and averaged over the leading (batch/time) positions, so
  dE/dy = (y − d) / N where N is the number of positions. For a single output
  and a single example this is exactly E = ½(d − y)².
- ``softmax_cross_entropy(logits, targets)``: −log softmax(logits)[target],
  averaged over all positions; computed from logits with the log-sum-exp trick.
- ``bce_with_logits(logits, targets)``: binary cross-entropy from logits,
  averaged over all elements; stable for large |logits|.
"""
from __future__ import annotations

import numpy as np

from .activations import log_softmax, sigmoid
from .errors import ConfigError
from .module import real_array


def _floats(y, who):
    """y as a float array: a model's own dtype kept, anything else (integers, bools) as
    float64 — a float target is never cut to the prediction's integer dtype."""
    y = real_array(y, who)
    return y if np.issubdtype(y.dtype, np.floating) else y.astype(np.float64)


def _positions(shape):
    """Number of positions (everything but the last axis) for mean reduction."""
    return int(np.prod(shape[:-1])) if len(shape) > 1 else 1


def mse(y, d):
    """E = ½(d − y)², summed over the last axis and averaged over the others.

    y, d: arrays of the same shape (..., K). Returns (E, dE/dy).
    """
    y = _floats(y, "mse")
    d = real_array(d, "mse target", y.dtype)
    if y.shape != d.shape:
        raise ConfigError(f"mse: prediction shape {y.shape} != target shape {d.shape}")
    if y.size == 0:
        raise ConfigError("mse: an empty batch has no mean")
    n = _positions(y.shape)
    diff = y - d
    loss = 0.5 * float(np.sum(diff * diff)) / n
    return loss, diff / n


def softmax_cross_entropy(logits, targets, *, reduction="mean"):
    """Cross-entropy of integer targets under softmax(logits).

    logits: (..., V) float; targets: (...) int in [0, V).
    reduction: "mean" (over all positions) or "sum".
    Returns (loss, dloss/dlogits) with dlogits = (softmax(logits) − onehot) / N.
    """
    logits = real_array(logits, "softmax_cross_entropy")
    targets = real_array(targets, "softmax_cross_entropy targets")
    if targets.shape != logits.shape[:-1]:
        raise ConfigError(
            f"softmax_cross_entropy: targets shape {targets.shape} does not match logits "
            f"shape {logits.shape} without its last axis")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ConfigError("softmax_cross_entropy: targets must be integer class ids")
    V = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= V):
        raise ConfigError(f"softmax_cross_entropy: target ids must lie in [0, {V})")
    flat = logits.reshape(-1, V)
    t = targets.reshape(-1)
    logp = log_softmax(flat, axis=-1)
    nll = -logp[np.arange(t.size), t]
    if reduction == "mean":
        scale = 1.0 / max(t.size, 1)
    elif reduction == "sum":
        scale = 1.0
    else:
        raise ConfigError(f"softmax_cross_entropy: unknown reduction {reduction!r}")
    loss = float(nll.sum()) * scale
    grad = np.exp(logp)
    grad[np.arange(t.size), t] -= 1.0
    grad *= scale
    return loss, grad.reshape(logits.shape)


def bce_with_logits(logits, targets):
    """Binary cross-entropy −[d log σ(z) + (1−d) log(1−σ(z))], mean over all elements.

    logits z and targets d (in [0, 1]) have the same shape. Uses
    max(z,0) − z·d + log(1 + e^{−|z|}) so no exp overflows.
    Returns (loss, dloss/dz) with dloss/dz = (σ(z) − d) / N.
    """
    z = _floats(logits, "bce_with_logits")
    d = real_array(targets, "bce_with_logits targets", z.dtype)
    if z.shape != d.shape:
        raise ConfigError(f"bce_with_logits: logits shape {z.shape} != target shape {d.shape}")
    n = max(z.size, 1)
    per = np.maximum(z, 0) - z * d + np.log1p(np.exp(-np.abs(z)))
    return float(per.sum()) / n, (sigmoid(z) - d) / n

