"""Central finite-difference gradient check, for any layer or model that follows the
layer contract.

    errors = gradcheck(module, inputs, eps=1e-5)

``module.forward(*inputs)`` may return an array or a (nested) tuple of arrays (an
RNN returns (out, h_n), an LSTM (out, (h_n, c_n))). The check uses the scalar
L = Σ_k ⟨w_k, y_k⟩ with fixed random w_k for every output y_k, so every output and
final state is exercised; ``module.backward(*w)`` must then return the gradients of
the inputs in the same structure as ``inputs`` (None where an input is None).

Returned: {parameter name: max relative error, "input[i]": ...} where the relative
error of an array is max|a − n| / max(max|a|, max|n|, 1e-12) (analytic a, numerical n).
Run it in float64; parameters are perturbed in place and restored.

The step eps = 1e-5 balances the central difference's truncation error (∝ eps²)
against rounding (∝ 1e-16·|L| / eps): with 1e-6, a gradient that has decayed to
~1e-4 of the loss's scale (an initial state seen through a contracting RNN) shows
relative errors near 1e-5 that are rounding alone.
"""
from __future__ import annotations

import numpy as np


def _flatten(tree):
    if tree is None:
        return []
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in _flatten(t)]
    return [tree]


def _like(tree, leaves):
    if tree is None:
        return None
    if isinstance(tree, (tuple, list)):
        return tuple(_like(t, leaves) for t in tree)
    return next(leaves)


def rel_error(a, n):
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    scale = max(float(np.abs(a).max(initial=0)), float(np.abs(n).max(initial=0)), 1e-12)
    return float(np.abs(a - n).max(initial=0)) / scale


def gradcheck(module, inputs, *, eps=1e-5, seed=0, params=True, wrt_inputs=True):
    inputs = tuple(inputs)
    rng = np.random.default_rng(seed)
    out = module.forward(*inputs)
    weights_tree = _like(out, iter([rng.standard_normal(np.shape(y)) for y in _flatten(out)]))
    weights = _flatten(weights_tree)

    def loss():
        ys = _flatten(module.forward(*inputs))
        return sum(float(np.sum(w * y)) for w, y in zip(weights, ys))

    module.forward(*inputs)
    module.zero_grad()
    w_out = weights_tree if isinstance(weights_tree, tuple) else (weights_tree,)
    dinputs = module.backward(*w_out)
    if len(inputs) == 1:
        dinputs = (dinputs,) if not isinstance(dinputs, tuple) else dinputs
    analytic = {k: g.copy() for k, g in module.grads.items()}

    def numeric(arr):
        grad = np.zeros(arr.shape)
        flat, gflat = arr.reshape(-1), grad.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            lp = loss()
            flat[i] = old - eps
            lm = loss()
            flat[i] = old
            gflat[i] = (lp - lm) / (2 * eps)
        return grad

    errors = {}
    if params:
        for k, p in module.params.items():
            errors[k] = rel_error(analytic[k], numeric(p))
    if wrt_inputs:
        pairs = [(x, dx) for x, dx in _pairs(inputs, dinputs)
                 if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating)]
        for i, (x, dx) in enumerate(pairs):
            errors[f"input[{i}]"] = rel_error(dx, numeric(x))
    return errors


def _pairs(inputs, dinputs):
    """(input leaf, its gradient) pairs, walking both structures together."""
    if inputs is None:
        return []
    if isinstance(inputs, (tuple, list)):
        ds = dinputs if isinstance(dinputs, (tuple, list)) else (dinputs,) + (None,) * (len(inputs) - 1)
        return [p for x, d in zip(inputs, ds) for p in _pairs(x, d)]
    return [(inputs, dinputs)]
