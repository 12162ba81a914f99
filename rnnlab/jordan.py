"""The Jordan network: the previous *output*, not the hidden state, is fed back.

    h_t = φ(x_t W_ihᵀ + b_ih + y_{t−1} W_yhᵀ)       φ = tanh (or relu)
    y_t = h_t W_hoᵀ + b_ho                            (linear output)

Parameters: ``weight_ih`` (H, F), ``weight_yh`` (H, O) (the feedback weights),
``bias_ih`` (H,), ``weight_ho`` (O, H), ``bias_ho`` (O,). Course names: W_x =
weight_ih, W_y = weight_ho, and the recurrent weights run from the output units
back to the hidden ones (weight_yh) instead of W_s.

forward(x (B, T, F), state=None) → (y (B, T, O), y_T (1, B, O)); ``state`` is the
output fed back at the first step, y_0 (1, B, O), zeros by default.
backward(dy (B, T, O), dstate=None) → (dx, dy_0), accumulating into ``grads``.
torch has no Jordan layer; it is checked by finite differences only.
"""
from __future__ import annotations

import numpy as np

from .init import uniform
from .errors import ConfigError
from .module import Module, check_dtype, check_sizes, forward_saved, make_rng, real_array


class JordanRNN(Module):
    saved = ("_cache",)

    def __init__(self, input_size, hidden_size, output_size, *, nonlinearity="tanh",
                 dtype=np.float32, seed=None):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size = check_sizes(
            "JordanRNN", input_size=input_size, hidden_size=hidden_size, output_size=output_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.dtype = check_dtype(dtype)
        rng = make_rng(seed)
        F, H, O = self.input_size, self.hidden_size, self.output_size
        bh, bo = 1 / np.sqrt(H), 1 / np.sqrt(H)
        self.add_param("weight_ih", uniform(rng, (H, F), bh, self.dtype))
        self.add_param("weight_yh", uniform(rng, (H, O), bh, self.dtype))
        self.add_param("bias_ih", uniform(rng, (H,), bh, self.dtype))
        self.add_param("weight_ho", uniform(rng, (O, H), bo, self.dtype))
        self.add_param("bias_ho", uniform(rng, (O,), bo, self.dtype))
        self._cache = None

    def describe(self):
        return f"JordanRNN({self.input_size} -> {self.hidden_size} -> {self.output_size})"

    def multiplications(self, seq_len=1):
        F, H, O = self.input_size, self.hidden_size, self.output_size
        return (H * F + H * O + O * H) * int(seq_len)

    def forward(self, x, state=None):
        x = real_array(x, "JordanRNN", self.dtype)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ConfigError(f"JordanRNN: expected input (B, T, {self.input_size}), got {x.shape}")
        B, T, _ = x.shape
        H, O, p = self.hidden_size, self.output_size, self.params
        y_prev = np.zeros((B, O), self.dtype) if state is None else real_array(state, "JordanRNN state", self.dtype)
        if y_prev.shape == (1, B, O):
            y_prev = y_prev[0]
        if y_prev.shape != (B, O):
            raise ConfigError(f"JordanRNN: state must have shape (1, {B}, {O})")
        gx = x @ p["weight_ih"].T + p["bias_ih"]              # (B, T, H), all steps at once
        hs = np.empty((B, T, H), self.dtype)
        ys = np.empty((B, T + 1, O), self.dtype)                # ys[:, 0] = y_0
        ys[:, 0] = y_prev
        for t in range(T):
            a = gx[:, t] + ys[:, t] @ p["weight_yh"].T
            hs[:, t] = np.tanh(a) if self.nonlinearity == "tanh" else np.maximum(a, 0)
            ys[:, t + 1] = hs[:, t] @ p["weight_ho"].T + p["bias_ho"]
        self._cache = (x, hs, ys)
        return ys[:, 1:].copy(), ys[:, T][None].copy()

    def backward(self, dy, dstate=None):
        x, hs, ys = forward_saved(self._cache, "JordanRNN")
        B, T, _ = x.shape
        p, g = self.params, self.grads
        dy = np.zeros((B, T, self.output_size), self.dtype) if dy is None else real_array(dy, "JordanRNN.backward", self.dtype)
        if dy.shape != (B, T, self.output_size):
            raise ConfigError(f"JordanRNN.backward: dy must have shape {(B, T, self.output_size)}, got {dy.shape}")
        d_next = np.zeros((B, self.output_size), self.dtype)    # dL/dy_t through the feedback
        if dstate is not None:
            dstate = real_array(dstate, "JordanRNN.backward dstate", self.dtype)
            if dstate.shape not in ((1, B, self.output_size), (B, self.output_size)):   # as forward's state
                raise ConfigError(f"JordanRNN.backward: dstate must have shape {(1, B, self.output_size)}, "
                                  f"got {dstate.shape}")
            d_next += dstate.reshape(B, self.output_size)
        da = np.empty_like(hs)
        for t in reversed(range(T)):
            dy_t = dy[:, t] + d_next
            g["weight_ho"] += dy_t.T @ hs[:, t]
            g["bias_ho"] += dy_t.sum(0)
            dh = dy_t @ p["weight_ho"]
            h = hs[:, t]
            da[:, t] = dh * (1 - h * h) if self.nonlinearity == "tanh" else dh * (h > 0)
            d_next = da[:, t] @ p["weight_yh"]
            g["weight_yh"] += da[:, t].T @ ys[:, t]
        da2 = da.reshape(B * T, -1)
        g["weight_ih"] += da2.T @ x.reshape(B * T, -1)
        g["bias_ih"] += da2.sum(0)
        return da @ p["weight_ih"], d_next[None]
