"""Scoring a text with a character model: per-position log-probabilities, static or
with dynamic evaluation.

Layout: the M = N−1 predictions of ids[1:] from their prefixes are cut into S contiguous
streams run as one batch (time-major (L, S), the tail padded and masked), each from a
zero state — ``layout``. ``static_logprobs`` runs them in chunks with the state carried.

Dynamic evaluation (Krause et al. 2018, "Dynamic Evaluation of Neural Sequence Models",
their RMS variant with a decay toward the trained weights θ₀): the streams are read in
segments of ``seg_len`` steps; each segment is scored first, then the model takes one
gradient step on that segment's mean loss (g, averaged over the S streams):

    θ ← θ − lr · g / (rms_S + ε) + decay · (rms_S / mean(rms_S)) · (θ₀ − θ)   (decay factor ≤ 1)

rms_S is the root-mean-square of that same gradient on the *training* text, for the same
number of streams S (``GradientStats``: g averaged over S independent streams has
E[g²] = μ² + σ²/S per weight, μ the mean gradient and σ² one stream's variance; both are
measured once, at one stream and at 64, so rms_S = √(μ² + σ²/S) for any S). A step size
then means the same on a short text read as 6 streams and a long one read as 56: each
step is measured against how large the gradient usually is at that batch size. What
follows is predicted by a model adapted to what it has just read, and every character
is scored before any update that has seen it. The model's weights are restored
afterwards.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..activations import log_softmax
from ..errors import ConfigError, DataError

EPS = 1e-8


def layout(ids, streams=None):
    """(inp, tgt, valid, S, L): (L, S) inputs, targets and mask of the M predictions in
    S streams (S = min(64, ⌈M/1000⌉) unless given)."""
    ids = np.asarray(ids, np.int64)
    M = len(ids) - 1
    if M < 1:
        raise DataError("need at least two characters to evaluate")
    S = min(streams or min(64, -(-M // 1000)), M)
    L = -(-M // S)
    pad = S * L - M
    inp = np.concatenate([ids[:-1], np.zeros(pad, np.int64)]).reshape(S, L).T
    tgt = np.concatenate([ids[1:], np.zeros(pad, np.int64)]).reshape(S, L).T
    valid = np.concatenate([np.ones(M, bool), np.zeros(pad, bool)]).reshape(S, L).T
    return inp, tgt, valid, S, L


def _flat(per_step, valid):
    """(L, S) values → the M predictions in text order."""
    return per_step.T[valid.T]


def _picked(model, inp, tgt, state):
    """Log-probabilities (float64) of the targets, the log-softmax and the new state."""
    logits, state = model.forward(inp, state)
    logp = log_softmax(logits.astype(np.float64), axis=-1)
    return np.take_along_axis(logp, tgt[..., None], axis=-1)[..., 0], logp, state


@contextmanager
def _evaluating(model):
    """Eval mode (no dropout) inside, the previous mode and no gradients left after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.zero_grad()
        model.train(was_training)


def static_logprobs(model, ids, streams=None, chunk=256):
    """ln p of every prediction (M,), dropout off, weights unchanged."""
    inp, tgt, valid, S, L = layout(ids, streams)
    out = np.empty((L, S))
    state = None
    with _evaluating(model):
        for s in range(0, L, chunk):
            out[s:s + chunk], _, state = _picked(model, inp[s:s + chunk], tgt[s:s + chunk], state)
    return _flat(out, valid)


def _segment_grad(model, inp, tgt, valid, state):
    """Score a segment, then put the gradient of its mean loss into model.grads."""
    picked, logp, new_state = _picked(model, inp, tgt, state)
    n = max(int(valid.sum()), 1)
    d = np.exp(logp)                                     # softmax − one-hot, masked, / n
    np.put_along_axis(d, tgt[..., None], np.take_along_axis(d, tgt[..., None], -1) - 1.0, -1)
    d *= (valid / n)[..., None]
    model.zero_grad()
    model.backward(d.astype(model.dtype))
    return picked, new_state


def _detach(state):
    if state is None:
        return None
    return tuple(s.copy() for s in state) if isinstance(state, tuple) else state.copy()


def _mean_square_gradient(model, ids, seg_len, streams, max_segments):
    """{parameter: mean g²} over up to ``max_segments`` segments of ``ids`` read as
    ``streams`` streams, and the stream count the layout gave."""
    inp, tgt, valid, S, L = layout(ids, streams)
    ms = {k: np.zeros(p.shape, np.float64) for k, p in model.params.items()}
    state, count = None, 0
    with _evaluating(model):
        for s in range(0, min(L, seg_len * max_segments), seg_len):
            _, state = _segment_grad(model, inp[s:s + seg_len], tgt[s:s + seg_len], valid[s:s + seg_len],
                                     state)
            state = _detach(state)
            for k, g in model.grads.items():
                ms[k] += np.square(g, dtype=np.float64)
            count += 1
    return {k: v / max(count, 1) for k, v in ms.items()}, S


class GradientStats:
    """Per-weight gradient statistics of the training text: ``mu2`` (μ², the squared mean
    gradient) and ``var`` (σ², one stream's variance), dicts of arrays shaped like the
    parameters; ``rms(S)`` the RMS gradient of a segment averaged over S streams."""

    def __init__(self, mu2, var):
        self.mu2, self.var = mu2, var

    def rms(self, streams):
        return {k: np.sqrt(self.mu2[k] + self.var[k] / streams) for k in self.mu2}


def gradient_stats(model, ids, seg_len=20, wide=64, max_segments=100):
    """GradientStats from the training ``ids``: mean g² read as one stream (m₁) and as
    ``wide`` streams (m_W); σ² = (m₁ − m_W)·W/(W − 1), μ² = m_W − σ²/W, both clipped at 0
    (W: the stream count the text allows; a one-character text gives W = 1 and σ² = 0)."""
    m1, _ = _mean_square_gradient(model, ids, seg_len, 1, max_segments)
    mw, W = _mean_square_gradient(model, ids, seg_len, wide, max_segments)
    var = {k: np.maximum((m1[k] - mw[k]) * W / (W - 1), 0.0) if W > 1 else np.zeros_like(m1[k]) for k in m1}
    mu2 = {k: np.maximum(mw[k] - var[k] / W, 0.0) for k in m1}
    return GradientStats(mu2, var)


def check_dynamic(lr, decay, seg_len):
    for name, v in (("dyn_lr", lr), ("dyn_decay", decay)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (np.isfinite(v) and v >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
    if isinstance(seg_len, bool) or not isinstance(seg_len, int) or seg_len < 1:
        raise ConfigError(f"dyn_seg must be a positive integer, got {seg_len!r}")


def dynamic_logprobs(model, ids, stats, *, lr=1e-3, decay=0.02, seg_len=20, streams=None, restore=True):
    """ln p of every prediction (M,) under dynamic evaluation (see the module docstring),
    ``stats`` the GradientStats of the training text;
    the model's weights are the trained ones again afterwards — unless ``restore`` is
    False (``rnnlab sample --dynamic`` keeps the weights adapted to the prime)."""
    check_dynamic(lr, decay, seg_len)
    inp, tgt, valid, S, L = layout(ids, streams)
    rms = stats.rms(S)
    params = model.params
    theta0 = {k: p.copy() for k, p in params.items()}
    mean_rms = np.mean([r.mean() for r in rms.values()])
    rate = {k: np.minimum(decay * rms[k] / max(mean_rms, EPS), 1.0).astype(params[k].dtype) for k in params}
    step = {k: (lr / (rms[k] + EPS)).astype(params[k].dtype) for k in params}
    out = np.empty((L, S))
    state = None
    with _evaluating(model):
        try:
            for s in range(0, L, seg_len):
                picked, state = _segment_grad(model, inp[s:s + seg_len], tgt[s:s + seg_len],
                                              valid[s:s + seg_len], state)
                out[s:s + seg_len] = picked
                state = _detach(state)
                grads = model.grads
                for k, p in params.items():
                    p -= step[k] * grads[k]
                    p += rate[k] * (theta0[k] - p)
        finally:
            if restore:
                for k, p in params.items():
                    p[...] = theta0[k]
    return _flat(out, valid)
