"""Activation functions and their derivatives.

Each function takes and returns NumPy arrays of any shape. The derivatives are
given with respect to the pre-activation ``x`` (``*_grad(x)``), and, where the
output alone suffices (which is what the recurrent time loop uses), also from
the output ``y`` (``*_grad_from_output(y)``).

    tanh(x)     = (e^x - e^-x) / (e^x + e^-x)      tanh'(x)    = 1 - tanh(x)^2
    sigmoid(x)  = 1 / (1 + e^-x)                   sigmoid'(x) = s (1 - s)
    relu(x)     = max(x, 0)                        relu'(x)    = 1[x > 0]
    softmax(x)_i = e^{x_i} / sum_j e^{x_j}   (over the last axis, computed stably)
"""
from __future__ import annotations

import numpy as np


def tanh(x):
    return np.tanh(x)


def tanh_grad(x):
    y = np.tanh(x)
    return 1.0 - y * y


def tanh_grad_from_output(y):
    return 1.0 - y * y


def sigmoid(x):
    """Logistic sigmoid, written as 0.5·tanh(x/2) + 0.5: exact and never overflows."""
    x = np.asarray(x)
    return 0.5 * np.tanh(0.5 * x) + 0.5


def sigmoid_grad(x):
    s = sigmoid(x)
    return s * (1.0 - s)


def sigmoid_grad_from_output(y):
    return y * (1.0 - y)


def relu(x):
    return np.maximum(x, 0)


def relu_grad(x):
    return (np.asarray(x) > 0).astype(np.result_type(x, np.float32))


def relu_grad_from_output(y):
    return (np.asarray(y) > 0).astype(np.result_type(y, np.float32))


def softmax(x, axis=-1):
    """Softmax over ``axis``; the row maximum is subtracted first, so no overflow."""
    x = np.asarray(x)
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    x = np.asarray(x)
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax_backward(y, dy, axis=-1):
    """Vector-Jacobian product of softmax: given y = softmax(x) and dL/dy, return dL/dx.

    dL/dx_i = y_i (dy_i - sum_j dy_j y_j)
    """
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))

