"""The ``rnnlab`` subcommands other than train (train_cmd.py) and explore (explore_cmd.py):
each ``cmd_*`` takes the parsed arguments, calls the library and prints. ``UsageError``
is a mistake in the command line itself (the library's own ``RnnlabError``s are the other
kind of user error); both print one line and exit with code 2 (``rnnlab.cli.main``)."""
from __future__ import annotations

import json
import math
import os
import sys

from .usage import UsageError


# -- helpers -------------------------------------------------------------------------------
def _resolve_checkpoint(path):
    """A run directory means its best checkpoint; a file is used as it is."""
    if os.path.isdir(path):
        from ..rundir import best_checkpoint
        return best_checkpoint(path)
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such run directory or checkpoint")
    return path


# -- sample / eval / ngram --------------------------------------------------------------------------
def cmd_sample(args):
    from ..data.text import read_text
    from ..models.charlm import CharLM
    from ..generate import check_sampling
    if args.length < 1:
        raise UsageError("--length must be >= 1")
    if args.num_samples < 1:
        raise UsageError("--num-samples must be >= 1")
    check_sampling(args.temperature, args.top_k)
    if args.prime is not None and args.prime_file is not None:
        raise UsageError("give --prime or --prime-file, not both")
    if args.encoding is not None and args.prime_file is None:
        raise UsageError("--encoding applies to --prime-file: add it, or drop --encoding")
    from .adapt import adapt_to_prime
    checkpoint = _resolve_checkpoint(args.checkpoint)
    model = CharLM.load(checkpoint)
    prime = args.prime or ""
    if args.prime_file is not None:
        prime = read_text(args.prime_file, args.encoding or "utf-8")
    if prime:
        model.vocab.encode(prime)           # unknown characters → one clear error, before output
    mix = adapt_to_prime(args, model, checkpoint, prime)
    out = sys.stdout
    for i in range(args.num_samples):
        if i:
            out.write("\n\n")
        out.write(prime)
        seed = None if args.seed is None else args.seed + i
        model.generate(args.length, temperature=args.temperature, top_k=args.top_k, prime=prime,
                       seed=seed, stream=out.write, mixture=mix)
        out.flush()
    out.write("\n")
    return 0


def cmd_eval(args):
    from ..data.text import read_text
    from ..metrics import describe_lm
    from ..models.charlm import CharLM
    from .adapt import evaluate
    checkpoint = _resolve_checkpoint(args.checkpoint)
    model = CharLM.load(checkpoint)
    text = read_text(args.text, args.encoding)
    m = {**evaluate(args, model, checkpoint, text), "dynamic": args.dynamic, "mix_ngram": args.mix_ngram}
    if args.json:
        print(json.dumps(m, allow_nan=False))
    else:
        how = [w for w, on in (("dynamic evaluation", args.dynamic), ("mixed with the run's n-gram", args.mix_ngram))
               if on]
        print(f"{m['chars']} characters scored{' (' + ', '.join(how) + ')' if how else ''}: {describe_lm(m)}")
        _say_dropped(m)
    return 0


def _say_dropped(m):
    if m["oov"]:
        print(f"{m['oov']} character(s) outside the vocabulary were dropped before scoring")


def cmd_ngram(args):
    from ..data.text import read_text, split_train_val
    from ..errors import DataError
    from ..metrics import describe_lm
    from ..ngram import KneserNeyLM
    text = read_text(args.text, args.encoding)
    try:
        train, held = split_train_val(text, args.val_frac)  # the split `rnnlab train` makes
    except DataError as e:
        hint = "; --val-frac 0 learns all of TEXT" if 0 < args.val_frac < 1 else ""   # a text too short
        raise DataError(f"{e}{hint}") from None
    if args.eval is not None:
        held = read_text(args.eval, args.encoding)
    elif not held:
        raise UsageError("--val-frac 0 leaves nothing to evaluate; give --eval FILE")
    lm = KneserNeyLM(args.order, modified=args.modified).fit(train)
    m = {**lm.evaluate(held, adapt=args.adapt), "modified": args.modified, "adapt": args.adapt}
    if args.json:
        print(json.dumps(m))
    else:
        kind = "modified" if args.modified else "interpolated"
        print(f"{args.order}-gram ({kind} Kneser-Ney{', adapting' if args.adapt else ''}) on {len(train):,} characters; "
              f"{m['chars']} scored: {describe_lm(m)}")
        _say_dropped(m)
    return 0


def cmd_bench(args):
    from ..bench import HEADER, check_rows, run_bench
    if args.repeats < 1:
        raise UsageError("--repeats must be >= 1")
    check_rows(args.row)                         # before the header: an error is the only line
    log = None if args.json else print
    if not args.json:
        print(HEADER)
    result = run_bench(repeats=args.repeats, rows=args.row, with_torch=not args.no_torch, log=log)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"float32 GEMM peak measured here: {result['gemm_peak_gflops']:.0f} GFLOP/s (NumPy)"
              + (f"; torch {result['torch']}" if result["torch"] else f"; {result['torch_missing_reason']}"))
        print(f"rnnlab LSTM/GRU kernels: {result['kernels']}")
        print(result["default"] + (" (torch: the shape, optimizer and dropout)" if result["torch"] else ""))
        print("vs torch = median over alternated rounds of torch time / rnnlab time (> 1: rnnlab faster); "
              "peak = share of the GEMM peak")
    return 0


TASK_OPTIONS = {
    "detect": ["word", "threshold", "hidden_size"],
    "forecast": ["series", "csv", "column", "encoding", "window", "horizon", "fill", "test_frac", "hidden_size"],
    "classify": ["hidden_size"],
    "adding": ["length", "hidden_size"],
    "order": ["length", "hidden_size"],
    "gradflow": ["length", "hidden_size"],
    "univariate": ["series", "fill"],
}


def cmd_task(args):
    from ..progress import Progress
    from ..tasks import public, run_task
    options = {"seed": args.seed, "max_steps": args.max_steps, "time_limit": args.time_limit,
               "progress": Progress(total=args.max_steps, time_limit=args.time_limit, enabled=not args.json)}
    if args.model is not None:
        options["model"] = args.model
    for name in sorted({o for names in TASK_OPTIONS.values() for o in names}):
        value = getattr(args, name)
        if value is None:
            continue
        if name not in TASK_OPTIONS[args.name]:
            raise UsageError(f"--{name.replace('_', '-')} does not apply to the {args.name} task")
        options[name] = value
    result = public(run_task(args.name, plot=args.plot, **options))
    if args.json:                             # strict JSON: an overflowed norm is null
        print(json.dumps(_finite(result), allow_nan=False))
        return 0
    print(f"task {args.name}: " + ", ".join(f"{k}={v}" for k, v in result.items()
                                           if k not in ("task", "metrics", "training", "table", "exploding", "plot")))
    if "training" in result:
        print("training: " + ", ".join(f"{k} {v}" for k, v in result["training"].items()))
    for model, metrics in result["metrics"].items():
        print(f"  {model:<12}" + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in metrics.items()))
    if "exploding" in result:                 # gradflow's second experiment
        e = result["exploding"]
        print(f"exploding: RNN with recurrent spectral radius {e['radius']:g}, SGD")
        for name in ("unclipped", "clipped"):
            v = e[name]
            print(f"  {name:<12}max grad norm {_g(v['max_grad_norm'])}  first update norm "
                  f"{_g(v['first_update_norm'])}  final loss {_g(v['final_loss'])}  steps {v['steps']}"
                  + (f"  (the gradient overflowed at {v['overflowed_steps']} of them)" if v["overflowed_steps"] else ""))
    if args.plot:
        print(f"plot written to {args.plot}" if result["plot"] else
              "no plot: a training ended before its first step (the time limit), so there is nothing to draw")
    return 0


def _g(v):
    return "n/a" if v is None else f"{v:.4g}"


def _finite(obj):
    """``obj`` (JSON-like) with every non-finite float replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def cmd_demo(args):
    from ..demo import train_echo
    losses = train_echo(delay=args.delay, hidden=args.hidden, iters=args.iters, seed=args.seed,
                        log=print, log_every=max(1, args.iters // 10))
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return 0
