"""``univariate`` — the two-weight RNN.

h_t = tanh(w·h_{t−1} + u·x_t) (an Elman RNN with one unit and no bias) and a linear
read-out ŷ_t = v·h_t + c are trained on a real series (standardised) to predict
x_{t+1}. The course's observation: while w·h + u·x stays small, tanh is nearly the
identity and h_t ≈ u·Σ_k w^k x_{t−k} — an exponentially weighted moving average
with decay w. Reported: the learned w and u, the correlation between h_t and the
EWMA with that decay, and the largest gap between h_t and that linear recursion,
relative to the range of h.
"""
from __future__ import annotations

import numpy as np

from ..data.series import Scaler, fill_missing, load_series
from ..losses import mse
from ..models.seq import SeqNet, fit
from .common import budget, pyplot, save
from ..errors import ConfigError


def ewma(x, decay):
    """s_t = decay·s_{t−1} + x_t from s_{−1} = 0, for x (T,) → (T,)."""
    out, acc = np.empty_like(x), 0.0
    for t, v in enumerate(x):
        acc = decay * acc + v
        out[t] = acc
    return out


def run(model="rnn", seed=0, max_steps=None, time_limit=None, series="sunspots", fill="interpolate",
        progress=None):
    """``series``: a bundled series; ``fill``: how its gaps are filled (data/series.py).
    The whole standardised series is one sequence: inputs (1, T − 1, 1), targets the
    next values (1, T − 1, 1)."""
    if model != "rnn":
        raise ConfigError("univariate is the one-unit Elman RNN: model rnn")
    values = fill_missing(load_series(series), fill)
    x = Scaler(values).transform(values)
    train_cfg = budget(max_steps, time_limit, 500)
    net = SeqNet("rnn", 1, 1, 1, many_to_one=False, bias=False, seed=seed)
    inputs, targets = x[None, :-1, None], x[None, 1:, None]
    hist = fit(net, lambda s: (inputs, targets), mse, train=train_cfg,
               lr=1e-2, progress=progress)
    w = float(net.body.params["weight_hh_l0"][0, 0])
    u = float(net.body.params["weight_ih_l0"][0, 0])
    pred = net.forward(inputs)[0, :, 0]
    h = net.body.forward(inputs)[0][0, :, 0]
    e = ewma(x[:-1], w)
    linear = u * e
    corr = float(np.corrcoef(h, e)[0, 1]) if np.std(h) > 0 and np.std(e) > 0 else float("nan")
    gap = float(np.max(np.abs(h - linear)) / max(np.ptp(h), 1e-12))
    naive_mse = float(np.mean((x[:-1] - x[1:]) ** 2))
    return {"task": "univariate", "series": series, "w": w, "u": u,
            "training": {"steps": hist["steps"], "seconds": round(hist["seconds"], 2)},
            "metrics": {"rnn": {"mse": float(np.mean((pred - x[1:]) ** 2)), "corr_h_ewma": corr,
                                "max_gap_to_linear_recursion": gap},
                        "last_value": {"mse": naive_mse}},
            "_plot": {"h": h, "ewma": e, "x": x[:-1]}}


def plot(result, path):
    plt = pyplot()
    d = result["_plot"]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(d["x"], c="lightgray", label="series (standardised)")
    ax.plot(d["h"] / max(np.ptp(d["h"]), 1e-12), label="h_t (scaled)")
    ax.plot(d["ewma"] / max(np.ptp(d["ewma"]), 1e-12), ls="--", label=f"EWMA, decay w = {result['w']:.3f}")
    ax.set_title(f"two-weight RNN on {result['series']}: w = {result['w']:.3f}, u = {result['u']:.3f}")
    ax.legend()
    return save(fig, path)
