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

Exact resume: a run stopped (by any budget) and resumed with ``resume=`` ends with the
same weights, bit for bit, as one that ran straight through, provided the evaluations
fall on the same steps (evaluation reads but never changes training state).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from .data.text import char_batches, split_train_val, text_fingerprint
from .errors import CheckpointError, ConfigError, DataError
from .metrics import bits_per_char, perplexity
from .optim import DecaySchedule
from .progress import Progress
from .rundir import RunDir, is_run, write_json
from .trainer import Trainer

DIVERGENCE_FACTOR = 3.0


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


def min_char_rnn_smoothing(model):
    """min-char-rnn's progress figure: smooth = 0.999·smooth + 0.001·(summed window loss),
    starting from the loss of a uniform guess, −ln(1/V)·seq_len."""
    c = model.config
    start = -math.log(1.0 / len(model.vocab)) * c.seq_len

    def smooth(prev, loss):
        return (start if prev is None else prev) * 0.999 + loss * c.seq_len * c.batch_size * 0.001
    return smooth


def train_charlm(model, text, train, *, out_dir=None, force=False, resume=None, progress=None,
                 sample_chars=200, text_source=None, smoothed_loss=False, grad_hook=None, stop=None):
    """Train ``model`` on ``text`` for the budget in ``train`` (a TrainConfig).
    ``out_dir``: a path or a ``RunDir`` (None: nothing is written); a path must be new or
    empty unless ``force`` (see rundir.py), or, with ``resume``, the run being resumed.
    ``resume``: (optimizer state, carried state) from ``CharLM.load(...,
    with_training_state=True)``; the counters come from ``model.meta``. ``stop``: a
    callable polled before each step (``Trainer``). Returns the trainer's summary plus
    ``best_val_bpc``."""
    c = model.config
    train.validate()
    unknown = model.vocab.unknown(text)
    if unknown:
        raise DataError(f"the text has {len(unknown)} character(s) outside the model's vocabulary "
                        f"(e.g. {unknown[0]!r}); a resumed run must use the same text")
    ids = model.vocab.encode(text)
    train_ids, val_ids = split_train_val(ids, c.val_frac)
    X, Y = char_batches(train_ids, c.batch_size, c.seq_len)
    fingerprint = text_fingerprint(text)
    progress = progress or Progress(enabled=False)
    opt = model.make_optimizer()
    state, counters = None, None
    if resume is not None:
        opt_state, state = resume
        m = model.meta
        if m.get("text_fingerprint") not in (None, fingerprint):
            raise DataError("this run was trained on a different text; resume with the same TEXT")
        rngs = model.check_training_state(X.shape[0])
        counters = m
        opt.load_state_dict(opt_state)
        try:
            model.load_rng_states(rngs)
        except ConfigError as e:
            raise CheckpointError(f"the checkpoint to resume has damaged training state ({e})") from None
    trainer = Trainer(model, opt, train, steps_per_epoch=X.shape[0], clip=c.clip, clip_mode=c.clip_mode,
                      schedule=DecaySchedule(c.lr, c.lr_decay, c.lr_decay_after),
                      divergence_factor=DIVERGENCE_FACTOR, grad_hook=grad_hook,
                      items_per_step=c.seq_len * c.batch_size,
                      smoothing=min_char_rnn_smoothing(model) if smoothed_loss else None,
                      progress=progress, counters=counters, stop=stop)
    objective = CarriedStateObjective(model, X, Y, state)

    run = out_dir
    if isinstance(out_dir, (str, os.PathLike)):
        run = (RunDir.resume(out_dir, trainer.counters["step"]) if resume is not None and is_run(out_dir)
               else RunDir.create(out_dir, force))
    if run is not None:
        write_json(run.file("config.json"), c.to_dict())
        write_json(run.file("vocab.json"), model.vocab.chars)

    def save(name, with_training_state):
        if run is None:
            return
        if not all(np.isfinite(p).all() for p in model.params.values()):
            progress.message(f"the weights are no longer finite; {name} is left as it was")
            return
        run.commit()
        meta = {**trainer.counters, "text_fingerprint": fingerprint, "text_source": text_source,
                "steps_per_epoch": trainer.steps_per_epoch, "rngs": model.rng_states()}
        model.save(run.file(name), optimizer=opt if with_training_state else None,
                   state=objective.state if with_training_state else None, meta=meta)

    def evaluate():
        return model.evaluate_ids(val_ids) if len(val_ids) >= 2 else None

    def on_eval(record, improved):
        val = record["val_loss"]
        record["val_bpc"] = None if val is None else bits_per_char(val)
        record["val_ppl"] = None if val is None else perplexity(val)
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

    summary = trainer.run(objective, evaluate=evaluate, on_eval=on_eval,
                          save=lambda: save("latest.npz", True))
    best = summary["best_val_loss"]
    summary["best_val_bpc"] = None if best is None else bits_per_char(best)
    return summary
