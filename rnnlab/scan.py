"""The one time loop: a cell kernel run over a sequence, forward and backward.

    buf = scan(kernel, w, xs, h0, c0)               (outputs, final carry) = (buf.h[1:], buf.h[T] [, buf.c[T]])
    dxs = scan_backward(kernel, w_ih, w_hh, buf, xs, dh, dc, d_hs, grads)

This is the Coursera week's "scan": the loop over time as a function of (cell,
initial carry, inputs) → (outputs, final carry), and its reverse for BPTT. The
recurrent layers call it once per layer and direction, the one-step cell modules with
T = 1, and the sampler one character at a time. ``initial_state`` is the one place
that reads a user's initial state (or final-state gradient) and makes zeros.

Shapes (time-major; G gate blocks; F input width; V vocabulary for one-hot ids):
    xs    (T, B, F) floats, or (T, B) integer ids read as one-hot rows (``ids=True``)
    h0, c0 (B, H)   the initial carry (c0 only for kernels with a cell, the LSTM)
    w     kernel.prepare_weights(W_ih (G·H, F), W_hh (G·H, H), b_ih, b_hh)
    buf   kernel.alloc(T, B, H): buf.h (T+1, B, H) with buf.h[0] = h0, and the saved gates
Before the loop, one GEMM projects every step's input (gx = xs W_ihᵀ + bias); for ids
the (V, G·H) table W_ihᵀ + bias is read row by row instead. After the backward loop,
dW_ih, dW_hh and the bias gradients are one GEMM (or GEMV) each over all T·B rows.

``empty(name, shape)`` hands out work arrays (a layer reuses them between calls); the
default allocates fresh ones. Kernels are chosen by the caller (``kernels.select``).
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .kernels.base import fresh
from .module import real_array


NAMES = {"state": ("h0", "c0"), "dstate": ("dh_n", "dc_n")}


def initial_state(state, shape, has_cell, dtype, what="state", xp=np):
    """(h, c) as arrays of ``shape`` in ``dtype``: zeros where ``state`` is None. ``state``
    is h, or the pair (h, c) for a kernel with a cell (either part may be None). ``what``
    is the argument's name in errors: "state" (an initial state) or "dstate" (the
    gradient w.r.t. a final state). ``xp``: the array module to create them with."""
    names = NAMES[what]
    if has_cell:
        if state is None:
            state = (None, None)
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ConfigError(f"{what} must be a tuple ({names[0]}, {names[1]})")
        parts = state
    else:
        parts = (state, None)
    out = []
    for name, s in zip(names, parts):
        if name == names[1] and not has_cell:
            out.append(None)
        elif s is None:
            out.append(xp.zeros(shape, dtype))
        else:
            s = real_array(s, name) if xp is np else xp.asarray(s)
            if s.shape != tuple(shape):
                raise ConfigError(f"{name} must have shape {tuple(shape)}, got {s.shape}")
            out.append(xp.array(s, dtype, order="C"))        # the compiled kernels read rows
    return out[0], out[1]


def scan(kernel, w, xs, h0, c0=None, *, ids=False, empty=None, buf=None):
    """Run ``kernel`` over xs from the carry (h0, c0); return its buffers (see above).
    ``buf``: buffers from an earlier call with the same T, B, H, to reuse."""
    T, B = xs.shape[0], xs.shape[1]
    if buf is None:
        dtype = w.w_hh_T.dtype
        buf = kernel.alloc(T, B, h0.shape[-1], dtype, empty or fresh(dtype))
    if ids:                                   # one-hot input: rows of the table (a gather)
        gx = getattr(w, "table", None)
        if gx is None:
            gx = w.table = np.add(w.w_ih_T, w.bias, order="C")    # rows contiguous: read by row
        idx = xs
    else:
        gx, idx = buf.empty("gx", (T, B, w.w_hh_T.shape[1])), None
        np.matmul(xs.reshape(T * B, -1), w.w_ih_T, out=gx.reshape(T * B, -1))
        gx += w.bias
    buf.h[0] = h0
    if kernel.has_cell:
        buf.c[0] = c0
    kernel.forward_loop(gx, buf, w, idx)
    return buf


def scan_backward(kernel, w_ih, w_hh, buf, xs, dh, dc, d_hs, grads, *, ids=False, empty=None):
    """BPTT through a ``scan``. dh, dc (B, H): gradients w.r.t. the final carry, turned
    in place into those w.r.t. the initial carry. d_hs (T, B, H) or None: the gradient
    arriving at each step's output. ``grads`` = (dW_ih, dW_hh, db_ih, db_hh) arrays
    accumulated into (the biases None when the layer has none). Returns dxs (T, B, F),
    or None for one-hot ids."""
    T, B, H = buf.h.shape[0] - 1, dh.shape[0], dh.shape[1]
    GH = kernel.gates * H
    g_ih, g_hh, g_bih, g_bhh = grads
    empty = empty or fresh(dh.dtype)
    dgx = empty("dgx", (T, B, GH))
    dgh = empty("dgh", (T, B, GH)) if kernel.separate_dgh else dgx
    pre = kernel.backward_prepare(buf, dgx, dgh)
    acc = None
    if ids and kernel.scatters_ids:           # the kernel sums dgx rows per id
        acc = empty("acc", (w_ih.shape[1], GH))
        acc.fill(0)
        kernel.backward_loop(dh, dc, buf, pre, w_hh, dgx, dgh, d_hs, ids=xs, acc=acc)
    else:
        kernel.backward_loop(dh, dc, buf, pre, w_hh, dgx, dgh, d_hs)
    dgx2, dgh2 = dgx.reshape(T * B, GH), dgh.reshape(T * B, GH)
    g_hh += dgh2.T @ buf.h[:-1].reshape(T * B, H)
    if g_bih is not None:                     # column sums as a GEMV (2× np.sum's speed)
        ones = empty("ones", (T * B,))
        ones.fill(1)
        db_ih = acc.sum(axis=0) if acc is not None else ones @ dgx2
        g_bih += db_ih
        g_bhh += ones @ dgh2 if kernel.separate_dgh else db_ih
    if acc is not None:                       # dW_ih = accᵀ: the rows summed per id
        g_ih += acc.T
        return None
    if ids:                                   # dW_ih = dgxᵀ · one-hot(ids), as one GEMM
        onehot = empty("onehot", (T * B, w_ih.shape[1]))
        onehot.fill(0)
        onehot[np.arange(T * B), xs.reshape(-1)] = 1
        g_ih += dgx2.T @ onehot
        return None
    g_ih += dgx2.T @ xs.reshape(T * B, -1)
    return (dgx2 @ w_ih).reshape(T, B, -1)
