"""Character n-gram language model with interpolated Kneser-Ney smoothing — the
"traditional language model" baseline for the RNN's perplexity, and its partner in
mixing (models/mixing.py).

For order N and a history h of the last N−1 characters (shorter at the start of a
text), with count c = c_n(h w):

    P_n(w | h) = max(c − D_n(c), 0) / c_n(h •) + γ_n(h) · P_{n−1}(w | h⁻)   if c_n(h •) > 0
    P_n(w | h) = P_{n−1}(w | h⁻)                                           otherwise
    P_0(w)     = 1 / V                                                     (uniform floor)
    γ_n(h)     = Σ_w D_n(c_n(h w)) / c_n(h •)      (the mass the discounts set free)

h⁻ is h without its first character. c_N are raw counts; for n < N, c_n(g) is the
continuation count N1+(• g), the number of distinct characters seen before g
(Kneser & Ney 1995; Chen & Goodman 1998, "interpolated KN"), counted over the suffixes
of the text's N-grams: a pair x·g that ends before character N−1 of the training text
is not among them (a few characters once per text). c_n(h •) = Σ_w c_n(h w).

Discounts from the counts-of-counts n_k of c_n (Chen & Goodman), Y = n1 / (n1 + 2·n2):
    ``modified=False``: one discount per order, D_n = Y (0.5 if undefined);
    ``modified=True``:  three, D1 = 1 − 2Y·n2/n1, D2 = 2 − 3Y·n3/n2, D3+ = 3 − 4Y·n4/n3
                        for counts 1, 2 and ≥ 3 (each clipped to [MIN_DISCOUNT, its count]).
Every discount is at least MIN_DISCOUNT: a discount of 0 — a text without singletons
(n1 = 0, as in a passage repeated), or a modified D clipped at 0 — frees no mass in a
context whose continuations it all covers, and a character never seen there would get
probability 0 (log 0: the scoring failed). On real text the formulas give 0.3–1.5.

V is the vocabulary size: the training text's characters, or ``vocab`` given to ``fit``
(mixing uses the RNN's vocabulary so both distributions cover the same characters).
Characters outside it are dropped before scoring (as ``CharLM.evaluate`` does) and
counted. Scoring predicts characters 1..M−1 from their prefix within the text (the
first character is context only), the same positions the RNN's evaluation scores.

``adapt=True`` in ``evaluate``/``logprobs`` makes it a cache model: after scoring a
character, its n-grams are added to the counts (the continuation counts follow as new
n-gram types appear; the discounts stay those of training) — the honest n-gram
counterpart of dynamic evaluation. The model is left as it was afterwards.

Storage without pickle: ``to_arrays()`` gives the counts as fixed-width unicode and
int64 arrays; ``from_arrays`` rebuilds (every derived table is recomputed).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np

from .errors import ConfigError, DataError
from .memory import available_memory
from .metrics import lm_metrics

MAX_ORDER = 20          # beyond ~10 characters the counts are almost all ones
MIN_DISCOUNT = 0.05     # the smallest discount (module docstring): every context frees some mass


def check_memory(order, n_chars):
    """ConfigError where counting the n-grams of order ``order`` over ``n_chars``
    characters could need more memory than is available (checked before counting)."""
    need, have = memory_needed(order, n_chars), available_memory()
    if need > have:
        raise ConfigError(f"order {order}: counting the n-grams of {n_chars:,} characters needs up to "
                          f"{need / 2**30:.1f} GiB and {have / 2**30:.1f} GiB are available; "
                          f"use a lower order or a shorter text")


def memory_needed(order, n_chars):
    """Bytes the counts may take, from above: up to one entry per position and order in
    each of the four tables (counts, context totals, context types by count class),
    ~(200 + n) bytes an entry as Python dicts of strings."""
    return sum(4 * n_chars * (200 + n) for n in range(1, order + 1))



class KneserNeyLM:
    def __init__(self, order=5, modified=False):
        if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
            raise ConfigError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
        self.order, self.modified = order, bool(modified)

    # -- training ---------------------------------------------------------------------
    def fit(self, text, vocab=None):
        if len(text) < 2:
            raise DataError("the n-gram model needs at least two characters of training text")
        N = self.order
        check_memory(N, len(text))
        chars = set(text)
        if vocab is not None and not chars <= set(vocab):
            raise DataError("vocab must contain every character of the training text")
        self.vocab = sorted(set(vocab) if vocab is not None else chars)
        raw = Counter(text[i:i + N] for i in range(len(text) - N + 1))
        counts = {N: raw}
        # continuation counts: N1+(• g) from the distinct (n+1)-grams
        for n in range(N - 1, 0, -1):
            cont = Counter()
            for gram in counts[n + 1]:
                cont[gram[1:]] += 1
            counts[n] = cont
        self.counts = counts
        self._derive(discounts=None)
        return self

    def _derive(self, discounts):
        """Context totals, types per count class and (unless given) the discounts."""
        self.V = len(self.vocab)
        self.index = {c: i for i, c in enumerate(self.vocab)}
        self.context_total, self.context_types, self.discount = {}, {}, {}
        for n, cnt in self.counts.items():
            total, types = defaultdict(int), defaultdict(lambda: [0, 0, 0])
            for gram, c in cnt.items():
                total[gram[:-1]] += c
                types[gram[:-1]][min(c, 3) - 1] += 1
            self.context_total[n], self.context_types[n] = dict(total), dict(types)
            self.discount[n] = discounts[n] if discounts else self._discounts(cnt)

    def _discounts(self, cnt):
        nk = Counter(c for c in cnt.values() if c <= 4)
        n1, n2, n3, n4 = (nk.get(k, 0) for k in (1, 2, 3, 4))
        Y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
        if not self.modified:
            Y = max(Y, MIN_DISCOUNT)
            return (Y, Y, Y)
        d1 = 1 - 2 * Y * n2 / n1 if n1 else Y
        d2 = 2 - 3 * Y * n3 / n2 if n2 else Y
        d3 = 3 - 4 * Y * n4 / n3 if n3 else Y
        return tuple(min(max(d, MIN_DISCOUNT), m) for d, m in ((d1, 1.0), (d2, 2.0), (d3, 3.0)))

    # -- probabilities --------------------------------------------------------------------
    def _context(self, history):
        """The last order − 1 characters of ``history``: what the predictions condition on."""
        return history[-(self.order - 1):] if self.order > 1 else ""

    def prob(self, w, history):
        """P(w | history) (history: the preceding text)."""
        h = self._context(history)
        return self._p(w, h, len(h) + 1)

    def _p(self, w, h, n):
        if n == 0:
            return 1.0 / self.V
        lower = self._p(w, h[1:], n - 1)
        total = self.context_total[n].get(h, 0)
        if total == 0:
            return lower
        D = self.discount[n]
        c = self.counts[n].get(h + w, 0)
        t1, t2, t3 = self.context_types[n][h]
        gamma = (D[0] * t1 + D[1] * t2 + D[2] * t3) / total
        return (max(c - D[min(c, 3) - 1], 0.0) if c else 0.0) / total + gamma * lower

    def probs(self, history):
        """The distribution over ``vocab`` (V,) after ``history``: ``_p``'s recursion for
        every character at once, lowest order first (the same arithmetic, so the same bits)."""
        h = self._context(history)
        p = np.full(self.V, 1.0 / self.V)
        for n in range(1, len(h) + 2):
            ctx = h[len(h) - n + 1:]
            total = self.context_total[n].get(ctx, 0)
            if total == 0:
                continue
            D = (0.0, *self.discount[n])                # D[min(c, 3)]; c = 0 discounts nothing
            cnt = self.counts[n]
            c = np.array([cnt.get(ctx + w, 0) for w in self.vocab])
            t1, t2, t3 = self.context_types[n][ctx]
            gamma = (D[1] * t1 + D[2] * t2 + D[3] * t3) / total
            p = np.maximum(c - np.take(D, np.minimum(c, 3)), 0.0) / total + gamma * p
        return p

    def context_count(self, history):
        """c_N(h •) of the longest context: how much evidence backs the prediction (the
        mixture's buckets are made of it)."""
        h = self._context(history)
        return self.context_total[len(h) + 1].get(h, 0)

    def _add(self, gram):
        """Count one more occurrence of ``gram`` (its length ≤ order): raw count at order N,
        continuation counts below as new types appear."""
        n = len(gram)
        cnt = self.counts[n]
        c = cnt.get(gram, 0)
        cnt[gram] = c + 1
        h = gram[:-1]
        self.context_total[n][h] = self.context_total[n].get(h, 0) + 1
        types = self.context_types[n].setdefault(h, [0, 0, 0])
        if c < 3:
            if c:
                types[c - 1] -= 1
            types[c] += 1
        if c == 0 and n > 1:
            self._add(gram[1:])

    def _tables(self):
        """Copies of the tables the cache updates: counts, context totals and types."""
        return ({n: dict(c) for n, c in self.counts.items()},
                {n: dict(t) for n, t in self.context_total.items()},
                {n: {h: list(v) for h, v in t.items()} for n, t in self.context_types.items()})

    def copy(self):
        """An independent copy (the derived tables copied, not recomputed)."""
        other = KneserNeyLM(self.order, self.modified)
        other.__dict__.update(self.__dict__)
        other.counts, other.context_total, other.context_types = self._tables()
        return other

    def read(self, text):
        """The cache's update kept: every n-gram of ``text`` (known characters) that ends
        at its character max(1, N−1) or later is counted, as ``logprobs(text, adapt=True)``
        counts them while scoring (each after the character it ends at is scored; the
        first character is never scored). Returns self."""
        N = self.order
        for i in range(max(1, N - 1), len(text)):
            self._add(text[i + 1 - N:i + 1])
        return self

    def logprobs(self, text, adapt=False):
        """ln P of characters 1..M−1 of ``text`` (all in the vocabulary) and the context
        count of each prediction: two arrays of M−1. ``adapt``: the cache model."""
        N = self.order
        out, ctx = np.empty(len(text) - 1), np.empty(len(text) - 1, np.int64)
        saved = self._tables() if adapt else None
        try:
            for i in range(1, len(text)):
                h = text[max(0, i - N + 1):i]
                out[i - 1] = math.log(self.prob(text[i], h))
                ctx[i - 1] = self.context_count(h)
                if adapt and i + 1 >= N:
                    self._add(text[i + 1 - N:i + 1])
        finally:
            if saved:
                self.counts, self.context_total, self.context_types = saved
        return out, ctx

    def evaluate(self, text, adapt=False):
        """Metrics over ``text``: loss (nats/char), bpc, perplexity, chars scored, oov."""
        known = "".join(ch for ch in text if ch in self.index)
        oov = len(text) - len(known)
        if len(known) < 2:
            raise DataError("the evaluation text has fewer than two characters the model knows")
        logp, _ = self.logprobs(known, adapt=adapt)
        return {**lm_metrics(float(-logp.mean()), len(known) - 1), "oov": oov, "order": self.order}

    # -- storage ---------------------------------------------------------------------------
    def to_arrays(self):
        """{name: array} holding the model (no pickle): the vocabulary, the counts of each
        order, the discounts; ``from_arrays`` rebuilds the rest."""
        arrays = {"vocab": np.array(["".join(self.vocab)]),
                  "spec": np.array([self.order, int(self.modified)], np.int64),
                  "discounts": np.array([self.discount[n] for n in range(1, self.order + 1)], np.float64)}
        for n in range(1, self.order + 1):
            grams = list(self.counts[n])
            arrays[f"grams{n}"] = np.array(grams, dtype=f"<U{n}") if grams else np.zeros(0, f"<U{n}")
            arrays[f"counts{n}"] = np.array([self.counts[n][g] for g in grams], np.int64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays):
        spec = arrays["spec"]
        lm = cls(int(spec[0]), bool(spec[1]))
        lm.vocab = sorted(str(arrays["vocab"][0]))
        lm.counts = {n: Counter(dict(zip(arrays[f"grams{n}"].tolist(), arrays[f"counts{n}"].tolist())))
                     for n in range(1, lm.order + 1)}
        lm._derive({n: tuple(float(d) for d in arrays["discounts"][n - 1]) for n in range(1, lm.order + 1)})
        return lm
