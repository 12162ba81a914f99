"""A diagnostic: would a richer λ structure in the n-gram mixture pay? On a kept checkpoint
(quality.py --keep), in the "+both" regime (dynamic evaluation, adaptive n-gram), the λs
are fitted by EM on the validation text for buckets of

    count            the n-gram context's count (what rnnlab's NgramMixture uses)
    F only, count×F  F a confidence of one model, cut at its validation quantiles into
                     k bins: rnn_max (the network's largest log-probability), rnn_ent
                     (its entropy), ng_max (the n-gram's largest log-probability);
                     and count × rnn_max × ng_max

and the test text is scored with them (bits/char). Every feature depends on the context
only, never on the character scored.

    python benchmarks/mixing_structure.py CHECKPOINT [--corpus metamorphosis] [--order 13]
"""
import argparse
import math

import numpy as np

from charlm import load_corpus                  # benchmarks/charlm.py, beside this file
from quality import bpc, splits                 # benchmarks/quality.py
from rnnlab.models import CharLM
from rnnlab.models import scoring
from rnnlab.models.mixing import EDGES, buckets
from rnnlab.ngram import KneserNeyLM


def network_features(model, ids, stats):
    """Dynamic evaluation's ln p per prediction, and per prediction (max ln p, entropy) of
    the network's distribution: scoring._picked observed while it runs."""
    seen, picked = [], scoring._picked

    def observe(m, inp, tgt, state):
        out = picked(m, inp, tgt, state)
        logp = out[1]
        seen.append(np.stack([logp.max(-1), -(np.exp(logp) * logp).sum(-1)], -1))
        return out
    scoring._picked = observe
    try:
        lp = scoring.dynamic_logprobs(model, ids, stats)
    finally:
        scoring._picked = picked
    _, _, valid, _, L = scoring.layout(ids)
    return lp, np.concatenate(seen, 0)[:L].transpose(1, 0, 2)[valid.T]


def ngram_features(g, text):
    """The adaptive n-gram's ln p, context count and max ln p per prediction (its cache
    learns the text as it goes, as KneserNeyLM.logprobs(adapt=True) does)."""
    N, saved = g.order, g._tables()
    lp, ctx, mx = (np.empty(len(text) - 1) for _ in range(3))
    try:
        for i in range(1, len(text)):
            h = text[max(0, i - N + 1):i]
            p = g.probs(h)
            lp[i - 1], ctx[i - 1], mx[i - 1] = math.log(p[g.index[text[i]]]), g.context_count(h), math.log(p.max())
            if i + 1 >= N:
                g._add(text[i + 1 - N:i + 1])
    finally:
        g.counts, g.context_total, g.context_types = saved
    return lp, ctx, mx


def em(b, K, lp_rnn, lp_ng, iters=200):
    p1, p2, lam = np.exp(lp_rnn), np.exp(lp_ng), np.full(K, 0.5)
    for _ in range(iters):
        post = lam[b] * p1 / np.maximum(lam[b] * p1 + (1 - lam[b]) * p2, 1e-300)
        n = np.bincount(b, minlength=K)
        lam = np.where(n > 0, np.bincount(b, weights=post, minlength=K) / np.maximum(n, 1), 0.5)
    return np.clip(lam, 1e-4, 1 - 1e-4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--corpus", default="metamorphosis")
    ap.add_argument("--order", type=int, default=13)
    a = ap.parse_args()
    train, val, test = splits(load_corpus(a.corpus))
    model = CharLM.load(a.checkpoint)
    val, test = model.vocab.known(val), model.vocab.known(test)
    stats = scoring.gradient_stats(model, model.vocab.encode(model.vocab.known(train)))
    (rv, fv), (rt, ft) = (network_features(model, model.vocab.encode(t), stats) for t in (val, test))
    g = KneserNeyLM(a.order, modified=True).fit(train, vocab=model.vocab.chars)
    (nv, cv, mv), (nt, ct, mt) = ngram_features(g, val), ngram_features(g, test)
    print(f"dynamic alone: validation {bpc(rv):.4f}, test {bpc(rt):.4f}; adaptive {a.order}-gram: "
          f"{bpc(nv):.4f}, {bpc(nt):.4f}")
    K0, base_v, base_t = len(EDGES) + 1, buckets(cv), buckets(ct)

    def scored(bv, bt, K):
        lam = em(bv, K, rv, nv)[bt]
        return bpc(np.logaddexp(np.log(lam) + rt, np.log1p(-lam) + nt))
    print(f"{'count':<28}{scored(base_v, base_t, K0):.4f}")
    feats = {"rnn_max": (fv[:, 0], ft[:, 0]), "rnn_ent": (fv[:, 1], ft[:, 1]), "ng_max": (mv, mt)}

    def cut(name, k):
        fval, ftest = feats[name]
        edges = np.quantile(fval, np.linspace(0, 1, k + 1)[1:-1])
        return np.searchsorted(edges, fval), np.searchsorted(edges, ftest)
    for name in feats:
        for k in (2, 3, 4, 6):
            bv, bt = cut(name, k)
            print(f"{name + str(k) + ' only':<28}{scored(bv, bt, k):.4f}   "
                  f"count x {name}{k}: {scored(base_v * k + bv, base_t * k + bt, K0 * k):.4f}")
    for k in (2, 3):
        (rv_, rt_), (nv_, nt_) = cut("rnn_max", k), cut("ng_max", k)
        print(f"{f'count x rnn_max{k} x ng_max{k}':<28}"
              f"{scored((base_v * k + rv_) * k + nv_, (base_t * k + rt_) * k + nt_, K0 * k * k):.4f}")


if __name__ == "__main__":
    main()
