"""Character-model quality at equal wall-clock time: held-out bits/char of

  - rnnlab's min-char-rnn preset,
  - rnnlab's default CharLM configuration,
  - torch.nn in the default's cell (GRU) and shape, with its batching, optimizer, dropout and
    budget, but without the three small-text regularisers (weight drop, locked dropout,
    weight averaging), which torch.nn does not have,
  - the interpolated Kneser-Ney n-gram at its best order (orders 2-9 scored on the
    held-out text itself, so this baseline is, if anything, flattered),

on the Metamorphosis story (first 118,567 characters) and tiny Shakespeare, the last
10% of each held out. Every neural model is scored by the same evaluator
(``CharLM.evaluate_ids``; torch's weights are copied into a CharLM for that) at
the best of its periodic evaluations within the budget (early stopping's pick);
evaluations come after every ~200k training characters, whatever the batch shape.

    python benchmarks/charlm.py [--budget SECONDS] [--corpus NAME] [--json]

Needs ../shared/data beside the project and torch for the torch row.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np

from rnnlab.data import Vocab
from rnnlab.data.text import char_batches, split_train_val
from rnnlab.models import PRESETS, CharLM, CharLMConfig
from rnnlab.ngram import KneserNeyLM

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data")
STORY_CHARS = 118_567
VAL_FRAC = 0.1
EVAL_CHARS = 200_000      # evaluate after about this many training characters, whatever the batch


def eval_every(config):
    return max(1, EVAL_CHARS // (config.seq_len * config.batch_size))


def emit_row(row, out=None):
    """Print one result row as JSON and, with ``out``, append it to that file (JSON lines)."""
    print(json.dumps(row), flush=True)
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")


def median_time(fn, repeats=3):
    """(fn()'s result, the median of ``repeats`` timings in seconds)."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def paired_ratio(fa, fb, rounds=3):
    """(fa()'s result, fb()'s result, the median over ``rounds`` of time(fb) / time(fa)),
    the two timed in alternation so that a slow spell of a noisy machine hits both."""
    ratios = []
    for _ in range(rounds):
        a, ta = median_time(fa, repeats=1)
        b, tb = median_time(fb, repeats=1)
        ratios.append(tb / ta)
    return a, b, float(np.median(ratios))


def load_corpus(name):
    path = os.path.join(DATA, f"{name}.txt")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: this benchmark needs ../shared/data beside the project")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text[:STORY_CHARS] if name == "metamorphosis" else text


def run_rnnlab(text, config, budget):
    model = CharLM(Vocab.from_text(text), config)
    t = time.perf_counter()
    s = model.fit(text, time_limit=budget, eval_every=eval_every(config), sample_chars=0,
                  smoothed_loss=config.grad_reduction == "sum")
    return {"bpc": s["best_val_bpc"], "steps": s["steps"], "chars_per_s": s["steps"] * config.seq_len
            * config.batch_size / (time.perf_counter() - t)}


def run_torch(text, config, budget):
    import torch
    torch.manual_seed(config.seed)
    vocab = Vocab.from_text(text)
    V, c = len(vocab), config
    ids = vocab.encode(text)
    train_ids, val_ids = split_train_val(ids, c.val_frac)
    X, Y = char_batches(train_ids, c.batch_size, c.seq_len)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[c.model]
    rnn = cls(V, c.hidden_size, c.num_layers, dropout=c.dropout if c.num_layers > 1 else 0.0)
    head = torch.nn.Linear(c.hidden_size, V)
    drop = torch.nn.Dropout(c.dropout)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=c.lr)
    probe = CharLM(vocab, c)

    def evaluate():
        sd = {f"rnn.{k}": v.detach().numpy() for k, v in rnn.state_dict().items()}
        sd.update({f"head.{k}": v.detach().numpy() for k, v in head.state_dict().items()})
        for k, p in probe.params.items():
            np.copyto(p, sd[k])
        return probe.evaluate_ids(val_ids)

    best, step, pos, state = None, 0, 0, None
    start = time.perf_counter()
    while time.perf_counter() - start < budget:
        if pos == 0:
            state = None
        x = torch.nn.functional.one_hot(torch.from_numpy(X[pos]), V).float()     # (T, B, V)
        out, state = rnn(x, state)
        logits = head(drop(out))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(Y[pos]).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, c.clip)
        opt.step()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        step += 1
        pos = (pos + 1) % X.shape[0]
        if step % eval_every(c) == 0:
            rnn.eval(), drop.eval()
            v = evaluate()
            rnn.train(), drop.train()
            best = v if best is None else min(best, v)
    v = evaluate()
    best = v if best is None else min(best, v)
    return {"bpc": best / math.log(2), "steps": step,
            "chars_per_s": step * c.seq_len * c.batch_size / (time.perf_counter() - start)}


def run_ngram(text):
    n_train = len(split_train_val(np.arange(len(text)), VAL_FRAC)[0])
    train, held = text[:n_train], text[n_train:]
    results = {n: KneserNeyLM(n).fit(train).evaluate(held)["bpc"] for n in range(2, 10)}
    order = min(results, key=results.get)
    return {"bpc": results[order], "order": order, "by_order": results}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=180.0, help="seconds per neural model")
    ap.add_argument("--corpus", action="append", choices=["metamorphosis", "tinyshakespeare"])
    ap.add_argument("--system", action="append", choices=["min-char-rnn", "default", "torch", "ngram"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for corpus in args.corpus or ["metamorphosis", "tinyshakespeare"]:
        text = load_corpus(corpus)
        default = CharLMConfig.for_text(len(text), val_frac=VAL_FRAC)     # as rnnlab train
        systems = [
            ("min-char-rnn", "rnnlab min-char-rnn preset",
             lambda: run_rnnlab(text, CharLMConfig(**{**PRESETS["min-char-rnn"], "val_frac": VAL_FRAC}), args.budget)),
            ("default", "rnnlab default", lambda: run_rnnlab(text, default, args.budget)),
            ("torch", "torch.nn same config", lambda: run_torch(text, default, args.budget)),
            ("ngram", "n-gram (KN, best order)", lambda: run_ngram(text)),
        ]
        for key, name, fn in systems:
            if args.system and key not in args.system:
                continue
            try:
                r = fn()
            except ImportError as e:
                r = {"bpc": None, "error": str(e)}
            row = {"corpus": corpus, "system": name, **{k: v for k, v in r.items() if k != "by_order"}}
            rows.append(row)
            if not args.json:
                extra = f"order {r['order']}" if "order" in r else (
                    f"{r['steps']} steps, {r['chars_per_s']:,.0f} char/s" if "steps" in r else r.get("error", ""))
                bpc = f"{r['bpc']:.3f}" if r.get("bpc") is not None else "-"
                print(f"{corpus:<16}{name:<30}{bpc:>8} bpc   {extra}", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
