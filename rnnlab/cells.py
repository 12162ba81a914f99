"""One recurrent step as a module: ``RNNCell``, ``LSTMCell``, ``GRUCell``, with
torch.nn.*Cell's parameter names ``weight_ih`` (G·H, F), ``weight_hh`` (G·H, H),
``bias_ih``, ``bias_hh`` (G·H,). The equations are the kernels' (``kernels/``):

    Elman  h' = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)
    LSTM   i, f, g, o = σ, σ, tanh, σ of (x W_ihᵀ + b_ih + h W_hhᵀ + b_hh);  c' = f⊙c + i⊙g;  h' = o⊙tanh c'
    GRU    r, z = σ(·);  n = tanh(x W_inᵀ + b_in + r⊙(h W_hnᵀ + b_hn));  h' = (1 − z)⊙n + z⊙h

A step is ``scan.scan`` over one time step (T = 1), so the cells, the layers and the
sampler share one time loop and one copy of the math.

    forward(x (B, F), state) -> next state: h (B, H), or (h, c) for the LSTM (as torch)
    step(x, state) -> (next_state, cache)
    backward_step(dnext_state, cache) -> (dx (B, F), dstate), accumulating into grads
Keep the caches of a loop of steps and walk them backwards for BPTT.
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .init import uniform
from .kernels import make_kernel, select
from .module import Module, check_dtype, check_sizes, make_rng, real_array
from .scan import initial_state, scan, scan_backward


class _Cell(Module):
    mode = None

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh",
                 dtype=np.float32, seed=None):
        super().__init__()
        self.input_size, self.hidden_size = check_sizes(
            type(self).__name__, input_size=input_size, hidden_size=hidden_size)
        self.dtype = check_dtype(dtype)
        self.kernel = make_kernel(self.mode, nonlinearity)
        rng = make_rng(seed)
        G, H, F = self.kernel.gates, self.hidden_size, self.input_size
        bound = 1.0 / np.sqrt(H)
        self.add_param("weight_ih", uniform(rng, (G * H, F), bound, self.dtype))
        self.add_param("weight_hh", uniform(rng, (G * H, H), bound, self.dtype))
        if bias:
            self.add_param("bias_ih", uniform(rng, (G * H,), bound, self.dtype))
            self.add_param("bias_hh", uniform(rng, (G * H,), bound, self.dtype))

    def step(self, x, state=None):
        x = real_array(x, type(self).__name__, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_size or x.shape[0] < 1:
            raise ConfigError(f"{type(self).__name__}: expected input (B, {self.input_size}) with B >= 1, "
                              f"got {x.shape}")
        B, H = x.shape[0], self.hidden_size
        h, c = initial_state(state, (B, H), self.kernel.has_cell, self.dtype)
        p, k = self._params, select(self.kernel, self.dtype)
        w = k.prepare_weights(p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
        buf = scan(k, w, x[None], h, c)
        new = (buf.h[1].copy(), buf.c[1].copy()) if k.has_cell else buf.h[1].copy()
        return new, (x, buf, k)

    def forward(self, x, state=None):
        return self.step(x, state)[0]

    def backward_step(self, dstate, cache):
        x, buf, k = cache
        p, g = self._params, self._grads
        dh, dc = initial_state(dstate, (x.shape[0], self.hidden_size), k.has_cell, self.dtype, "dstate")
        grads = (g["weight_ih"], g["weight_hh"], g.get("bias_ih"), g.get("bias_hh"))
        dx = scan_backward(k, p["weight_ih"], p["weight_hh"], buf, x[None], dh, dc, None, grads)
        return dx[0], ((dh, dc) if k.has_cell else dh)


class RNNCell(_Cell):
    """One Elman step: h' = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh), φ = tanh | relu."""
    mode = "RNN"


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o). ``state`` is (h, c)."""
    mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed)


class GRUCell(_Cell):
    """One GRU step (gates r, z, n; the reset gate multiplies W_hn h + b_hn)."""
    mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed)
