"""The GRU step (gate blocks r, z, n, as torch.nn.GRU):

    r = σ(gx_r + gh_r),  z = σ(gx_z + gh_z)
    n = tanh(gx_n + r ⊙ gh_n)        (the reset gate multiplies W_hn h + b_hn)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

Backward: dn = (1 − n²)(1 − z) ⊙ dh, dz = z(1 − z)(h_{t−1} − n) ⊙ dh, dr = r(1 − r) gh_n ⊙ dn;
dgx = [dr, dz, dn], dgh = [dr, dz, dn ⊙ r], dh_{t−1} = dh ⊙ z + dgh W_hh.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .base import Kernel, fresh, tanh_mark


class GRUKernel(Kernel):
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


