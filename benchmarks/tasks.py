"""Full-budget numbers of every task (the small-budget versions are tests).

    python benchmarks/tasks.py [--budget SECONDS] [--json]

Each task trains for the given wall-clock budget with its default options and
prints its metrics beside its baselines.
"""
import argparse
import json

from rnnlab.tasks import public, run_task

RUNS = [
    ("detect", {"model": "rnn"}),
    ("detect", {"model": "lstm"}),
    ("forecast", {"model": "lstm", "series": "sunspots"}),
    ("forecast", {"model": "gru", "series": "sunspots"}),
    ("forecast", {"model": "tdnn", "series": "sunspots"}),
    ("forecast", {"model": "lstm", "series": "co2", "fill": "interpolate", "window": 52}),
    ("classify", {"model": "rnn"}),
    ("classify", {"model": "lstm"}),
    ("classify", {"model": "gru"}),
    ("gradflow", {"model": "all", "length": 50}),
    ("univariate", {"series": "sunspots"}),
    ("univariate", {"series": "co2"}),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = []
    for name, opts in RUNS:
        r = public(run_task(name, time_limit=args.budget, seed=0, **opts))
        out.append({"task": name, "options": opts, "metrics": r["metrics"], "training": r.get("training"),
                    **({"w": r["w"], "u": r["u"]} if name == "univariate" else {})})
        if not args.json:
            label = name + " " + " ".join(f"{k}={v}" for k, v in opts.items())
            print(label)
            for model, m in r["metrics"].items():
                print(f"    {model:<28}" + "  ".join(f"{k} {v:.4g}" for k, v in m.items()
                                                     if isinstance(v, (int, float))), flush=True)
            if name == "univariate":
                print(f"    learned w = {r['w']:.4f}, u = {r['u']:.4f}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
