"""``rnnlab train``: a character model trained on a text (the library's
``charlm_run.train_charlm``), its run directory made or resumed, Ctrl-C/SIGTERM turned
into a saved stop, and with ``--workers N`` the same command run on N MPI ranks."""
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


def _load_text(args_text, encoding, recorded=False):
    """(text, source) of TEXT, or of the default corpus; ``recorded``: a path the
    checkpoint named (read only if it is a regular file)."""
    from ..data.corpus import default_corpus, default_corpus_source
    from ..data.text import read_text
    if args_text is None:
        return default_corpus(), "default:" + default_corpus_source()
    return read_text(args_text, encoding, regular=recorded), os.path.abspath(args_text)


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
    from ..models.charlm_io import saved_cadence, training_encoding
    from ..progress import Progress
    from ..rundir import MARKER, is_run, recover
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
                        eval_every=args.eval_every, patience=args.patience or None)   # 0: no early stop
    if train.max_steps is None and train.max_epochs is None and train.time_limit is None:
        train.time_limit = 300.0
    train.validate()
    from ..ngram import MAX_ORDER
    if args.ngram is not None and not 1 <= args.ngram <= MAX_ORDER:
        raise UsageError(f"--ngram must be an order from 1 to {MAX_ORDER}, got {args.ngram}")
    resume = None
    if args.resume:
        with dist.agreeing(last=False):       # rank 0 repairs what a killed run left before any rank reads it
            folder = os.path.dirname(os.path.abspath(args.resume))
            if dist.rank == 0 and not args.resume.endswith(".npz"):
                recover(args.resume)
            elif dist.rank == 0 and os.path.isfile(os.path.join(folder, MARKER)):
                recover(folder)               # a run's own .npz; any other folder is the user's
        ckpt = os.path.join(args.resume, "latest.npz") if os.path.isdir(args.resume) else args.resume
        if os.path.isdir(args.resume) and not is_run(args.resume):
            raise UsageError(f"--resume {args.resume}: not an rnnlab run directory")
        model, opt_state, state = CharLM.load(ckpt, with_training_state=True)
        given = [o for o in TRAIN_MODEL_OPTIONS if getattr(args, o) is not None] + (["preset"] if args.preset else [])
        if given:
            raise UsageError("--resume continues the saved configuration; drop "
                             + ", ".join("--" + o.replace("_", "-") for o in given))
        source = model.meta.get("text_source")
        encoding = args.encoding or training_encoding(model.meta)     # the run's, unless given
        if args.text is not None:
            text, source = _load_text(args.text, encoding)
        elif source and source.startswith("default:"):
            text, source = _load_text(None, encoding)
        elif source:
            text, source = _load_text(source, encoding, recorded=True)
        else:
            raise UsageError("the checkpoint does not say which text it was trained on; pass TEXT")
        run_of_ckpt = args.resume if os.path.isdir(args.resume) else os.path.dirname(os.path.abspath(ckpt))
        out_dir = args.out or run_of_ckpt
        resume = (opt_state, state)
        every, patience = saved_cadence(model.meta)   # the run's own cadence, unless given again
        train.eval_every = every if args.eval_every is None else args.eval_every
        train.patience = patience if args.patience is None else (args.patience or None)
        step = model.meta.get("step") if isinstance(model.meta.get("step"), int) else 0
        epoch = model.meta.get("epoch") if isinstance(model.meta.get("epoch"), int) else 0
        for flag, limit, at in (("--max-steps", train.max_steps, step), ("--max-epochs", train.max_epochs, epoch)):
            if limit is not None and at >= limit:       # step and epoch budgets are the run's totals
                raise UsageError(f"{flag} {limit}: the run is already at {flag[6:-1]} {at} (step and epoch "
                                 f"budgets count from the run's start, --time-limit from this start)")
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
        encoding = args.encoding or "utf-8"
        text, source = _load_text(args.text, encoding)
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
        if not c.val_frac:
            raise UsageError(f"--ngram {args.ngram} fits the mixture's weights on the validation tail, and "
                             f"--val-frac 0 leaves none; give --val-frac > 0, or drop --ngram")
        try:
            check_memory(args.ngram, len(text))
        except ConfigError as e:
            raise UsageError(f"--ngram {args.ngram}: {e}") from None
    if train.eval_every is None:
        train.eval_every = auto_eval_every(int(len(text) * c.val_frac), c.seq_len, c.batch_size)
    progress = Progress(total=train.max_steps, time_limit=train.time_limit, enabled=not args.quiet)
    header = (f"training {c.model.upper()} {c.num_layers}x{c.hidden_size} ({model.num_parameters():,} parameters) "
              f"on {len(text):,} characters, vocabulary {len(model.vocab)}; run directory {out_dir}")
    with SignalStop() as stop:
        summary = train_charlm(model, text, train, out_dir=run, progress=progress, resume=resume,
                               text_source=source, text_encoding=None if source.startswith("default:") else encoding,
                               smoothed_loss=model.config.grad_reduction == "sum",
                               sample_chars=0 if args.quiet else 200, stop=stop, dist=dist, header=header)
    summary["out_dir"] = out_dir
    if summary["stop_reason"] == "interrupted" and dist.size > 1:     # the signal one rank got
        import signal
        stop.signum = dist.max(stop.signum or 0)
        stop.name = signal.Signals(stop.signum).name
    if dist.rank != 0:                        # rank 0 reports for every rank
        return {"interrupted": 128 + (stop.signum or 0), "diverged": 1}.get(summary["stop_reason"], 0)
    kept_old = run is not None and run.pending     # --force stopped before its first evaluation
    if args.ngram and summary["stop_reason"] not in ("diverged", "interrupted") and not kept_old:
        _keep_mixture(args.ngram, text, out_dir, progress)
    old_run = f"nothing of this run was saved, and {out_dir} still holds the run --force was to replace"
    if summary["stop_reason"] == "interrupted":
        print(f"rnnlab: interrupted by {stop.name} after {summary['steps']} steps; "
              + (old_run if kept_old else f"the latest state is saved: continue with rnnlab train --resume {out_dir}"),
              file=sys.stderr)
        return 128 + stop.signum
    if summary["stop_reason"] == "diverged" and args.quiet and not args.json:   # exit 1 says why, quiet or not
        print(f"rnnlab: training diverged after {summary['steps']} steps (the loss exploded); "
              + (old_run if kept_old else "best.npz is as the last evaluation left it"
                 if os.path.isfile(os.path.join(out_dir, "best.npz")) else "no checkpoint was saved"), file=sys.stderr)
    if args.json:
        summary.pop("evaluations")
        summary["kept_previous_run"] = kept_old
        print(json.dumps(summary))
    elif not args.quiet:
        best = summary["best_val_loss"]
        closing = (old_run if kept_old else f"sample with: rnnlab sample {out_dir}"
                   if os.path.isfile(os.path.join(out_dir, "best.npz")) else "no checkpoint was saved (nothing to sample from)")
        print(f"stopped ({summary['stop_reason']}) after {summary['steps']} steps, "
              f"{summary['epochs']:.2f} epochs; best validation "
              + (f"{readable(best)} nats/char = {readable(summary['best_val_bpc'])} bits/char" if best is not None
                 else "n/a")
              + (f"; smooth loss {summary['smooth_loss']:.2f}" if summary["smooth_loss"] is not None else "")
              + "\n" + overhead_line(summary) + "\n" + closing)
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
