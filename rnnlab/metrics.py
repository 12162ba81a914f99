"""Language-model and prediction metrics.

loss (nats/char) L = −(1/N) Σ ln p(x_t | x_<t);  bits/char = L / ln 2;  perplexity = e^L.
"""
from __future__ import annotations

import math

import numpy as np


def bits_per_char(nats):
    return nats / math.log(2)


PERPLEXITY_CAP = 700.0      # e^700 ≈ 1e304: ``perplexity`` saturates there, so JSON stays finite


def perplexity(nats):
    """e^L, saturating at e^PERPLEXITY_CAP (a diverged model's loss can be far larger)."""
    return math.exp(min(nats, PERPLEXITY_CAP))


def describe_lm(m):
    """``lm_metrics``' numbers for people: "L nats/char, B bits/char, perplexity P" — four
    decimals up to a million, exponent form beyond (a diverged model), and the perplexity
    as ``e^L`` where ``perplexity`` saturates."""
    ppl = f"e^{m['loss']:.4g}" if m["loss"] >= PERPLEXITY_CAP else readable(m["perplexity"], 3)
    return f"{readable(m['loss'])} nats/char, {readable(m['bpc'])} bits/char, perplexity {ppl}"


def readable(x, places=4):
    """``x`` with ``places`` decimals up to a million, in exponent form beyond."""
    return f"{x:.{places}f}" if abs(x) < 1e6 else f"{x:.4g}"


def lm_metrics(nats, chars):
    """The dict every LM evaluation reports (CLI ``--json`` keys)."""
    return {"loss": nats, "bpc": bits_per_char(nats), "perplexity": perplexity(nats), "chars": int(chars)}


def accuracy(pred, target):
    return float(np.mean(np.asarray(pred) == np.asarray(target)))


def rmse(pred, target):
    d = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    return float(np.sqrt(np.mean(d * d)))


def mae(pred, target):
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(target, np.float64))))


def precision_recall_f1(pred, target):
    pred, target = np.asarray(pred, bool), np.asarray(target, bool)
    tp = int(np.sum(pred & target))
    p = tp / max(int(pred.sum()), 1)
    r = tp / max(int(target.sum()), 1)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f1
