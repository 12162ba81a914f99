"""``forecast`` — time-series forecasting on real data.

A window of the past ``window`` values predicts the value ``horizon`` steps after it.
The split is chronological: the last ``test_frac`` of the targets are held out.
Values are standardised with the mean and standard deviation of the training part
only. Models: rnn, lstm, gru (many-to-one over the window), tdnn (the windowed
feedforward net), and always the two baselines — a linear autoregression (least
squares on the same window, with intercept) and the naive last-value forecast.
RMSE and MAE are reported in the series' own units on the held-out tail.
"""
from __future__ import annotations

import numpy as np

from ..data.series import Scaler, fill_missing, load_series, make_windows, read_csv_column, window_count
from ..errors import ConfigError, DataError
from ..losses import mse
from ..metrics import mae, rmse
from ..models.seq import SeqNet, check_fits, fit
from .common import budget, check_options, pyplot, save


def load(series=None, csv=None, column=None, fill="none", encoding=None):
    """(values, name): the bundled ``series`` (default sunspots), or ``column`` of the
    CSV file ``csv`` read in ``encoding`` (default UTF-8) — one source, and column= and
    encoding= only with csv=."""
    if csv is not None:
        if series is not None:
            raise ConfigError("series= and csv= are two sources: give one")
        if not column:
            raise DataError("csv= needs column=NAME, the column to read")
        values, name = read_csv_column(csv, column, encoding or "utf-8"), f"{csv}:{column}"
    else:
        for option, value in (("column", column), ("encoding", encoding)):
            if value is not None:
                raise ConfigError(f"{option}={value} applies to a CSV file: give csv= too")
        series = "sunspots" if series is None else series
        values, name = load_series(series), series
    return fill_missing(values, fill), name


def run(model="lstm", seed=0, max_steps=None, time_limit=None, series=None, csv=None, column=None,
        window=10, horizon=1, fill="none", test_frac=0.2, hidden_size=32, batch_size=32, progress=None,
        encoding=None):
    """``series``: a bundled series (default sunspots), or ``csv`` a file and ``column``
    its column (the file in ``encoding``, default UTF-8); ``fill``: none, ffill,
    interpolate or drop (data/series.py); ``window`` past values (inputs (B, window, 1))
    predict the value ``horizon`` steps after them (targets (B, 1)); ``test_frac`` in
    (0, 1): the held-out tail of the windows; ``hidden_size`` units, ``batch_size``
    windows per step. model: rnn, lstm, gru or tdnn."""
    check_options(sizes=dict(window=window, horizon=horizon, hidden_size=hidden_size, batch_size=batch_size),
                  fractions=dict(test_frac=test_frac))
    values, name = load(series, csv, column, fill, encoding)
    n = window_count(len(values), window, horizon)          # the series' length before the memory
    # the network reads a batch, or the test windows at once; the windows of the whole
    # series (X, its scaled copy, the AR design matrix and lstsq's copy) are data
    check_fits(model, 1, hidden_size, 1, max(batch_size, round(n * test_frac) + 1) * window,
               tdnn_window=window, data=4 * 8 * n * (window + 1), hidden_size=hidden_size, window=window)
    X, y, target_index = make_windows(values, window, horizon)
    n_test = max(1, int(round(len(y) * test_frac)))
    if len(y) - n_test < 2:
        raise DataError(f"the series is too short for test_frac={test_frac}: of its {len(y)} windows "
                        f"{n_test} are held out, which leaves fewer than 2 for training")
    split = target_index[len(y) - n_test]              # first held-out time index
    scaler = Scaler(values[:split])
    Xs, ys = scaler.transform(X), scaler.transform(y)
    Xtr, ytr, Xte, yte = Xs[:-n_test], ys[:-n_test], Xs[-n_test:], y[-n_test:]

    train_cfg = budget(max_steps, time_limit, 500)
    rng = np.random.default_rng(seed)
    net = SeqNet(model, 1, hidden_size, 1, many_to_one=True, window=window, seed=seed)

    def batches(step):
        idx = rng.integers(0, len(ytr), size=min(batch_size, len(ytr)))
        return Xtr[idx][:, :, None], ytr[idx][:, None]

    history = fit(net, batches, mse, train=train_cfg, lr=3e-3, progress=progress)
    pred_model = scaler.inverse(net.forward(Xte[:, :, None])[:, 0])

    A = np.hstack([Xtr, np.ones((len(Xtr), 1))])       # linear AR by least squares
    coef = np.linalg.lstsq(A, ytr, rcond=None)[0]
    pred_ar = scaler.inverse(np.hstack([Xte, np.ones((len(Xte), 1))]) @ coef)
    pred_naive = X[-n_test:, -1]

    metrics = {m: {"rmse": rmse(p, yte), "mae": mae(p, yte)}
               for m, p in ((model, pred_model), ("linear_ar", pred_ar), ("last_value", pred_naive))}
    return {"task": "forecast", "series": name, "model": model, "window": window, "horizon": horizon,
            "fill": fill, "n_train_windows": len(ytr), "n_test": n_test,
            "training": {"steps": history["steps"], "seconds": round(history["seconds"], 2)},
            "metrics": metrics,
            "_plot": {"truth": yte, "pred": pred_model, "ar": pred_ar, "naive": pred_naive,
                      "history": values[:split][-3 * n_test:]}}


def plot(result, path):
    plt = pyplot()
    d = result["_plot"]
    fig, ax = plt.subplots(figsize=(10, 4))
    n_hist = len(d["history"])
    ax.plot(range(n_hist), d["history"], c="gray", lw=0.8, label="training part")
    xs = range(n_hist, n_hist + len(d["truth"]))
    ax.plot(xs, d["truth"], c="black", label="truth")
    ax.plot(xs, d["pred"], label=f"{result['model']} forecast")
    ax.plot(xs, d["ar"], ls="--", label="linear AR")
    ax.set_title(f"{result['series']}: window {result['window']}, horizon {result['horizon']}")
    ax.legend()
    return save(fig, path)
