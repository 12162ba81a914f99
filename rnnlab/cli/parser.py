"""The argument parser of the ``rnnlab`` command line."""
from __future__ import annotations

import argparse

from .commands import (UsageError, cmd_bench, cmd_demo, cmd_eval, cmd_ngram, cmd_sample,
                       cmd_task, cmd_train)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser():
    p = _Parser(prog="rnnlab", description="Recurrent neural networks from scratch on NumPy.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a character-level language model")
    t.add_argument("text", nargs="?", help="UTF-8 text file (default: the Python standard library's sources)")
    t.add_argument("--preset", help="min-char-rnn | char-rnn: the two reference configurations")
    t.add_argument("--model", choices=["rnn", "lstm", "gru"])
    t.add_argument("--hidden-size", type=int)
    t.add_argument("--num-layers", type=int)
    t.add_argument("--dropout", type=float)
    t.add_argument("--seq-len", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--optimizer", choices=["sgd", "momentum", "adagrad", "rmsprop", "adam"])
    t.add_argument("--lr", type=float)
    t.add_argument("--lr-decay", type=float, help="x this per epoch after --lr-decay-after epochs")
    t.add_argument("--lr-decay-after", type=int)
    t.add_argument("--clip", type=float, help="gradient clip (0 = off)")
    t.add_argument("--val-frac", type=float)
    t.add_argument("--max-steps", type=int)
    t.add_argument("--max-epochs", type=int)
    t.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="wall-clock budget (default 300 s when no budget is given)")
    t.add_argument("--eval-every", type=int, default=200)
    t.add_argument("--patience", type=int, help="stop after this many evaluations without improvement")
    t.add_argument("--seed", type=int)
    t.add_argument("--out", help="run directory (default runs/<text name>)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped")
    t.add_argument("--force", action="store_true", help="start over in a run directory that holds a run")
    t.add_argument("--encoding", default="utf-8")
    t.add_argument("--json", action="store_true", help="print one JSON object with the final metrics")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.set_defaults(func=cmd_train, command_parser=t)

    s = sub.add_parser("sample", help="generate text from a trained model")
    s.add_argument("checkpoint", help="run directory (its best checkpoint) or .npz file")
    s.add_argument("--length", type=int, default=500)
    s.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    s.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest (0 = all)")
    s.add_argument("--prime", help="text to start from")
    s.add_argument("--prime-file")
    s.add_argument("--seed", type=int)
    s.add_argument("--num-samples", type=int, default=1)
    s.add_argument("--encoding", default="utf-8")
    s.set_defaults(func=cmd_sample, command_parser=s)

    e = sub.add_parser("eval", help="bits per character and perplexity of a model on a text")
    e.add_argument("checkpoint")
    e.add_argument("text")
    e.add_argument("--encoding", default="utf-8")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval, command_parser=e)

    n = sub.add_parser("ngram", help="character n-gram baseline (interpolated Kneser-Ney)")
    n.add_argument("text")
    n.add_argument("--order", type=int, default=5)
    n.add_argument("--eval", help="score this file instead of the held-out tail")
    n.add_argument("--val-frac", type=float, default=0.1)
    n.add_argument("--encoding", default="utf-8")
    n.add_argument("--json", action="store_true")
    n.set_defaults(func=cmd_ngram, command_parser=n)

    k = sub.add_parser("task", help="the course applications: detect, forecast, classify, adding, "
                                     "order, gradflow, univariate")
    k.add_argument("name", choices=["detect", "forecast", "classify", "adding", "order", "gradflow",
                                    "univariate"])
    k.add_argument("--model", choices=["rnn", "lstm", "gru", "tdnn", "all"])
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--max-steps", type=int)
    k.add_argument("--time-limit", type=float, metavar="SECONDS")
    k.add_argument("--json", action="store_true", help="one JSON object with the metrics")
    k.add_argument("--plot", metavar="FILE", help="write a PNG figure (needs matplotlib)")
    k.add_argument("--word", help="detect: the target word (default udacity)")
    k.add_argument("--threshold", type=float, help="detect: output level that counts as a detection")
    k.add_argument("--hidden-size", type=int)
    k.add_argument("--series", choices=["sunspots", "co2"], help="forecast/univariate: bundled series")
    k.add_argument("--csv", help="forecast: a CSV file instead")
    k.add_argument("--column", help="forecast: the CSV column")
    k.add_argument("--window", type=int, help="forecast: past values seen (default 10)")
    k.add_argument("--horizon", type=int, help="forecast: steps ahead (default 1)")
    k.add_argument("--fill", choices=["none", "ffill", "interpolate", "drop"],
                   help="missing values: none (error), ffill, interpolate, drop")
    k.add_argument("--test-frac", type=float, help="forecast: held-out tail (default 0.2)")
    k.add_argument("--length", type=int, help="adding/order/gradflow: sequence length T")
    k.set_defaults(func=cmd_task, command_parser=k)

    b = sub.add_parser("bench", help="speed side by side with torch.nn on the CPU")
    b.add_argument("--repeats", type=int, default=7)
    b.add_argument("--row", action="append", help="run only this row (repeatable)")
    b.add_argument("--no-torch", action="store_true", help="rnnlab's numbers only")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench, command_parser=b)

    d = sub.add_parser("demo", help="train an Elman RNN on the delayed-echo task")
    d.add_argument("--delay", type=int, default=3)
    d.add_argument("--hidden", type=int, default=16)
    d.add_argument("--steps", type=int, default=300)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=cmd_demo, command_parser=d)
    return p
