"""The Elman step:

    h_t = φ(gx_t + gh_t),  φ ∈ {tanh, relu},  gx_t = x_t W_ihᵀ + b_ih,  gh_t = h_{t−1} W_hhᵀ + b_hh

Backward: dgx_t = φ'(·) ⊙ dh_t (dgh_t is the same array), dh_{t−1} = dgx_t W_hh.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..errors import ConfigError
from .base import Kernel, fresh


class ElmanKernel(Kernel):
    """h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh or relu."""

    gates = 1

    def __init__(self, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def alloc(self, T, B, H, dtype, empty=None):
        """Buffers for T steps: h[0] is the initial state, h[t+1] the state after step t.
        ``empty(name, shape)`` may hand out reused workspace arrays."""
        empty = empty or fresh(dtype)
        return SimpleNamespace(h=empty("h", (T + 1, B, H)), tmp=empty("tmp", (B, H)), empty=empty)

    def step(self, t, gx, buf, w):
        h = buf.h[t + 1]
        np.matmul(buf.h[t], w.w_hh_T, out=h)
        h += gx
        if self.nonlinearity == "tanh":
            np.tanh(h, out=h)
        else:
            np.maximum(h, 0, out=h)

    def backward_prepare(self, buf, dgx, dgh):
        """Fill dgx with φ'(·) of every step (it depends on the forward pass only)."""
        h = buf.h[1:]
        if self.nonlinearity == "tanh":
            np.multiply(h, h, out=dgx)
            np.subtract(1, dgx, out=dgx)
        else:
            np.greater(h, 0, out=dgx, casting="unsafe")
        return None

    def step_backward(self, t, dh, dc, buf, pre, w_hh, dgx, dgh):
        dgx *= dh                                 # dgx = φ'(·) ⊙ dh
        np.matmul(dgx, w_hh, out=dh)              # dh ← dL/dh_{t−1}


