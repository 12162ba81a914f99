"""The LSTM step (gate blocks i, f, g, o, as torch.nn.LSTM):

    i = σ(·_i), f = σ(·_f), g = tanh(·_g), o = σ(·_o)   of (gx_t + gh_t)
    c_t = f ⊙ c_{t−1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

Backward (dh = dL/dh_t, dc = dL/dc_t):
    dc += dh ⊙ o ⊙ (1 − tanh² c_t)
    d(i, f, g) pre-activations = (g·i(1−i), c_{t−1}·f(1−f), i·(1−g²)) ⊙ dc;  d(o) = tanh c_t·o(1−o) ⊙ dh
    dc_{t−1} = dc ⊙ f,  dh_{t−1} = dgx_t W_hh
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .base import Kernel, fresh, tanh_mark


class LSTMKernel(Kernel):
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


