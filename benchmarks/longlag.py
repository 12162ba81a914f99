"""The long-time-lag sweep (Hochreiter & Schmidhuber 1997): success rate on 2,560
fresh test sequences for T ∈ {10, 20, 50, 100, 200} × {RNN, LSTM, GRU}, on the adding
and temporal-order problems, each trained for the same wall-clock budget.

    python benchmarks/longlag.py [--budget SECONDS] [--problem adding|order] [--json]

Expected shape (the paper's): the simple RNN fails once T passes a few tens; LSTM
and GRU solve T = 100. What is printed is what was measured.
"""
import argparse
import json

from rnnlab.tasks import public, run_task

LENGTHS = [10, 20, 50, 100, 200]
MODELS = ["rnn", "lstm", "gru"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of training per cell")
    ap.add_argument("--problem", action="append", choices=["adding", "order"])
    ap.add_argument("--lengths", type=int, nargs="*", default=LENGTHS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for problem in args.problem or ["adding", "order"]:
        if not args.json:
            print(f"\n{problem}: success rate on 2,560 test sequences (training sequences used)")
            print(f"{'T':>5}" + "".join(f"{m:>22}" for m in MODELS))
        for T in args.lengths:
            cells = []
            for model in MODELS:
                r = public(run_task(problem, model=model, length=T, time_limit=args.budget, seed=0))
                rate = r["metrics"][model]["success_rate"]
                rows.append({"problem": problem, "T": T, "model": model, "success_rate": rate,
                             "train_sequences": r["training"]["sequences"],
                             "baseline": r["metrics"]["baseline"]["success_rate"]})
                cells.append(f"{rate:>10.1%} ({r['training']['sequences']:>8,})")
            if not args.json:
                print(f"{T:>5}" + "".join(f"{c:>22}" for c in cells), flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
