"""The ``rnnlab`` subcommands: each ``cmd_*`` takes the parsed arguments, calls the
library and prints. ``UsageError`` is a mistake in the command line itself (the
library's own ``RnnlabError``s are the other kind of user error); both print one line
and exit with code 2 (``rnnlab.cli.main``)."""
from __future__ import annotations

import json
import os
import sys

from .usage import UsageError


class SignalStop:
    """SIGINT and SIGTERM during training: the first one asks the trainer to stop before
    its next step (it then saves the latest state); a second one stops at once. Used as a
    context manager around the training call; ``stop()`` is what the trainer polls."""

    def __init__(self):
        self.signum, self.name, self._previous = None, None, {}

    def __call__(self):
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None:               # a second signal: stop now
            raise KeyboardInterrupt
        import signal
        self.signum, self.name = signum, signal.Signals(signum).name

    def __enter__(self):
        import signal
        import threading
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        import signal
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# -- helpers -------------------------------------------------------------------------------
def _resolve_checkpoint(path):
    """A run directory means its best checkpoint; a file is used as it is."""
    if os.path.isdir(path):
        best = os.path.join(path, "best.npz")
        if not os.path.isfile(best):
            raise UsageError(f"{path}: no best.npz in this run directory")
        return best
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such run directory or checkpoint")
    return path


def _load_text(args_text, encoding):
    from ..data.corpus import default_corpus, default_corpus_source
    from ..data.text import read_text
    if args_text is None:
        return default_corpus(), "default:" + default_corpus_source()
    return read_text(args_text, encoding), os.path.abspath(args_text)


# -- train -----------------------------------------------------------------------------------
TRAIN_MODEL_OPTIONS = ["model", "hidden_size", "num_layers", "dropout", "seq_len", "batch_size",
                       "optimizer", "lr", "lr_decay", "lr_decay_after", "clip", "val_frac", "seed",
                       "weight_drop", "locked_dropout", "average"]


def cmd_train(args):
    from ..metrics import readable
    from ..charlm_run import auto_eval_every, train_charlm
    from ..data.text import Vocab
    from ..models.charlm import CharLM
    from ..models.charlm_config import PRESETS, CharLMConfig
    from ..models.charlm_io import saved_cadence
    from ..progress import Progress
    from ..rundir import is_run, recover
    from ..trainer import TrainConfig
    from ..mpilaunch import check_workers, launch, without_workers
    from ..parallel import env_rank, get_dist

    if args.workers is not None:              # --workers N: this process starts the MPI job
        if args.workers < 1:
            raise UsageError(f"--workers must be >= 1, got {args.workers}")
        if env_rank() is not None:
            raise UsageError("--workers starts its own MPI job; under mpiexec, drop --workers")
        check_workers(args.workers)
        if args.workers > 1:
            return launch(args.workers, without_workers(args.argv))
    dist = get_dist()                         # under mpiexec: this rank of the job
    train = TrainConfig(max_steps=args.max_steps, max_epochs=args.max_epochs, time_limit=args.time_limit,
                        eval_every=args.eval_every, patience=args.patience)
    if train.max_steps is None and train.max_epochs is None and train.time_limit is None:
        train.time_limit = 300.0
    train.validate()
    from ..ngram import MAX_ORDER
    if args.ngram is not None and not 1 <= args.ngram <= MAX_ORDER:
        raise UsageError(f"--ngram must be an order from 1 to {MAX_ORDER}, got {args.ngram}")
    resume = None
    if args.resume:
        with dist.agreeing(last=False):       # rank 0 repairs what a killed run left before any rank reads it
            if dist.rank == 0:
                recover(os.path.dirname(os.path.abspath(args.resume)) if args.resume.endswith(".npz")
                        else args.resume)
        ckpt = os.path.join(args.resume, "latest.npz") if os.path.isdir(args.resume) else args.resume
        if os.path.isdir(args.resume) and not is_run(args.resume):
            raise UsageError(f"--resume {args.resume}: not an rnnlab run directory")
        model, opt_state, state = CharLM.load(ckpt, with_training_state=True)
        given = [o for o in TRAIN_MODEL_OPTIONS if getattr(args, o) is not None] + (["preset"] if args.preset else [])
        if given:
            raise UsageError("--resume continues the saved configuration; drop "
                             + ", ".join("--" + o.replace("_", "-") for o in given))
        source = model.meta.get("text_source")
        if args.text is not None:
            text, source = _load_text(args.text, args.encoding)
        elif source and source.startswith("default:"):
            text, source = _load_text(None, args.encoding)
        elif source:
            text, source = _load_text(source, args.encoding)
        else:
            raise UsageError("the checkpoint does not say which text it was trained on; pass TEXT")
        run_of_ckpt = args.resume if os.path.isdir(args.resume) else os.path.dirname(os.path.abspath(ckpt))
        out_dir = args.out or run_of_ckpt
        resume = (opt_state, state)
        every, patience = saved_cadence(model.meta)   # the run's own cadence, unless given again
        train.eval_every = every if args.eval_every is None else args.eval_every
        train.patience = patience if args.patience is None else args.patience
        step = model.meta.get("step") if isinstance(model.meta.get("step"), int) else 0
        same = os.path.abspath(out_dir) == os.path.abspath(run_of_ckpt) and is_run(run_of_ckpt)
        if not same:
            _text_outside(source, out_dir, args.force)
        run = _run_dir(dist, out_dir, args.force, step if same else None)
    else:
        if args.preset and args.preset not in PRESETS:
            raise UsageError(f"--preset must be one of {sorted(PRESETS)}")
        fields = dict(PRESETS.get(args.preset, {}))
        fields.update({o: getattr(args, o) for o in TRAIN_MODEL_OPTIONS if getattr(args, o) is not None})
        CharLMConfig(**fields).validate()     # a bad option is reported before the text is read
        text, source = _load_text(args.text, args.encoding)
        config = CharLMConfig.for_text(len(text), **fields).validate()
        name = "stdlib" if args.text is None else os.path.splitext(os.path.basename(args.text))[0]
        out_dir = args.out or os.path.join("runs", name or "run")
        model = CharLM(Vocab.from_text(text), config)
        _text_outside(source, out_dir, args.force)
        run = _run_dir(dist, out_dir, args.force)

    c = model.config
    if args.ngram:                            # the n-gram is counted after training: refuse it now
        from ..errors import ConfigError
        from ..ngram import check_memory
        try:
            check_memory(args.ngram, len(text))
        except ConfigError as e:
            raise UsageError(f"--ngram {args.ngram}: {e}") from None
    if train.eval_every is None:
        train.eval_every = auto_eval_every(int(len(text) * c.val_frac), c.seq_len, c.batch_size)
    progress = Progress(total=train.max_steps, time_limit=train.time_limit, enabled=not args.quiet)
    if not args.quiet and dist.rank == 0:
        progress.message(f"training {c.model.upper()} {c.num_layers}x{c.hidden_size} "
                         f"({model.num_parameters():,} parameters) on {len(text):,} characters, "
                         f"vocabulary {len(model.vocab)}; run directory {out_dir}")
    with SignalStop() as stop:
        summary = train_charlm(model, text, train, out_dir=run, progress=progress, resume=resume,
                               text_source=source, smoothed_loss=model.config.grad_reduction == "sum",
                               sample_chars=0 if args.quiet else 200, stop=stop, dist=dist)
    summary["out_dir"] = out_dir
    if summary["stop_reason"] == "interrupted" and dist.size > 1:     # the signal one rank got
        import signal
        stop.signum = dist.max(stop.signum or 0)
        stop.name = signal.Signals(stop.signum).name
    if dist.rank != 0:                        # rank 0 reports for every rank
        return {"interrupted": 128 + (stop.signum or 0), "diverged": 1}.get(summary["stop_reason"], 0)
    if args.ngram and summary["stop_reason"] not in ("diverged", "interrupted"):
        _keep_mixture(args.ngram, text, out_dir, progress)
    if summary["stop_reason"] == "interrupted":
        print(f"rnnlab: interrupted by {stop.name} after {summary['steps']} steps; the latest state is "
              f"saved: continue with rnnlab train --resume {out_dir}", file=sys.stderr)
        return 128 + stop.signum
    if args.json:
        summary.pop("evaluations")
        print(json.dumps(summary))
    elif not args.quiet:
        best = summary["best_val_loss"]
        print(f"stopped ({summary['stop_reason']}) after {summary['steps']} steps, "
              f"{summary['epochs']:.2f} epochs; best validation "
              + (f"{readable(best)} nats/char = {readable(summary['best_val_bpc'])} bits/char" if best is not None
                 else "n/a")
              + (f"; smooth loss {summary['smooth_loss']:.2f}" if summary["smooth_loss"] is not None else "")
              + "\n" + overhead_line(summary)
              + (f"\nsample with: rnnlab sample {out_dir}" if os.path.isfile(os.path.join(out_dir, "best.npz"))
                 else "\nno checkpoint was saved (nothing to sample from)"))
    return 1 if summary["stop_reason"] == "diverged" else 0


def overhead_line(summary):
    """How much of this run's wall clock went to evaluation and to samples and checkpoints."""
    run = max(summary["run_seconds"], 1e-9)
    ev, rep = summary["eval_seconds"], summary["report_seconds"]
    return (f"wall clock {run:.1f} s: validation {ev:.1f} s ({100 * ev / run:.1f}%), samples and "
            f"checkpoints {rep:.1f} s ({100 * rep / run:.1f}%)")


def _text_outside(source, out_dir, force):
    """With --force, the training text must not lie inside the directory it replaces: the
    run would delete the text it was trained on (and that a resume reads again)."""
    if not force or not source or source.startswith("default:"):
        return
    text, out = os.path.realpath(source), os.path.realpath(out_dir)
    if os.path.commonpath([text, out]) == out:
        raise UsageError(f"the training text {source} lies inside --out {out_dir}, which --force replaces; "
                         f"move it out first")


def _run_dir(dist, out_dir, force, resume_step=None):
    """The RunDir on rank 0, which alone writes it (its rules checked there, an error agreed
    with the other ranks before training); None on the others, which would race it."""
    from ..rundir import RunDir
    if dist.rank == 0:
        return RunDir.create(out_dir, force) if resume_step is None else RunDir.resume(out_dir, resume_step)
    return None


def _keep_mixture(order, text, out_dir, progress):
    """--ngram N: the n-gram on the training split, mixed with the best checkpoint, λs
    fitted on the validation tail, saved as RUN/ngram.npz."""
    from ..data.text import split_train_val
    from ..models.charlm import CharLM
    from ..models.mixing import FILE, fit_mixture
    best = os.path.join(out_dir, "best.npz")
    if not os.path.isfile(best):
        return
    model = CharLM.load(best)
    mix = fit_mixture(model, *split_train_val(text, model.config.val_frac), order)
    mix.save(os.path.join(out_dir, FILE))
    progress.message(f"{order}-gram mixture saved in {os.path.join(out_dir, FILE)}; the network's weight λ "
                     f"where the n-gram has seen the context 0, 1, 2-3, 4-7, ... times: "
                     + " ".join(f"{v:.2f}" for v in mix.lambdas))


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
    from .adapt import adapt_to_prime, mixture
    checkpoint = _resolve_checkpoint(args.checkpoint)
    model = CharLM.load(checkpoint)
    prime = args.prime or ""
    if args.prime_file is not None:
        prime = read_text(args.prime_file, args.encoding)
    if prime:
        model.vocab.encode(prime)           # unknown characters → one clear error, before output
    mix = adapt_to_prime(args, model, checkpoint, prime, mixture(args, model, checkpoint))
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
        if m["oov"]:
            print(f"{m['oov']} character(s) outside the vocabulary were dropped before scoring")
    return 0


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
    m = lm.evaluate(held, adapt=args.adapt)
    if args.json:
        print(json.dumps(m))
    else:
        kind = "modified" if args.modified else "interpolated"
        print(f"{args.order}-gram ({kind} Kneser-Ney{', adapting' if args.adapt else ''}) on {len(train):,} characters; "
              f"{m['chars']} scored: {describe_lm(m)}")
    return 0


def cmd_bench(args):
    from ..bench import HEADER, run_bench
    if args.repeats < 1:
        raise UsageError("--repeats must be >= 1")
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
        print(result["default"] + " (torch: the shape, optimizer and dropout)")
        print("vs torch = median over alternated rounds of torch time / rnnlab time (> 1: rnnlab faster); "
              "peak = share of the GEMM peak")
    return 0


TASK_OPTIONS = {
    "detect": ["word", "threshold", "hidden_size"],
    "forecast": ["series", "csv", "column", "window", "horizon", "fill", "test_frac", "hidden_size"],
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
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"task {args.name}: " + ", ".join(f"{k}={v}" for k, v in result.items()
                                           if k not in ("task", "metrics", "training", "table", "exploding")))
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
                  f"{_g(v['first_update_norm'])}  final loss {_g(v['final_loss'])}  steps {v['steps']}")
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def _g(v):
    return "n/a" if v is None else f"{v:.4g}"


def cmd_demo(args):
    from ..demo import train_echo
    losses = train_echo(delay=args.delay, hidden=args.hidden, iters=args.iters, seed=args.seed,
                        log=print, log_every=max(1, args.iters // 10))
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return 0
