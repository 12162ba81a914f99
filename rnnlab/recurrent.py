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
in training mode only, with a mask from the layer's own Generator (``seed``).

Speed: the inputs of all T steps are projected with one GEMM before the loop;
each step does one recurrent GEMM for all gates and in-place elementwise math in
preallocated buffers; in backward only dh·W_hh stays in the loop and the weight
gradients are formed after it with one GEMM each. Internally everything is
time-major (T, B, ·).
"""
from __future__ import annotations

import numpy as np

from .cells import make_kernel
from .fused import select
from .init import uniform
from .module import Module, check_dtype, make_rng


class _Recurrent(Module):
    mode = None

    def __init__(self, input_size, hidden_size, num_layers=1, *, nonlinearity="tanh",
                 bias=True, dropout=0.0, bidirectional=False, batch_first=True,
                 dtype=np.float32, seed=None):
        super().__init__()
        if int(input_size) < 1 or int(hidden_size) < 1 or int(num_layers) < 1:
            raise ValueError("input_size, hidden_size and num_layers must be positive integers")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not batch_first:
            raise ValueError("rnnlab recurrent layers are batch-first only (batch_first=True)")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bidirectional = int(num_layers), bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dropout, self.bias = float(dropout), bool(bias)
        self.nonlinearity = nonlinearity
        self.dtype = check_dtype(dtype)
        self.kernel = make_kernel(self.mode, nonlinearity)
        rng = make_rng(seed)
        G, H, D = self.kernel.gates, self.hidden_size, self.num_directions
        bound = 1.0 / np.sqrt(H)
        for k in range(self.num_layers):
            f_in = self.input_size if k == 0 else D * H
            for d in range(D):
                sfx = f"_l{k}" + ("_reverse" if d else "")
                self._add_param("weight_ih" + sfx, uniform(rng, (G * H, f_in), bound, self.dtype))
                self._add_param("weight_hh" + sfx, uniform(rng, (G * H, H), bound, self.dtype))
                if self.bias:
                    self._add_param("bias_ih" + sfx, uniform(rng, (G * H,), bound, self.dtype))
                    self._add_param("bias_hh" + sfx, uniform(rng, (G * H,), bound, self.dtype))
        self.dropout_rng = np.random.default_rng(rng.integers(2**63))
        self._cache = None
        self._workspace = {}

    def _empty(self, k, d):
        """Allocator of internal buffers for layer k, direction d: arrays are reused from
        call to call while the shapes stay the same (a fresh allocation of a large array
        costs a page fault per 4 KiB). Returned outputs and gradients are never these."""
        ws = self._workspace.setdefault((k, d), {})
        dtype = self.dtype

        def empty(name, shape):
            a = ws.get(name)
            if a is None or a.shape != shape:
                a = ws[name] = np.empty(shape, dtype)
            return a
        return empty

    def _ones(self, n):
        ones = self._workspace.get("ones")
        if ones is None or ones.shape != (n,):
            ones = self._workspace["ones"] = np.ones(n, self.dtype)
        return ones

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

    def _names(self, k, d):
        sfx = f"_l{k}" + ("_reverse" if d else "")
        return ("weight_ih" + sfx, "weight_hh" + sfx, "bias_ih" + sfx, "bias_hh" + sfx)

    # -- input checking ------------------------------------------------------------
    def _time_major_input(self, x):
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.integer) and x.ndim == 2:
            return np.ascontiguousarray(x.T), True
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{self.mode}: expected input (B, T, {self.input_size}) or integer ids "
                             f"(B, T), got shape {x.shape}")
        return np.ascontiguousarray(x.transpose(1, 0, 2), dtype=self.dtype), False

    def _initial_state(self, state, B):
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        shape = (LD, B, H)
        if state is None:
            return np.zeros(shape, self.dtype), (np.zeros(shape, self.dtype) if self.kernel.has_cell else None)
        if self.kernel.has_cell:
            if not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise ValueError(f"{self.mode}: state must be a tuple (h0, c0)")
            h0, c0 = (np.asarray(s, self.dtype) for s in state)
        else:
            h0, c0 = np.asarray(state, self.dtype), None
        for name, s in (("h0", h0), ("c0", c0)):
            if s is not None and s.shape != shape:
                raise ValueError(f"{self.mode}: {name} must have shape {shape}, got {s.shape}")
        return h0, c0

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
            raise ValueError(f"{self.mode}: the input needs at least one step and one sequence")
        if is_ids and (xs.min() < 0 or xs.max() >= self.input_size):
            raise ValueError(f"{self.mode}: integer inputs are one-hot ids and must lie in "
                             f"[0, {self.input_size})")
        h0, c0 = self._initial_state(state, B)
        k_, p, H, D = select(self.kernel, self.dtype), self.params, self.hidden_size, self.num_directions
        layer_in, layer_is_ids = xs, is_ids
        caches, h_n, c_n = [], [], []
        for k in range(self.num_layers):
            dirs = []
            out_k = np.empty((T, B, D * H), self.dtype)
            for d in range(D):
                n_ih, n_hh, n_bih, n_bhh = self._names(k, d)
                w = k_.prepare_weights(p[n_ih], p[n_hh], p.get(n_bih), p.get(n_bhh))
                seq = layer_in if d == 0 else layer_in[::-1]
                empty = self._empty(k, d)
                seq = np.ascontiguousarray(seq)
                if layer_is_ids:                  # one-hot input: rows of the table (a gather)
                    gx, ids = w.w_ih_T + w.bias, seq      # ids range-checked above
                else:
                    gx, ids = empty("gx", (T, B, k_.gates * H)), None
                    np.matmul(seq.reshape(T * B, -1), w.w_ih_T, out=gx.reshape(T * B, -1))
                    gx += w.bias
                buf = k_.alloc(T, B, H, self.dtype, empty)
                buf.h[0] = h0[k * D + d]
                if k_.has_cell:
                    buf.c[0] = c0[k * D + d]
                k_.forward_loop(gx, buf, w, ids)
                hs = buf.h[1:]
                out_k[:, :, d * H:(d + 1) * H] = hs if d == 0 else hs[::-1]
                h_n.append(buf.h[T])
                if k_.has_cell:
                    c_n.append(buf.c[T])
                dirs.append((seq, buf))
            mask = None
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                keep = 1.0 - self.dropout
                mask = (self.dropout_rng.random(out_k.shape) < keep).astype(self.dtype) / keep
                out_k *= mask
            caches.append((dirs, mask, layer_is_ids))
            layer_in, layer_is_ids = out_k, False
        self._cache = (T, B, caches, k_)
        hn = np.stack(h_n)
        return layer_in, ((hn, np.stack(c_n)) if k_.has_cell else hn)

    # -- backward ---------------------------------------------------------------------
    def backward(self, dout, dstate=None):
        if self._cache is None:
            raise RuntimeError(f"{self.mode}.backward called before forward")
        T, B = self._cache[:2]
        D, H = self.num_directions, self.hidden_size
        if dout is not None:
            dout = np.asarray(dout, self.dtype)
            if dout.shape != (B, T, D * H):
                raise ValueError(f"{self.mode}.backward: dout must have shape {(B, T, D * H)}, got {dout.shape}")
            dout = dout.transpose(1, 0, 2)
        dxs, dstate0 = self.backward_time_major(dout, dstate)
        return (None if dxs is None else np.ascontiguousarray(dxs.transpose(1, 0, 2))), dstate0

    def backward_time_major(self, douts, dstate=None):
        """Backward for ``forward_time_major``: douts (T, B, D·H) or None → (dxs, dstate0)."""
        if self._cache is None:
            raise RuntimeError(f"{self.mode}.backward called before forward")
        T, B, caches, k_ = self._cache
        p, g = self.params, self.grads
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        dh_n, dc_n = self._final_state_grad(dstate, B)
        dh0 = np.zeros((L * D, B, H), self.dtype)
        dc0 = np.zeros((L * D, B, H), self.dtype) if k_.has_cell else None
        d_out = douts
        GH = k_.gates * H
        for k in reversed(range(L)):
            dirs, mask, in_is_ids = caches[k]
            if d_out is not None and mask is not None:
                d_out = d_out * mask
            d_in = None
            for d in range(D):
                n_ih, n_hh, n_bih, n_bhh = self._names(k, d)
                seq, buf = dirs[d]
                dh = np.array(dh_n[k * D + d])
                dc = np.array(dc_n[k * D + d]) if k_.has_cell else None
                empty = self._empty(k, d)
                dgx = empty("dgx", (T, B, GH))
                dgh = empty("dgh", (T, B, GH)) if k_.separate_dgh else dgx
                d_hs = None
                if d_out is not None:
                    d_hs = d_out[:, :, d * H:(d + 1) * H]
                    if d:
                        d_hs = d_hs[::-1]
                w_hh = p[n_hh]
                pre = k_.backward_prepare(buf, dgx, dgh)
                if in_is_ids and k_.scatters_ids:     # the kernel sums dgx rows per id
                    acc = empty("acc", (self.input_size, GH))
                    acc.fill(0)
                    k_.backward_loop(dh, dc, buf, pre, w_hh, dgx, dgh, d_hs, ids=seq, acc=acc)
                else:
                    acc = None
                    k_.backward_loop(dh, dc, buf, pre, w_hh, dgx, dgh, d_hs)
                dh0[k * D + d] = dh
                if k_.has_cell:
                    dc0[k * D + d] = dc
                dgx2, dgh2 = dgx.reshape(T * B, GH), dgh.reshape(T * B, GH)
                g[n_hh] += dgh2.T @ buf.h[:-1].reshape(T * B, H)
                if self.bias:                     # column sums as a GEMV (2× np.sum's speed)
                    ones = self._ones(T * B)
                    db_ih = acc.sum(axis=0) if acc is not None else ones @ dgx2
                    g[n_bih] += db_ih
                    g[n_bhh] += ones @ dgh2 if k_.separate_dgh else db_ih
                if acc is not None:               # dW_ih = accᵀ: the rows summed per id
                    g[n_ih] += acc.T
                elif in_is_ids:                   # dW_ih = dgxᵀ · one-hot(ids), as one GEMM
                    onehot = empty("onehot", (T * B, self.input_size))
                    onehot.fill(0)
                    onehot[np.arange(T * B), seq.reshape(-1)] = 1
                    g[n_ih] += dgx2.T @ onehot
                else:
                    g[n_ih] += dgx2.T @ seq.reshape(T * B, -1)
                    d_seq = (dgx2 @ p[n_ih]).reshape(T, B, -1)
                    if d:
                        d_seq = d_seq[::-1]
                    d_in = d_seq if d_in is None else d_in + d_seq
            d_out = d_in
        return d_out, ((dh0, dc0) if k_.has_cell else dh0)

    def _final_state_grad(self, dstate, B):
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        zeros = lambda: np.zeros(shape, self.dtype)  # noqa: E731
        if self.kernel.has_cell:
            dh, dc = (None, None) if dstate is None else dstate
        else:
            dh, dc = dstate, None
        out = []
        for name, s in (("dh_n", dh), ("dc_n", dc)):
            if s is None:
                out.append(zeros())
            else:
                s = np.asarray(s, self.dtype)
                if s.shape != shape:
                    raise ValueError(f"{self.mode}.backward: {name} must have shape {shape}, got {s.shape}")
                out.append(s)
        return out[0], out[1]


class RNN(_Recurrent):
    """Elman RNN: h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh | relu.

    Course names: W_x = ``weight_ih_l0`` (H, F), W_s = ``weight_hh_l0`` (H, H); the
    output weights W_y belong to a ``Linear`` head. See the module docstring for the
    forward/backward contract.
    """
    mode = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, *, nonlinearity="tanh", bias=True,
                 dropout=0.0, bidirectional=False, batch_first=True, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, num_layers, nonlinearity=nonlinearity, bias=bias,
                         dropout=dropout, bidirectional=bidirectional, batch_first=batch_first,
                         dtype=dtype, seed=seed)


class LSTM(_Recurrent):
    """LSTM: gates i, f, g, o; c_t = f⊙c_{t−1} + i⊙g, h_t = o⊙tanh(c_t) (see cells.py).
    State is (h, c), each (L·D, B, H)."""
    mode = "LSTM"

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, dropout=0.0,
                 bidirectional=False, batch_first=True, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias=bias, dropout=dropout,
                         bidirectional=bidirectional, batch_first=batch_first, dtype=dtype, seed=seed)


class GRU(_Recurrent):
    """GRU: gates r, z, n; n = tanh(gx_n + r⊙(W_hn h + b_hn)), h_t = (1−z)⊙n + z⊙h_{t−1}."""
    mode = "GRU"

    def __init__(self, input_size, hidden_size, num_layers=1, *, bias=True, dropout=0.0,
                 bidirectional=False, batch_first=True, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, num_layers, bias=bias, dropout=dropout,
                         bidirectional=bidirectional, batch_first=batch_first, dtype=dtype, seed=seed)
