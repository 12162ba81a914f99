"""The evidence behind CharLM's defaults: train candidate configurations for the same
wall-clock budget on a corpus and print the best held-out bits/char of each.

    python benchmarks/charlm_defaults.py [--corpus metamorphosis|tinyshakespeare] [--budget 120]

Reads ../shared/data (see benchmarks/README.md); the last 10% of the text is held out.
"""
import argparse
import json
import time

from charlm import load_corpus          # benchmarks/charlm.py, beside this file
from rnnlab.data import Vocab
from rnnlab.models import CharLM, CharLMConfig

CANDIDATES = {
    "lstm1x256": dict(model="lstm", hidden_size=256, num_layers=1, dropout=0.0),
    "lstm1x256-drop0.25": dict(model="lstm", hidden_size=256, num_layers=1, dropout=0.25),
    "lstm2x256-drop0.25": dict(model="lstm", hidden_size=256, num_layers=2, dropout=0.25),
    "gru1x256-drop0.25": dict(model="gru", hidden_size=256, num_layers=1, dropout=0.25),
    "lstm1x512-drop0.3": dict(model="lstm", hidden_size=512, num_layers=1, dropout=0.3),
    "lstm1x128": dict(model="lstm", hidden_size=128, num_layers=1, dropout=0.0),
    # second round, around the first round's best
    "lstm2x256-drop0.4": dict(model="lstm", hidden_size=256, num_layers=2, dropout=0.4),
    "lstm2x256-drop0.3-decay": dict(model="lstm", hidden_size=256, num_layers=2, dropout=0.3,
                                    lr=2e-3, lr_decay=0.9, lr_decay_after=4),
    "gru2x256-drop0.3": dict(model="gru", hidden_size=256, num_layers=2, dropout=0.3),
    "lstm2x256-drop0.3-seq100": dict(model="lstm", hidden_size=256, num_layers=2, dropout=0.3,
                                     seq_len=100, batch_size=32),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="metamorphosis")
    ap.add_argument("--budget", type=float, default=120.0)
    ap.add_argument("--only", action="append")
    args = ap.parse_args()
    text = load_corpus(args.corpus)
    for name, fields in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        cfg = CharLMConfig(**{**fields, "val_frac": 0.1, "seed": 0})
        model = CharLM(Vocab.from_text(text), cfg)
        t = time.perf_counter()
        s = model.fit(text, time_limit=args.budget, eval_every=100, sample_chars=0)
        row = {"candidate": name, "corpus": args.corpus, "budget_s": args.budget,
               "best_val_bpc": s["best_val_bpc"], "steps": s["steps"], "epochs": round(s["epochs"], 2),
               "wall_s": round(time.perf_counter() - t, 1)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
