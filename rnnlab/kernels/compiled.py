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

Selection: the layers and cells ask ``select(kernel, dtype)`` (through the backend)
for the kernel to use on each call. It returns the fused twin when the extension was
built (``pip install`` compiles it where a C compiler exists; ``optional=True`` in
setup.py installs without it otherwise), the dtype is float32 or float64 and the
compiled path is enabled — by default; ``RNNLAB_PURE_NUMPY=1`` in the environment or
``set_compiled(False)`` turns it off. Otherwise the NumPy kernel itself: that path is
always present and the test suite runs the torch-parity checks on both. The one-step
sampler (generate.Stepper) keeps the NumPy kernels: at batch 1 the per-call setup of
the C kernels costs more than it saves.

The weights are used as given (views, no copies: FusedKernel.halves_in_step): the C
forward steps halve the sigmoid gates' pre-activations themselves, where the NumPy
kernels fold that ½ into copies of the weights — exact either way, so both paths form
the same pre-activations, and nothing is copied when the weights change every few
steps (dynamic evaluation). The math is the same, in the same order of operations; only
tanh comes from the C library (glibc's libmvec SIMD versions on Linux x86-64) rather than NumPy's, so the
two paths agree to a few units in the last place, not bit for bit.

Calling convention: each C entry point takes (args, t) — the address of a ``step_args``
record and the step. The record (``STEP_ARGS`` below, field for field the C struct in
_gates.c) names everything a loop's calls share: sizes, the base address of each
(T, B, ·) buffer and its byte stride between steps, from which the C side finds step
t's blocks. ``FusedKernel`` fills one record per loop; per step only the GEMM and the
C call remain in Python.

At batches up to COLS_MAX_BATCH the loops form each step's recurrent GEMM transposed —
W_hh·h_{t−1}ᵀ (G·H, B) forward, W_hhᵀ·dghᵀ (H, B) backward — and the C step copies the
block into the row layout it reads: at small batches multi-threaded BLAS runs that
orientation much faster (2 cores, G·H = 768, H = 256: the GEMM 1.6-1.8× at B = 6,
1.2-1.3× at B = 32; benchmarks/gemm_orientation.py). The GEMM sums in another order, so results
move by units in the last place, not more.
"""
from __future__ import annotations

import os
import warnings
from types import SimpleNamespace

import numpy as np

from .base import Kernel, fresh
from .gru import GRUKernel
from .lstm import LSTMKernel

try:
    from .. import _gates
except ImportError:          # built without a C compiler: the NumPy kernels serve
    _gates = None

# The C struct step_args (rnnlab/_gates.c), field for field: every field an int64 — a size,
# a flag, a buffer address (0 = absent) or a byte stride between steps. See _gates.c for
# what each holds.
FIELDS = ("dbl", "B", "H", "act", "gate_step", "h", "c", "ghn", "state_step",
          "gx", "gx_step", "ids", "ids_step", "gh", "b_hn",
          "dh", "dc", "carry", "dhs", "dhs_step", "dhs_row", "dgx", "dgh", "acc", "rec_T", "dh_T")
STEP_ARGS = np.dtype([(name, np.int64) for name in FIELDS])

# The calling convention's version (RNNLAB_GATES_ABI in _gates.c): a build of another
# version — an extension left by an older install — is not used.
ABI = 2


def mismatch(ext):
    """Why the built extension ``ext`` cannot serve this code — another calling convention,
    or another step_args layout — or None."""
    if getattr(ext, "ABI", None) != ABI:
        return f"calling convention {getattr(ext, 'ABI', 'unnumbered')}, this rnnlab's is {ABI}"
    if tuple(getattr(ext, "STEP_ARGS", ())) != FIELDS:
        return "its step_args fields differ from kernels/compiled.py's"
    return None


_why = None if _gates is None else mismatch(_gates)
if _why:
    warnings.warn(f"rnnlab._gates was built from a different _gates.c ({_why}); rebuild it "
                  f"with pip install. Using the NumPy kernels.", RuntimeWarning)
    _gates = None

_enabled = os.environ.get("RNNLAB_PURE_NUMPY", "").strip() in ("", "0")

# The largest batch at which the loops form each step's recurrent GEMM transposed (the
# module docstring). Measured on 2 cores (benchmarks/gemm_orientation.py and a layer's
# T = 64 forward + backward): B = 6 25% faster, B = 32 0-5%, B = 56 level, B = 128 up to
# 8% slower (the copy into place outweighs the GEMM's gain).
COLS_MAX_BATCH = 48

# The shortest backward loop that multiplies by a contiguous copy of W_hhᵀ; shorter ones
# (dynamic evaluation with segments under 32; its default is 64) use the transposed view of W_hh: the copy costs
# ~140 µs (G·H = 768, H = 256, float32), the view ~3-6 µs more per step, so the copy pays
# for itself from 18-52 steps at B = 6-48 in two runs (benchmarks/gemm_orientation.py, "even T").
COPY_MIN_STEPS = 32


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


def decayed_step(p, g, step, rate, theta0):
    """Dynamic evaluation's update of one parameter in one C pass, in place:
    p ← p − step⊙g, then p ← p + rate⊙(θ₀ − p) — bit for bit the NumPy passes of
    models/scoring.py. Returns False (nothing done) where the compiled path is off or
    the arrays are not all C-contiguous of p's shape and one float dtype."""
    arrays = (p, g, step, rate, theta0)
    if (not compiled_active() or p.dtype not in (np.float32, np.float64)
            or any(a.dtype != p.dtype or a.shape != p.shape or not a.flags.c_contiguous for a in arrays)
            or not p.flags.writeable or p.size == 0):
        return False
    _gates.decayed_step(*(_addr(a) for a in arrays), p.size, p.itemsize == 8)
    return True


def _addr(a):
    """The address of a plain array's data. (For the step_args record use .ctypes.data:
    __array_interface__ of a structured array builds its descr, some 30 µs.)"""
    return a.__array_interface__["data"][0]




class FusedKernel(Kernel):
    """What the fused twins share: the loops over time — one NumPy GEMM and one C call
    per step — and the ``step_args`` record those calls read, filled once per loop. A
    twin (``class FusedLSTMKernel(FusedKernel, LSTMKernel)``) names its C functions and
    supplies the fields of its own buffers and, for batches above COLS_MAX_BATCH, where
    its recurrent GEMM writes."""

    scatters_ids = True            # backward_loop can form dW_ihᵀ of one-hot inputs itself
    halves_in_step = True          # the C steps halve the sigmoid pre-activations: weights as given
    c_forward = c_backward = None  # names of the _gates entry points
    adds_carry = False             # backward: dL/dh_{t−1} = dgh·W_hh (+ buf.tmp: GRU's h_{t−1} → h_t)

    # ---- what a twin supplies

    def _buffer_fields(self, args, buf):
        """Fill the fields of the twin's own buffers (LSTM: c; GRU: ghn, gh, carry)."""
        raise NotImplementedError

    def _recurrent_out(self, buf):
        """Forward, above COLS_MAX_BATCH: a sequence whose item t receives h_{t−1}·W_hhᵀ."""
        raise NotImplementedError

    # ---- the shared set-up

    def _args(self, buf):
        """A new record with the fields every call fills alike: dtype, sizes, the saved
        per-step buffers (act, h, and the twin's own) and their strides."""
        T, B, GH = buf.act.shape
        H, isz = GH // self.gates, buf.act.itemsize
        args = np.zeros((), STEP_ARGS)
        args["dbl"], args["B"], args["H"] = int(isz == 8), B, H
        args["act"], args["gate_step"] = _addr(buf.act), B * GH * isz
        args["h"], args["state_step"] = _addr(buf.h), B * H * isz
        self._buffer_fields(args, buf)
        return args

    def _forward_args(self, gx, buf, w, ids, start):
        """The record for forward steps, and the arrays its addresses point into (keep
        them alive). Input rows: without ids, gx (T', B, G·H) holds the projections of
        steps start, start+1, … — its base is shifted back by ``start`` steps so that
        step t reads block t; with ids (T', B), gx is the (V, G·H) table (step 0) and
        step t reads rows ids[t − start]."""
        args = self._args(buf)
        dtype = buf.act.dtype
        gx = np.ascontiguousarray(gx, dtype)
        if ids is None:
            step = int(args["gate_step"])
            args["gx"], args["gx_step"] = _addr(gx) - start * step, step
        else:
            ids = np.ascontiguousarray(ids, np.int64)
            step = ids.shape[1] * ids.itemsize
            args["gx"] = _addr(gx)
            args["ids"], args["ids_step"] = _addr(ids) - start * step, step
        b_hn = None if w.b_step is None else np.ascontiguousarray(w.b_step, dtype)
        if b_hn is not None:
            args["b_hn"] = _addr(b_hn)
        return args, (gx, ids, b_hn)

    def _backward_args(self, dh, dc, buf, dgx, dgh, d_hs=None, ids=None, acc=None, first=0):
        """The record for backward steps, and the arrays to keep alive. dh, dc (B, H) are
        updated in place; dgx, dgh hold the blocks of steps first, first+1, … (their
        bases are shifted back like gx's); d_hs (T, B, H) with contiguous rows, or None;
        with ids (T, B), dgx rows are also summed into acc[ids]."""
        args = self._args(buf)
        dtype, step = buf.act.dtype, int(args["gate_step"])
        args["dh"] = _addr(dh)
        if self.has_cell:
            args["dc"] = _addr(dc)
        args["dgx"] = _addr(dgx) - first * step
        if self.separate_dgh:
            args["dgh"] = _addr(dgh) - first * step
        if d_hs is not None:
            if d_hs.dtype != dtype or d_hs.strides[2] != d_hs.itemsize:
                d_hs = np.ascontiguousarray(d_hs, dtype)
            st, sb, _ = d_hs.strides
            if sb % d_hs.itemsize:
                raise ValueError("fused kernel: the output gradient rows must be contiguous")
            args["dhs"], args["dhs_step"], args["dhs_row"] = _addr(d_hs), st, sb // d_hs.itemsize
        if ids is not None:
            if acc.dtype != dtype or not acc.flags.c_contiguous:
                raise ValueError("fused kernel: acc must be a C-contiguous array of the layer's dtype")
            ids = np.ascontiguousarray(ids, np.int64)
            args["ids"], args["ids_step"] = _addr(ids), ids.shape[1] * ids.itemsize
            args["acc"] = _addr(acc)
        return args, (d_hs, ids)

    # ---- the kernel interface

    def transpose(self, w):
        """wᵀ as a new C-contiguous array: one tiled C copy (w 2-D, float32/64)."""
        w = np.require(w, requirements="CA")
        out = np.empty(w.shape[::-1], w.dtype)
        if w.size:
            _gates.transpose(_addr(w), _addr(out), w.shape[0], w.shape[1], w.itemsize == 8)
        return out

    def step(self, t, gx, buf, w):
        self.forward_loop(gx[None], buf, w, start=t, stop=t + 1)

    def forward_loop(self, gx, buf, w, ids=None, start=0, stop=None):
        """Steps start..stop−1 (default: to the end). gx (T', B, G·H) holds the input
        projections of steps start, start+1, …, or with ids (T', B) it is the (V, G·H)
        table of one-hot input rows. Up to COLS_MAX_BATCH, step t's GEMM writes
        W_hh·h_{t−1}ᵀ (G·H, B) into rec_T and the C step copies it into place; above, it
        writes h_{t−1}·W_hhᵀ straight into the step's (B, G·H) block."""
        args, keep = self._forward_args(gx, buf, w, ids, start)
        stop = buf.act.shape[0] if stop is None else stop
        p, fused, matmul = args.ctypes.data, getattr(_gates, self.c_forward), np.matmul
        hs = buf.h
        if hs.shape[1] <= COLS_MAX_BATCH:
            rec_T = buf.empty("rec_T", buf.act.shape[:0:-1])
            args["rec_T"] = _addr(rec_T)
            W = w.w_hh_T.T                         # (G·H, H), C-contiguous
            for t in range(start, stop):
                matmul(W, hs[t].T, out=rec_T)
                fused(p, t)
        else:
            W = getattr(w, "w_hh_T_rows", None)
            if W is None:                          # h·W_hhᵀ runs slower on the view at large B
                W = w.w_hh_T_rows = self.transpose(w.w_hh_T.T)
            out = self._recurrent_out(buf)
            for t in range(start, stop):
                matmul(hs[t], W, out=out[t])
                fused(p, t)

    def backward_prepare(self, buf, dgx, dgh):
        return None                               # factors are formed inside each step

    def step_backward(self, t, dh, dc, buf, pre, w_hh, dgx, dgh):
        """One step of BPTT; dgx, dgh the (B, G·H) blocks of step t."""
        args, keep = self._backward_args(dh, dc, buf, dgx, dgh, first=t)
        getattr(_gates, self.c_backward)(args.ctypes.data, t)
        np.matmul(dgh if self.separate_dgh else dgx, w_hh, out=dh)
        if self.adds_carry:
            dh += buf.tmp

    def backward_loop(self, dh, dc, buf, pre, w_hh, dgx, dgh, d_hs, ids=None, acc=None):
        """Up to COLS_MAX_BATCH, after step t the GEMM writes W_hhᵀ·dgh[t]ᵀ (H, B) into
        dh_T, and step t − 1 starts from dh = dh_Tᵀ (+ the GRU's carry); dh_T starts as
        the given dhᵀ (and the carry at 0), and after step 0 dh is formed the same way;
        W_hhᵀ is a contiguous copy from COPY_MIN_STEPS steps, a view below. Above
        COLS_MAX_BATCH, the GEMM writes dgh[t]·W_hh into dh and the carry is added here."""
        args, keep = self._backward_args(dh, dc, buf, dgx, dgh, d_hs, ids, acc)
        p, fused, matmul = args.ctypes.data, getattr(_gates, self.c_backward), np.matmul
        dgh = dgh if self.separate_dgh else dgx    # the gradient that multiplies W_hh
        steps = range(dgx.shape[0] - 1, -1, -1)
        if dh.shape[0] <= COLS_MAX_BATCH:
            dh_T = buf.empty("dh_T", dh.shape[::-1])
            np.copyto(dh_T, dh.T)
            if self.adds_carry:
                buf.tmp.fill(0)
            args["dh_T"] = _addr(dh_T)
            w_hh_T = self.transpose(w_hh) if len(steps) >= COPY_MIN_STEPS else w_hh.T
            for t in steps:
                fused(p, t)
                matmul(w_hh_T, dgh[t].T, out=dh_T)
            np.copyto(dh, dh_T.T)
            if self.adds_carry:
                dh += buf.tmp
            return
        for t in steps:
            fused(p, t)
            matmul(dgh[t], w_hh, out=dh)
            if self.adds_carry:
                dh += buf.tmp


class FusedLSTMKernel(FusedKernel, LSTMKernel):
    """LSTMKernel with the elementwise part of each step in ``_gates.lstm_forward`` /
    ``lstm_backward``. Buffers h, c, act as LSTMKernel's (no tanh_c: the backward step
    recomputes tanh c, which costs less than storing and reloading it)."""

    c_forward, c_backward = "lstm_forward", "lstm_backward"

    def alloc(self, T, B, H, dtype, empty=None):
        empty = empty or fresh(dtype)
        return SimpleNamespace(h=empty("h", (T + 1, B, H)), c=empty("c", (T + 1, B, H)),
                               act=empty("act", (T, B, 4 * H)), tmp=empty("tmp", (B, H)),
                               empty=empty)

    def _buffer_fields(self, args, buf):
        args["c"] = _addr(buf.c)

    def _recurrent_out(self, buf):
        return buf.act          # the C step adds gx to act[t] and activates it in place


class FusedGRUKernel(FusedKernel, GRUKernel):
    """GRUKernel with the elementwise part of each step in ``_gates.gru_forward`` /
    ``gru_backward``; same buffers as GRUKernel (tmp is the backward carry dh⊙z)."""

    c_forward, c_backward = "gru_forward", "gru_backward"
    adds_carry = True

    def _buffer_fields(self, args, buf):
        args["ghn"], args["gh"], args["carry"] = _addr(buf.ghn), _addr(buf.gh), _addr(buf.tmp)

    def _recurrent_out(self, buf):
        return [buf.gh] * buf.act.shape[0]        # one (B, 3H) block, reused by every step


_TWINS = {LSTMKernel: FusedLSTMKernel(), GRUKernel: FusedGRUKernel()}
