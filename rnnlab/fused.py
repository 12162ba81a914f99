"""Optional compiled kernels: the LSTM and GRU step with its elementwise gate math
fused into one C pass (``rnnlab/_gates.c``), behind the kernel interface of cells.py.

Why: a NumPy step is one recurrent GEMM plus ten or more small ufunc calls, each a
pass over (B, G·H) values; at the sizes of char-rnn those passes cost as much as the
GEMM. The fused kernels keep the GEMMs in NumPy/BLAS and do everything elementwise
in one pass per step. In training mode the forward step also writes the backward
factors (what ``backward_prepare`` computes from the saved activations in the
NumPy kernels) while the values are in cache, so backward starts at once.

Selection: the recurrent layers, cells and the sampler ask ``select(kernel, dtype)``
for the kernel to use on each call. It returns the fused twin when the extension was
built (``pip install`` compiles it where a C compiler exists; ``optional=True`` in
setup.py installs without it otherwise), the dtype is float32 or float64 and the
compiled path is enabled — by default; ``RNNLAB_PURE_NUMPY=1`` in the environment or
``set_compiled(False)`` turns it off. Otherwise the NumPy kernel itself: that path is
always present and the test suite runs the torch-parity checks on both.

The math is the same, in the same order of operations; only tanh comes from the C
library (glibc's libmvec SIMD versions on Linux x86-64) rather than NumPy's, so the
two paths agree to a few units in the last place, not bit for bit.
"""
from __future__ import annotations

import os

import numpy as np

from .cells import GRUKernel, LSTMKernel

try:
    from . import _gates
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


class FusedLSTMKernel(LSTMKernel):
    """LSTMKernel with the elementwise part of each step in ``_gates.lstm_forward`` /
    ``lstm_backward``. Buffers as LSTMKernel's, plus (training) ``fac`` (T, B, 4H) — the
    layer's ``dgx`` workspace, which backward then scales in place — and ``P`` (T, B, H)."""

    def alloc(self, T, B, H, dtype, empty=None, factors=False):
        buf = super().alloc(T, B, H, dtype, empty)
        buf.fac = buf.empty("dgx", (T, B, 4 * H)) if factors else None
        buf.P = buf.empty("P", (T, B, H)) if factors else None
        return buf

    def step(self, t, gx, buf, w):
        self.forward_loop(gx[None], buf, w, start=t, stop=t + 1)

    def forward_loop(self, gx, buf, w, start=0, stop=None):
        """Steps start..stop−1 (default all); gx (T, B, 4H) indexed by step."""
        T, B, GH = buf.act.shape
        stop = T if stop is None else stop
        H, isz = GH // 4, buf.act.itemsize
        gx = np.ascontiguousarray(gx, buf.act.dtype)
        dbl = int(isz == 8)
        sa, sc = B * GH * isz, B * H * isz
        a0, g0 = _addr(buf.act), _addr(gx) - start * sa
        c0, tc0, h0 = _addr(buf.c), _addr(buf.tanh_c), _addr(buf.h)
        fac0 = _addr(buf.fac) if buf.fac is not None else 0
        P0 = _addr(buf.P) if buf.fac is not None else 0
        hs, acts, W = buf.h, buf.act, w.w_hh_T
        fused, matmul = _gates.lstm_forward, np.matmul
        for t in range(start, stop):
            matmul(hs[t], W, out=acts[t])
            fused(dbl, B, H, a0 + t * sa, g0 + t * sa, c0 + t * sc, c0 + (t + 1) * sc,
                  tc0 + t * sc, h0 + (t + 1) * sc, fac0 and fac0 + t * sa, P0 and P0 + t * sc)
        if buf.fac is not None:
            buf.factors_from = start if start == 0 else getattr(buf, "factors_from", None)

    def backward_prepare(self, buf, dgx, dgh):
        if buf.fac is not None and getattr(buf, "factors_from", None) == 0 and dgx is buf.fac:
            return buf.P                          # written by the forward steps
        return super().backward_prepare(buf, dgx, dgh)

    def step_backward(self, t, dh, dc, buf, P, w_hh, dgx, dgh):
        B, H = dh.shape
        _gates.lstm_backward(int(dh.itemsize == 8), B, H, _addr(dh), _addr(dc), 0, 0,
                             _addr(dgx), _addr(P[t]), _addr(buf.act[t]))
        np.matmul(dgx, w_hh, out=dh)

    def backward_loop(self, dh, dc, buf, P, w_hh, dgx, dgh, d_hs):
        T, B, GH = dgx.shape
        H, isz = GH // 4, dgx.itemsize
        d_hs = _contiguous_rows(d_hs, dgx.dtype)
        ds0, dst, dsr = _rows(d_hs, isz)
        sa, sc = B * GH * isz, B * H * isz
        g0, P0, a0 = _addr(dgx), _addr(P), _addr(buf.act)
        dh_a, dc_a, dbl = _addr(dh), _addr(dc), int(isz == 8)
        fused, matmul = _gates.lstm_backward, np.matmul
        for t in range(T - 1, -1, -1):
            fused(dbl, B, H, dh_a, dc_a, ds0 and ds0 + t * dst, dsr,
                  g0 + t * sa, P0 + t * sc, a0 + t * sa)
            matmul(dgx[t], w_hh, out=dh)


class FusedGRUKernel(GRUKernel):
    """GRUKernel with the elementwise part of each step in ``_gates.gru_forward`` /
    ``gru_backward``; in training ``fac`` (T, B, 3H) is the layer's ``dgx`` workspace."""

    def alloc(self, T, B, H, dtype, empty=None, factors=False):
        buf = super().alloc(T, B, H, dtype, empty)
        buf.fac = buf.empty("dgx", (T, B, 3 * H)) if factors else None
        return buf

    def step(self, t, gx, buf, w):
        self.forward_loop(gx[None], buf, w, start=t, stop=t + 1)

    def forward_loop(self, gx, buf, w, start=0, stop=None):
        T, B, GH = buf.act.shape
        stop = T if stop is None else stop
        H, isz = GH // 3, buf.act.itemsize
        gx = np.ascontiguousarray(gx, buf.act.dtype)
        dbl = int(isz == 8)
        sa, sh = B * GH * isz, B * H * isz
        a0, g0, gh = _addr(buf.act), _addr(gx) - start * sa, buf.gh
        ghn0, h0, gh_a = _addr(buf.ghn), _addr(buf.h), _addr(buf.gh)
        b_hn = 0
        if w.b_step is not None:
            w.b_step_c = b_step = np.ascontiguousarray(w.b_step, buf.act.dtype)
            b_hn = _addr(b_step)
        fac0 = _addr(buf.fac) if buf.fac is not None else 0
        hs, W = buf.h, w.w_hh_T
        fused, matmul = _gates.gru_forward, np.matmul
        for t in range(start, stop):
            matmul(hs[t], W, out=gh)
            fused(dbl, B, H, gh_a, g0 + t * sa, b_hn, h0 + t * sh, a0 + t * sa,
                  ghn0 + t * sh, h0 + (t + 1) * sh, fac0 and fac0 + t * sa)
        if buf.fac is not None:
            buf.factors_from = start if start == 0 else getattr(buf, "factors_from", None)

    def backward_prepare(self, buf, dgx, dgh):
        if buf.fac is not None and getattr(buf, "factors_from", None) == 0 and dgx is buf.fac:
            return None
        return super().backward_prepare(buf, dgx, dgh)

    def step_backward(self, t, dh, dc, buf, pre, w_hh, dgx, dgh):
        B, H = dh.shape
        tmp = buf.tmp
        _gates.gru_backward(int(dh.itemsize == 8), B, H, _addr(dh), 0, 0, _addr(dgx),
                            _addr(dgh), _addr(buf.act[t]), _addr(tmp))
        np.matmul(dgh, w_hh, out=dh)
        dh += tmp

    def backward_loop(self, dh, dc, buf, pre, w_hh, dgx, dgh, d_hs):
        T, B, GH = dgx.shape
        H, isz = GH // 3, dgx.itemsize
        d_hs = _contiguous_rows(d_hs, dgx.dtype)
        ds0, dst, dsr = _rows(d_hs, isz)
        sa = B * GH * isz
        g0, gh0, a0 = _addr(dgx), _addr(dgh), _addr(buf.act)
        carry = buf.tmp
        dh_a, carry_a, dbl = _addr(dh), _addr(carry), int(isz == 8)
        fused, matmul = _gates.gru_backward, np.matmul
        for t in range(T - 1, -1, -1):
            fused(dbl, B, H, dh_a, ds0 and ds0 + t * dst, dsr, g0 + t * sa, gh0 + t * sa,
                  a0 + t * sa, carry_a)
            matmul(dgh[t], w_hh, out=dh)
            dh += carry


_TWINS = {LSTMKernel: FusedLSTMKernel(), GRUKernel: FusedGRUKernel()}
