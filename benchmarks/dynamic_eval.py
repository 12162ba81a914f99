"""The sweep behind dynamic evaluation's defaults (rnnlab.models.charlm.DYN_LR,
DYN_DECAY, DYN_SEG): held-out bits/char of a trained run's validation tail (at most
20,000 characters) for segment lengths 10/20/50, step sizes 1e-4…3e-3 and decays
0/0.02/0.1, with the time against static scoring.

    python benchmarks/dynamic_eval.py RUN TEXT

RUN: a run directory trained on TEXT (its best.npz and val_frac are used).
"""
import itertools
import sys
import time

import numpy as np

from rnnlab import CharLM
from rnnlab.data.text import read_text, split_train_val
from rnnlab.models.scoring import dynamic_logprobs, gradient_rms, static_logprobs


def main(run, text_file):
    model = CharLM.load(run + "/best.npz")
    text = "".join(ch for ch in read_text(text_file) if ch in model.vocab.index)
    n = len(split_train_val(range(len(text)), model.config.val_frac)[0])
    train, val = text[:n], text[n:][:20000]
    ids = model.vocab.encode(val)
    t = time.perf_counter()
    static = static_logprobs(model, ids)
    t_static = time.perf_counter() - t
    print(f"static: {-static.mean() / np.log(2):.4f} bpc ({t_static:.2f} s)", flush=True)
    for seg in (10, 20, 50):
        rms = gradient_rms(model, model.vocab.encode(train), seg_len=seg)
        for lr, decay in itertools.product((1e-4, 3e-4, 1e-3, 3e-3), (0.0, 0.02, 0.1)):
            t = time.perf_counter()
            d = dynamic_logprobs(model, ids, rms, lr=lr, decay=decay, seg_len=seg)
            cost = (time.perf_counter() - t) / t_static
            print(f"seg {seg} lr {lr:g} decay {decay:g}: {-d.mean() / np.log(2):.4f} bpc, "
                  f"{cost:.1f}x static's time", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
