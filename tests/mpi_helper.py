"""Run by tests/test_mpi.py, under mpiexec or alone: trains a small float64 CharLM with the
library API (``train_charlm(dist=get_dist())``) and writes what it ended with.

    python tests/mpi_helper.py OUT.npz --batch B [--steps 20] [--model lstm] [--dropout 0]
        [--optimizer adam] [--reduction mean] [--dtype float64] [--copy]

Every rank writes OUT.npz with ".rank<r>" before the suffix (weights, the training and
validation losses at each evaluation): the test checks that the ranks agree, and compares rank 0 with one process."""
import argparse
import sys

import numpy as np

from rnnlab import CharLM, CharLMConfig
from rnnlab.models.charlm_config import REGULARISERS_OFF
from rnnlab.charlm_run import train_charlm
from rnnlab.data.text import Vocab
from rnnlab.parallel import GradAllreduce, get_dist
from rnnlab.trainer import TrainConfig

TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity. ") * 6


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--model", default="lstm")
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--reduction", default="mean")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--copy", action="store_true", help="copy in/out of the all-reduce buffer")
    a = p.parse_args()
    dist = get_dist()
    config = CharLMConfig(model=a.model, hidden_size=16, num_layers=2, dropout=a.dropout, seq_len=8,
                          batch_size=a.batch, optimizer=a.optimizer, lr=0.01, clip=1.0, clip_mode="norm",
                          grad_reduction=a.reduction, val_frac=0.1, seed=3, **REGULARISERS_OFF)
    model = CharLM(Vocab.from_text(TEXT), config, dtype=np.dtype(a.dtype))
    if a.copy and dist.size > 1:
        dist.grad_hook = lambda m, average=True: GradAllreduce(dist, m, average, copy=True)
    summary = train_charlm(model, TEXT, TrainConfig(max_steps=a.steps, eval_every=5), dist=dist,
                           sample_chars=0)
    curve = [[r["train_loss"], r["val_loss"]] for r in summary["evaluations"]]
    out = a.out[:-4] + f".rank{dist.rank}.npz"
    np.savez(out, **{"param/" + k: v for k, v in model.params.items()}, curve=np.array(curve))
    return 0


if __name__ == "__main__":
    sys.exit(main())
