"""``detect`` — the course's sequence detector.

A stream of random letters a–z in which ``word`` is inserted at random; the input is
one-hot over the word's distinct letters (all zeros for any other letter); the
target is 1 exactly at the last letter of each occurrence of the word. A recurrent
net with one sigmoid output per step is trained on random 64-letter streams
(binary cross-entropy); a detection is an output above ``threshold``. Precision,
recall and F1 are measured on a fresh held-out stream of 20,000 letters run as
one sequence. The chance baseline flags positions at random at the true rate.
"""
from __future__ import annotations

import numpy as np

from ..data.synthetic import detector_inputs, detector_stream
from ..losses import bce_with_logits
from ..activations import sigmoid
from ..metrics import precision_recall_f1
from ..models.seq import SeqNet, check_fits, fit
from .common import budget, check_options, pyplot, save
from ..errors import ConfigError


def run(model="rnn", seed=0, max_steps=None, time_limit=None, word="udacity", threshold=0.9,
        hidden_size=32, batch_size=32, seq_len=64, eval_length=20_000, progress=None):
    """``word``: lowercase letters, at most ``seq_len`` of them; ``threshold`` in (0, 1);
    ``hidden_size`` units; each step trains on ``batch_size`` streams of ``seq_len``
    letters (inputs (B, seq_len, distinct letters of word), targets (B, seq_len, 1));
    evaluated on one stream of ``eval_length`` letters."""
    if model not in ("rnn", "lstm", "gru"):
        raise ConfigError("detect runs over a stream: model rnn, lstm or gru")
    check_options(sizes=dict(hidden_size=hidden_size, batch_size=batch_size, seq_len=seq_len,
                             eval_length=eval_length), fractions=dict(threshold=threshold))
    if not isinstance(word, str) or not word or not all("a" <= ch <= "z" for ch in word):
        raise ConfigError(f"word must be lowercase letters a-z (the stream's letters), got {word!r}")
    if len(word) > seq_len:
        raise ConfigError(f"word must be at most {seq_len} letters (the training windows' length), "
                          f"got {len(word)}")
    train_cfg = budget(max_steps, time_limit, 600)
    rng = np.random.default_rng(seed)
    check_fits(model, len(set(word)), hidden_size, 1, max(batch_size * seq_len, eval_length),
               hidden_size=hidden_size)
    net = SeqNet(model, len(set(word)), hidden_size, 1, many_to_one=False, seed=seed)

    def batches(step):
        xs, ys = [], []
        for _ in range(batch_size):
            text, labels = detector_stream(rng, seq_len, word)
            xs.append(detector_inputs(text, word))
            ys.append(labels)
        return np.stack(xs), np.stack(ys)[:, :, None]

    history = fit(net, batches, bce_with_logits, train=train_cfg,
                  progress=progress)
    eval_rng = np.random.default_rng(seed + 10_000)
    text, labels = detector_stream(eval_rng, eval_length, word)
    prob = sigmoid(net.forward(detector_inputs(text, word)[None]))[0, :, 0]
    p, r, f1 = precision_recall_f1(prob > threshold, labels > 0)
    rate = float(labels.mean())
    chance = precision_recall_f1(eval_rng.random(labels.size) < rate, labels > 0)
    return {"task": "detect", "word": word, "threshold": threshold, "model": model,
            "training": {"steps": history["steps"], "seconds": round(history["seconds"], 2),
                         "sequences": history["steps"] * batch_size},
            "metrics": {model: {"precision": p, "recall": r, "f1": f1},
                        "chance": {"precision": chance[0], "recall": chance[1], "f1": chance[2]}},
            "positives": int(labels.sum()), "eval_length": eval_length,
            "_plot": {"text": text[:300], "prob": prob[:300], "labels": labels[:300],
                      "losses": history["losses"]}}


def plot(result, path):
    plt = pyplot()
    d = result["_plot"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 5))
    a.plot(d["prob"], label="detector output")
    a.plot(d["labels"], "o", ms=3, label="end of the word")
    a.axhline(result["threshold"], ls="--", c="gray", lw=0.8)
    a.set_title(f"detecting '{result['word']}' in a held-out stream (first 300 letters)")
    a.legend(loc="upper right")
    b.plot(d["losses"])
    b.set_xlabel("training step")
    b.set_ylabel("BCE loss")
    return save(fig, path)
