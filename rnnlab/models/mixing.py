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
fitted on, as plain arrays (no pickle), read back with every header checked, and in its
metadata what the λs were fitted for (the training text's fingerprint, the weights'
SHA-256): ``for_model`` refuses an n-gram of another text and refits λs fitted for other
weights (a run trained on after ``--ngram``).
"""
from __future__ import annotations

import numpy as np

from .. import checkpoint
from ..errors import CheckpointError
from ..memory import available_memory
from ..ngram import MAX_ORDER, MIN_DISCOUNT, KneserNeyLM
from .charlm_io import weights_digest
from .scoring import static_logprobs

EDGES = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
FILE = "ngram.npz"


MAX_COUNT = 1 << 40       # no count can exceed the training text's length: far below this


def _code_points(arr):
    """The UTF-32 code units of a fixed-width unicode array, without converting to str."""
    return np.ascontiguousarray(arr).view(np.uint32)


def _is_text(units):
    """True where every unit is a character a str can hold (NUL padding allowed)."""
    return bool(((units <= 0x10FFFF) & ((units < 0xD800) | (units > 0xDFFF))).all())


def buckets(context_counts):
    """Bucket index of each context count: 0 for 0, then one bucket per power of two."""
    return np.searchsorted(EDGES, np.asarray(context_counts), side="right")


class NgramMixture:
    """``ngram``: a fitted KneserNeyLM over the model's vocabulary; ``lambdas`` (B,)."""

    def __init__(self, ngram, lambdas=None, val_text="", fitted_for=None):
        self.ngram, self.val_text = ngram, val_text
        self.lambdas = np.full(len(EDGES) + 1, 0.5) if lambdas is None else np.asarray(lambdas, np.float64)
        # what the λs were fitted for: {"text_fingerprint": the training text's, "weights":
        # charlm_io.weights_digest of the model's} (empty: unknown, a file from before it was kept)
        self.fitted_for = dict(fitted_for or {})

    def refit(self, model):
        """The λs fitted again by EM on the validation tail for ``model`` (static scoring);
        returns self."""
        self._tune_on_val(lambda t: static_logprobs(model, model.vocab.encode(t)), adapt=False)
        self.fitted_for = {"text_fingerprint": model.meta.get("text_fingerprint"),
                           "weights": weights_digest(model.params)}
        return self

    def for_model(self, model, path, refit=True):
        """This mixture made right for ``model``, the one in the checkpoint beside ``path``:
        CheckpointError if its n-gram was counted on another training text; its λs refitted
        (``refit``, in memory) if they were fitted for other weights — a run trained on after
        ``--ngram``, or a file that does not say — unless ``refit`` is False (the caller fits
        them again anyway: ``adaptive``, under dynamic evaluation). Returns self."""
        text, model_text = self.fitted_for.get("text_fingerprint"), model.meta.get("text_fingerprint")
        if text is not None and model_text is not None and text != model_text:   # both must say
            raise CheckpointError(f"{path}: its n-gram was counted on another text than the model's training "
                                  f"text; make it again with rnnlab train --ngram N")
        if refit and self.fitted_for.get("weights") != weights_digest(model.params):
            self.refit(model)
        return self

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

    def adaptive(self, score):
        """A new mixture for a text scored while both models adapt to it: the same
        n-gram, the λs refitted on the validation tail against the adapting n-gram and
        ``score`` (known text → the network's per-position ln p under dynamic evaluation).
        Without two known characters of validation text, the same λs."""
        return NgramMixture(self.ngram, self.lambdas, self.val_text)._tune_on_val(score, adapt=True)

    def _tune_on_val(self, score, adapt):
        """``tune`` on the validation tail's known characters (the n-gram's vocabulary is
        the model's): ``score`` gives the network's ln p, ``adapt`` makes the n-gram a
        cache. Fewer than two such characters leave the λs as they are. Returns self."""
        val = "".join(ch for ch in self.val_text if ch in self.ngram.index)
        return self.tune(score(val), *self.ngram.logprobs(val, adapt=adapt)) if len(val) >= 2 else self

    def distribution(self, p_rnn, history, chars):
        """The mixed next-character distribution (V,) for sampling, in the order of
        ``chars`` (the model's vocabulary, which ``p_rnn`` (V,) follows; the n-gram's is
        sorted, and a model built from the API may keep another order)."""
        lam = self.lambdas[buckets([self.ngram.context_count(history)])[0]]
        p_ng = self.ngram.probs(history)[[self.ngram.index[c] for c in chars]]
        return lam * p_rnn + (1 - lam) * p_ng

    # -- storage ----------------------------------------------------------------------------
    def save(self, path):
        arrays = {f"ngram/{k}": v for k, v in self.ngram.to_arrays().items()}
        arrays["lambdas"] = self.lambdas
        arrays["val_text"] = np.array([self.val_text])
        return checkpoint.save(path, arrays, {"kind": "NgramMixture", "fitted_for": self.fitted_for})

    @classmethod
    def load(cls, path, vocab):
        """The mixture at ``path`` for a model with vocabulary ``vocab`` (a string), every
        array's header checked (dtype, shape, total size) before it is read."""
        with checkpoint.Checkpoint(path) as ck:
            if ck.meta.get("kind") != "NgramMixture":
                raise CheckpointError(f"{path}: not an n-gram mixture")
            fitted_for = ck.meta.get("fitted_for", {})
            if not (isinstance(fitted_for, dict) and set(fitted_for) <= {"text_fingerprint", "weights"}
                    and all(v is None or (isinstance(v, str) and len(v) <= 64) for v in fitted_for.values())):
                raise CheckpointError(f"{path}: damaged n-gram metadata (fitted_for)")
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
            if vlen > 1:                                      # saved as one string (or none)
                raise CheckpointError(f"{path}: damaged n-gram (val_text)")
            vdt = header("ngram/vocab", "U", 1)[0]
            total += (m["val_text"][0].itemsize + vdt.itemsize) * 3
            if total > available_memory():
                raise CheckpointError(f"{path}: the n-gram it holds would need {total / 2**30:.1f} GiB")
            for n in range(1, order + 1):
                dt, shape = m[f"ngram/grams{n}"]
                arrays[f"grams{n}"] = ck.read(f"ngram/grams{n}", shape, (dt,))
                arrays[f"counts{n}"] = ck.read(f"ngram/counts{n}", shape, (np.int64,))
                if np.unique(arrays[f"grams{n}"]).size != shape[0]:      # a dict would keep the last
                    raise CheckpointError(f"{path}: damaged n-gram (a gram of order {n} counted twice)")
            arrays["vocab"] = ck.read("ngram/vocab", (1,), (vdt,))
            arrays["discounts"] = ck.read("ngram/discounts", (order, 3), (np.float64,))
            lambdas = ck.read("lambdas", (len(EDGES) + 1,), (np.float64,))
            val = ck.read("val_text", m["val_text"][1], (m["val_text"][0],))
        # code points first: a value no str can hold (above U+10FFFF, a surrogate) fails in
        # NumPy's conversion itself; then every gram n characters of the vocabulary
        if not (_is_text(_code_points(arrays["vocab"])) and _is_text(_code_points(val))):
            raise CheckpointError(f"{path}: damaged n-gram (not text)")
        if str(arrays["vocab"][0]) != "".join(sorted(vocab)):
            raise CheckpointError(f"{path}: the n-gram's vocabulary is not the model's")
        d = arrays["discounts"]
        if not (np.all((lambdas > 0) & (lambdas < 1)) and np.isfinite(d).all()
                and (d >= MIN_DISCOUNT).all() and (d <= [1.0, 2.0, 3.0]).all()
                and all(((c := arrays[f"counts{n}"]) > 0).all() and (c <= MAX_COUNT).all()
                        for n in range(1, order + 1))):
            raise CheckpointError(f"{path}: damaged n-gram (weights or counts out of range)")
        known = np.array(sorted(map(ord, vocab)), np.uint32)
        for n in range(1, order + 1):
            u = _code_points(arrays[f"grams{n}"]).reshape(-1, n)
            if not np.isin(u, known).all():                  # also a gram shorter than n (NUL-padded)
                raise CheckpointError(f"{path}: damaged n-gram (grams of order {n} outside the vocabulary)")
        return cls(KneserNeyLM.from_arrays(arrays), lambdas, str(val[0]) if vlen else "", fitted_for)


def fit_mixture(model, train_text, val_text, order, modified=True):
    """An n-gram of ``order`` on ``train_text`` (the model's vocabulary) mixed with
    ``model``, the λs fitted on ``val_text`` (static scoring)."""
    ngram = KneserNeyLM(order, modified=modified).fit(train_text, vocab=model.vocab.chars)
    return NgramMixture(ngram, val_text=val_text).refit(model)
