"""A probe, not a feature: would annealing the learning rate to the wall-clock budget help
the story at 180 s? The default's Adam rate is multiplied by a factor of the elapsed
share f of the budget — none: 1; linear: 1 − 0.95 f; wsd (warm-up-stable-decay's tail):
1 until f = ½, then linear to 0.05 at the end — by putting a time-driven schedule where
charlm_run makes char-rnn's DecaySchedule (a schedule that reads the clock cannot be
exact on resume, so rnnlab does not offer one). Validation bits/char at 60/120/180 s, as
charlm_defaults.py reports them.

    python benchmarks/anneal_probe.py [--kinds none,linear,wsd] [--seed 0] [--budget 180] [--out FILE]
"""
import argparse
import time

import rnnlab.charlm_run as charlm_run
from charlm import emit_row, eval_every, load_corpus          # benchmarks/charlm.py, beside this file
from charlm_defaults import AWD, curve
from rnnlab.data import Vocab
from rnnlab.models import CharLM, CharLMConfig
from rnnlab.models.charlm_config import REGULARISERS_OFF

FACTORS = {"none": lambda f: 1.0, "linear": lambda f: 1 - 0.95 * f,
           "wsd": lambda f: 1.0 if f < 0.5 else 1 - 0.95 * (f - 0.5) / 0.5}


def time_schedule(kind, budget):
    class ToTheBudget:
        """DecaySchedule's interface (lr_at, asked before every step), driven by the clock."""
        def __init__(self, base_lr, decay, start_epoch):
            self.base_lr, self.t0 = base_lr, None

        def lr_at(self, epochs_done):
            self.t0 = time.perf_counter() if self.t0 is None else self.t0
            return self.base_lr * FACTORS[kind](min((time.perf_counter() - self.t0) / budget, 1.0))
    return ToTheBudget


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kinds", default="none,linear,wsd")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=180.0)
    ap.add_argument("--out")
    a = ap.parse_args()
    text = load_corpus("metamorphosis")
    trainval, vocab = text[:int(len(text) * 0.95)], Vocab.from_text(text)
    original = charlm_run.DecaySchedule
    for kind in a.kinds.split(","):
        cfg = CharLMConfig(**{**REGULARISERS_OFF, "model": "gru", "hidden_size": 256, "num_layers": 2,
                              "dropout": 0.25, **AWD, "lr": 5e-3, "val_frac": 5 / 95, "seed": a.seed})
        charlm_run.DecaySchedule = time_schedule(kind, a.budget)
        try:
            t = time.perf_counter()
            s = CharLM(vocab, cfg).fit(trainval, time_limit=a.budget, eval_every=eval_every(cfg), sample_chars=0)
        finally:
            charlm_run.DecaySchedule = original
        emit_row({"candidate": f"anneal-{kind}", "corpus": "metamorphosis", "seed": a.seed,
                  "bpc_at": curve(s, [60, 120, a.budget]), "steps": s["steps"],
                  "wall_s": round(time.perf_counter() - t, 1)}, a.out)


if __name__ == "__main__":
    main()
