"""The training loop for character models: char-rnn batching with the hidden state
carried between windows (truncated BPTT, reset at each epoch), gradient clipping,
the optimizer, char-rnn's per-epoch learning-rate decay, periodic validation with
a printed sample, early stopping, checkpoints and exact resume.

Run directory (``out_dir``):
    config.json     the model/training configuration
    vocab.json      the vocabulary (a JSON string of the characters, in id order)
    metrics.jsonl   one JSON object per evaluation
    latest.npz      the state at the last evaluation or stop — everything needed to
                    resume exactly: weights, optimizer slots, carried hidden state,
                    data position, counters, the dropout Generator's state
    best.npz        the weights with the best validation loss so far

Stopping: ``max_steps``, ``max_epochs``, ``time_limit`` (seconds), early stopping
after ``patience`` evaluations without a better validation loss, or divergence — a
NaN/Inf loss, or a loss above 3× the first step's — which stops before the bad
update is applied and leaves best.npz as it was.

Exact resume: a run stopped (by any budget) and resumed with ``resume=True`` ends
with the same weights, bit for bit, as one that ran straight through, provided the
evaluations fall on the same steps (evaluation reads but never changes training state).
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from .data.text import char_batches, split_train_val
from .errors import DataError
from .metrics import bits_per_char, perplexity
from .models.charlm import text_fingerprint
from .optim import DecaySchedule, clip_by_value, clip_grad_norm
from .progress import Progress

DIVERGENCE_FACTOR = 3.0


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def train_charlm(model, text, *, out_dir=None, max_steps=None, max_epochs=None, time_limit=None,
                 eval_every=200, patience=None, sample_chars=200, progress=None, resume=None,
                 text_source=None, smoothed_loss=False):
    """Train ``model`` on ``text``. ``resume``: (optimizer state, carried state) from
    ``CharLM.load(..., with_training_state=True)`` — counters come from ``model.meta``.
    Returns a summary dict (steps, epochs, losses, stop reason, metrics)."""
    c = model.config
    if max_steps is None and max_epochs is None and time_limit is None:
        raise ValueError("give a training budget: max_steps, max_epochs or time_limit")
    for name, v in (("--max-steps", max_steps), ("--max-epochs", max_epochs), ("--eval-every", eval_every)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if time_limit is not None and not (time_limit > 0):
        raise ValueError(f"--time-limit must be positive, got {time_limit}")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise ValueError(f"--patience must be a positive integer, got {patience!r}")
    unknown = model.vocab.unknown(text)
    if unknown:
        raise DataError(f"the text has {len(unknown)} character(s) outside the model's vocabulary "
                        f"(e.g. {unknown[0]!r}); a resumed run must use the same text")
    ids = model.vocab.encode(text)
    train_ids, val_ids = split_train_val(ids, c.val_frac)
    X, Y = char_batches(train_ids, c.batch_size, c.seq_len)
    steps_per_epoch = X.shape[0]
    fingerprint = text_fingerprint(text)
    progress = progress or Progress(enabled=False)

    opt = model.make_optimizer()
    schedule = DecaySchedule(c.lr, c.lr_decay, c.lr_decay_after)
    st = {"step": 0, "epoch": 0, "pos": 0, "best_val": None, "bad_evals": 0, "initial_loss": None,
          "smooth_loss": None, "chars_seen": 0, "elapsed": 0.0, "last_eval_step": 0}
    state = None
    if resume is not None:
        opt_state, state = resume
        m = model.meta
        if m.get("text_fingerprint") not in (None, fingerprint):
            raise DataError("this run was trained on a different text; resume with the same TEXT")
        st.update({k: m[k] for k in st if k in m})
        if opt_state:
            opt.load_state_dict(opt_state)
        if "dropout_rng" in m:
            model.rnn.dropout_rng.bit_generator.state = m["dropout_rng"]

    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        _write_json(os.path.join(out_dir, "config.json"), c.to_dict())
        _write_json(os.path.join(out_dir, "vocab.json"), model.vocab.chars)

    def meta():
        return {**st, "text_fingerprint": fingerprint, "text_source": text_source,
                "steps_per_epoch": steps_per_epoch,
                "dropout_rng": model.rnn.dropout_rng.bit_generator.state}

    def save(name, with_training_state):
        if out_dir:
            model.save(os.path.join(out_dir, name), optimizer=opt if with_training_state else None,
                       state=state if with_training_state else None, meta=meta())

    def evaluate(count_patience):
        val = model.evaluate_ids(val_ids) if len(val_ids) >= 2 else None
        improved = val is not None and (st["best_val"] is None or val < st["best_val"])
        if improved:
            st["best_val"] = val
            st["bad_evals"] = 0
            save("best.npz", False)
        elif val is not None and count_patience:
            st["bad_evals"] += 1
        st["last_eval_step"] = st["step"]
        record = {"step": st["step"], "epoch": st["step"] / steps_per_epoch, "train_loss": last_loss,
                  "val_loss": val, "val_bpc": None if val is None else bits_per_char(val),
                  "val_ppl": None if val is None else perplexity(val), "lr": opt.lr,
                  "chars_per_sec": chars_window / max(time_window, 1e-9), "elapsed": st["elapsed"]}
        if out_dir:
            with open(os.path.join(out_dir, "metrics.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        progress.report(st["step"], loss=last_loss, val=val, bpc=record["val_bpc"],
                        **{"char/s": round(record["chars_per_sec"])})
        if sample_chars:
            progress.message("  sample: " + repr(model.generate(sample_chars, temperature=0.8,
                                                                 seed=c.seed + st["step"]))[:sample_chars + 2])
        if val is None:
            save("best.npz", False)
        return record

    reason = None
    last_loss, chars_window, time_window = None, 0, 0.0
    records = []
    start = time.perf_counter()
    base_elapsed = st["elapsed"]
    V = len(model.vocab)
    model.train()
    while True:
        if max_steps is not None and st["step"] >= max_steps:
            reason = "max_steps"
        elif max_epochs is not None and st["epoch"] >= max_epochs:
            reason = "max_epochs"
        elif time_limit is not None and time.perf_counter() - start >= time_limit:
            reason = "time_limit"
        elif patience is not None and st["bad_evals"] >= patience:
            reason = "early_stopping"
        if reason:
            break
        t0 = time.perf_counter()
        if st["pos"] == 0:
            state = None
        model.zero_grad()
        loss, new_state = model.loss_and_grad(X[st["pos"]], Y[st["pos"]], state)
        if st["initial_loss"] is None:
            st["initial_loss"] = loss
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * st["initial_loss"]:
            reason = "diverged"
            progress.message(f"training stopped at step {st['step'] + 1}: loss {loss:.4g} "
                             f"{'is not finite' if not math.isfinite(loss) else 'exceeds 3x its initial value'}"
                             f"; the best checkpoint is unchanged")
            break
        if c.clip > 0:
            if c.clip_mode == "value":
                clip_by_value(model.grads, c.clip)
            else:
                clip_grad_norm(model.grads, c.clip)
        opt.lr = schedule.lr_at(st["epoch"])
        opt.step(model.params, model.grads)
        state = new_state
        last_loss = loss
        if smoothed_loss:     # min-char-rnn: smooth_loss = 0.999·smooth + 0.001·(summed loss)
            summed = loss * c.seq_len * c.batch_size
            prev = st["smooth_loss"] if st["smooth_loss"] is not None else -math.log(1.0 / V) * c.seq_len
            st["smooth_loss"] = prev * 0.999 + summed * 0.001
        st["step"] += 1
        st["pos"] += 1
        if st["pos"] == steps_per_epoch:
            st["pos"] = 0
            st["epoch"] += 1
        st["chars_seen"] += c.seq_len * c.batch_size
        dt = time.perf_counter() - t0
        chars_window += c.seq_len * c.batch_size
        time_window += dt
        st["elapsed"] = base_elapsed + time.perf_counter() - start
        progress.update(st["step"], loss=loss, smooth=st["smooth_loss"],
                        **{"char/s": round(chars_window / max(time_window, 1e-9))})
        if st["step"] % eval_every == 0:
            records.append(evaluate(count_patience=True))
            chars_window, time_window = 0, 0.0
            save("latest.npz", True)
    if reason != "diverged" and st["step"] > st["last_eval_step"]:
        records.append(evaluate(count_patience=False))
    if reason != "diverged" or st["step"] > 0:
        save("latest.npz", True)
    progress.close()
    final_val = records[-1]["val_loss"] if records else None
    return {"stop_reason": reason, "steps": st["step"], "epochs": st["step"] / steps_per_epoch,
            "train_loss": last_loss, "val_loss": final_val, "best_val_loss": st["best_val"],
            "best_val_bpc": None if st["best_val"] is None else bits_per_char(st["best_val"]),
            "smooth_loss": st["smooth_loss"], "elapsed": st["elapsed"], "evaluations": records,
            "parameters": int(model.num_parameters())}
