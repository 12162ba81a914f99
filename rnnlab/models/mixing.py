"""Mixing the character model with the Kneser-Ney n-gram, as RNN language-model
toolkits do:

    p(w | h) = λ_b · p_rnn(w | h) + (1 − λ_b) · p_ngram(w | h)

with one weight λ_b per bucket b of the n-gram's context count c_N(h •) (how much
evidence the n-gram has for this context: buckets 0, 1, 2–3, 4–7, ... , ≥ 512). The
weights are fitted by EM on the validation tail of the training text only — never on
the text being scored: λ_b ← mean over the bucket's positions of the posterior
λ_b p_rnn / (λ_b p_rnn + (1 − λ_b) p_ngram).

The n-gram is trained on the same training split with the model's vocabulary, so both
distributions cover the same characters. A run keeps its mixture in ``ngram.npz``
(``rnnlab train --ngram N``): the counts, the λs and the validation tail they were
fitted on, as plain arrays (no pickle), read back with every header checked.
"""
from __future__ import annotations

import numpy as np

from .. import checkpoint
from ..errors import CheckpointError
from ..memory import available_memory
from ..ngram import MAX_ORDER, MIN_DISCOUNT, KneserNeyLM
from .scoring import static_logprobs

EDGES = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
FILE = "ngram.npz"


def buckets(context_counts):
    """Bucket index of each context count: 0 for 0, then one bucket per power of two."""
    return np.searchsorted(EDGES, np.asarray(context_counts), side="right")


class NgramMixture:
    """``ngram``: a fitted KneserNeyLM over the model's vocabulary; ``lambdas`` (B,)."""

    def __init__(self, ngram, lambdas=None, val_text=""):
        self.ngram, self.val_text = ngram, val_text
        self.lambdas = np.full(len(EDGES) + 1, 0.5) if lambdas is None else np.asarray(lambdas, np.float64)

    def tune(self, logp_rnn, logp_ng, ctx, iters=100):
        """EM for the λs on aligned per-position log-probabilities; returns self."""
        b = buckets(ctx)
        p_rnn, p_ng = np.exp(logp_rnn), np.exp(logp_ng)
        lam = np.full(len(EDGES) + 1, 0.5)
        for _ in range(iters):
            mix = lam[b] * p_rnn + (1 - lam[b]) * p_ng
            post = lam[b] * p_rnn / np.maximum(mix, 1e-300)
            sums = np.bincount(b, weights=post, minlength=len(lam))
            n = np.bincount(b, minlength=len(lam))
            lam = np.where(n > 0, sums / np.maximum(n, 1), 0.5)
        self.lambdas = np.clip(lam, 1e-4, 1 - 1e-4)
        return self

    def mix(self, logp_rnn, logp_ng, ctx):
        """Per-position ln p of the mixture."""
        lam = self.lambdas[buckets(ctx)]
        return np.logaddexp(np.log(lam) + logp_rnn, np.log1p(-lam) + logp_ng)

    def distribution(self, p_rnn, history):
        """The mixed next-character distribution (V,) for sampling."""
        lam = self.lambdas[buckets([self.ngram.context_count(history)])[0]]
        return lam * p_rnn + (1 - lam) * self.ngram.probs(history)

    # -- storage ----------------------------------------------------------------------------
    def save(self, path):
        arrays = {f"ngram/{k}": v for k, v in self.ngram.to_arrays().items()}
        arrays["lambdas"] = self.lambdas
        arrays["val_text"] = np.array([self.val_text])
        return checkpoint.save(path, arrays, {"kind": "NgramMixture"})

    @classmethod
    def load(cls, path, vocab):
        """The mixture at ``path`` for a model with vocabulary ``vocab`` (a string), every
        array's header checked (dtype, shape, total size) before it is read."""
        with checkpoint.Checkpoint(path) as ck:
            if ck.meta.get("kind") != "NgramMixture":
                raise CheckpointError(f"{path}: not an n-gram mixture")
            m = ck.members

            def header(name, kind, ndim):
                if name not in m or m[name][0].kind != kind or len(m[name][1]) != ndim:
                    raise CheckpointError(f"{path}: array {name!r} is missing or malformed")
                return m[name]
            spec = ck.read("ngram/spec", (2,), (np.int64,))
            order = int(spec[0])
            if not 1 <= order <= MAX_ORDER or spec[1] not in (0, 1):
                raise CheckpointError(f"{path}: damaged n-gram (order {order})")
            arrays = {"spec": spec}
            total = 0
            for n in range(1, order + 1):
                dt, (length,) = header(f"ngram/grams{n}", "U", 1)
                if dt.itemsize != 4 * n or header(f"ngram/counts{n}", "i", 1)[1] != (length,):
                    raise CheckpointError(f"{path}: damaged n-gram counts of order {n}")
                total += length * (4 * n + 8) * 20            # the arrays and the dicts built from them
            _, (vlen,) = header("val_text", "U", 1)
            total += m["val_text"][0].itemsize * 3
            if total > available_memory():
                raise CheckpointError(f"{path}: the n-gram it holds would need {total / 2**30:.1f} GiB")
            for n in range(1, order + 1):
                dt, shape = m[f"ngram/grams{n}"]
                arrays[f"grams{n}"] = ck.read(f"ngram/grams{n}", shape, (dt,))
                arrays[f"counts{n}"] = ck.read(f"ngram/counts{n}", shape, (np.int64,))
            vdt = header("ngram/vocab", "U", 1)[0]
            arrays["vocab"] = ck.read("ngram/vocab", (1,), (vdt,))
            arrays["discounts"] = ck.read("ngram/discounts", (order, 3), (np.float64,))
            lambdas = ck.read("lambdas", (len(EDGES) + 1,), (np.float64,))
            val = ck.read("val_text", m["val_text"][1], (m["val_text"][0],))
        if str(arrays["vocab"][0]) != "".join(sorted(vocab)):
            raise CheckpointError(f"{path}: the n-gram's vocabulary is not the model's")
        d = arrays["discounts"]
        if not (np.all((lambdas > 0) & (lambdas < 1)) and np.isfinite(d).all()
                and (d >= MIN_DISCOUNT).all() and (d <= [1.0, 2.0, 3.0]).all()
                and all((arrays[f"counts{n}"] > 0).all() for n in range(1, order + 1))):
            raise CheckpointError(f"{path}: damaged n-gram (weights or counts out of range)")
        return cls(KneserNeyLM.from_arrays(arrays), lambdas, str(val[0]) if vlen else "")


def fit_mixture(model, train_text, val_text, order, modified=True):
    """An n-gram of ``order`` on ``train_text`` (the model's vocabulary) mixed with
    ``model``, the λs fitted on ``val_text`` (static scoring)."""
    ngram = KneserNeyLM(order, modified=modified).fit(train_text, vocab=model.vocab.chars)
    mixture = NgramMixture(ngram, val_text=val_text)
    known = model.vocab.known(val_text)
    if len(known) >= 2:
        logp_ng, ctx = ngram.logprobs(known)
        mixture.tune(static_logprobs(model, model.vocab.encode(known)), logp_ng, ctx)
    return mixture
