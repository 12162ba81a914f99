"""The kernel contract and what every NumPy kernel shares.

A *kernel* is the step math of one cell type, written with preallocated buffers and
in-place ufuncs. It knows nothing of modules, parameter names or files: ``scan.py``
runs it over time for the layers, the one-step cells and the sampler.

    kernel.gates, .has_cell, .separate_dgh   G (gate blocks), an LSTM-style cell c, GRU's dgh
    kernel.prepare_weights(w_ih, w_hh, b_ih, b_hh) -> w    weights as the loop uses them
    kernel.scaled_transpose(w, s) -> (w · s[:, None])ᵀ     prepare_weights's copy (the twins: views)
    kernel.alloc(T, B, H, dtype, empty) -> buf              h (T+1, B, H) [, c], act, ...
    kernel.forward_loop(gx, buf, w, ids=None)               steps 0..T−1 (buf.h[0] = h_0 set)
    kernel.step(t, gx_t, buf, w)                            one step
    kernel.backward_prepare(buf, dgx, dgh) -> pre           factors that need forward values only
    kernel.backward_loop(dh, dc, buf, pre, w_hh, dgx, dgh, d_hs[, ids, acc])   BPTT, last to first
    kernel.step_backward(t, dh, dc, buf, pre, w_hh, dgx_t, dgh_t)

The compiled twins (compiled.py) and a second backend's kernels (CUDA) provide the same
methods over their own arrays.


Notation (code names, PyTorch's layout; the course's names in brackets):

    x_t   (B, F)  input at step t                       [x]
    h_t   (B, H)  hidden state                          [s, the state]
    W_ih  (G·H, F) ``weight_ih``   input weights         [W_x]
    W_hh  (G·H, H) ``weight_hh``   recurrent weights     [W_s]
    b_ih, b_hh (G·H,) biases
    gx_t = x_t W_ihᵀ + b_ih         all T steps in one GEMM before the loop
    gh_t = h_{t−1} W_hhᵀ + b_hh     one GEMM per step, all gates fused
    (the output weights [W_y] live in the model's ``Linear`` head, not in the cell)

The weight gradients are formed after the loop from all steps at once (scan.py):
dW_ih = Σ_t dgx_tᵀ x_t, dW_hh = Σ_t dgh_tᵀ h_{t−1}.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def fresh(dtype):
    """The plain allocator: a new array for every request."""
    return lambda name, shape: np.empty(shape, dtype)


def workspace(store, dtype):
    """An allocator that reuses arrays kept in the dict ``store`` by name while the shape
    stays the same (a fresh large array costs a page fault per 4 KiB). Callers never
    return these arrays to the user: outputs and gradients are always fresh."""
    def empty(name, shape):
        a = store.get(name)
        if a is None or a.shape != shape:
            a = store[name] = np.empty(shape, dtype)
        return a
    return empty


class Kernel:
    """Shared machinery. Gate scaling: the sigmoid gates are computed as
    σ(x) = ½·tanh(½x) + ½, so the ½ is folded into their rows of W_ih, W_hh and the
    biases (scaling by ½ is exact in binary floating point, so the pre-activations are
    bit-for-bit ½ of the unscaled ones) and one full-width tanh serves every gate. A
    kernel whose step halves the pre-activations itself (``halves_in_step``: the compiled
    twins) takes the weights as they are, transposed views and no copies — which matters
    where the weights change every few steps (dynamic evaluation)."""

    gates = 1
    has_cell = False
    separate_dgh = False
    sigmoid_blocks = ()          # gate blocks that use the sigmoid
    fold_blocks = None           # gate blocks of b_hh folded into gx (None: all)
    scatters_ids = False         # True: backward_loop accepts ids/acc (fused kernels)
    halves_in_step = False       # True: the step halves the sigmoid pre-activations (fused kernels)

    def gate_scale(self, H, dtype):
        s = np.ones(self.gates * H, dtype)
        for blk in self.sigmoid_blocks:
            s[blk * H:(blk + 1) * H] = 0.5
        return s

    def forward_loop(self, gx, buf, w, ids=None):
        """Run every step: gx (T, B, G·H) input projections, buffers from ``alloc``; or,
        with integer ``ids`` (T, B) for one-hot inputs, gx is the (V, G·H) table of
        W_ihᵀ + bias rows and step t's projections are its rows ids[t] (a gather)."""
        if ids is not None:
            table, gx = gx, buf.empty("gx", ids.shape + (gx.shape[1],))
            table.take(ids, axis=0, out=gx, mode="clip")      # ids are range-checked
        step = self.step
        if gx.shape[0] == 1:                                  # one step (the sampler)
            step(0, gx[0], buf, w)
            return
        for t in range(gx.shape[0]):
            step(t, gx[t], buf, w)

    def backward_loop(self, dh, dc, buf, pre, w_hh, dgx, dgh, d_hs):
        """BPTT over every step, last to first. dh, dc (B, H): gradients w.r.t. the final
        state on entry, w.r.t. the initial state on return. d_hs (T, B, H) or None: the
        gradient arriving at each step's output. dgx, dgh (T, B, G·H) receive the
        pre-activation gradients; ``pre`` is what ``backward_prepare`` returned."""
        step_backward = self.step_backward
        for t in reversed(range(dgx.shape[0])):
            if d_hs is not None:
                dh += d_hs[t]
            step_backward(t, dh, dc, buf, pre, w_hh, dgx[t], dgh[t])

    def scaled_transpose(self, w, s):
        """(w · s[:, None])ᵀ as a new C-contiguous array: w (G·H, F), s (G·H,) → (F, G·H)."""
        return np.ascontiguousarray((w * s[:, None]).T)

    def prepare_weights(self, w_ih, w_hh, b_ih, b_hh):
        """Weights as the time loop uses them: w_ih_T (F, G·H) and w_hh_T (H, G·H)
        contiguous and gate-scaled (with ``halves_in_step``: the transposed views of the
        weights as given, unscaled); ``bias`` (G·H,) = b_ih plus the folded part of b_hh,
        scaled likewise; ``b_step`` the part of b_hh added inside the step (GRU's b_hn),
        else None. ``scale`` and ``offset`` (G·H,): the ½ and +½ of the sigmoid blocks."""
        GH, H = w_hh.shape
        s = self.gate_scale(H, w_hh.dtype)
        if self.halves_in_step:
            w_ih_T, w_hh_T = w_ih.T, w_hh.T
        else:
            w_ih_T, w_hh_T = self.scaled_transpose(w_ih, s), self.scaled_transpose(w_hh, s)
        bias = np.zeros(GH, w_hh.dtype)
        b_step = None
        if b_ih is not None:
            bias += b_ih
            if self.fold_blocks is None:
                bias += b_hh
            else:
                for blk in self.fold_blocks:
                    bias[blk * H:(blk + 1) * H] += b_hh[blk * H:(blk + 1) * H]
                b_step = b_hh[2 * H:]
            if not self.halves_in_step:
                bias *= s
        return SimpleNamespace(w_ih_T=w_ih_T, w_hh_T=w_hh_T, bias=bias, b_step=b_step,
                               scale=s, offset=np.where(s == 0.5, 0.5, 0.0).astype(w_hh.dtype))



def tanh_mark(kernel, H, dtype):
    """(G·H,) vector: 1 on tanh gate blocks, 0 on sigmoid blocks."""
    m = np.ones(kernel.gates * H, dtype)
    for blk in kernel.sigmoid_blocks:
        m[blk * H:(blk + 1) * H] = 0
    return m

