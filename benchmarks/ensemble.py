"""Would an ensemble close the gap? Test bits/char of the average of several trained
character models' predictions, p = (1/K)·Σ_k p_k, alone and with what quality.py adds
(n-gram mixing, dynamic evaluation — each member adapting on its own — and both), the
members read from the checkpoints ``quality.py --keep DIR`` leaves.

    python benchmarks/ensemble.py CORPUS DIR [--seeds 0,1] [--budget 180] [--out FILE]

Rows: each member alone, then every pair and the whole set, among
    the seeds at --budget           (an ensemble of independent runs: K times the training)
    one seed's checkpoints at every earlier mark beside --budget's
                                    (a snapshot ensemble: no training beyond the run's own)
Scored exactly as quality.py scores one model (the same split, the Scorer's n-gram
orders and two-fold order choice, dynamic evaluation's defaults); only the averaging is
new. Not a feature of rnnlab: this measures whether one would be worth building.
"""
import argparse
import itertools
import os

import numpy as np

from rnnlab import CharLM
from rnnlab.data import Vocab

from charlm import emit_row, load_corpus                 # benchmarks/, beside this file
from quality import Scorer, splits


def averaged(members):
    """ln of the mean probability of each prediction over ``members`` (Scorer.logprobs dicts)."""
    return {k: np.logaddexp.reduce(np.stack([m[k] for m in members]), axis=0) - np.log(len(members))
            for k in members[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", choices=["metamorphosis", "tinyshakespeare"])
    ap.add_argument("dir", help="the --keep directory of quality.py")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--budget", type=float, default=180.0)
    ap.add_argument("--budgets", default="60,120,180,300", help="the marks quality.py kept")
    ap.add_argument("--out")
    args = ap.parse_args()
    text = load_corpus(args.corpus)
    train, val, test = splits(text)
    scorer = Scorer(args.corpus, train, val, test, Vocab.from_text(text))
    seeds = [int(s) for s in args.seeds.split(",")]
    earlier = [float(b) for b in args.budgets.split(",") if float(b) < args.budget]
    names = [(s, args.budget) for s in seeds] + [(seeds[0], b) for b in earlier]
    lp = {}
    for seed, budget in names:
        path = os.path.join(args.dir, f"{args.corpus}-seed{seed}-{budget:g}s.npz")
        if not os.path.exists(path):
            ap.error(f"{path}: not found (run quality.py --keep {args.dir} first)")
        lp[seed, budget] = scorer.logprobs(CharLM.load(path))
        emit_row({"corpus": args.corpus, "members": [[seed, budget]], **scorer.scores(lp[seed, budget])}, args.out)
    groups = [list(c) for c in itertools.combinations(names, 2)] + ([names] if len(names) > 2 else [])
    for group in groups:
        emit_row({"corpus": args.corpus, "members": [list(m) for m in group],
                  **scorer.scores(averaged([lp[m] for m in group]))}, args.out)


if __name__ == "__main__":
    main()
