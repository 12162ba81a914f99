"""Scoring a text with a character model: per-position log-probabilities, static or
with dynamic evaluation.

Layout: the M = N−1 predictions of ids[1:] from their prefixes are cut into S contiguous
streams run as one batch (time-major (L, S), the tail padded and masked), each from a
zero state — ``layout``. ``static_logprobs`` runs them in chunks with the state carried.

Dynamic evaluation (Krause et al. 2018, "Dynamic Evaluation of Neural Sequence Models",
their RMS variant with a decay toward the trained weights θ₀): the text is read as ONE
stream by default, in document order, in segments of ``seg_len`` steps; each segment is
scored first, then the model takes one gradient step on that segment's mean loss, so
every prediction is made by weights that have read only the text before it:

    θ ← θ − lr·√S · g / (rms_S + ε),   then   θ ← θ + min(decay · rms_S / r̄, 1) · (θ₀ − θ)

with each tensor's rms_S floored at RMS_FLOOR × its mean (below), S = 1 by default, and
r̄ the mean of the tensors' mean rms_S (each tensor counts once, a bias as much as a
weight matrix: r̄ is 4-5 times the mean over all weights of the default models, so the
decay a matrix sees is weaker than ``decay`` reads — the defaults below were chosen so).

``streams=S`` > 1 reads S contiguous pieces of the text side by side, g averaged over
them — S times fewer sequential steps, but NOT a sequential evaluation: the weights that
score stream s's later segments have stepped on the other streams' earlier segments,
text that comes after it in the document (and on the first input characters of stream
s + 1, which stream s then predicts). A review found it (2026-12-05); read as one stream
the story's 180 s models score better (test 1.939 / 1.918 against 1.944 / 1.925 at 6
streams) at 6.6x static scoring's time instead of 2.8x, both at segments of 20
(benchmarks/results/dynamic_eval.txt); at the segments of 64 chosen since, the story's
test text costs 4.2-5.7x (benchmarks/results/quality.txt).
It stays available for sweeps that want speed over that guarantee.

rms_S is the root-mean-square of that same gradient on the *training* text, for the same
number of streams S (``GradientStats``: g averaged over S independent streams has
E[g²] = μ² + σ²/S per weight, μ the mean gradient and σ² one stream's variance; both are
measured once on the training text, one stream's gradient and 64 streams' mean, so
rms_S = √(μ² + σ²/S) for any S): each step is measured against how large the gradient
usually is at the batch size the text is read in. The step grows as √S — the
square-root scaling rule for RMS-normalised updates (Malladi et al. 2022, "On the SDEs
and Scaling Rules for Adaptive Gradient Algorithms"): an average over more streams
points more reliably downhill, so it can go further. ``lr`` is therefore the step of a
text read as one stream. Measured (benchmarks/results/dynamic_eval.txt): on tiny
Shakespeare the best step does grow with S, if more slowly than √S (at 1, 6 and 56
streams the best one-stream lr is about 1e-3, 4e-4 and 3e-4); with √S the story at its
6 streams and Shakespeare at its 56 share their best lr, 3e-4, where without it the
story wanted half Shakespeare's step. The corpora still differ at equal S — read as one
stream at segments of 20 the story is best at 3e-4 to 6e-4 and hurt from 1e-3,
Shakespeare best at 1e-3. Longer segments move the story's best step up to Shakespeare's:
the defaults, segments of 64 at 1e-3 since 2026-12-05 (one stream), were chosen by the
lowest mean validation bits/char over both corpora's two 180 s models — 1.8667 against
1.8695 for segments of 20 at 6e-4 (story 1.7633 / 1.7668 against 1.7645 / 1.7653,
Shakespeare 1.9689 / 1.9679 against 1.9739 / 1.9744; 1.9702 / 1.9643 with the statistics
bounded by steps, STATS_STEPS below), in about two thirds of the time (fewer updates;
benchmarks/results/dynamic_eval.txt, sweep 8). With the statistics' one-stream samples
spread over the whole training text (``_mean_squares``, 2026-12-06) the mean is 1.8588
(story 1.7605 / 1.7457, Shakespeare 1.9670 / 1.9621), and 1e-3 with decay 0.02 stayed
best among 7e-4, 1e-3, 1.4e-3 and decays 0.02, 0.05 (sweep 9).
At one stream what follows is predicted by a model adapted to exactly what it has read,
and every character is scored before any update that has seen it. The model's weights
are restored afterwards.

The floor. A weight the training text almost never moved has an RMS near zero — the
output row of a character the model learned never to predict ('Z' in tiny Shakespeare:
RMS 1e-5 against 1e-3 for the head's median weight). When the scored text does use it,
the steps on that row are ten times the largest usual one, the predictions degrade, the
gradients grow, and every later step is larger still (300 times the usual largest three
segments on): tiny Shakespeare's test text went from 2.4 to 68 bits/char. Flooring each
tensor's RMS at a tenth of its mean bounds those steps; on the validation texts the
floor changed the gain by at most 0.0016 bits/char (0.01 to 0.1 alike; 0.3 began to
cost), and on the test text it removed the divergence and changed the runs that had
not diverged by at most 0.0004.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..activations import log_softmax
from ..errors import ConfigError, DataError
from ..kernels import decayed_step
from ..module import check_sizes, finite_real
from .charlm_config import check_fits

EPS = 1e-8
# dynamic evaluation's defaults, chosen on the validation text of trained runs of the default
# model, both corpora, two seeds (the decay on 300 s runs, the segment length and step on 180 s
# ones: benchmarks/dynamic_eval.py, benchmarks/results/dynamic_eval.txt; DYN_LR is the step at
# one stream, the default, √S times that at S streams)
DYN_LR, DYN_DECAY, DYN_SEG = 1e-3, 0.02, 64
RMS_FLOOR = 0.1          # each tensor's rms_S at least this times its mean (the module docstring)
# gradient_stats reads the training text as 64 streams, in the segments that start in their first 2,000
# steps (100 segments of 20, 32 of 64): a bound on the steps, not on the segments, so that longer segments
# do not multiply the first dynamic evaluation's cost (tiny Shakespeare at segments of 64: 17.6 s for 100
# segments, against 6.7 s at 20); the one-stream samples of those segments are spread over all 64 streams
STATS_STREAMS, STATS_STEPS = 64, 2000
# static scoring runs this many steps at a time, each chunk's activations dropped before the next: what it holds
# is one chunk's (tiny Shakespeare's 55.8k test characters, 56 streams: 62 MiB of allocations at peak (tracemalloc)
# against 406 MiB at 256 steps keeping the previous chunk's; `rnnlab eval`'s peak RSS 110 MiB against 435 MiB; the
# same speed, and the same scores to float32 rounding, about 1e-9 bits/char)
CHUNK = 64


def layout(ids, streams=None):
    """(inp, tgt, valid, S, L): (L, S) inputs, targets and mask of the M predictions in
    S streams (S = min(64, ⌈M/1000⌉) unless given); ``ids`` a 1-D integer array."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise ConfigError(f"ids must be a 1-D array of integer ids, got {ids.dtype} {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    M = len(ids) - 1
    if M < 1:
        raise DataError("need at least two characters to evaluate")
    if streams is not None and (isinstance(streams, bool) or not isinstance(streams, (int, np.integer))
                                or streams < 1):
        raise ConfigError(f"streams must be None or a positive integer, got {streams!r}")
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
def _evaluating(model, uses_grads=False):
    """Eval mode (no dropout) inside; after, the previous mode, and the model's gradients
    as they were before (``uses_grads``: the block runs backward passes — a caller
    accumulating gradients over several batches loses nothing to an evaluation between
    them). What the evaluation's forwards kept for backward is dropped
    (Module.forget_forward): a backward after it raises instead of pairing the caller's
    gradient with the evaluation's activations."""
    was_training = model.training
    kept = {k: g.copy() for k, g in model.grads.items()} if uses_grads else None
    model.eval()
    try:
        yield
    finally:
        if kept is not None:
            for k, g in model.grads.items():
                g[...] = kept[k]
        model.forget_forward()
        model.train(was_training)


def static_logprobs(model, ids, streams=None, chunk=CHUNK):
    """ln p of every prediction (M,), dropout off, weights unchanged; ``chunk`` steps run
    at a time, the state carried from one to the next."""
    check_sizes(None, chunk=chunk)
    inp, tgt, valid, S, L = layout(ids, streams)
    out = np.empty((L, S))
    state = None
    with _evaluating(model):
        for s in range(0, L, chunk):
            out[s:s + chunk], _, state = _picked(model, inp[s:s + chunk], tgt[s:s + chunk], state)
            model.forget_forward()            # nothing runs backward here: its buffers can go
    return _flat(out, valid)


def _check_segment(model, streams, steps, seg_len, what):
    """ConfigError, before anything is allocated, unless a forward and backward pass over
    ``streams`` × ``steps`` positions at once fits in memory (``--dyn-seg`` is bounded by
    the text, not by the machine: 64 streams of tiny Shakespeare's training text at one
    segment of 100,000 would hold about 30 GiB of activations)."""
    shape = f"{streams:,} stream{'s' * (streams > 1)} × {steps:,} steps at once"
    check_fits(model.config, len(model.vocab), model.dtype.itemsize, training=False, window=streams * steps,
               what=f"dyn_seg={seg_len} ({what}: {shape})")


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


def _column(state, j):
    """Stream j's part of a carried state (a copy), as a batch of one."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s[:, j:j + 1].copy() for s in state)
    return state[:, j:j + 1].copy()


def _mean_squares(model, ids, seg_len, wide, max_steps):
    """Mean g² per parameter over the segments of ``ids`` read as ``wide`` streams that
    start in the first ``max_steps`` steps: m_W of the gradient averaged over the W streams
    that hold text (W = min(wide, len(ids) − 1) less any stream the layout left as padding
    only), and m₁ of one stream's gradient alone — one stream per segment, at that segment
    and from a state the batched pass also has: segment n of N from stream ⌊n·W/N⌋, so that
    the samples spread over the whole text (stream n mod W, before 2026-12-06, read only the
    streams of the text's first half once N ≤ W/2). Returns (m₁, m_W, W). (The one-stream
    passes run after the batched ones, from the states kept for them: alternating batch
    sizes would make the layers reallocate their work arrays at every call.)"""
    inp, tgt, valid, S, L = layout(ids, wide)
    _check_segment(model, S, min(seg_len, L), seg_len, "the gradient statistics on the training text")
    W = int(valid.any(axis=0).sum())
    m1 = {k: np.zeros(p.shape, np.float64) for k, p in model.params.items()}
    mw = {k: np.zeros(p.shape, np.float64) for k, p in model.params.items()}
    square = {k: np.empty(p.shape, np.float64) for k, p in model.params.items()}

    def add_squares(into):
        for k, g in model.grads.items():
            into[k] += np.square(g, out=square[k], dtype=np.float64)

    starts = range(0, min(L, max_steps), seg_len)
    columns = []                                        # (segment, stream, its state) for m₁
    state = None
    with _evaluating(model, uses_grads=True):
        for n, s in enumerate(starts):
            seg, j = slice(s, s + seg_len), n * W // len(starts)    # spread over the W streams of text
            if valid[seg, j].any():
                columns.append((seg, j, _column(state, j)))
            _, state = _segment_grad(model, inp[seg], tgt[seg], valid[seg], state)
            state = _detach(state)
            add_squares(mw)
        for seg, j, column in columns:
            _segment_grad(model, inp[seg, j:j + 1], tgt[seg, j:j + 1], valid[seg, j:j + 1], column)
            add_squares(m1)
    n1, nw = max(len(columns), 1), max(len(starts), 1)
    return {k: v / n1 for k, v in m1.items()}, {k: v / nw for k, v in mw.items()}, W


class GradientStats:
    """Per-weight gradient statistics of the training text: ``mu2`` (μ², the squared mean
    gradient) and ``var`` (σ², one stream's variance), dicts of arrays shaped like the
    parameters; ``rms(S)`` the RMS gradient of a segment averaged over S streams, and
    ``step_rms(S)`` the same floored for the dynamic step (RMS_FLOOR × the tensor's mean,
    or, for a tensor the text never moved, × r̄: the mean of the tensors' means)."""

    def __init__(self, mu2, var):
        self.mu2, self.var = mu2, var

    def rms(self, streams):
        return {k: np.sqrt(self.mu2[k] + self.var[k] / streams) for k in self.mu2}

    def step_rms(self, streams):
        rms = self.rms(streams)
        overall = np.mean([r.mean() for r in rms.values()])
        return {k: np.maximum(r, RMS_FLOOR * (r.mean() if r.mean() > 0 else overall)) for k, r in rms.items()}


def gradient_stats(model, ids, seg_len=DYN_SEG, wide=STATS_STREAMS, max_steps=STATS_STEPS):
    """GradientStats from the training ``ids`` (``_mean_squares``): σ² = (m₁ − m_W)·W/(W − 1),
    μ² = m_W − σ²/W, both clipped at 0 (a text read as one stream, W = 1, gives σ² = 0)."""
    check_sizes("gradient_stats", seg_len=seg_len, wide=wide, max_steps=max_steps)
    with np.errstate(all="ignore"):           # overflow is checked below, once, not warned per array
        m1, mw, W = _mean_squares(model, ids, seg_len, wide, max_steps)
    if not all(np.isfinite(m).all() for m in (*m1.values(), *mw.values())):
        raise ConfigError("the model's gradients on the training text overflow (weights too large for "
                          "float arithmetic): dynamic evaluation cannot scale its steps by them")
    var = {k: np.maximum((m1[k] - mw[k]) * W / (W - 1), 0.0) if W > 1 else np.zeros_like(m1[k]) for k in m1}
    mu2 = {k: np.maximum(mw[k] - var[k] / W, 0.0) for k in m1}
    return GradientStats(mu2, var)


def check_train_text(train_text):
    """ConfigError unless ``train_text`` is a non-empty str (the gradient statistics' text)."""
    if not isinstance(train_text, str) or not train_text:
        raise ConfigError("train_text: dynamic evaluation needs the training text, a str "
                          "(it scales each step by the gradient statistics gathered there)")


def check_dynamic(lr, decay, seg_len):
    for name, v, top in (("dyn_lr", lr, np.inf), ("dyn_decay", decay, 1.0)):
        if not finite_real(v) or not 0 <= v <= top:
            raise ConfigError(f"{name} must be a finite number >= 0{'' if top == np.inf else f' and <= {top:g}'}"
                              f", got {v!r}")
    check_sizes(None, dyn_seg=seg_len)


def _decayed_step(p, g, step, rate, theta0, work):
    """p ← p − step⊙g, then p ← p + rate⊙(θ₀ − p), in place: one compiled pass where the
    extension is built, else these NumPy passes (the same bits; ``work`` like p)."""
    if not decayed_step(p, g, step, rate, theta0):
        p -= np.multiply(step, g, out=work)
        np.subtract(theta0, p, out=work)
        p += np.multiply(rate, work, out=work)


def dynamic_logprobs(model, ids, stats, *, lr=DYN_LR, decay=DYN_DECAY, seg_len=DYN_SEG, streams=1,
                     restore=True):
    """ln p of every prediction (M,) under dynamic evaluation (see the module docstring),
    ``stats`` the GradientStats of the training text; ``streams``: 1 (sequential, the
    default), or S > 1 pieces read side by side (faster, not sequential: the module
    docstring). The model's weights are the trained ones again afterwards — unless
    ``restore`` is False (``rnnlab sample --dynamic`` keeps the weights adapted to the
    prime); an exception on the way restores them too."""
    check_dynamic(lr, decay, seg_len)
    inp, tgt, valid, S, L = layout(ids, streams)
    _check_segment(model, S, min(seg_len, L), seg_len, "dynamic evaluation of the text")
    rms = stats.step_rms(S)
    params = model.params
    theta0 = {k: p.copy() for k, p in params.items()}
    mean_rms = np.mean([r.mean() for r in rms.values()])
    out = np.empty((L, S))
    state, diverged = None, False
    # a step size far too large overflows the weights; that is reported below, not warned about
    with _evaluating(model, uses_grads=True), np.errstate(over="ignore", invalid="ignore"):
        rate = {k: np.minimum(decay * rms[k] / max(mean_rms, EPS), 1.0).astype(params[k].dtype) for k in params}
        step = {k: (lr * np.sqrt(S) / (rms[k] + EPS)).astype(params[k].dtype) for k in params}
        work = {k: np.empty_like(p) for k, p in params.items()}        # the update without temporaries
        try:
            for s in range(0, L, seg_len):
                picked, state = _segment_grad(model, inp[s:s + seg_len], tgt[s:s + seg_len],
                                              valid[s:s + seg_len], state)
                out[s:s + seg_len] = picked
                state = _detach(state)
                grads = model.grads
                for k, p in params.items():
                    _decayed_step(p, grads[k], step[k], rate[k], theta0[k], work[k])
            diverged = not (np.isfinite(out[valid]).all()          # the scores, and the weights the
                            and all(np.isfinite(p).all() for p in params.values()))   # last update left
        except BaseException:                         # interrupted half-way: the trained weights
            restore = True
            raise
        finally:
            if restore or diverged:
                for k, p in params.items():
                    p[...] = theta0[k]
    if diverged:
        raise ConfigError(f"non-finite scores or weights: the step dyn_lr={lr!r} is too large for "
                          "dynamic evaluation of this model")
    return _flat(out, valid)
