"""``adding`` and ``order`` — the long-time-lag problems of Hochreiter & Schmidhuber
(1997), at sequence length ``length`` (see data/synthetic.py for the generators).

adding: predict the sum of the two marked values (squared error); a test sequence
        is solved when |prediction − target| < 0.04.
order:  classify the order of the two relevant symbols (XX, XY, YX, YY; softmax
        cross-entropy); a test sequence is solved when the class is right.
Reported: the success rate on 2,560 fresh test sequences, the number of training
sequences used, and a trivial baseline (adding: always predict 1, the mean target;
order: chance, 25%).
"""
from __future__ import annotations

import numpy as np

from ..data.synthetic import adding_problem, temporal_order
from ..losses import mse, softmax_cross_entropy
from ..models.seq import SeqNet, check_fits, fit
from .common import budget, check_options, pyplot, save
from ..errors import ConfigError

N_TEST = 2560
ADDING_TOLERANCE = 0.04


def run(problem, model="lstm", seed=0, max_steps=None, time_limit=None, length=50, hidden_size=64,
        batch_size=32, lr=1e-2, progress=None):
    """``problem``: "adding" (inputs (B, length, 2), target (B, 1)) or "order" (inputs
    (B, length, 6), target (B,) one of 4 classes); ``hidden_size`` units, ``batch_size``
    sequences per step, Adam at ``lr``."""
    if problem not in ("adding", "order"):
        raise ConfigError(f"unknown long-time-lag problem {problem!r}")
    if model not in ("rnn", "lstm", "gru"):
        raise ConfigError("the long-time-lag problems are for model rnn, lstm or gru")
    check_options(sizes=dict(length=length, hidden_size=hidden_size, batch_size=batch_size), positive=dict(lr=lr))
    train_cfg = budget(max_steps, time_limit, 2000)
    rng = np.random.default_rng(seed)
    gen = adding_problem if problem == "adding" else temporal_order
    out = 1 if problem == "adding" else 4
    inputs = 2 if problem == "adding" else 6
    check_fits(model, inputs, hidden_size, out, max(batch_size, 512) * length, hidden_size=hidden_size,
               length=length)
    net = SeqNet(model, inputs, hidden_size, out, many_to_one=True, seed=seed)
    loss_fn = mse if problem == "adding" else softmax_cross_entropy
    hist = fit(net, lambda step: gen(rng, batch_size, length), loss_fn, train=train_cfg, lr=lr, progress=progress)
    x, y = gen(np.random.default_rng(seed + 10_000), N_TEST, length)
    preds = np.concatenate([net.forward(x[i:i + 512]) for i in range(0, N_TEST, 512)])
    if problem == "adding":
        success = float(np.mean(np.abs(preds[:, 0] - y[:, 0]) < ADDING_TOLERANCE))
        baseline = float(np.mean(np.abs(1.0 - y[:, 0]) < ADDING_TOLERANCE))
        extra = {"test_mse": float(np.mean((preds - y) ** 2))}
    else:
        success = float(np.mean(preds.argmax(-1) == y))
        baseline = 0.25
        extra = {}
    return {"task": problem, "model": model, "length": length,
            "training": {"steps": hist["steps"], "sequences": hist["steps"] * batch_size,
                         "seconds": round(hist["seconds"], 2)},
            "metrics": {model: {"success_rate": success, **extra},
                        "baseline": {"success_rate": baseline}},
            "_plot": {"losses": hist["losses"]}}


def plot(result, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    losses = np.asarray(result["_plot"]["losses"])
    k = max(1, len(losses) // 100)
    ax.plot(np.convolve(losses, np.ones(k) / k, mode="valid"))
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (moving average)")
    ax.set_title(f"{result['task']} problem, T = {result['length']}, {result['model']}: "
                 f"{result['metrics'][result['model']]['success_rate']:.1%} solved")
    return save(fig, path)
