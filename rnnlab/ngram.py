"""Character n-gram language model with interpolated Kneser-Ney smoothing — the
"traditional language model" baseline for the RNN's perplexity.

For order N and a history h of the last N−1 characters (shorter at the start of a
text), with one absolute discount D_n per order:

    P_n(w | h) = max(c_n(h w) − D_n, 0) / c_n(h •)
                 + D_n · N1+(h •) / c_n(h •) · P_{n−1}(w | h⁻)        if c_n(h •) > 0
    P_n(w | h) = P_{n−1}(w | h⁻)                                      otherwise
    P_0(w)     = 1 / V                                                (uniform floor)

h⁻ is h without its first character. c_N are raw counts; for n < N, c_n(g) is the
continuation count N1+(• g), the number of distinct characters seen before g
(Kneser & Ney 1995; Chen & Goodman 1998, "interpolated KN"). c_n(h •) = Σ_w c_n(h w)
and N1+(h •) = |{w : c_n(h w) > 0}|. D_n = n1 / (n1 + 2·n2) from the counts-of-counts
of c_n (0.5 if undefined). V is the training vocabulary size; characters outside it
are dropped before scoring (as ``CharLM.evaluate`` does) and counted.

Scoring a text predicts characters 1..M−1 from their prefix within that text (the
first character is context only), the same positions the RNN's evaluation scores.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

from .errors import ConfigError, DataError
from .metrics import lm_metrics
from .memory import available_memory


MAX_ORDER = 20          # beyond ~10 characters the counts are almost all ones


def memory_needed(order, n_chars):
    """Bytes the counts may take, from above: up to one entry per position and order in
    each of the three tables (counts, context totals, context types), ~(200 + n) bytes
    an entry as Python dicts of strings."""
    return sum(3 * n_chars * (200 + n) for n in range(1, order + 1))


class KneserNeyLM:
    def __init__(self, order=5):
        if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
            raise ConfigError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
        self.order = order

    def fit(self, text):
        if len(text) < 2:
            raise DataError("the n-gram model needs at least two characters of training text")
        N = self.order
        need, have = memory_needed(N, len(text)), available_memory()
        if need > have:
            raise ConfigError(f"order {N}: counting the n-grams of {len(text):,} characters needs up to "
                              f"{need / 2**30:.1f} GiB and {have / 2**30:.1f} GiB are available; "
                              f"use a lower order or a shorter text")
        self.vocab = sorted(set(text))
        self.V = len(self.vocab)
        raw = Counter(text[i:i + N] for i in range(len(text) - N + 1))
        self.counts = {N: raw}
        # shorter n-grams at the very start of the text have no N-gram of their own
        for n in range(1, N):
            self.counts.setdefault(n, Counter())
        # continuation counts: N1+(• g) from the distinct (n+1)-grams
        for n in range(N - 1, 0, -1):
            cont = Counter()
            source = self.counts[n + 1] if n + 1 < N else raw
            for gram in source:
                cont[gram[1:]] += 1
            self.counts[n] = cont
        self.context_total, self.context_types, self.discount = {}, {}, {}
        for n, cnt in self.counts.items():
            total, types = defaultdict(int), defaultdict(int)
            for gram, c in cnt.items():
                total[gram[:-1]] += c
                types[gram[:-1]] += 1
            self.context_total[n], self.context_types[n] = dict(total), dict(types)
            n1 = sum(1 for c in cnt.values() if c == 1)
            n2 = sum(1 for c in cnt.values() if c == 2)
            self.discount[n] = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else 0.5
        return self

    def prob(self, w, history):
        """P(w | history) under interpolated Kneser-Ney (history: the preceding text)."""
        h = history[-(self.order - 1):] if self.order > 1 else ""
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
        types = self.context_types[n][h]
        return max(c - D, 0.0) / total + D * types / total * lower

    def evaluate(self, text):
        """Metrics over ``text``: loss (nats/char), bpc, perplexity, chars scored, oov."""
        known_set = set(self.vocab)
        known = "".join(ch for ch in text if ch in known_set)
        oov = len(text) - len(known)
        if len(known) < 2:
            raise DataError("the evaluation text has fewer than two characters the model knows")
        total = 0.0
        for i in range(1, len(known)):
            total -= math.log(self.prob(known[i], known[max(0, i - self.order + 1):i]))
        nats = total / (len(known) - 1)
        return {**lm_metrics(nats, len(known) - 1), "oov": oov, "order": self.order}
