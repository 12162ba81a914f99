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


def fresh(dtype):
    """The plain allocator: a new array for every request."""
    return lambda name, shape: np.empty(shape, dtype)


class _Kernel:
    """Shared machinery. Gate scaling: the sigmoid gates are computed as
    σ(x) = ½·tanh(½x) + ½, so the ½ is folded into their rows of W_ih, W_hh and the
    biases (scaling by ½ is exact in binary floating point, so the pre-activations are
    bit-for-bit ½ of the unscaled ones) and one full-width tanh serves every gate."""

    gates = 1
    has_cell = False
    separate_dgh = False
    sigmoid_blocks = ()          # gate blocks that use the sigmoid
    fold_blocks = None           # gate blocks of b_hh folded into gx (None: all)
    scatters_ids = False         # True: backward_loop accepts ids/acc (fused kernels)

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
            np.take(table, ids, axis=0, out=gx, mode="clip")      # ids are range-checked
        step = self.step
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

    def prepare_weights(self, w_ih, w_hh, b_ih, b_hh):
        """Weights as the time loop uses them: w_ih_T (F, G·H) and w_hh_T (H, G·H)
        contiguous and gate-scaled; ``bias`` (G·H,) = scaled b_ih plus the folded part of
        b_hh; ``b_step`` the part of b_hh added inside the step (GRU's b_hn), else None."""
        GH, H = w_hh.shape
        s = self.gate_scale(H, w_hh.dtype)
        w_ih_T = np.ascontiguousarray((w_ih * s[:, None]).T)
        w_hh_T = np.ascontiguousarray((w_hh * s[:, None]).T)   # (H, G·H): faster GEMMs than a view
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
            bias *= s
        return SimpleNamespace(w_ih_T=w_ih_T, w_hh_T=w_hh_T, bias=bias, b_step=b_step,
                               scale=s, offset=np.where(s == 0.5, 0.5, 0.0).astype(w_hh.dtype))


class ElmanKernel(_Kernel):
    """h_t = φ(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), φ = tanh or relu."""

    gates = 1

    def __init__(self, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def alloc(self, T, B, H, dtype, empty=None):
        """Buffers for T steps: h[0] is the initial state, h[t+1] the state after step t.
        ``empty(name, shape)`` may hand out reused workspace arrays."""
        empty = empty or fresh(dtype)
        return SimpleNamespace(h=empty("h", (T + 1, B, H)), tmp=empty("tmp", (B, H)), empty=empty)

    def step(self, t, gx, buf, w):
        h = buf.h[t + 1]
        np.matmul(buf.h[t], w.w_hh_T, out=h)
        h += gx
        if self.nonlinearity == "tanh":
            np.tanh(h, out=h)
        else:
            np.maximum(h, 0, out=h)

    def backward_prepare(self, buf, dgx, dgh):
        """Fill dgx with φ'(·) of every step (it depends on the forward pass only)."""
        h = buf.h[1:]
        if self.nonlinearity == "tanh":
            np.multiply(h, h, out=dgx)
            np.subtract(1, dgx, out=dgx)
        else:
            np.greater(h, 0, out=dgx, casting="unsafe")
        return None

    def step_backward(self, t, dh, dc, buf, pre, w_hh, dgx, dgh):
        dgx *= dh                                 # dgx = φ'(·) ⊙ dh
        np.matmul(dgx, w_hh, out=dh)              # dh ← dL/dh_{t−1}


class LSTMKernel(_Kernel):
    """LSTM step; gate blocks i, f, g, o (torch.nn.LSTM's order)."""

    gates = 4
    has_cell = True
    sigmoid_blocks = (0, 1, 3)

    def alloc(self, T, B, H, dtype, empty=None):
        empty = empty or fresh(dtype)
        return SimpleNamespace(
            h=empty("h", (T + 1, B, H)), c=empty("c", (T + 1, B, H)),
            act=empty("act", (T, B, 4 * H)),         # activated gates i, f, g, o
            tanh_c=empty("tanh_c", (T, B, H)), tmp=empty("tmp", (B, H)), empty=empty)

    def step(self, t, gx, buf, w):
        H = buf.tmp.shape[1]
        a = buf.act[t]
        np.matmul(buf.h[t], w.w_hh_T, out=a)     # ½-scaled for i, f, o
        a += gx
        np.tanh(a, out=a)
        a *= w.scale                              # σ = ½ tanh(½x) + ½; g = tanh(x)
        a += w.offset
        i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        c = buf.c[t + 1]
        np.multiply(f, buf.c[t], out=c)
        np.multiply(i, g, out=buf.tmp)
        c += buf.tmp
        tc = buf.tanh_c[t]
        np.tanh(c, out=tc)
        np.multiply(o, tc, out=buf.h[t + 1])

    def backward_prepare(self, buf, dgx, dgh):
        """For all steps at once, from forward values only:
             dgx ← [g·i(1−i), c_{t−1}·f(1−f), i·(1−g²), tanh c·o(1−o)]
             P   = o·(1 − tanh² c)
        so that a step needs dc += dh·P; dgx[i,f,g] *= dc; dgx[o] *= dh; dc *= f.
        The derivative part is done full-width: (1 − a)(a + m), m = 1 on the g block."""
        H = buf.tmp.shape[1]
        a, tc = buf.act, buf.tanh_c
        i, g, o = a[..., :H], a[..., 2 * H:3 * H], a[..., 3 * H:]
        np.subtract(1, a, out=dgx)
        mark = buf.empty("gx", a.shape)       # the input projections are dead by now
        np.add(a, tanh_mark(self, H, a.dtype), out=mark)
        dgx *= mark
        dgx[..., :H] *= g
        dgx[..., H:2 * H] *= buf.c[:-1]
        dgx[..., 2 * H:3 * H] *= i
        dgx[..., 3 * H:] *= tc
        P = buf.empty("P", tc.shape)
        np.multiply(tc, tc, out=P)
        np.subtract(1, P, out=P)
        P *= o
        return P

    def step_backward(self, t, dh, dc, buf, P, w_hh, dgx, dgh):
        H, tmp = dh.shape[1], buf.tmp
        np.multiply(dh, P[t], out=tmp)            # dc ← dc + dh ⊙ o ⊙ (1 − tanh² c)
        dc += tmp
        d3 = dgx.reshape(dgx.shape[0], 4, H)
        d3[:, :3] *= dc[:, None, :]               # di, df, dg
        d3[:, 3] *= dh                            # do
        dc *= buf.act[t][:, H:2 * H]              # dc ← dL/dc_{t−1} = dc ⊙ f
        np.matmul(dgx, w_hh, out=dh)              # dh ← dL/dh_{t−1}


class GRUKernel(_Kernel):
    """GRU step; gate blocks r, z, n (torch.nn.GRU's order and reset placement)."""

    gates = 3
    separate_dgh = True
    sigmoid_blocks = (0, 1)
    fold_blocks = (0, 1)        # b_hn must stay inside r ⊙ (W_hn h + b_hn)

    def alloc(self, T, B, H, dtype, empty=None):
        empty = empty or fresh(dtype)
        return SimpleNamespace(
            h=empty("h", (T + 1, B, H)),
            act=empty("act", (T, B, 3 * H)),         # r, z, n
            ghn=empty("ghn", (T, B, H)),             # W_hn h_{t−1} + b_hn
            gh=empty("gh", (B, 3 * H)), tmp=empty("tmp", (B, H)), empty=empty)

    def step(self, t, gx, buf, w):
        H = buf.tmp.shape[1]
        gh, a, h_prev = buf.gh, buf.act[t], buf.h[t]
        np.matmul(h_prev, w.w_hh_T, out=gh)      # ½-scaled for r, z
        rz = a[:, :2 * H]
        np.add(gx[:, :2 * H], gh[:, :2 * H], out=rz)
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z, n = a[:, :H], a[:, H:2 * H], a[:, 2 * H:]
        ghn = buf.ghn[t]
        if w.b_step is not None:
            np.add(gh[:, 2 * H:], w.b_step, out=ghn)
        else:
            np.copyto(ghn, gh[:, 2 * H:])
        np.multiply(r, ghn, out=n)
        n += gx[:, 2 * H:]
        np.tanh(n, out=n)
        h = buf.h[t + 1]                          # h = n + z ⊙ (h_{t−1} − n)
        np.subtract(h_prev, n, out=h)
        h *= z
        h += n

    def backward_prepare(self, buf, dgx, dgh):
        """For all steps at once, from forward values only:
             dgx ← [gh_n·r(1−r), (h_{t−1} − n)·z(1−z), (1 − z)(1 − n²)]
        so that a step needs dn = dgx[n] *= dh; dgx[z] *= dh; dgx[r] *= dn.
        The derivative part is done full-width: (1 − a)(a + m), m = 1 on the n block."""
        H = buf.tmp.shape[1]
        a = buf.act
        z, n = a[..., H:2 * H], a[..., 2 * H:]
        np.subtract(1, a, out=dgx)
        mark = buf.empty("gx", a.shape)       # the input projections are dead by now
        np.add(a, tanh_mark(self, H, a.dtype), out=mark)
        dgx *= mark
        dgx[..., :H] *= buf.ghn
        tmp = buf.empty("P", n.shape)
        np.subtract(buf.h[:-1], n, out=tmp)
        dgx[..., H:2 * H] *= tmp
        np.subtract(1, z, out=tmp)
        dgx[..., 2 * H:] *= tmp
        return None

    def step_backward(self, t, dh, dc, buf, pre, w_hh, dgx, dgh):
        H = dh.shape[1]
        a, tmp = buf.act[t], buf.tmp
        dn = dgx[:, 2 * H:]
        dn *= dh                                  # dn_pre
        dgx[:, H:2 * H] *= dh                     # dz_pre
        dgx[:, :H] *= dn                          # dr_pre
        # w.r.t. gh: the r and z blocks as gx; the n block is multiplied by r
        np.copyto(dgh[:, :2 * H], dgx[:, :2 * H])
        np.multiply(dn, a[:, :H], out=dgh[:, 2 * H:])
        np.multiply(dh, a[:, H:2 * H], out=tmp)   # dh_{t−1} = dh ⊙ z + dgh W_hh
        np.matmul(dgh, w_hh, out=dh)
        dh += tmp


def tanh_mark(kernel, H, dtype):
    """(G·H,) vector: 1 on tanh gate blocks, 0 on sigmoid blocks."""
    m = np.ones(kernel.gates * H, dtype)
    for blk in kernel.sigmoid_blocks:
        m[blk * H:(blk + 1) * H] = 0
    return m


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
        from .fused import select        # fused imports this module
        p, k = self.params, select(self.kernel, self.dtype)
        w = k.prepare_weights(p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"))
        gx = x @ w.w_ih_T
        gx += w.bias
        buf = k.alloc(1, B, H, self.dtype)
        buf.h[0] = h
        if k.has_cell:
            buf.c[0] = c
        k.step(0, gx, buf, w)
        new = (buf.h[1].copy(), buf.c[1].copy()) if k.has_cell else buf.h[1].copy()
        return new, (x, buf, k)

    def forward(self, x, state=None):
        return self.step(x, state)[0]

    def backward_step(self, dstate, cache):
        x, buf, k = cache
        p, g = self.params, self.grads
        B, H = x.shape[0], self.hidden_size
        if k.has_cell:
            dh, dc = dstate
            dc = np.zeros((B, H), self.dtype) if dc is None else np.array(dc, self.dtype)
        else:
            dh, dc = dstate, None
        dh = np.zeros((B, H), self.dtype) if dh is None else np.array(dh, self.dtype)
        dgx = np.empty((1, B, k.gates * H), self.dtype)
        dgh = np.empty_like(dgx) if k.separate_dgh else dgx
        pre = k.backward_prepare(buf, dgx, dgh)
        k.step_backward(0, dh, dc, buf, pre, p["weight_hh"], dgx[0], dgh[0])
        dgx, dgh = dgx[0], dgh[0]
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
