"""Weight initialisers. Each takes an ``np.random.Generator`` first, so the same
seed gives the same bits.

- ``uniform(rng, shape, bound)``: U(−bound, bound). torch.nn's recurrent layers
  and Linear use bound = 1/√fan (fan = hidden size, resp. in_features); that is
  rnnlab's default too.
- ``xavier_uniform(rng, shape)``: U(±√(6/(fan_in+fan_out))) (Glorot & Bengio).
- ``orthogonal(rng, shape)``: a (semi-)orthogonal matrix from the QR of a Gaussian.
"""
from __future__ import annotations

import numpy as np


def uniform(rng, shape, bound, dtype=np.float64):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def xavier_uniform(rng, shape, dtype=np.float64):
    fan_out, fan_in = shape[0], int(np.prod(shape[1:]))
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return uniform(rng, shape, bound, dtype)


def orthogonal(rng, shape, gain=1.0, dtype=np.float64):
    rows, cols = shape[0], int(np.prod(shape[1:]))
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q[:rows, :cols]).reshape(shape).astype(dtype)
