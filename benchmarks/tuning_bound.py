"""How far tuning alone could take "+both" (dynamic evaluation mixed with the adaptive
n-gram) on a corpus's test text: a diagnostic bound, not a result.

For a kept checkpoint (quality.py --keep), dynamic evaluation's step and decay are swept and
the mixture's λs are fitted two ways: on the validation text, as quality.py does, and on the
test text itself — an oracle no honest evaluation may use. The best oracle row is the lowest
"+both" that any choice of these settings could report for this model; if the target is
below it, no tuning of dynamic evaluation or of the mixture reaches it, and only a better
network (or another component) can.

    python benchmarks/tuning_bound.py CHECKPOINT [--corpus metamorphosis] [--order 13]
                                      [--lrs 3e-4,6e-4,1e-3,2e-3] [--decays 0.02,0] [--out FILE]

One JSON line per (lr, decay): dynamic evaluation alone on validation and test, +both with
validation λs, and +both with test λs (the oracle).
"""
import argparse

from rnnlab.models import CharLM
from rnnlab.models.mixing import NgramMixture
from rnnlab.models.scoring import dynamic_logprobs, gradient_stats

from charlm import emit_row, load_corpus        # benchmarks/charlm.py, beside this file
from quality import Scorer, bpc, splits          # benchmarks/quality.py


def bound(checkpoint, corpus, order, lrs, decays):
    train, val, test = splits(load_corpus(corpus))
    model = CharLM.load(checkpoint)
    scorer = Scorer(corpus, train, val, test, model.vocab, ngram_orders=(order,), mix_orders=(order,))
    (ng_val, ng_test), enc = scorer.lp_adapt[order], model.vocab.encode
    stats = gradient_stats(model, enc(train))
    for lr in lrs:
        for decay in decays:
            dv = dynamic_logprobs(model, enc(val), stats, lr=lr, decay=decay)
            dt = dynamic_logprobs(model, enc(test), stats, lr=lr, decay=decay)
            honest = NgramMixture(None).tune(dv, *ng_val).mix(dt, *ng_test)
            oracle = NgramMixture(None).tune(dt, *ng_test).mix(dt, *ng_test)
            yield {"checkpoint": checkpoint, "corpus": corpus, "order": order, "lr": lr, "decay": decay,
                   "dyn_val": round(bpc(dv), 4), "dyn_test": round(bpc(dt), 4),
                   "both": round(bpc(honest), 4), "both_oracle": round(bpc(oracle), 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--corpus", default="metamorphosis")
    ap.add_argument("--order", type=int, default=13, help="the adaptive n-gram's order (quality.py chose 13 on the story)")
    ap.add_argument("--lrs", default="3e-4,6e-4,1e-3,2e-3")
    ap.add_argument("--decays", default="0.02,0")
    ap.add_argument("--out")
    a = ap.parse_args()
    floats = lambda s: [float(v) for v in s.split(",")]
    for row in bound(a.checkpoint, a.corpus, a.order, floats(a.lrs), floats(a.decays)):
        emit_row(row, a.out)


if __name__ == "__main__":
    main()
