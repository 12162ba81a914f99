"""Character-model quality against the n-gram and torch.nn at equal wall-clock budgets.

Split (no scored character is ever used for training, model selection or tuning):
    train       the first 90% of the corpus
    validation  the next 5%: the best checkpoint (periodic evaluations), the mixture's λs
                and n-gram order, and nothing else
    test        the last 5%: every number printed here

Each neural system trains once per seed for the largest budget; the wall clock counts
its periodic evaluations. At each budget mark (default 60, 120, 180, 300 s) the best
checkpoint so far is scored on the test text:
    rnnlab static | + n-gram mixing | + dynamic evaluation | + both
      (the mixed n-gram's order chosen per model by the mixture's validation score: Scorer;
      dynamic evaluation's cost timed against static scoring in a fresh process: dynamic_cost)
    torch.nn in rnnlab's default shape, and in char-rnn's (LSTM 2×128, seq 50, batch 50,
    RMSprop 2e-3), scored from its best validation checkpoint by the same evaluator;
    rnnlab in char-rnn's shape too (static and + mixing)
    the n-gram (modified Kneser-Ney) at its best order on validation, static and
    adapting to the test text as it reads it (a cache)
rnnlab's runs are resumed from budget to budget (exact resume: the same weights as one
straight run with the evaluations on the same steps).

    python benchmarks/quality.py [--budgets 60,120,180,300] [--corpus NAME] [--seeds 0,1]
                                 [--systems rnnlab,torch,torch-char-rnn,rnnlab-char-rnn,ngram] [--out FILE]
                                 [--keep DIR]
    python benchmarks/quality.py --rescore DIR [--budgets ...] [--corpus NAME] [--seeds 0,1] [--out FILE]
                                 # score the kept checkpoints again (the latest rows win in --report)
    python benchmarks/quality.py --report FILE      # the tables, from the JSON lines of --out
    python benchmarks/quality.py --time-dynamic CHECKPOINT --corpus NAME [--dyn-seg N --dyn-lr LR]
                                 # dynamic evaluation's cost alone (default: its defaults)

Needs ../shared/data beside the project and torch for the torch rows. Prints one line
per (corpus, seed, system, budget) as it goes; --out appends them as JSON lines.
"""
import argparse
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from rnnlab.data import Vocab
from rnnlab.data.text import char_batches
from rnnlab.models import CharLM, CharLMConfig
from rnnlab.models.charlm_config import REGULARISERS_OFF
from rnnlab.models.mixing import NgramMixture
from rnnlab.models.scoring import DYN_LR, DYN_SEG, dynamic_logprobs, gradient_stats, static_logprobs
from rnnlab.ngram import KneserNeyLM
from rnnlab.trainer import TrainConfig

from charlm import emit_row, eval_every, load_corpus, paired_ratio      # benchmarks/charlm.py, beside this file

LN2 = math.log(2)


def splits(text):
    a, b = int(len(text) * 0.90), int(len(text) * 0.95)
    return text[:a], text[a:b], text[b:]


def bpc(logp):
    return float(-np.mean(logp) / LN2)


def two_fold(logp_rnn, logp_ng, ctx):
    """Validation bits/char of a mixture whose λs never saw the scored half: tuned on each
    half of the validation text, scored on the other."""
    h, out = len(logp_rnn) // 2, []
    for a, b in ((slice(0, h), slice(h, None)), (slice(h, None), slice(0, h))):
        out.append(NgramMixture(None).tune(logp_rnn[a], logp_ng[a], ctx[a]).mix(logp_rnn[b], logp_ng[b], ctx[b]))
    return bpc(np.concatenate(out))


def time_dynamic(checkpoint, corpus, seg_len=DYN_SEG, lr=DYN_LR):
    """Dynamic / static scoring time of ``corpus``'s test text by the model in ``checkpoint``:
    the median of three alternated pairs (the gradient statistics, gathered once per model,
    not counted)."""
    train, _, test = splits(load_corpus(corpus))
    model = CharLM.load(checkpoint)
    ids = model.vocab.encode(model.vocab.known(test))
    stats = gradient_stats(model, model.vocab.encode(model.vocab.known(train)), seg_len=seg_len)
    return paired_ratio(lambda: static_logprobs(model, ids),
                        lambda: dynamic_logprobs(model, ids, stats, seg_len=seg_len, lr=lr))[2]


def dynamic_cost(checkpoint, corpus):
    """``time_dynamic`` in a fresh process. Beside the n-grams the Scorer builds (GBs of
    dicts, even once freed) dynamic scoring, which allocates more, ran 1.7-1.9x slower
    against static than in a clean process (tiny Shakespeare: 3.21x against 1.69x)."""
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--time-dynamic", checkpoint,
                           "--corpus", corpus], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.abspath(__file__)))
    return float(done.stdout.split()[-1])


def ngram_arrays(train, val, test, chars, orders):
    """{order: (static, adaptive)}, each ((val logp, ctx), (test logp, ctx)) of the modified
    Kneser-Ney n-gram fitted on ``train``. Run in a child process (``Scorer``): the n-gram's
    dicts take GBs, and in a process that had held them dynamic scoring ran 1.7-1.9x slower
    against static even once they were freed (dynamic_cost); the process that trains and
    scores never holds them."""
    out = {}
    for n in orders:
        g = KneserNeyLM(n, modified=True).fit(train, vocab=chars)
        out[n] = ((g.logprobs(val), g.logprobs(test)), (g.logprobs(val, adapt=True), g.logprobs(test, adapt=True)))
        del g
    return out


class Scorer:
    """Everything that scores a model on the test text, built once per corpus.

    The n-gram alone is reported at its best order on validation (``ngram_orders``). The
    order mixed with a network is chosen again, per model and regime (static or dynamic),
    among ``mix_orders`` by the mixture's own validation score (``two_fold``): the network
    covers short contexts, so the order that complements it best is not the order that is
    best alone (tiny Shakespeare: 7 alone, 11 in a mixture)."""

    def __init__(self, corpus, train, val, test, vocab, ngram_orders=range(3, 10),
                 mix_orders=(*range(3, 10), 11, 13, 16)):
        self.corpus, self.train, self.val, self.test, self.vocab = corpus, train, val, test, vocab
        self.mix_orders = tuple(mix_orders)
        # per order: ((val logp, ctx), (test logp, ctx)) static and adapting (a cache), made in a
        # child process (ngram_arrays); tune and mix read only the arrays
        orders = sorted({*ngram_orders, *mix_orders})
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            arrays = child.submit(ngram_arrays, train, val, test, vocab.chars, orders).result()
        self.lp = {n: a[0] for n, a in arrays.items()}
        self.lp_adapt = {n: a[1] for n, a in arrays.items()}
        self.order = min(ngram_orders, key=lambda n: bpc(self.lp[n][0][0]))

    def ngram_rows(self):
        return {"static": bpc(self.lp[self.order][1][0]), "adaptive": bpc(self.lp_adapt[self.order][1][0]),
                "order": self.order}

    def _mixed(self, rnn_val, rnn_test, logprobs):
        """(test bits/char of the mixture at the order best on validation, that order)."""
        n = min(self.mix_orders, key=lambda n: two_fold(rnn_val, *logprobs[n][0]))
        mix = NgramMixture(None).tune(rnn_val, *logprobs[n][0])          # tune and mix read only the arrays
        return bpc(mix.mix(rnn_test, *logprobs[n][1])), n

    def logprobs(self, model, dynamic=True):
        """ln p of every validation and test prediction: static, and with ``dynamic`` under
        dynamic evaluation's defaults too (keys static_val, static_test, dyn_val, dyn_test)."""
        enc = self.vocab.encode
        lp = {"static_val": static_logprobs(model, enc(self.val)), "static_test": static_logprobs(model, enc(self.test))}
        if dynamic:
            stats = gradient_stats(model, enc(self.train))
            lp["dyn_val"] = dynamic_logprobs(model, enc(self.val), stats)
            lp["dyn_test"] = dynamic_logprobs(model, enc(self.test), stats)
        return lp

    def scores(self, lp):
        """Test bits/char from ``logprobs``'s arrays (of one model, or an ensemble's average):
        static, + mixing, and where present + dynamic and + both."""
        out = {"static": bpc(lp["static_test"])}
        out["mix"], out["mix_order"] = self._mixed(lp["static_val"], lp["static_test"], self.lp)
        if "dyn_test" in lp:
            out["dynamic"] = bpc(lp["dyn_test"])
            out["both"], out["both_order"] = self._mixed(lp["dyn_val"], lp["dyn_test"], self.lp_adapt)
        return out

    def score(self, model, checkpoint=None):
        """Every score of ``model``; with ``checkpoint`` (its file) the dynamic ones too, and
        dynamic evaluation's cost, timed in a fresh process (``dynamic_cost``)."""
        out = self.scores(self.logprobs(model, dynamic=checkpoint is not None))
        if checkpoint is not None:
            out["dynamic_cost"] = dynamic_cost(checkpoint, self.corpus)
        return out


def run_rnnlab(text_trainval, val_frac, config, budgets, scorer, emit, keep=None, dynamic=True):
    """``keep``: a path prefix; the checkpoint scored at each budget is copied to
    ``{keep}-{budget}s.npz`` (to score it again later without training again);
    ``dynamic=False``: static and +mix only."""
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
        emit(budget, scorer.score(best, checkpoint=os.path.join(run_dir, "best.npz") if dynamic else None),
             steps=summary["steps"])
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
        paused = time.perf_counter()
        v = evaluate()          # at the mark, as rnnlab's Trainer evaluates where its budget ends (not charged)
        if best is None or v < best:
            best, best_sd = v, snapshot()
        probe.load_state_dict(best_sd)
        emit(budget, scorer.score(probe), steps=step)
        start += time.perf_counter() - paused          # scoring is not training time


# (system, its label in the tables, its columns)
TABLE = [("rnnlab default", "rnnlab static", ("static", "mix", "dynamic", "both", "dynamic_cost")),
         ("torch.nn, rnnlab's shape", "torch same", ("static", "mix")),
         ("torch.nn, char-rnn's shape", "torch char-rnn", ("static", "mix")),
         ("rnnlab, char-rnn's shape", "rnnlab char-rnn", ("static", "mix"))]
HEADS = {"mix": "+mix", "dynamic": "+dyn", "both": "+both", "dynamic_cost": "dyn cost"}


def _width(key):
    return 17 if key == "static" else 8 if key == "dynamic_cost" else 6


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
        heads = [" ".join(f"{label if k == 'static' else HEADS[k]:>{_width(k)}}" for k in keys)
                 for _, label, keys in TABLE]
        print(f"{'budget':>6} | " + " | ".join(heads) + " | seeds")
        for budget in sorted({r["budget"] for r in mine if r["budget"] is not None}):
            groups, seeds = [], set()
            for system, _, keys in TABLE:
                got = [r for r in mine if r["system"] == system and r["budget"] == budget]
                seeds |= {r["seed"] for r in got}
                cells = []
                for k in keys:
                    vals = [r[k] for r in got if r.get(k) is not None]
                    if not vals:
                        cells.append(f"{'-':>{_width(k)}}")
                    elif k == "static":
                        cells.append(f"{np.mean(vals):.3f} [{max(vals) - min(vals):.3f}]".rjust(17))
                    elif k == "dynamic_cost":
                        cells.append(f"{np.mean(vals):7.1f}x")
                    else:
                        cells.append(f"{np.mean(vals):6.3f}")
                groups.append(" ".join(cells))
            print(f"{budget:5.0f}s | " + " | ".join(groups) + f" | {sorted(seeds)}")
        print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", metavar="FILE", help="print the tables from the JSON lines in FILE")
    ap.add_argument("--budgets", default="60,120,180,300")
    ap.add_argument("--corpus", action="append", choices=["metamorphosis", "tinyshakespeare"])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--systems", default="ngram,rnnlab,torch,torch-char-rnn,rnnlab-char-rnn")
    ap.add_argument("--out")
    ap.add_argument("--keep", metavar="DIR", help="keep rnnlab's checkpoint scored at each budget in DIR")
    ap.add_argument("--rescore", metavar="DIR", help="train nothing: score the checkpoints --keep left in DIR")
    ap.add_argument("--time-dynamic", metavar="CHECKPOINT", help="print dynamic_cost's ratio (used by the Scorer)")
    ap.add_argument("--dyn-seg", type=int, default=DYN_SEG, help="--time-dynamic: the segment length")
    ap.add_argument("--dyn-lr", type=float, default=DYN_LR, help="--time-dynamic: the one-stream step")
    args = ap.parse_args()
    if args.report:
        return report(args.report)
    if args.time_dynamic:
        if not args.corpus or len(args.corpus) != 1:
            ap.error("--time-dynamic needs one --corpus (the text the checkpoint was trained on)")
        return print(time_dynamic(args.time_dynamic, args.corpus[0], args.dyn_seg, args.dyn_lr))
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    budgets = [float(b) for b in args.budgets.split(",")]
    systems = args.systems.split(",")
    for corpus in args.corpus or ["metamorphosis", "tinyshakespeare"]:
        text = load_corpus(corpus)
        train, val, test = splits(text)
        vocab = Vocab.from_text(text)
        scorer = Scorer(corpus, train, val, test, vocab)
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
                    emit("rnnlab default", seed, budget, scorer.score(CharLM.load(path), checkpoint=path))
            continue
        if "ngram" in systems:
            emit("ngram (modified KN, best order on validation)", None, None, scorer.ngram_rows())
        for seed in [int(s) for s in args.seeds.split(",")]:
            default = CharLMConfig.for_text(len(train + val), val_frac=val_frac, seed=seed)   # as rnnlab train
            if "rnnlab" in systems:
                keep = args.keep and os.path.join(args.keep, f"{corpus}-seed{seed}")
                run_rnnlab(train + val, val_frac, default, budgets, scorer,
                           lambda b, s, steps=None: emit("rnnlab default", seed, b, s, steps), keep)
            if "torch" in systems:
                run_torch(train + val, default, budgets, scorer,
                          lambda b, s, steps=None: emit("torch.nn, rnnlab's shape", seed, b, s, steps))
            cr = CharLMConfig(model="lstm", hidden_size=128, num_layers=2, dropout=0.0, seq_len=50,
                              batch_size=50, optimizer="rmsprop", lr=2e-3, clip=5.0, clip_mode="value",
                              val_frac=val_frac, seed=seed, **REGULARISERS_OFF)   # rmsprop: α 0.95, as char-rnn
            if "torch-char-rnn" in systems:
                run_torch(train + val, cr, budgets, scorer,
                          lambda b, s, steps=None: emit("torch.nn, char-rnn's shape", seed, b, s, steps),
                          optimizer="rmsprop")
            if "rnnlab-char-rnn" in systems:
                run_rnnlab(train + val, val_frac, cr, budgets, scorer,
                           lambda b, s, steps=None: emit("rnnlab, char-rnn's shape", seed, b, s, steps),
                           dynamic=False)


if __name__ == "__main__":
    main()
