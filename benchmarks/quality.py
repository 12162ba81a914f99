"""Character-model quality against the n-gram and torch.nn at equal wall-clock budgets.

Split (no scored character is ever used for training, model selection or tuning):
    train       the first 90% of the corpus
    validation  the next 5%: the best checkpoint (periodic evaluations), the mixture's λs,
                and nothing else
    test        the last 5%: every number printed here

Each neural system trains once per seed for the largest budget; the wall clock counts
its periodic evaluations. At each budget mark (default 60, 120, 180, 300 s) the best
checkpoint so far is scored on the test text:
    rnnlab static | + n-gram mixing | + dynamic evaluation | + both
    torch.nn in rnnlab's default shape, and in char-rnn's (LSTM 2×128, seq 50, batch 50,
    RMSprop 2e-3), scored from its best validation checkpoint by the same evaluator
    the n-gram (modified Kneser-Ney) at its best order on validation, static and
    adapting to the test text as it reads it (a cache)
rnnlab's runs are resumed from budget to budget (exact resume: the same weights as one
straight run with the evaluations on the same steps).

    python benchmarks/quality.py [--budgets 60,120,180,300] [--corpus NAME] [--seeds 0,1]
                                 [--systems rnnlab,torch,torch-char-rnn,ngram] [--out FILE]
                                 [--keep DIR]
    python benchmarks/quality.py --rescore DIR [--budgets ...] [--corpus NAME] [--seeds 0,1] [--out FILE]
                                 # score the kept checkpoints again (the latest rows win in --report)
    python benchmarks/quality.py --report FILE      # the tables, from the JSON lines of --out

Needs ../shared/data beside the project and torch for the torch rows. Prints one line
per (corpus, seed, system, budget) as it goes; --out appends them as JSON lines.
"""
import argparse
import json
import math
import os
import shutil
import tempfile
import time

import numpy as np

from rnnlab.data import Vocab
from rnnlab.data.text import char_batches
from rnnlab.models import CharLM, CharLMConfig
from rnnlab.models.charlm_config import REGULARISERS_OFF
from rnnlab.models.mixing import NgramMixture
from rnnlab.models.scoring import dynamic_logprobs, gradient_stats, static_logprobs
from rnnlab.ngram import KneserNeyLM
from rnnlab.trainer import TrainConfig

from charlm import emit_row, eval_every, load_corpus, paired_ratio      # benchmarks/charlm.py, beside this file

LN2 = math.log(2)


def splits(text):
    a, b = int(len(text) * 0.90), int(len(text) * 0.95)
    return text[:a], text[a:b], text[b:]


def bpc(logp):
    return float(-np.mean(logp) / LN2)


class Scorer:
    """Everything that scores a model on the test text, built once per corpus."""

    def __init__(self, train, val, test, vocab, ngram_orders=range(3, 10)):
        self.train, self.val, self.test, self.vocab = train, val, test, vocab
        by_order = {n: KneserNeyLM(n, modified=True).fit(train, vocab=vocab.chars) for n in ngram_orders}
        val_bpc = {n: by_order[n].evaluate(val)["bpc"] for n in ngram_orders}
        self.order = min(val_bpc, key=val_bpc.get)
        self.ngram = by_order[self.order]
        self.ng_val = self.ngram.logprobs(val)
        self.ng_test = self.ngram.logprobs(test)
        self.ng_val_adapt = self.ngram.logprobs(val, adapt=True)
        self.ng_test_adapt = self.ngram.logprobs(test, adapt=True)

    def ngram_rows(self):
        return {"static": bpc(self.ng_test[0]), "adaptive": bpc(self.ng_test_adapt[0]), "order": self.order}

    def score(self, model, dynamic=True):
        enc = self.vocab.encode
        out = {}
        static_test = static_logprobs(model, enc(self.test))
        out["static"] = bpc(static_test)
        mix = NgramMixture(self.ngram).tune(static_logprobs(model, enc(self.val)), *self.ng_val)
        out["mix"] = bpc(mix.mix(static_test, *self.ng_test))
        if dynamic:
            stats = gradient_stats(model, enc(self.train))           # dynamic evaluation's defaults
            _, dyn_test, out["dynamic_cost"] = paired_ratio(lambda: static_logprobs(model, enc(self.test)),
                                                            lambda: dynamic_logprobs(model, enc(self.test), stats))
            out["dynamic"] = bpc(dyn_test)
            dyn_val = dynamic_logprobs(model, enc(self.val), stats)
            mix = NgramMixture(self.ngram).tune(dyn_val, *self.ng_val_adapt)
            out["both"] = bpc(mix.mix(dyn_test, *self.ng_test_adapt))
        return out


def run_rnnlab(text_trainval, val_frac, config, budgets, scorer, emit, keep=None):
    """``keep``: a path prefix; the checkpoint scored at each budget is copied to
    ``{keep}-{budget}s.npz`` (to score it again later without training again)."""
    run_dir = tempfile.mkdtemp(prefix="quality-")
    model = CharLM(scorer.vocab, config)
    every = eval_every(config)
    done = 0.0
    resume = None
    for budget in budgets:
        train = TrainConfig(time_limit=budget - done, eval_every=every)
        summary = model.fit(text_trainval, train, out_dir=run_dir, resume=resume, sample_chars=0)
        done = budget
        best = CharLM.load(os.path.join(run_dir, "best.npz"))
        if keep:
            shutil.copy(os.path.join(run_dir, "best.npz"), f"{keep}-{budget:g}s.npz")
        emit(budget, scorer.score(best), steps=summary["steps"])
        model, opt_state, state = CharLM.load(os.path.join(run_dir, "latest.npz"), with_training_state=True)
        resume = (opt_state, state)


def run_torch(text_trainval, config, budgets, scorer, emit, optimizer="adam"):
    import torch
    torch.manual_seed(config.seed)
    vocab, c = scorer.vocab, config
    V = len(vocab)
    n_train = len(text_trainval) - len(scorer.val)
    X, Y = char_batches(vocab.encode(text_trainval[:n_train]), c.batch_size, c.seq_len)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[c.model]
    rnn = cls(V, c.hidden_size, c.num_layers, dropout=c.dropout if c.num_layers > 1 else 0.0)
    head, drop = torch.nn.Linear(c.hidden_size, V), torch.nn.Dropout(c.dropout)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = (torch.optim.RMSprop(params, lr=c.lr, alpha=0.95) if optimizer == "rmsprop"
           else torch.optim.Adam(params, lr=c.lr))
    probe = CharLM(vocab, c)
    val_ids = vocab.encode(scorer.val)

    def snapshot():                 # copies: .numpy() shares the live parameters' memory
        sd = {f"rnn.{k}": v.detach().numpy().copy() for k, v in rnn.state_dict().items()}
        sd.update({f"head.{k}": v.detach().numpy().copy() for k, v in head.state_dict().items()})
        return sd

    def evaluate():
        rnn.eval(), drop.eval()
        probe.load_state_dict(snapshot())
        v = probe.evaluate_ids(val_ids)
        rnn.train(), drop.train()
        return v

    every = eval_every(c)
    best, best_sd, step, pos, state = None, None, 0, 0, None
    start = time.perf_counter()
    for budget in budgets:
        while time.perf_counter() - start < budget:
            if pos == 0:
                state = None
            x = torch.nn.functional.one_hot(torch.from_numpy(X[pos]), V).float()
            out, state = rnn(x, state)
            loss = torch.nn.functional.cross_entropy(head(drop(out)).reshape(-1, V),
                                                     torch.from_numpy(Y[pos]).reshape(-1))
            opt.zero_grad()
            loss.backward()
            if c.clip_mode == "value":
                torch.nn.utils.clip_grad_value_(params, c.clip)
            else:
                torch.nn.utils.clip_grad_norm_(params, c.clip)
            opt.step()
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
            step += 1
            pos = (pos + 1) % X.shape[0]
            if step % every == 0:
                v = evaluate()
                if best is None or v < best:
                    best, best_sd = v, snapshot()
        if best_sd is None:
            best, best_sd = evaluate(), snapshot()
        paused = time.perf_counter()
        probe.load_state_dict(best_sd)
        emit(budget, scorer.score(probe, dynamic=False), steps=step)
        start += time.perf_counter() - paused          # scoring is not training time


TABLE = [("rnnlab default", ("static", "mix", "dynamic", "both", "dynamic_cost")),
         ("torch.nn, rnnlab's shape", ("static", "mix")),
         ("torch.nn, char-rnn's shape", ("static", "mix"))]


def report(path):
    """Per corpus and budget, each system's scores averaged over the seeds it was run with
    (the seeds' spread: max − min of the static score, in brackets); of rows for the same
    (corpus, system, seed, budget) the last in the file counts."""
    latest = {}                     # a row scored again (--rescore) replaces the earlier one
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            latest[r["corpus"], r["system"], r["seed"], r["budget"]] = r
    rows = list(latest.values())
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        mine = [r for r in rows if r["corpus"] == corpus]
        for r in mine:
            if r["budget"] is None:
                print(f"## {corpus}: n-gram (order {r['order']}): static {r['static']:.3f}, "
                      f"adaptive {r['adaptive']:.3f} bits/char")
        print(f"{'budget':>6} | {'rnnlab static':>17} {'+mix':>6} {'+dyn':>6} {'+both':>6} {'dyn cost':>8} | "
              f"{'torch same':>17} {'+mix':>6} | {'torch char-rnn':>17} {'+mix':>6} | seeds")
        for budget in sorted({r["budget"] for r in mine if r["budget"] is not None}):
            cells, seeds = [], set()
            for system, keys in TABLE:
                got = [r for r in mine if r["system"] == system and r["budget"] == budget]
                seeds |= {r["seed"] for r in got}
                for k in keys:
                    vals = [r[k] for r in got if r.get(k) is not None]
                    if not vals:
                        cells.append(f"{'-':>{17 if k == 'static' else 6}}")
                    elif k == "static":
                        cells.append(f"{np.mean(vals):.3f} [{max(vals) - min(vals):.3f}]".rjust(17))
                    elif k == "dynamic_cost":
                        cells.append(f"{np.mean(vals):7.1f}x")
                    else:
                        cells.append(f"{np.mean(vals):6.3f}")
            print(f"{budget:5.0f}s | " + " ".join(cells[:5]) + " | " + " ".join(cells[5:7]) + " | "
                  + " ".join(cells[7:]) + f" | {sorted(seeds)}")
        print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", metavar="FILE", help="print the tables from the JSON lines in FILE")
    ap.add_argument("--budgets", default="60,120,180,300")
    ap.add_argument("--corpus", action="append", choices=["metamorphosis", "tinyshakespeare"])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--systems", default="ngram,rnnlab,torch,torch-char-rnn")
    ap.add_argument("--out")
    ap.add_argument("--keep", metavar="DIR", help="keep rnnlab's checkpoint scored at each budget in DIR")
    ap.add_argument("--rescore", metavar="DIR", help="train nothing: score the checkpoints --keep left in DIR")
    args = ap.parse_args()
    if args.report:
        return report(args.report)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    budgets = [float(b) for b in args.budgets.split(",")]
    systems = args.systems.split(",")
    for corpus in args.corpus or ["metamorphosis", "tinyshakespeare"]:
        text = load_corpus(corpus)
        train, val, test = splits(text)
        vocab = Vocab.from_text(text)
        scorer = Scorer(train, val, test, vocab)
        val_frac = len(val) / (len(train) + len(val))

        def emit(system, seed, budget, scores, steps=None):
            row = {"corpus": corpus, "system": system, "seed": seed, "budget": budget, **scores,
                   "steps": steps}
            emit_row(row, args.out)
        if args.rescore:
            for seed in [int(s) for s in args.seeds.split(",")]:
                for budget in budgets:
                    path = os.path.join(args.rescore, f"{corpus}-seed{seed}-{budget:g}s.npz")
                    if not os.path.exists(path):
                        print(f"{path}: not found, skipped", flush=True)
                        continue
                    emit("rnnlab default", seed, budget, scorer.score(CharLM.load(path)))
            continue
        if "ngram" in systems:
            emit("ngram (modified KN, best order on validation)", None, None, scorer.ngram_rows())
        for seed in [int(s) for s in args.seeds.split(",")]:
            default = CharLMConfig(val_frac=val_frac, seed=seed)
            if "rnnlab" in systems:
                keep = args.keep and os.path.join(args.keep, f"{corpus}-seed{seed}")
                run_rnnlab(train + val, val_frac, default, budgets, scorer,
                           lambda b, s, steps=None: emit("rnnlab default", seed, b, s, steps), keep)
            if "torch" in systems:
                run_torch(train + val, default, budgets, scorer,
                          lambda b, s, steps=None: emit("torch.nn, rnnlab's shape", seed, b, s, steps))
            if "torch-char-rnn" in systems:
                cr = CharLMConfig(model="lstm", hidden_size=128, num_layers=2, dropout=0.0, seq_len=50,
                                  batch_size=50, lr=2e-3, clip=5.0, clip_mode="value", val_frac=val_frac,
                                  seed=seed, **REGULARISERS_OFF)
                run_torch(train + val, cr, budgets, scorer,
                          lambda b, s, steps=None: emit("torch.nn, char-rnn's shape", seed, b, s, steps),
                          optimizer="rmsprop")


if __name__ == "__main__":
    main()
