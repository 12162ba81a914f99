"""Sampling from a character model, one step at a time.

``Stepper`` runs a unidirectional recurrent stack plus its output head for a single
sequence, one character per step: ``scan.scan`` over one step per layer, with the
layer's NumPy kernels (at batch 1 the compiled kernels' per-call setup costs more than
it saves), weights prepared once, buffers reused, and the first layer's input read as a
row of the W_ihᵀ + bias table: no per-step allocation beyond the logits.

``sample_next(logits, temperature, top_k, rng)``: temperature 0 means greedy
(argmax); otherwise softmax(logits / temperature), restricted to the ``top_k``
largest logits when top_k > 0, sampled by inverse CDF with one uniform draw.
"""
from __future__ import annotations

import numbers

import numpy as np

from .errors import ConfigError
from .kernels.base import workspace
from .module import finite_real
from .scan import initial_state, scan


class Stepper:
    """rnn: a unidirectional RNN/LSTM/GRU layer; head: its Linear output layer."""

    def __init__(self, rnn, head):
        if rnn.bidirectional:
            raise ConfigError("cannot generate from a bidirectional model")
        k = self.kernel = rnn.kernel
        self.rnn, self.dtype = rnn, rnn.dtype
        self.layers = []
        for layer in range(rnn.num_layers):
            empty = workspace({}, rnn.dtype)
            self.layers.append((rnn.prepared_weights(k, layer), k.alloc(1, 1, rnn.hidden_size, rnn.dtype, empty),
                                empty))
        self.ids = np.zeros((1, 1), np.int64)
        self.w_out_T = np.ascontiguousarray(head.params["weight"].T)
        self.b_out = head.params.get("bias")
        self.reset()

    def reset(self, state=None):
        """Zero state, or a state as the layer returns it (h (L, 1, H) or (h, c))."""
        h, c = initial_state(state, self.rnn.state_shape(1), self.kernel.has_cell, self.dtype)
        for i, (_, buf, _) in enumerate(self.layers):
            buf.h[1] = h[i]
            if c is not None:
                buf.c[1] = c[i]

    def step(self, char_id):
        """Feed one character id; return the logits (V,) for the next one."""
        k, cell = self.kernel, self.kernel.has_cell
        self.ids[0, 0] = char_id
        x, is_ids = self.ids, True
        for w, buf, empty in self.layers:
            scan(k, w, x, buf.h[1], buf.c[1] if cell else None, ids=is_ids, empty=empty, buf=buf)
            x, is_ids = buf.h[1:], False
        logits = x[0, 0] @ self.w_out_T
        if self.b_out is not None:
            logits += self.b_out
        return logits


def check_sampling(temperature, top_k):
    """Raise ConfigError unless temperature is a finite number >= 0 and top_k an int >= 0."""
    if not finite_real(temperature) or temperature < 0:
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
        raise ConfigError(f"top_k must be an integer >= 0, got {top_k!r}")


def sample_next(logits, temperature, top_k, rng):
    """One id drawn from softmax(logits / temperature) (temperature 0: the argmax), with
    ``top_k`` > 0 among exactly the top_k largest logits (of equal ones, the first)."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = np.asarray(logits, np.float64)
    with np.errstate(over="ignore"):          # ≤ 0: a tiny temperature takes it to −inf, not NaN
        z = (z - z.max()) / temperature
    if top_k and 0 < top_k < z.size:
        z[np.argsort(-z, kind="stable")[top_k:]] = -np.inf
    np.exp(z, out=z)
    cdf = z.cumsum()              # array methods: the np.* wrappers cost µs per character
    return int(min(cdf.searchsorted(rng.random() * cdf[-1], side="right"), z.size - 1))
