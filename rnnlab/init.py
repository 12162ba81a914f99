"""Weight initialisers. Each takes an ``np.random.Generator`` first, so the same
seed gives the same bits.

- ``uniform(rng, shape, bound)``: U(−bound, bound). torch.nn's recurrent layers
  and Linear use bound = 1/√fan (fan = hidden size, resp. in_features); that is
  rnnlab's default too.
"""
from __future__ import annotations

import numpy as np


def uniform(rng, shape, bound, dtype=np.float64):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)

