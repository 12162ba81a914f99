"""``classify`` — many-to-one sequence classification: scikit-learn's 8×8 handwritten
digits read row by row as 8-step sequences of 8 features (pixel values / 16). A
recurrent net classifies from its last hidden state (softmax cross-entropy); the
feedforward baseline is an MLP on the flattened 64 pixels (same hidden size, same
training budget). The split is a seeded random 75% / 25%; chance is 10%.
"""
from __future__ import annotations

import numpy as np

from ..data.digits import load_digits
from ..layers import Linear, Sequential, Tanh
from ..losses import softmax_cross_entropy
from ..metrics import accuracy
from ..models.seq import SeqNet, check_fits, fit
from ..trainer import TrainConfig
from .common import budget, check_options, pyplot, save
from ..errors import ConfigError


def run(model="lstm", seed=0, max_steps=None, time_limit=None, hidden_size=64, batch_size=64,
        test_frac=0.25, progress=None):
    """``hidden_size`` units (the recurrent net's and the MLP's); each step trains on
    ``batch_size`` digits (inputs (B, 8, 8): 8 rows of 8 pixels / 16, targets (B,) class
    ids); ``test_frac`` in (0, 1): the share of the 1,797 digits held out."""
    if model not in ("rnn", "lstm", "gru"):
        raise ConfigError("classify compares a recurrent net (model rnn|lstm|gru) with an MLP baseline")
    check_options(sizes=dict(hidden_size=hidden_size, batch_size=batch_size), fractions=dict(test_frac=test_frac))
    images, labels = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    n_test = int(round(len(labels) * test_frac))
    if not 0 < n_test < len(labels):
        raise ConfigError(f"test_frac={test_frac} leaves {n_test} of the {len(labels)} digits for testing")
    test, train = order[:n_test], order[n_test:]
    train_cfg = budget(max_steps, time_limit, 400)

    def batches(step):
        idx = train[rng.integers(0, len(train), size=batch_size)]
        return images[idx], labels[idx]

    check_fits(model, 8, hidden_size, 10, 8 * max(batch_size, n_test), hidden_size=hidden_size)
    net = SeqNet(model, 8, hidden_size, 10, many_to_one=True, seed=seed)
    hist = fit(net, batches, softmax_cross_entropy, train=train_cfg,
               lr=5e-3, progress=progress)
    acc = accuracy(net.forward(images[test]).argmax(-1), labels[test])

    mlp = Sequential(Linear(64, hidden_size, dtype=np.float64, seed=seed), Tanh(),
                     Linear(hidden_size, 10, dtype=np.float64, seed=seed + 1))
    flat = images.reshape(len(images), 64)
    mlp_hist = fit(mlp, lambda s: (flat[b := train[rng.integers(0, len(train), size=batch_size)]], labels[b]),
                   softmax_cross_entropy,
                   train=TrainConfig(max_steps=max(hist["steps"], 1), eval_every=None), lr=5e-3)
    mlp_acc = accuracy(mlp.forward(flat[test]).argmax(-1), labels[test])
    return {"task": "classify", "model": model, "n_train": len(train), "n_test": n_test,
            "training": {"steps": hist["steps"], "seconds": round(hist["seconds"], 2)},
            "metrics": {model: {"accuracy": acc}, "mlp": {"accuracy": mlp_acc}, "chance": {"accuracy": 0.1}},
            "_plot": {"losses": hist["losses"], "mlp_losses": mlp_hist["losses"]}}


def plot(result, path):
    plt = pyplot()
    d = result["_plot"]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(d["losses"], label=f"{result['model']} (rows as a sequence)")
    ax.plot(d["mlp_losses"], label="MLP (flattened image)")
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.set_title("digits: " + ", ".join(f"{k} {v['accuracy']:.1%}" for k, v in result["metrics"].items()))
    ax.legend()
    return save(fig, path)
