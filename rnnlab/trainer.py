"""The one training loop, used by the character model, the tasks and the demo.

    config = TrainConfig(max_steps=..., max_epochs=..., time_limit=..., eval_every=..., patience=...)
    trainer = Trainer(model, optimizer, config, clip=5.0, ...)
    summary = trainer.run(objective, evaluate=..., on_eval=..., save=...)

Each step: ``model.zero_grad()``; ``loss = objective.loss_and_grad(pos)`` (forward and
backward into ``model.grads``; ``pos`` is the batch's index within the epoch); the
divergence check; ``grad_hook(grads)`` (the place for a data-parallel all-reduce); clipping
(global L2 norm, or each entry clamped to ±clip); the learning rate from ``schedule``;
``optimizer.step``; ``objective.commit()`` (the update is applied: carry the hidden state
on). Then the counters move, ``on_step(step, loss)`` runs (after the update: the char
model's run moves its weight average there) and, every ``eval_every`` steps,
``evaluate()`` gives a validation loss (or None), the trainer tracks the best one and the
evaluations without improvement (early stopping after ``patience`` of them), calls
``on_eval(record, improved)`` and then ``save()``.

Stops at the first of: ``max_steps``, ``max_epochs``, ``time_limit`` seconds (this run's
wall clock), early stopping, or divergence — a NaN/Inf loss, or (with
``divergence_factor``) a loss above that multiple of the first step's for
``divergence_steps`` steps in a row — which stops *before* that step's update is
applied. A final evaluation runs when steps were taken since the last one (not after a
divergence), then a final ``save()`` — none when the last evaluation step's ``save()``
already wrote this step's state.

The summary says where this run's wall clock went: ``run_seconds`` in all,
``eval_seconds`` in ``evaluate`` and ``report_seconds`` in ``on_eval`` and ``save`` (the
char model's samples, metrics and checkpoints); the CLI prints their shares.

``counters`` (step, epoch, pos, best_val, bad_evals, initial_loss, smooth_loss,
chars_seen, elapsed, last_eval_step, high_steps: the steps in a row above the divergence
factor) is everything a checkpoint needs besides weights,
optimizer slots and generators: ``Trainer(..., counters=saved)`` resumes exactly.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields

from .errors import ConfigError
from .module import finite_real
from .optim import clip_by_value, clip_grad_norm, global_norm
from .progress import Progress


@dataclass
class TrainConfig:
    """The budget and the evaluation cadence of a training run. At least one of
    max_steps, max_epochs, time_limit must be given (``validate``)."""
    max_steps: int | None = None
    max_epochs: int | None = None
    time_limit: float | None = None       # seconds
    eval_every: int | None = 200          # steps between evaluations (None: only at the end)
    patience: int | None = None           # evaluations without improvement before stopping

    def validate(self):
        for name in ("max_steps", "max_epochs", "eval_every", "patience"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.time_limit is not None:
            if not finite_real(self.time_limit) or not self.time_limit > 0:      # True is not 1 second
                raise ConfigError(f"time_limit must be a positive number of seconds, got {self.time_limit!r}")
            self.time_limit = float(self.time_limit)          # saved in metrics and checkpoints as JSON
        if self.max_steps is None and self.max_epochs is None and self.time_limit is None:
            raise ConfigError("give a training budget: max_steps, max_epochs or time_limit")
        return self

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_kwargs(cls, kwargs):
        """Split a TrainConfig off keyword arguments; returns (config, the other kwargs)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kwargs.items() if k in names}), \
            {k: v for k, v in kwargs.items() if k not in names}


COUNTERS = ("step", "epoch", "pos", "best_val", "bad_evals", "initial_loss", "smooth_loss",
            "chars_seen", "elapsed", "last_eval_step", "high_steps")


class Trainer:
    """model: a Module (params, grads, zero_grad, train); optimizer: ``step(params, grads)``
    with an ``lr``. steps_per_epoch: batches per epoch (None: no epochs, pos = step).
    items_per_step: characters (or examples) per step, for the rate shown and chars_seen.
    smoothing(prev, loss) -> new: a smoothed loss shown and kept in the counters.
    track: keep every loss and gradient norm in ``history`` (the tasks plot them).
    stop: a callable polled before each step; a true result stops the run ("interrupted":
    no final evaluation; the final ``save`` still runs, unless that step's evaluation
    saved) — the CLI sets it from SIGINT and SIGTERM, so a signal never lands in the
    middle of an update.
    comm: for data-parallel training (parallel.py), an object with ``agree_stop(reason)``
    (the stop reason every process takes) and ``mean(loss)`` (the loss over all processes),
    so that every process stops, diverges and reports at the same step."""

    def __init__(self, model, optimizer, config, *, steps_per_epoch=None, clip=0.0, clip_mode="norm",
                 schedule=None, divergence_factor=None, divergence_steps=1, grad_hook=None, items_per_step=1,
                 rate_name="char/s", smoothing=None, track=False, progress=None, on_step=None,
                 counters=None, stop=None, comm=None):
        if clip_mode not in ("norm", "value"):
            raise ConfigError(f"clip_mode must be 'norm' or 'value', got {clip_mode!r}")
        self.model, self.optimizer, self.config = model, optimizer, config.validate()
        self.steps_per_epoch, self.clip, self.clip_mode = steps_per_epoch, float(clip), clip_mode
        self.schedule, self.divergence_factor, self.grad_hook = schedule, divergence_factor, grad_hook
        self.divergence_steps = divergence_steps
        self.items_per_step, self.rate_name, self.smoothing = items_per_step, rate_name, smoothing
        self.track, self.on_step, self.stop, self.comm = track, on_step, stop, comm
        self.progress = progress or Progress(enabled=False)
        self.counters = {"step": 0, "epoch": 0, "pos": 0, "best_val": None, "bad_evals": 0,
                         "initial_loss": None, "smooth_loss": None, "chars_seen": 0, "elapsed": 0.0,
                         "last_eval_step": 0, "high_steps": 0}
        if counters:
            self.counters.update({k: counters[k] for k in COUNTERS if k in counters})
        self.history = {"losses": [], "grad_norms": []}
        self.records = []
        self.last_loss = None
        self._window = [0, 0.0]          # items and seconds since the last evaluation
        # this run's seconds (not a resumed run's): in all, evaluating, and in on_eval/save
        self.overhead = {"run_seconds": 0.0, "eval_seconds": 0.0, "report_seconds": 0.0}

    # -- the loop ------------------------------------------------------------------------
    def _stop_reason(self, start):
        c, cfg = self.counters, self.config
        if self.stop is not None and self.stop():
            return "interrupted"
        if cfg.max_steps is not None and c["step"] >= cfg.max_steps:
            return "max_steps"
        if cfg.max_epochs is not None and c["epoch"] >= cfg.max_epochs:
            return "max_epochs"
        if cfg.time_limit is not None and time.perf_counter() - start >= cfg.time_limit:
            return "time_limit"
        if cfg.patience is not None and c["bad_evals"] >= cfg.patience:
            return "early_stopping"
        return None

    def _diverged(self, loss):
        """Why ``loss`` ends the run, or None; counts the steps in a row above the factor
        (one batch's loss can spike alone: min-char-rnn's batch of 25 characters went
        above 3x its first loss for a single step on a third of the seeds, 2026-12-06)."""
        c = self.counters
        if not math.isfinite(loss):
            return "is not finite"
        if self.divergence_factor is None:
            return None
        c["high_steps"] = c["high_steps"] + 1 if loss > self.divergence_factor * c["initial_loss"] else 0
        if c["high_steps"] >= self.divergence_steps:
            return (f"exceeds {self.divergence_factor:g}x its initial value"
                    + (f" for {c['high_steps']} steps in a row" if c["high_steps"] > 1 else ""))
        return None

    def rate(self):
        items, seconds = self._window
        return items / max(seconds, 1e-9)

    def run(self, objective, *, evaluate=None, on_eval=None, save=None):
        """Train until a stop; returns the summary dict (see ``summary``)."""
        c, model, opt = self.counters, self.model, self.optimizer
        start = time.perf_counter()
        base_elapsed = c["elapsed"]
        reason, saved_at = None, None       # saved_at: the step the last save() wrote
        model.train()
        while True:
            reason = self._stop_reason(start)
            if self.comm is not None:
                reason = self.comm.agree_stop(reason)
            if reason:
                break
            t0 = time.perf_counter()
            model.zero_grad()
            loss = float(objective.loss_and_grad(c["pos"]))
            if self.comm is not None:
                loss = self.comm.mean(loss)
            if c["initial_loss"] is None:
                c["initial_loss"] = loss
            why = self._diverged(loss)
            if why:
                reason = "diverged"
                self.progress.message(f"training stopped at step {c['step'] + 1}: loss {loss:.4g} {why}"
                                      + ("; the best checkpoint is unchanged" if save else ""))
                break
            grads = model.grads
            if self.grad_hook is not None:
                self.grad_hook(grads)
            norm = self._clip(grads)
            if self.schedule is not None:
                opt.lr = self.schedule.lr_at(c["epoch"])
            opt.step(model.params, grads)
            objective.commit()
            self._advance(loss, norm, time.perf_counter() - t0)
            c["elapsed"] = base_elapsed + time.perf_counter() - start
            self.progress.update(c["step"], loss=loss, smooth=c["smooth_loss"],
                                 **{self.rate_name: round(self.rate())})
            if self.on_step is not None:
                self.on_step(c["step"], loss)
            if self.config.eval_every and c["step"] % self.config.eval_every == 0:
                self._evaluate(evaluate, on_eval, count_patience=True)
                if save:
                    self._timed("report_seconds", save)
                    saved_at = c["step"]
        if reason not in ("diverged", "interrupted") and c["step"] > c["last_eval_step"]:
            self._evaluate(evaluate, on_eval, count_patience=False)
        # the final save, unless the last evaluation step's save already wrote this state
        if save and (reason != "diverged" or c["step"] > 0) and saved_at != c["step"]:
            self._timed("report_seconds", save)
        self.overhead["run_seconds"] = time.perf_counter() - start
        self.progress.close()
        return self.summary(reason)

    def _clip(self, grads):
        """Clip in place; the global norm before clipping when it is computed, else None."""
        if self.clip > 0 and self.clip_mode == "norm":
            return clip_grad_norm(grads, self.clip)
        norm = global_norm(grads) if self.track else None
        if self.clip > 0:
            clip_by_value(grads, self.clip)
        return norm

    def _advance(self, loss, norm, seconds):
        c = self.counters
        self.last_loss = loss
        if self.smoothing is not None:
            c["smooth_loss"] = self.smoothing(c["smooth_loss"], loss)
        if self.track:
            self.history["losses"].append(loss)
            self.history["grad_norms"].append(norm)
        c["step"] += 1
        c["pos"] += 1
        if self.steps_per_epoch is not None and c["pos"] == self.steps_per_epoch:
            c["pos"] = 0
            c["epoch"] += 1
        c["chars_seen"] += self.items_per_step
        self._window[0] += self.items_per_step
        self._window[1] += seconds

    def _timed(self, key, fn, *args):
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.overhead[key] += time.perf_counter() - t

    def _evaluate(self, evaluate, on_eval, count_patience):
        c = self.counters
        val = self._timed("eval_seconds", evaluate) if evaluate is not None else None
        improved = val is not None and (c["best_val"] is None or val < c["best_val"])
        if improved:
            c["best_val"], c["bad_evals"] = val, 0
        elif val is not None and count_patience:
            c["bad_evals"] += 1
        c["last_eval_step"] = c["step"]
        record = {"step": c["step"], "epoch": c["step"] / (self.steps_per_epoch or 1),
                  "train_loss": self.last_loss, "val_loss": val, "lr": self.optimizer.lr,
                  "chars_per_sec": self.rate(), "elapsed": c["elapsed"]}
        if on_eval is not None:
            self._timed("report_seconds", on_eval, record, improved)
        self.records.append(record)
        self._window = [0, 0.0]
        return record

    def summary(self, reason):
        c = self.counters
        return {"stop_reason": reason, "steps": c["step"],
                "epochs": c["step"] / (self.steps_per_epoch or 1), "train_loss": self.last_loss,
                "val_loss": self.records[-1]["val_loss"] if self.records else None,
                "best_val_loss": c["best_val"], "smooth_loss": c["smooth_loss"],
                "elapsed": c["elapsed"], "evaluations": self.records, **self.overhead,
                "parameters": int(self.model.num_parameters())}
