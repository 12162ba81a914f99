"""Recurrent layers RNN, LSTM and GRU: a cell kernel unrolled over (B, T, F),
stacked ``num_layers`` deep, optionally bidirectional, trained by BPTT.

Contract (torch.nn's, but always batch-first):

    out, state_n = layer.forward(x, state=None)
        x: (B, T, F) floats, or (B, T) integer ids in [0, F) meaning one-hot
           inputs (done as a row gather, never as a product with a one-hot matrix)
        out: (B, T, D·H) — the last layer's hidden states, both directions concatenated
        state: h (L·D, B, H); LSTM: (h, c). Row index = layer·D + direction.
    dx, dstate0 = layer.backward(dout, dstate=None)
        dout: (B, T, D·H) or None; dstate: gradient w.r.t. state_n (None = 0),
        LSTM: (dh_n, dc_n) with either part None.
        dx: (B, T, F) (None for integer ids); dstate0 like state.
        Parameter gradients are ADDED to ``grads``.

Parameters per layer k and direction (suffix "" or "_reverse"), torch's names:
``weight_ih_l{k}`` (G·H, F_k), ``weight_hh_l{k}`` (G·H, H), ``bias_ih_l{k}``,
``bias_hh_l{k}`` (G·H,), where F_0 = input_size and F_k = D·H above; G = 1 (RNN),
4 (LSTM: i, f, g, o), 3 (GRU: r, z, n). All initialised U(±1/√H) as torch.

Truncated BPTT: call forward/backward on consecutive windows and pass the
returned state in as the next window's ``state`` (min-char-rnn's ``hprev``);
the gradient stops at the window boundary.

Dropout (``dropout`` > 0) is applied to the outputs of every layer but the last,
in training mode only, with a mask from the layer's own Generator (``seed``). With
``locked_dropout=True`` the mask is locked (variational dropout, Gal & Ghahramani
2016): one (1, B, D·H) mask per call, the same at every time step.
Weight drop (``weight_drop`` = p > 0, Merity et al. 2017's DropConnect on W_hh): in
training, each call draws one mask m per layer and direction and every step uses
W_hh ⊙ m/(1−p) — in the forward loop and in BPTT's dh·W_hh alike; the gradient
w.r.t. the stored W_hh is dW_used ⊙ m/(1−p). Masks come from ``self.rng`` (in
the order: per layer, each direction's weight mask, then the layer's output mask).

Speed: the inputs of all T steps are projected with one GEMM before the loop;
each step does one recurrent GEMM for all gates and in-place elementwise math in
preallocated buffers; in backward only dh·W_hh stays in the loop and the weight
gradients are formed after it with one GEMM each — all of it in ``scan.py``, which
this layer calls once per layer and direction. Internally everything is time-major
(T, B, ·).
"""
from __future__ import annotations

import warnings

import numpy as np

from .errors import ConfigError
from .init import uniform
from .backend import get_backend
from .kernels import make_kernel
from .kernels.base import workspace
from .module import Module, check_dtype, check_sizes, dropout_mask, forward_saved, make_rng, real_array
from .scan import initial_state, scan, scan_backward


class _Recurrent(Module):
    saved = ("_cache",)
    mode = None

    def __init__(self, input_size, hidden_size, num_layers=1, *, nonlinearity="tanh",
                 bias=True, dropout=0.0, bidirectional=False, batch_first=True,
                 dtype=np.float32, seed=None, device="cpu", weight_drop=0.0, locked_dropout=False):
        super().__init__()
        self.backend = get_backend(device)
        self.input_size, self.hidden_size, self.num_layers = check_sizes(
            self.mode, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        for name, v in (("dropout", dropout), ("weight_drop", weight_drop)):
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not 0.0 <= v < 1.0:
                raise ConfigError(f"{self.mode}: {name} must be in [0, 1), got {v!r}")
        if not isinstance(locked_dropout, (bool, np.bool_)):
            raise ConfigError(f"{self.mode}: locked_dropout must be True or False, got {locked_dropout!r}")
        if self.mode != "RNN" and nonlinearity != "tanh":
            raise ConfigError(f"{self.mode}: nonlinearity is an option of the Elman RNN only")
        self.weight_drop, self.locked_dropout = float(weight_drop), bool(locked_dropout)
        if not batch_first:
            raise ConfigError("rnnlab recurrent layers are batch-first only (batch_first=True)")
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dropout, self.bias = float(dropout), bool(bias)
        if self.dropout > 0 and self.num_layers == 1:          # as torch.nn warns
            warnings.warn(f"{self.mode}: dropout acts between stacked layers only, so dropout={dropout} "
                          "with num_layers=1 changes nothing", UserWarning, stacklevel=2)
        self.nonlinearity = nonlinearity
        self.dtype = check_dtype(dtype)
        self.kernel = make_kernel(self.mode, nonlinearity)
        rng = make_rng(seed)
        G, H, D = self.kernel.gates, self.hidden_size, self.num_directions
        bound = 1.0 / np.sqrt(H)
        for k in range(self.num_layers):
            f_in = self.input_size if k == 0 else D * H
            for d in range(D):
                n_ih, n_hh, n_bih, n_bhh = self.param_names(k, d)
                self.add_param(n_ih, uniform(rng, (G * H, f_in), bound, self.dtype))
                self.add_param(n_hh, uniform(rng, (G * H, H), bound, self.dtype))
                if self.bias:
                    self.add_param(n_bih, uniform(rng, (G * H,), bound, self.dtype))
                    self.add_param(n_bhh, uniform(rng, (G * H,), bound, self.dtype))
        self.rng = np.random.default_rng(rng.integers(2**63))     # dropout between layers
        self._cache = None
        self._workspace = {}

    def _empty(self, k, d):
        """Work arrays of layer k, direction d, reused from call to call."""
        return workspace(self._workspace.setdefault((k, d), {}), self.dtype)

    # -- description -------------------------------------------------------------
    def describe(self):
        extra = f", layers={self.num_layers}" if self.num_layers > 1 else ""
        extra += ", bidirectional" if self.bidirectional else ""
        return f"{self.mode}({self.input_size} -> {self.hidden_size}{extra})"

    def multiplications(self, seq_len=1):
        G, H, D = self.kernel.gates, self.hidden_size, self.num_directions
        per_step = sum(D * G * H * ((self.input_size if k == 0 else D * H) + H)
                       for k in range(self.num_layers))
        return per_step * int(seq_len)

    def param_names(self, k, d=0):
        """torch's names of layer k, direction d: (weight_ih, weight_hh, bias_ih, bias_hh)."""
        sfx = f"_l{k}" + ("_reverse" if d else "")
        return ("weight_ih" + sfx, "weight_hh" + sfx, "bias_ih" + sfx, "bias_hh" + sfx)

    def prepared_weights(self, kernel, k, d=0, w_hh=None):
        """Layer k, direction d's weights as ``kernel``'s time loop uses them (``w_hh``:
        a matrix to use instead of the stored W_hh — the weight-dropped one)."""
        p = self._params
        n_ih, n_hh, n_bih, n_bhh = self.param_names(k, d)
        return kernel.prepare_weights(p[n_ih], p[n_hh] if w_hh is None else w_hh, p.get(n_bih), p.get(n_bhh))

    def _drop_weights(self, k, d):
        """Weight drop: (W_hh ⊙ m/(1−p), m/(1−p)) with a fresh mask, or None (off, eval)."""
        if not (self.weight_drop > 0 and self.training):
            return None
        w_hh = self._params[self.param_names(k, d)[1]]
        mask = dropout_mask(self.rng, w_hh.shape, self.weight_drop, self.dtype)
        return w_hh * mask, mask

    def state_shape(self, B):
        return (self.num_layers * self.num_directions, B, self.hidden_size)

    # -- input checking ------------------------------------------------------------
    def _time_major_input(self, x):
        x = real_array(x, self.mode)
        if np.issubdtype(x.dtype, np.integer) and x.ndim == 2:
            return x.T, True                  # a view: forward_time_major copies ids once
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ConfigError(f"{self.mode}: expected input (B, T, {self.input_size}) or integer ids "
                              f"(B, T), got shape {x.shape}")
        return np.ascontiguousarray(x.transpose(1, 0, 2), dtype=self.dtype), False

    # -- forward --------------------------------------------------------------------
    def forward(self, x, state=None):
        xs, is_ids = self._time_major_input(x)
        out, state_n = self.forward_time_major(xs, state, is_ids=is_ids)
        return np.ascontiguousarray(out.transpose(1, 0, 2)), state_n

    def forward_time_major(self, xs, state=None, *, is_ids=False):
        """Like ``forward`` but with time-major input (T, B, F) or ids (T, B) and output
        (T, B, D·H). Models use this to avoid transposes."""
        T, B = xs.shape[0], xs.shape[1]
        if T < 1 or B < 1:
            raise ConfigError(f"{self.mode}: the input needs at least one step and one sequence")
        if is_ids:
            if not np.issubdtype(xs.dtype, np.integer):
                raise ConfigError(f"{self.mode}: one-hot ids must be integers, got {xs.dtype}")
            # a copy, checked once: backward reads these ids again (the compiled kernels add into
            # dW_ih's rows by them), so a caller reusing its batch buffer cannot change them
            xs = np.array(xs, np.int64, order="C")
            if xs.min() < 0 or xs.max() >= self.input_size:
                raise ConfigError(f"{self.mode}: integer inputs are one-hot ids and must lie in "
                                  f"[0, {self.input_size})")
        h0, c0 = initial_state(state, self.state_shape(B), self.kernel.has_cell, self.dtype,
                               xp=self.backend.xp)
        k_, H, D = self.backend.select(self.kernel, self.dtype), self.hidden_size, self.num_directions
        layer_in, layer_is_ids = xs, is_ids
        caches, h_n, c_n, xp = [], [], [], self.backend.xp
        for k in range(self.num_layers):
            dirs = []
            out_k = xp.empty((T, B, D * H), self.dtype)
            for d in range(D):
                seq = np.ascontiguousarray(layer_in if d == 0 else layer_in[::-1])
                i = k * D + d
                dropped = self._drop_weights(k, d)
                w = self.prepared_weights(k_, k, d, None if dropped is None else dropped[0])
                buf = scan(k_, w, seq, h0[i], None if c0 is None else c0[i], ids=layer_is_ids,
                           empty=self._empty(k, d))
                hs = buf.h[1:]
                out_k[:, :, d * H:(d + 1) * H] = hs if d == 0 else hs[::-1]
                h_n.append(buf.h[T])
                if k_.has_cell:
                    c_n.append(buf.c[T])
                dirs.append((seq, buf, dropped))
            mask = None
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                shape = (1,) + out_k.shape[1:] if self.locked_dropout else out_k.shape
                mask = dropout_mask(self.rng, shape, self.dropout, self.dtype)
                out_k *= mask
            caches.append((dirs, mask, layer_is_ids))
            layer_in, layer_is_ids = out_k, False
        self._cache = (T, B, caches, k_)
        hn = xp.stack(h_n)
        return layer_in, ((hn, xp.stack(c_n)) if k_.has_cell else hn)

    # -- backward ---------------------------------------------------------------------
    def backward(self, dout, dstate=None):
        T, B = forward_saved(self._cache, self.mode)[:2]
        D, H = self.num_directions, self.hidden_size
        if dout is not None:
            dout = real_array(dout, f"{self.mode}.backward", self.dtype)
            if dout.shape != (B, T, D * H):
                raise ConfigError(f"{self.mode}.backward: dout must have shape {(B, T, D * H)}, "
                                  f"got {dout.shape}")
            dout = dout.transpose(1, 0, 2)
        dxs, dstate0 = self.backward_time_major(dout, dstate)
        return (None if dxs is None else np.ascontiguousarray(dxs.transpose(1, 0, 2))), dstate0

    def backward_time_major(self, douts, dstate=None):
        """Backward for ``forward_time_major``: douts (T, B, D·H) or None → (dxs, dstate0)."""
        T, B, caches, k_ = forward_saved(self._cache, self.mode)
        p, g = self._params, self._grads
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        dh_n, dc_n = initial_state(dstate, self.state_shape(B), k_.has_cell, self.dtype, "dstate",
                                   xp=self.backend.xp)
        xp = self.backend.xp
        dh0 = xp.zeros((L * D, B, H), self.dtype)
        dc0 = xp.zeros((L * D, B, H), self.dtype) if k_.has_cell else None
        d_out = douts
        for k in reversed(range(L)):
            dirs, mask, in_is_ids = caches[k]
            if d_out is not None and mask is not None:
                d_out = d_out * mask
            d_in = None
            for d in range(D):
                names = self.param_names(k, d)
                seq, buf, dropped = dirs[d]
                i = k * D + d
                dh, dc = dh_n[i].copy(), (dc_n[i].copy() if k_.has_cell else None)
                d_hs = None
                if d_out is not None:
                    d_hs = d_out[:, :, d * H:(d + 1) * H]
                    if d:
                        d_hs = d_hs[::-1]
                grads = tuple(g.get(n) for n in names)
                w_hh = p[names[1]]
                if dropped is not None:          # BPTT with the matrix the forward used
                    w_hh, g_used = dropped[0], xp.zeros_like(w_hh)
                    grads = (grads[0], g_used) + grads[2:]
                d_seq = scan_backward(k_, p[names[0]], w_hh, buf, seq, dh, dc, d_hs, grads,
                                      ids=in_is_ids, empty=self._empty(k, d))
                if dropped is not None:          # dW_hh = dW_used ⊙ m/(1−p)
                    g_used *= dropped[1]
                    g[names[1]] += g_used
                dh0[i] = dh
                if k_.has_cell:
                    dc0[i] = dc
                if d_seq is not None:
                    if d:
                        d_seq = d_seq[::-1]
                    d_in = d_seq if d_in is None else d_in + d_seq
            d_out = d_in
        return d_out, ((dh0, dc0) if k_.has_cell else dh0)


class RNN(_Recurrent):
    """Elman RNN: h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh | relu.

    Course names: W_x = ``weight_ih_l0`` (H, F), W_s = ``weight_hh_l0`` (H, H); the
    output weights W_y belong to a ``Linear`` head. See the module docstring for the
    forward/backward contract.
    """
    mode = "RNN"


class LSTM(_Recurrent):
    """LSTM: gates i, f, g, o; c_t = f⊙c_{t−1} + i⊙g, h_t = o⊙tanh(c_t) (see kernels/lstm.py).
    State is (h, c), each (L·D, B, H)."""
    mode = "LSTM"


class GRU(_Recurrent):
    """GRU: gates r, z, n; n = tanh(gx_n + r⊙(W_hn h + b_hn)), h_t = (1−z)⊙n + z⊙h_{t−1}."""
    mode = "GRU"
