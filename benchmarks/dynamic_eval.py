"""The sweep behind dynamic evaluation's defaults (rnnlab.models.scoring.DYN_LR,
DYN_DECAY, DYN_SEG): validation bits/char of trained runs under dynamic evaluation for
a grid of segment lengths, step sizes, decays and stream counts (static scoring's
layout's divided by --stream-div; a count above one reads the streams side by side,
which is not a sequential evaluation — rnnlab reads one stream since 2026-12-05, and
--stream-div large enough gives that: see models/scoring.py), with the time against
static scoring of the same text.

    python benchmarks/dynamic_eval.py CORPUS RUN [RUN ...] [--piece N] [--out FILE]

CORPUS: metamorphosis or tinyshakespeare (from ../shared/data); each RUN a run directory
or a checkpoint (.npz) trained as benchmarks/quality.py trains (train = the first 90%,
validation the next 5%; ``quality.py --keep`` leaves such checkpoints): it is scored on
that validation 5% — never on quality.py's test 5% — and the gradient statistics come
from the training 90%. One JSON line per (run, setting). ``--piece N``: the validation
text cut into N-character pieces, each scored alone from the trained weights in its own
layout (a short text: N = 6,000 is read as 6 streams, like the story's test text); the
scores are over all pieces, the times their sums.
"""
import argparse
import itertools
import json

import numpy as np

from rnnlab import CharLM
from rnnlab.models.scoring import RMS_FLOOR, dynamic_logprobs, gradient_stats, layout, static_logprobs

from charlm import emit_row, load_corpus, median_time          # benchmarks/, beside this file
from quality import bpc, splits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--segs", default="10,20,40")
    ap.add_argument("--lrs", default="1e-4,2e-4,3e-4,4e-4", help="steps for one stream (scoring.dynamic_logprobs)")
    ap.add_argument("--decays", default="0,0.02")
    ap.add_argument("--stream-div", default="1,2,4",
                    help="streams = the default stream count divided by each of these")
    ap.add_argument("--piece", type=int, help="score the validation text in pieces of this many characters")
    ap.add_argument("--out")
    args = ap.parse_args()
    train, val, _ = splits(load_corpus(args.corpus))
    for run in args.runs:
        model = CharLM.load(run if run.endswith(".npz") else run + "/best.npz")
        ids = model.vocab.encode(model.vocab.known(val))
        pieces = [ids] if not args.piece else [ids[i:i + args.piece] for i in range(0, len(ids) - args.piece + 1,
                                                                                   args.piece)]
        if not pieces:
            ap.error(f"--piece {args.piece} is longer than the validation text ({len(ids)} characters)")
        default_streams = layout(pieces[0])[3]

        def over_pieces(score):             # ln p of every piece's predictions, in text order
            return np.concatenate([score(p) for p in pieces])

        static, t_static = median_time(lambda: over_pieces(lambda p: static_logprobs(model, p)))
        base = {"corpus": args.corpus, "run": run, "static": bpc(static), "static_s": t_static}
        if args.piece:
            base.update(piece=args.piece, pieces=len(pieces))
        print(json.dumps(base), flush=True)
        train_ids = model.vocab.encode(model.vocab.known(train))
        for seg in [int(s) for s in args.segs.split(",")]:
            stats = gradient_stats(model, train_ids, seg_len=seg)
            for lr, decay, div in itertools.product([float(x) for x in args.lrs.split(",")],
                                                    [float(x) for x in args.decays.split(",")],
                                                    [int(x) for x in args.stream_div.split(",")]):
                streams = max(1, default_streams // div)
                d, t = median_time(lambda: over_pieces(lambda p: dynamic_logprobs(
                    model, p, stats, lr=lr, decay=decay, seg_len=seg, streams=streams)), repeats=1)
                row = {**base, "seg": seg, "lr": lr, "decay": decay, "streams": streams,
                       "step": "lr*sqrt(streams)", "rms_floor": RMS_FLOOR, "dynamic": bpc(d), "cost": t / t_static}
                emit_row(row, args.out)


if __name__ == "__main__":
    main()
