"""A training run of a character model: char-rnn's batching with the hidden state
carried between windows (truncated BPTT, reset at each epoch), the run directory, and
exact resume — around the one loop in ``trainer.py``. The model is any object with
CharLM's interface (``loss_and_grad``, ``evaluate_ids``, ``generate``, ``save``); this
module does not import it.

Run directory (``out_dir``):
    config.json     the model/training configuration
    vocab.json      the vocabulary (a JSON string of the characters, in id order)
    metrics.jsonl   one JSON object per evaluation
    latest.npz      the state at the last evaluation or stop — everything needed to
                    resume exactly: weights, optimizer slots, carried hidden state,
                    data position, counters, the dropout generator's state
    best.npz        the weights with the best validation loss so far (with no
                    validation split: the latest weights at each evaluation)

Weight averaging (config ``average`` > 0, averaging.py): the average is updated after
every optimizer step (the trainer's ``on_step``); validation, the samples shown and
best.npz use it; latest.npz holds the raw weights and the average ("avg/<name>").

Exact resume: a run stopped (by any budget) and resumed with ``resume=`` ends with the
same weights, bit for bit, as one that ran straight through, provided the evaluations
fall on the same steps (evaluation reads but never changes training state).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from .averaging import WeightAverage
from .models.charlm_io import MAX_ABS_STATE, MAX_ABS_WEIGHT, loadable
from .data.text import char_batches, split_train_val, text_fingerprint
from .errors import CheckpointError, ConfigError, DataError
from .metrics import bits_per_char, perplexity
from .optim import DecaySchedule
from .parallel import Dist, plan_resume, rank_rngs, rank_slice
from .progress import Progress
from .rundir import RunDir, is_run, write_json
from .trainer import Trainer

DIVERGENCE_FACTOR, DIVERGENCE_STEPS = 3.0, 10   # a loss above 3x the first step's, 10 steps in a row
EVAL_SHARE = 0.025           # auto_eval_every's target: the periodic evaluations' share of the time
MIN_EVAL_EVERY = 200
EVAL_COST = 0.5              # an evaluated character's time over a trained one's (measured below)


def auto_eval_every(n_val, seq_len, batch_size):
    """The CLI's default number of steps between evaluations: 200, or more when the
    validation text is large, so that evaluating it takes about EVAL_SHARE of the run.
    An evaluation reads each of the ``n_val`` characters once, forward only; measured at
    the default shape on 2 cores (tiny Shakespeare, 111,539 validation characters in
    3.75 s against 15,000 trained characters a second), a validated character costs
    about half a trained one (EVAL_COST): forward only, but step by step through fewer,
    longer streams. The final evaluation comes on top (a run ends with one)."""
    steps = n_val * EVAL_COST / (seq_len * batch_size) * (1 - EVAL_SHARE) / EVAL_SHARE
    return max(MIN_EVAL_EVERY, math.ceil(steps))


class CarriedStateObjective:
    """char-rnn's training objective: batch ``pos`` of the epoch is window ``pos`` of every
    stream; the final hidden state of one window is the initial state of the next, and the
    state is reset at the start of each epoch."""

    def __init__(self, model, X, Y, state=None):
        self.model, self.X, self.Y = model, X, Y
        self.state, self._next = state, None

    def loss_and_grad(self, pos):
        if pos == 0:
            self.state = None
        loss, self._next = self.model.loss_and_grad(self.X[pos], self.Y[pos], self.state)
        return loss

    def commit(self):
        self.state = self._next


def min_char_rnn_smoothing(model, streams=None):
    """min-char-rnn's progress figure: smooth = 0.999·smooth + 0.001·(summed window loss),
    starting from the loss of a uniform guess, −ln(1/V)·seq_len. ``streams``: the batch
    (default the config's; N·B for N ranks)."""
    c = model.config
    start = -math.log(1.0 / len(model.vocab)) * c.seq_len
    streams = streams or c.batch_size

    def smooth(prev, loss):
        return (start if prev is None else prev) * 0.999 + loss * c.seq_len * streams * 0.001
    return smooth


def _resume_partition(model, meta, state, dist):
    """Apply the resume rule of parallel.py: set this run's per-rank batch and return
    (this rank's carried state, a note when the streams were cut anew)."""
    c = model.config
    saved = meta.get("workers", 1)
    batch, same = plan_resume(saved, c.batch_size, dist.size)
    if batch != c.batch_size:
        model.config = dataclasses.replace(c, batch_size=batch).validate()
    if same:
        if state is not None and dist.size > 1:
            parts = state if isinstance(state, tuple) else (state,)
            parts = tuple(np.ascontiguousarray(a[:, dist.rank * batch:(dist.rank + 1) * batch]) for a in parts)
            state = parts if isinstance(state, tuple) else parts[0]
        return state, None
    return None, (f"resuming {saved}×{c.batch_size} streams on {dist.size} ranks: {dist.size}×{batch} "
                  f"streams cut anew, the carried hidden state starts from zero at the saved window")


def train_charlm(model, text, train, *, out_dir=None, force=False, resume=None, progress=None,
                 sample_chars=200, text_source=None, text_encoding=None, smoothed_loss=False, grad_hook=None,
                 stop=None, dist=None, header=None):
    """Train ``model`` on ``text`` for the budget in ``train`` (a TrainConfig).
    ``out_dir``: a path or a ``RunDir`` (None: nothing is written); a path must be new or
    empty, or a run with ``force`` (replaced at this run's first evaluation: see rundir.py),
    or, with ``resume``, the run being resumed.
    ``resume``: (optimizer state, carried state) from ``CharLM.load(...,
    with_training_state=True)``; the counters come from ``model.meta``. ``stop``: a
    callable polled before each step (``Trainer``). ``dist``: data-parallel training
    (``parallel.get_dist()``): rank r of N trains on streams [r·B, (r+1)·B) of N·B, the
    gradients are all-reduced before ``grad_hook``, and only rank 0 evaluates, reports and
    writes ``out_dir`` (see parallel.py, also for resuming with another N). ``header``: a
    line shown once the inputs are checked (so an error is the only line). Returns the
    trainer's summary plus ``best_val_bpc``."""
    dist = dist or Dist()
    if dist.rank != 0:
        out_dir, progress, sample_chars = None, None, 0
    note = None
    with dist.agreeing():                      # every rank checks its input before any collective
        train.validate()
        unknown = model.vocab.unknown(text)
        if unknown:
            raise DataError(f"the text has {len(unknown)} character(s) outside the model's vocabulary "
                            f"(e.g. {unknown[0]!r}); a resumed run must use the same text")
        ids = model.vocab.encode(text)
        train_ids, val_ids = split_train_val(ids, model.config.val_frac)
        fingerprint = text_fingerprint(text)
        opt = model.make_optimizer()
        state, counters = None, None
        if resume is not None:
            opt_state, state = resume
            m = model.meta
            if m.get("text_fingerprint") not in (None, fingerprint):
                raise DataError("this run was trained on a different text; resume with the same TEXT")
            state, note = _resume_partition(model, m, state, dist)
        c = model.config
        X, Y = char_batches(train_ids, c.batch_size * dist.size, c.seq_len)
        X, Y = rank_slice(X, dist, c.batch_size), rank_slice(Y, dist, c.batch_size)
        if resume is not None:
            counters = m
            if note is not None and isinstance(m.get("pos"), int) and m["pos"] >= 0:
                counters = model.meta = {**m, "pos": min(m["pos"], X.shape[0] - 1), "steps_per_epoch": X.shape[0]}
            rngs = model.check_training_state(X.shape[0])
        own = rank_rngs(model, dist, model.meta if resume is not None else None, c.seed,
                        counters.get("step", 0) if counters else 0)
        try:
            if resume is not None:
                opt.load_state_dict(opt_state, params=model.params)
            if resume is not None and own is None:
                model.load_rng_states(rngs)
            if own is not None:
                model.load_rng_states(own)
        except (ConfigError, TypeError, ValueError, KeyError, OverflowError) as e:
            raise CheckpointError(f"the checkpoint to resume has damaged training state ({e})") from None
        avg = _weight_average(model, resume, (counters or {}).get("step", 0))
        run = out_dir
        if isinstance(out_dir, (str, os.PathLike)):
            run = (RunDir.resume(out_dir, counters["step"]) if resume is not None and is_run(out_dir)
                   else RunDir.create(out_dir, force))
    progress = progress or Progress(enabled=False)
    if header:
        progress.message(header)
    if train.max_epochs is not None:              # the steps an epoch budget comes to: the bar's total, the ETA
        by_epochs = train.max_epochs * X.shape[0]
        progress.total = by_epochs if progress.total is None else min(progress.total, by_epochs)
    if dist.size > 1:
        progress.message(f"data-parallel: {dist.size} ranks × {c.batch_size} streams")
    if note:
        progress.message(note)
    hooks = [h for h in (dist.grad_hook(model, average=c.grad_reduction == "mean"), grad_hook) if h]
    trainer = Trainer(model, opt, train, steps_per_epoch=X.shape[0], clip=c.clip, clip_mode=c.clip_mode,
                      schedule=DecaySchedule(c.lr, c.lr_decay, c.lr_decay_after),
                      divergence_factor=DIVERGENCE_FACTOR, divergence_steps=DIVERGENCE_STEPS,
                      grad_hook=(lambda g: [h(g) for h in hooks]) if hooks else None,
                      items_per_step=c.seq_len * c.batch_size * dist.size,
                      smoothing=min_char_rnn_smoothing(model, c.batch_size * dist.size) if smoothed_loss else None,
                      on_step=None if avg is None else (lambda step, loss: avg.update()),
                      progress=progress, counters=counters, stop=stop, comm=dist if dist.size > 1 else None)
    objective = CarriedStateObjective(model, X, Y, state)

    if run is not None:
        write_json(run.file("config.json"), c.to_dict())
        write_json(run.file("vocab.json"), model.vocab.chars)

    def save(name, with_training_state):
        state, rngs = objective.state, model.rng_states()
        extra = {"workers": dist.size} if dist.size > 1 else {}
        if with_training_state and dist.size > 1:          # collectives: every rank is here
            state = dist.gather_state(state)
            extra["rank_rngs"] = dist.gather(rngs)
        if run is None or run.pending:         # a forced run replaces the old one at its first evaluation
            return
        averages = avg.averages if avg is not None and with_training_state else None
        # nothing the loader would refuse: weights, slots and carried state finite and in bounds
        slots = [a for s in opt.state.values() for a in s.values()]
        carried = [s for s in (state if isinstance(state, tuple) else (state,)) if s is not None]
        if not loadable(model.params) or (averages is not None and not loadable(avg.averages)) or (
                with_training_state and not loadable(dict(enumerate(slots + carried)), MAX_ABS_STATE)):
            progress.message(f"the weights or the training state are no longer finite (or beyond ±{MAX_ABS_WEIGHT:g} "
                             f"and ±{MAX_ABS_STATE:g}); {name} is left as it was")
            return
        meta = {**trainer.counters, "text_fingerprint": fingerprint, "text_source": text_source,
                "steps_per_epoch": trainer.steps_per_epoch, "rngs": rngs, "text_encoding": text_encoding,
                "eval_every": train.eval_every, "patience": train.patience, **extra}
        model.save(run.file(name), optimizer=opt if with_training_state else None,
                   state=state if with_training_state else None, meta=meta,
                   averages=averages)

    def evaluate():                                         # rank 0 evaluates, every rank learns the result
        val = model.evaluate_ids(val_ids) if dist.rank == 0 and len(val_ids) >= 2 else None
        return dist.bcast(val)

    def on_eval(record, improved):
        val = record["val_loss"]
        record["val_bpc"] = None if val is None else bits_per_char(val)
        record["val_ppl"] = None if val is None else perplexity(val)
        if run is not None and run.pending and loadable(model.params):
            run.commit()                    # the first evaluation of weights that can be saved: swapped in
        if improved or val is None:
            save("best.npz", False)
        if run is not None:
            with open(run.file("metrics.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        progress.report(record["step"], loss=record["train_loss"], val=val, bpc=record["val_bpc"],
                        **{"char/s": round(record["chars_per_sec"])})
        if sample_chars:
            progress.message("  sample: " + repr(model.generate(
                sample_chars, temperature=0.8, seed=c.seed + record["step"]))[:sample_chars + 2])

    summary = trainer.run(objective, evaluate=_averaged(avg, evaluate), on_eval=_averaged(avg, on_eval),
                          save=lambda: save("latest.npz", True))
    if run is not None:
        run.discard()                 # a forced run that never evaluated savable weights: the old run stays
    best = summary["best_val_loss"]
    summary["best_val_bpc"] = None if best is None else bits_per_char(best)
    return summary


def _weight_average(model, resume, step):
    """The run's WeightAverage, None when config.average is 0: a fresh one, or on a resume
    the one the checkpoint holds (``model.averaged``), continued at update ``step``."""
    decay = model.config.average
    if not decay:
        return None
    saved = getattr(model, "averaged", None) if resume is not None else None
    if resume is not None and saved is None:
        raise CheckpointError("the checkpoint to resume holds no averaged weights (avg/...) although "
                              "its configuration averages them")
    try:
        avg = WeightAverage(model, decay, averages=saved, updates=step if saved is not None else 0)
    except ConfigError as e:
        raise CheckpointError(f"the checkpoint to resume has damaged training state ({e})") from None
    model.averaged = avg.averages          # after training: the final average
    return avg


def _averaged(avg, fn):
    """``fn`` run with the averaged weights in the model (``fn`` itself without averaging)."""
    if avg is None:
        return fn

    def run(*args):
        with avg.applied():
            return fn(*args)
    return run
