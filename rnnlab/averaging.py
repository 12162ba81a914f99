"""An averaged copy of a model's weights (Polyak–Ruppert / exponential moving average),
the weights to evaluate with, as in AWD-LSTM (Merity et al. 2017).

    avg = WeightAverage(model, decay=0.999)            # starts as a copy of the weights
    avg.update()                                       # after every optimizer step
    with avg.applied():                                # the model holds the average here
        model.evaluate_ids(val)

Update t (t = 1, 2, …) moves every averaged array towards the current weights w_t:

    a_t = d_t · a_{t−1} + (1 − d_t) · w_t,    d_t = min(decay, (1 + t) / (10 + t)),   a_0 = w_0

— TensorFlow's ExponentialMovingAverage with ``num_updates``: early on the average
reaches back over about the last tenth of the run (so it does not keep the random
initial weights for 1/(1 − decay) steps), later over about 1/(1 − decay) steps. The
averages are kept in the weights' dtype; ``updates`` and the arrays are all a
checkpoint needs to continue the average exactly (charlm_run.py saves them as
"avg/<name>").
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .errors import ConfigError
from .module import finite_real


def check_decay(decay):
    """The decay as a float in (0, 1); ConfigError naming ``average`` otherwise."""
    if not finite_real(decay) or not 0.0 < decay < 1.0:
        raise ConfigError(f"average must be a decay in (0, 1), got {decay!r}")
    return float(decay)


class WeightAverage:
    """The running average of ``model.params`` (any object with a ``params`` dict of live
    arrays, read again at every use). ``averages``/``updates``: a saved state to continue
    from (default: a copy of the current weights, no updates yet)."""

    def __init__(self, model, decay, *, averages=None, updates=0):
        self.decay = check_decay(decay)
        self.model = model
        params = model.params
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            raise ConfigError(f"updates must be an integer >= 0, got {updates!r}")
        self.updates = updates
        if averages is None:
            self.averages = {k: p.copy() for k, p in params.items()}
        else:
            if set(averages) != set(params):
                raise ConfigError("the averaged weights must have the parameters' names")
            self.averages = {}
            for k, p in params.items():
                a = np.asarray(averages[k])
                if a.shape != p.shape:
                    raise ConfigError(f"averaged weight {k!r} has shape {a.shape}, expected {p.shape}")
                self.averages[k] = a.astype(p.dtype, copy=True)
        self._tmp = {}

    def rate(self, t):
        """d_t, the weight of the old average at update t."""
        return min(self.decay, (1.0 + t) / (10.0 + t))

    def update(self):
        """One update with the current weights (call after each optimizer step)."""
        self.updates += 1
        d = self.rate(self.updates)
        for k, p in self.model.params.items():
            a = self.averages[k]
            tmp = self._tmp.get(k)
            if tmp is None:
                tmp = self._tmp[k] = np.empty_like(a)
            np.multiply(p, 1.0 - d, out=tmp)
            a *= d
            a += tmp

    @contextmanager
    def applied(self):
        """Within the block the live arrays hold the averages; afterwards exactly the
        weights they held before (copied back bit for bit)."""
        params = self.model.params
        saved = {k: p.copy() for k, p in params.items()}
        try:
            for k, p in params.items():
                np.copyto(p, self.averages[k])
            yield self
        finally:
            for k, p in params.items():
                np.copyto(p, saved[k])
