"""Sampling from a character model, one step at a time.

``Stepper`` runs a unidirectional recurrent stack plus its output head for a single
sequence, one character per step, with the same cell kernels as training (cells.py)
but preallocated one-step buffers and the input projection done as a row gather:
no per-step allocation beyond the logits.

``sample_next(logits, temperature, top_k, rng)``: temperature 0 means greedy
(argmax); otherwise softmax(logits / temperature), restricted to the ``top_k``
largest logits when top_k > 0, sampled by inverse CDF with one uniform draw.
"""
from __future__ import annotations

import numpy as np


class Stepper:
    def __init__(self, rnn, head):
        if rnn.bidirectional:
            raise ValueError("cannot generate from a bidirectional model")
        # the NumPy kernels: at batch 1 the C kernels' per-call setup costs more than it saves
        k, p = rnn.kernel, rnn.params
        self.kernel, self.head = k, head
        self.layers = []
        H, G = rnn.hidden_size, k.gates
        for layer in range(rnn.num_layers):
            n_ih, n_hh, n_bih, n_bhh = rnn._names(layer, 0)
            w = k.prepare_weights(p[n_ih], p[n_hh], p.get(n_bih), p.get(n_bhh))
            table = w.w_ih_T + w.bias if layer == 0 else None     # one-hot input: a row
            self.layers.append((w, table, k.alloc(1, 1, H, rnn.dtype), np.empty((1, G * H), rnn.dtype)))
        self.w_out_T = np.ascontiguousarray(head.params["weight"].T)
        self.b_out = head.params.get("bias")
        self.reset()

    def reset(self, state=None):
        """Zero state, or a state as the layer returns it (h (L, 1, H) or (h, c))."""
        for i, (_, _, buf, _) in enumerate(self.layers):
            if state is None:
                buf.h[0] = 0
                if self.kernel.has_cell:
                    buf.c[0] = 0
            elif self.kernel.has_cell:
                buf.h[0], buf.c[0] = state[0][i], state[1][i]
            else:
                buf.h[0] = state[i]

    def step(self, char_id):
        """Feed one character id; return the logits (V,) for the next one."""
        k = self.kernel
        x = None
        for w, table, buf, gx in self.layers:
            if table is not None:
                gx[0] = table[char_id]
            else:
                np.matmul(x, w.w_ih_T, out=gx)
                gx += w.bias
            k.step(0, gx, buf, w)
            buf.h[0] = buf.h[1]
            if k.has_cell:
                buf.c[0] = buf.c[1]
            x = buf.h[0]
        logits = x[0] @ self.w_out_T
        if self.b_out is not None:
            logits += self.b_out
        return logits


def sample_next(logits, temperature, top_k, rng):
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return int(np.argmax(logits))
    z = np.asarray(logits, np.float64) / temperature
    if top_k and 0 < top_k < z.size:
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -np.inf)
    z -= z.max()
    np.exp(z, out=z)
    cdf = z.cumsum()              # array methods: the np.* wrappers cost µs per character
    return int(min(cdf.searchsorted(rng.random() * cdf[-1], side="right"), z.size - 1))
