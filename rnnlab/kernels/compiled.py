"""Optional compiled kernels: the LSTM and GRU step with its elementwise gate math
fused into one C pass (``rnnlab/_gates.c``), behind the kernel interface of base.py.

Why: a NumPy step is one recurrent GEMM plus ten or more small ufunc calls, each a
pass over (B, G·H) values; at the sizes of char-rnn those passes cost as much as the
GEMM. The fused kernels keep the GEMMs in NumPy/BLAS and do everything elementwise
in one pass per step: the forward step reads its input rows (for one-hot inputs,
straight from the W_ihᵀ + bias table, with no (T, B, G·H) gather), the backward step
recomputes the derivative factors from the saved gates instead of loading stored ones
(these loops are bound by memory bandwidth, not arithmetic), and for one-hot inputs
it adds each dgx row into its character's row of dW_ihᵀ on the way.

Selection: ``scan`` asks ``select(kernel, dtype)``
for the kernel to use on each call. It returns the fused twin when the extension was
built (``pip install`` compiles it where a C compiler exists; ``optional=True`` in
setup.py installs without it otherwise), the dtype is float32 or float64 and the
compiled path is enabled — by default; ``RNNLAB_PURE_NUMPY=1`` in the environment or
``set_compiled(False)`` turns it off. Otherwise the NumPy kernel itself: that path is
always present and the test suite runs the torch-parity checks on both. The one-step
sampler (generate.Stepper) keeps the NumPy kernels: at batch 1 the per-call setup of
the C kernels costs more than it saves.

The math is the same, in the same order of operations; only tanh comes from the C
library (glibc's libmvec SIMD versions on Linux x86-64) rather than NumPy's, so the
two paths agree to a few units in the last place, not bit for bit.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np

from .base import fresh
from .gru import GRUKernel
from .lstm import LSTMKernel

try:
    from .. import _gates
except ImportError:          # built without a C compiler: the NumPy kernels serve
    _gates = None

_enabled = os.environ.get("RNNLAB_PURE_NUMPY", "").strip() in ("", "0")


def available():
    """True when the compiled extension ``rnnlab._gates`` was built and imports."""
    return _gates is not None


def compiled_active():
    """True when the recurrent layers will use the compiled kernels."""
    return _gates is not None and _enabled


def set_compiled(flag):
    """Enable (True) or disable (False) the compiled kernels; returns the previous
    setting. Without the extension this has no effect beyond the flag."""
    global _enabled
    previous, _enabled = _enabled, bool(flag)
    return previous


def select(kernel, dtype):
    """The kernel to run: the fused twin of ``kernel`` where it applies, else ``kernel``."""
    if not compiled_active() or np.dtype(dtype) not in (np.float32, np.float64):
        return kernel
    twin = _TWINS.get(type(kernel))
    return twin if twin is not None else kernel


def _addr(a):
    return a.__array_interface__["data"][0]


def _rows(d_hs, itemsize):
    """(base address, time stride in bytes, row stride in elements) of a (T, B, H) view
    whose rows are contiguous; None → (0, 0, 0)."""
    if d_hs is None:
        return 0, 0, 0
    st, sb, sh = d_hs.strides
    if sh != itemsize or sb % itemsize:
        raise ValueError("fused kernel: the output gradient rows must be contiguous")
    return _addr(d_hs), st, sb // itemsize


def _contiguous_rows(d_hs, dtype):
    """d_hs as the C kernel reads it: the kernel's dtype, rows contiguous."""
    if d_hs is not None and (d_hs.dtype != dtype or d_hs.strides[2] != d_hs.itemsize):
        return np.ascontiguousarray(d_hs, dtype)
    return d_hs


def _input_rows(gx, ids, B, GH, dtype, start):
    """Where the C kernels find step t's input rows: (gx, ids — kept alive —, g0, sg, i0,
    si) with step t's block at g0 + t·sg and its ids at i0 + t·si (i0 = 0: no ids). With
    ids (T', B), gx is the (V, G·H) table and step t reads rows ids[t − start]; without,
    gx is (T', B, G·H) and its first block belongs to step ``start``."""
    gx = np.ascontiguousarray(gx, dtype)
    if ids is None:
        sg = B * GH * gx.itemsize
        return gx, None, _addr(gx) - start * sg, sg, 0, 0
    ids = np.ascontiguousarray(ids, np.int64)
    return gx, ids, _addr(gx), 0, _addr(ids) - start * B * 8, B * 8


def _scatter_target(ids, acc, dtype):
    """(ids kept alive, address of ids, address of acc) for the backward kernels' scatter
    of dgx rows into acc[ids] — or zeros when there is none."""
    if ids is None:
        return None, 0, 0
    if acc.dtype != dtype or not acc.flags.c_contiguous:
        raise ValueError("fused kernel: acc must be a C-contiguous array of the layer's dtype")
    ids = np.ascontiguousarray(ids, np.int64)
    return ids, _addr(ids), _addr(acc)


class FusedLSTMKernel(LSTMKernel):
    """LSTMKernel with the elementwise part of each step in ``_gates.lstm_forward`` /
    ``lstm_backward``. Buffers h, c, act as LSTMKernel's (no tanh_c: the backward step
    recomputes tanh c, which costs less than storing and reloading it)."""

    scatters_ids = True            # backward_loop can form dW_ihᵀ of one-hot inputs itself

    def alloc(self, T, B, H, dtype, empty=None):
        empty = empty or fresh(dtype)
        return SimpleNamespace(h=empty("h", (T + 1, B, H)), c=empty("c", (T + 1, B, H)),
                               act=empty("act", (T, B, 4 * H)), tmp=empty("tmp", (B, H)),
                               empty=empty)

    def step(self, t, gx, buf, w):
        self.forward_loop(gx[None], buf, w, start=t, stop=t + 1)

    def forward_loop(self, gx, buf, w, ids=None, start=0, stop=None):
        """Steps start..stop−1 (default all). gx (T, B, 4H) indexed by step, or with
        ids (T, B) the (V, 4H) table of one-hot input rows."""
        T, B, GH = buf.act.shape
        stop = T if stop is None else stop
        H, isz = GH // 4, buf.act.itemsize
        gx, ids, g0, sg, i0, si = _input_rows(gx, ids, B, GH, buf.act.dtype, start)
        dbl, sa, sc = int(isz == 8), B * GH * isz, B * H * isz
        a0, c0, h0 = _addr(buf.act), _addr(buf.c), _addr(buf.h)
        hs, acts, W = buf.h, buf.act, w.w_hh_T
        fused, matmul = _gates.lstm_forward, np.matmul
        for t in range(start, stop):
            matmul(hs[t], W, out=acts[t])
            fused(dbl, B, H, a0 + t * sa, g0 + t * sg, i0 and i0 + t * si,
                  c0 + t * sc, c0 + (t + 1) * sc, h0 + (t + 1) * sc)

    def backward_prepare(self, buf, dgx, dgh):
        return None                               # factors are formed inside each step

    def step_backward(self, t, dh, dc, buf, pre, w_hh, dgx, dgh):
        B, H = dh.shape
        _gates.lstm_backward(int(dh.itemsize == 8), B, H, _addr(dh), _addr(dc), 0, 0,
                             _addr(buf.act[t]), _addr(buf.c[t]), _addr(buf.c[t + 1]), _addr(dgx),
                             0, 0)
        np.matmul(dgx, w_hh, out=dh)

    def backward_loop(self, dh, dc, buf, pre, w_hh, dgx, dgh, d_hs, ids=None, acc=None):
        T, B, GH = dgx.shape
        H, isz = GH // 4, dgx.itemsize
        ids, i0, acc_a = _scatter_target(ids, acc, dgx.dtype)
        d_hs = _contiguous_rows(d_hs, dgx.dtype)
        ds0, dst, dsr = _rows(d_hs, isz)
        sa, sc = B * GH * isz, B * H * isz
        g0, a0, c0 = _addr(dgx), _addr(buf.act), _addr(buf.c)
        dh_a, dc_a, dbl = _addr(dh), _addr(dc), int(isz == 8)
        fused, matmul = _gates.lstm_backward, np.matmul
        for t in range(T - 1, -1, -1):
            fused(dbl, B, H, dh_a, dc_a, ds0 and ds0 + t * dst, dsr,
                  a0 + t * sa, c0 + t * sc, c0 + (t + 1) * sc, g0 + t * sa,
                  i0 and i0 + t * B * 8, acc_a)
            matmul(dgx[t], w_hh, out=dh)


class FusedGRUKernel(GRUKernel):
    """GRUKernel with the elementwise part of each step in ``_gates.gru_forward`` /
    ``gru_backward``; same buffers as GRUKernel."""

    scatters_ids = True

    def step(self, t, gx, buf, w):
        self.forward_loop(gx[None], buf, w, start=t, stop=t + 1)

    def forward_loop(self, gx, buf, w, ids=None, start=0, stop=None):
        T, B, GH = buf.act.shape
        stop = T if stop is None else stop
        H, isz = GH // 3, buf.act.itemsize
        gx, ids, g0, sg, i0, si = _input_rows(gx, ids, B, GH, buf.act.dtype, start)
        dbl, sa, sh = int(isz == 8), B * GH * isz, B * H * isz
        a0, ghn0, h0, gh_a = _addr(buf.act), _addr(buf.ghn), _addr(buf.h), _addr(buf.gh)
        b_step = None if w.b_step is None else np.ascontiguousarray(w.b_step, buf.act.dtype)
        b_hn = 0 if b_step is None else _addr(b_step)
        hs, gh, W = buf.h, buf.gh, w.w_hh_T
        fused, matmul = _gates.gru_forward, np.matmul
        for t in range(start, stop):
            matmul(hs[t], W, out=gh)
            fused(dbl, B, H, gh_a, g0 + t * sg, i0 and i0 + t * si, b_hn, h0 + t * sh,
                  a0 + t * sa, ghn0 + t * sh, h0 + (t + 1) * sh)

    def backward_prepare(self, buf, dgx, dgh):
        return None                               # factors are formed inside each step

    def step_backward(self, t, dh, dc, buf, pre, w_hh, dgx, dgh):
        B, H = dh.shape
        _gates.gru_backward(int(dh.itemsize == 8), B, H, _addr(dh), 0, 0, _addr(buf.act[t]),
                            _addr(buf.ghn[t]), _addr(buf.h[t]), _addr(dgx), _addr(dgh),
                            _addr(buf.tmp), 0, 0)
        np.matmul(dgh, w_hh, out=dh)
        dh += buf.tmp

    def backward_loop(self, dh, dc, buf, pre, w_hh, dgx, dgh, d_hs, ids=None, acc=None):
        T, B, GH = dgx.shape
        H, isz = GH // 3, dgx.itemsize
        ids, i0, acc_a = _scatter_target(ids, acc, dgx.dtype)
        d_hs = _contiguous_rows(d_hs, dgx.dtype)
        ds0, dst, dsr = _rows(d_hs, isz)
        sa, sh = B * GH * isz, B * H * isz
        g0, gh0, a0, ghn0, h0 = _addr(dgx), _addr(dgh), _addr(buf.act), _addr(buf.ghn), _addr(buf.h)
        carry = buf.tmp
        dh_a, carry_a, dbl = _addr(dh), _addr(carry), int(isz == 8)
        fused, matmul = _gates.gru_backward, np.matmul
        for t in range(T - 1, -1, -1):
            fused(dbl, B, H, dh_a, ds0 and ds0 + t * dst, dsr, a0 + t * sa, ghn0 + t * sh,
                  h0 + t * sh, g0 + t * sa, gh0 + t * sa, carry_a, i0 and i0 + t * B * 8, acc_a)
            matmul(dgh[t], w_hh, out=dh)
            dh += carry


_TWINS = {LSTMKernel: FusedLSTMKernel(), GRUKernel: FusedGRUKernel()}
