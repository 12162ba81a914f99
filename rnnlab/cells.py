"""Recurrent cells: the step math of the Elman RNN, the LSTM and the GRU.

Each cell type has one *kernel* (``ElmanKernel``, ``LSTMKernel``, ``GRUKernel``)
that holds the forward step and the backward step, written with preallocated
buffers and in-place ufuncs. The recurrent layers in ``recurrent.py`` run these
same kernels over time; the ``RNNCell``/``LSTMCell``/``GRUCell`` modules below run
them for one step (teaching, one-step generation). There is no second copy of
the math.

Notation (code names, PyTorch's layout; the course's names in brackets):

    x_t   (B, F)  input at step t                       [x]
    h_t   (B, H)  hidden state                          [s, the state]
    W_ih  (G·H, F) ``weight_ih``   input weights         [W_x]
    W_hh  (G·H, H) ``weight_hh``   recurrent weights     [W_s]
    b_ih, b_hh (G·H,) biases
    gx_t = x_t W_ihᵀ + b_ih         all T steps in one GEMM before the loop
    gh_t = h_{t−1} W_hhᵀ + b_hh     one GEMM per step, all gates fused
    (the output weights [W_y] live in the model's ``Linear`` head, not in the cell)

Elman (G = 1):   h_t = φ(gx_t + gh_t),  φ ∈ {tanh, relu}

LSTM (G = 4, gate blocks in the order i, f, g, o as torch.nn.LSTM):
    i = σ(·_i), f = σ(·_f), g = tanh(·_g), o = σ(·_o)   of (gx_t + gh_t)
    c_t = f ⊙ c_{t−1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

GRU (G = 3, blocks r, z, n as torch.nn.GRU):
    r = σ(gx_r + gh_r),  z = σ(gx_z + gh_z)
    n = tanh(gx_n + r ⊙ gh_n)        (the reset gate multiplies W_hn h + b_hn)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

Backward step (BPTT): given dL/dh_t (and dL/dc_t), each kernel writes the
gradient of the pre-activations ``dgx_t`` (w.r.t. gx_t) and ``dgh_t`` (w.r.t.
gh_t; the same array as dgx_t for Elman and LSTM) and turns dh, dc in place into
dL/dh_{t−1}, dL/dc_{t−1}. The weight gradients are formed afterwards from all
steps at once: dW_ih = Σ_t dgx_tᵀ x_t, dW_hh = Σ_t dgh_tᵀ h_{t−1}.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .init import uniform
from .module import Module, check_dtype, make_rng


def sigmoid_(x):
    """In-place logistic sigmoid: σ(x) = ½ tanh(x/2) + ½ (exact, cannot overflow)."""
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


class ElmanKernel:
    """h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh or relu."""

    gates = 1
    has_cell = False
    fold_hh_bias = True      # b_hh is added to gx before the loop
    separate_dgh = False     # dgh_t is dgx_t

    def __init__(self, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def alloc(self, T, B, H, dtype):
        """Buffers for T steps: h[0] is the initial state, h[t+1] the state after step t."""
        return SimpleNamespace(h=np.empty((T + 1, B, H), dtype), tmp=np.empty((B, H), dtype))

    def step(self, t, gx, buf, w_hh_T, b_hh):
        h = buf.h[t + 1]
        np.matmul(buf.h[t], w_hh_T, out=h)
        h += gx
        if self.nonlinearity == "tanh":
            np.tanh(h, out=h)
        else:
            np.maximum(h, 0, out=h)

    def step_backward(self, t, dh, dc, buf, w_hh, dgx, dgh):
        h = buf.h[t + 1]
        if self.nonlinearity == "tanh":
            np.multiply(h, h, out=dgx)            # dgx = (1 − h²) ⊙ dh
            np.subtract(1, dgx, out=dgx)
            dgx *= dh
        else:
            np.greater(h, 0, out=dgx, casting="unsafe")
            dgx *= dh
        np.matmul(dgx, w_hh, out=dh)              # dh ← dL/dh_{t−1}


class LSTMKernel:
    """LSTM step; gate blocks i, f, g, o (torch.nn.LSTM's order)."""

    gates = 4
    has_cell = True
    fold_hh_bias = True
    separate_dgh = False

    def alloc(self, T, B, H, dtype):
        return SimpleNamespace(
            h=np.empty((T + 1, B, H), dtype), c=np.empty((T + 1, B, H), dtype),
            act=np.empty((T, B, 4 * H), dtype),      # activated gates i, f, g, o
            tanh_c=np.empty((T, B, H), dtype), tmp=np.empty((B, H), dtype))

    def step(self, t, gx, buf, w_hh_T, b_hh):
        H = buf.tmp.shape[1]
        a = buf.act[t]
        np.matmul(buf.h[t], w_hh_T, out=a)
        a += gx
        sigmoid_(a[:, :2 * H])
        np.tanh(a[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
        sigmoid_(a[:, 3 * H:])
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = buf.c[t + 1]
        np.multiply(f, buf.c[t], out=c)
        np.multiply(i, g, out=buf.tmp)
        c += buf.tmp
        tc = buf.tanh_c[t]
        np.tanh(c, out=tc)
        np.multiply(o, tc, out=buf.h[t + 1])

    def step_backward(self, t, dh, dc, buf, w_hh, dgx, dgh):
        H = buf.tmp.shape[1]
        a, tc, tmp = buf.act[t], buf.tanh_c[t], buf.tmp
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        di, df, dg, do = dgx[:, :H], dgx[:, H:2 * H], dgx[:, 2 * H:3 * H], dgx[:, 3 * H:]
        # dc ← dc + dh ⊙ o ⊙ (1 − tanh²c)
        np.multiply(tc, tc, out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        # do = dh ⊙ tanh c ⊙ o(1 − o)
        np.multiply(dh, tc, out=do)
        np.subtract(1, o, out=tmp)
        tmp *= o
        do *= tmp
        # di = dc ⊙ g ⊙ i(1 − i)
        np.multiply(dc, g, out=di)
        np.subtract(1, i, out=tmp)
        tmp *= i
        di *= tmp
        # df = dc ⊙ c_{t−1} ⊙ f(1 − f)
        np.multiply(dc, buf.c[t], out=df)
        np.subtract(1, f, out=tmp)
        tmp *= f
        df *= tmp
        # dg = dc ⊙ i ⊙ (1 − g²)
        np.multiply(g, g, out=tmp)
        np.subtract(1, tmp, out=tmp)
        tmp *= i
        np.multiply(dc, tmp, out=dg)
        dc *= f                                   # dc ← dL/dc_{t−1}
        np.matmul(dgx, w_hh, out=dh)              # dh ← dL/dh_{t−1}


class GRUKernel:
    """GRU step; gate blocks r, z, n (torch.nn.GRU's order and reset placement)."""

    gates = 3
    has_cell = False
    fold_hh_bias = False     # b_hn must stay inside r ⊙ (W_hn h + b_hn)
    separate_dgh = True

    def alloc(self, T, B, H, dtype):
        return SimpleNamespace(
            h=np.empty((T + 1, B, H), dtype),
            act=np.empty((T, B, 3 * H), dtype),      # r, z, n
            ghn=np.empty((T, B, H), dtype),          # W_hn h_{t−1} + b_hn
            gh=np.empty((B, 3 * H), dtype), tmp=np.empty((B, H), dtype))

    def step(self, t, gx, buf, w_hh_T, b_hh):
        H = buf.tmp.shape[1]
        gh, a, h_prev = buf.gh, buf.act[t], buf.h[t]
        np.matmul(h_prev, w_hh_T, out=gh)
        if b_hh is not None:
            gh += b_hh
        rz = a[:, :2 * H]
        np.add(gx[:, :2 * H], gh[:, :2 * H], out=rz)
        sigmoid_(rz)
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        ghn = buf.ghn[t]
        np.copyto(ghn, gh[:, 2 * H:])
        np.multiply(r, ghn, out=n)
        n += gx[:, 2 * H:]
        np.tanh(n, out=n)
        h = buf.h[t + 1]                          # h = n + z ⊙ (h_{t−1} − n)
        np.subtract(h_prev, n, out=h)
        h *= z
        h += n

    def step_backward(self, t, dh, dc, buf, w_hh, dgx, dgh):
        H = buf.tmp.shape[1]
        a, tmp, h_prev = buf.act[t], buf.tmp, buf.h[t]
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        dr, dz, dn = dgx[:, :H], dgx[:, H:2 * H], dgx[:, 2 * H:]
        # dn_pre = dh ⊙ (1 − z) ⊙ (1 − n²)
        np.subtract(1, z, out=tmp)
        tmp *= dh
        np.multiply(n, n, out=dn)
        np.subtract(1, dn, out=dn)
        dn *= tmp
        # dz_pre = dh ⊙ (h_{t−1} − n) ⊙ z(1 − z)
        np.subtract(h_prev, n, out=dz)
        dz *= dh
        np.subtract(1, z, out=tmp)
        tmp *= z
        dz *= tmp
        # dr_pre = dn_pre ⊙ gh_n ⊙ r(1 − r)
        np.multiply(dn, buf.ghn[t], out=dr)
        np.subtract(1, r, out=tmp)
        tmp *= r
        dr *= tmp
        # w.r.t. gh: the r and z blocks as gx; the n block is multiplied by r
        np.copyto(dgh[:, :2 * H], dgx[:, :2 * H])
        np.multiply(dn, r, out=dgh[:, 2 * H:])
        # dh_{t−1} = dh ⊙ z + dgh W_hh
        np.multiply(dh, z, out=tmp)
        np.matmul(dgh, w_hh, out=dh)
        dh += tmp


def make_kernel(mode, nonlinearity="tanh"):
    if mode == "RNN":
        return ElmanKernel(nonlinearity)
    if mode == "LSTM":
        return LSTMKernel()
    if mode == "GRU":
        return GRUKernel()
    raise ValueError(f"unknown recurrent mode {mode!r}")


class _Cell(Module):
    """One recurrent step as a module, with torch.nn.*Cell's parameter names
    ``weight_ih`` (G·H, F), ``weight_hh`` (G·H, H), ``bias_ih``, ``bias_hh``.

    ``forward(x, state)`` returns the next state, as torch (h, or (h, c) for LSTM).
    ``step(x, state)`` returns ``(next_state, cache)`` and ``backward_step(dnext, cache)``
    returns ``(dx, dstate)``, accumulating into ``grads``: keep the caches of a loop
    of steps and walk them backwards for BPTT.
    """

    mode = None

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh",
                 dtype=np.float32, seed=None):
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise ValueError("input_size and hidden_size must be positive")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.dtype = check_dtype(dtype)
        self.kernel = make_kernel(self.mode, nonlinearity)
        rng = make_rng(seed)
        G, H, F = self.kernel.gates, self.hidden_size, self.input_size
        bound = 1.0 / np.sqrt(H)
        self._add_param("weight_ih", uniform(rng, (G * H, F), bound, self.dtype))
        self._add_param("weight_hh", uniform(rng, (G * H, H), bound, self.dtype))
        if bias:
            self._add_param("bias_ih", uniform(rng, (G * H,), bound, self.dtype))
            self._add_param("bias_hh", uniform(rng, (G * H,), bound, self.dtype))

    def _split_state(self, state, B):
        H = self.hidden_size
        if state is None:
            z = np.zeros((B, H), self.dtype)
            return z, (np.zeros((B, H), self.dtype) if self.kernel.has_cell else None)
        if self.kernel.has_cell:
            h, c = state
        else:
            h, c = state, None
        h = np.asarray(h, self.dtype)
        if h.shape != (B, H) or (c is not None and np.shape(c) != (B, H)):
            raise ValueError(f"{type(self).__name__}: state must have shape ({B}, {H})")
        return h, (None if c is None else np.asarray(c, self.dtype))

    def step(self, x, state=None):
        x = np.asarray(x, self.dtype)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input (B, {self.input_size}), got {x.shape}")
        B, H = x.shape[0], self.hidden_size
        h, c = self._split_state(state, B)
        p, k = self.params, self.kernel
        b_ih, b_hh = p.get("bias_ih"), p.get("bias_hh")
        gx = x @ p["weight_ih"].T
        if b_ih is not None:
            gx += b_ih
            if k.fold_hh_bias:
                gx += b_hh
        buf = k.alloc(1, B, H, self.dtype)
        buf.h[0] = h
        if k.has_cell:
            buf.c[0] = c
        k.step(0, gx, buf, p["weight_hh"].T, None if k.fold_hh_bias else b_hh)
        new = (buf.h[1].copy(), buf.c[1].copy()) if k.has_cell else buf.h[1].copy()
        return new, (x, buf)

    def forward(self, x, state=None):
        return self.step(x, state)[0]

    def backward_step(self, dstate, cache):
        x, buf = cache
        k, p, g = self.kernel, self.params, self.grads
        B, H = x.shape[0], self.hidden_size
        if k.has_cell:
            dh, dc = dstate
            dc = np.zeros((B, H), self.dtype) if dc is None else np.array(dc, self.dtype)
        else:
            dh, dc = dstate, None
        dh = np.zeros((B, H), self.dtype) if dh is None else np.array(dh, self.dtype)
        dgx = np.empty((B, k.gates * H), self.dtype)
        dgh = np.empty_like(dgx) if k.separate_dgh else dgx
        k.step_backward(0, dh, dc, buf, p["weight_hh"], dgx, dgh)
        g["weight_ih"] += dgx.T @ x
        g["weight_hh"] += dgh.T @ buf.h[0]
        if "bias_ih" in p:
            g["bias_ih"] += dgx.sum(0)
            g["bias_hh"] += dgh.sum(0)
        dx = dgx @ p["weight_ih"]
        return dx, ((dh, dc) if k.has_cell else dh)


class RNNCell(_Cell):
    """One Elman step: h' = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh). See module docstring."""
    mode = "RNN"


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, g, o). ``state`` is (h, c). See module docstring."""
    mode = "LSTM"

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed)


class GRUCell(_Cell):
    """One GRU step (gates r, z, n; reset applied to W_hn h + b_hn). See module docstring."""
    mode = "GRU"

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float32, seed=None):
        super().__init__(input_size, hidden_size, bias=bias, dtype=dtype, seed=seed)
