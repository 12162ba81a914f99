"""The argument parser of the ``rnnlab`` command line. Every option has a one-line help
that ends with its default (tests/test_progress_and_help.py walks every subcommand)."""
from __future__ import annotations

import argparse
import dataclasses

from .usage import UsageError
from .commands import cmd_bench, cmd_demo, cmd_eval, cmd_ngram, cmd_sample, cmd_task
from .train_cmd import cmd_train
from .explore_cmd import cmd_explore


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


class _Help(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help unless the help already names its
    default, or the default is None (the help then says what happens) or a flag's off."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if ("default" in text or d is None or d is False or d is argparse.SUPPRESS
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return text
        return text + " (default: %(default)s)"


def _seed(text):
    """A --seed value: an integer ≥ 0 (NumPy's generators refuse negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def _config_defaults():
    from ..models.charlm_config import CharLMConfig
    return {f.name: f.default for f in dataclasses.fields(CharLMConfig)}


def _add_train(sub):
    from ..models.charlm_config import LARGE_TEXT, LARGE_TEXT_SETTING
    c = _config_defaults()

    def cfg(name, what):                      # a model option: its default from CharLMConfig
        if name in LARGE_TEXT_SETTING:        # CharLMConfig.for_text: another value for a large text
            return (f"{what} (default: {c[name]} for a text of up to {LARGE_TEXT:,} characters, "
                    f"{LARGE_TEXT_SETTING[name]} for a longer one; a --preset sets its own)")
        return f"{what} (default: {c[name]}; a --preset sets its own)"
    t = sub.add_parser("train", help="train a character-level language model", formatter_class=_Help)
    t.add_argument("text", nargs="?", help="UTF-8 text file (default: the Python standard library's sources)")
    t.add_argument("--preset", help="min-char-rnn | char-rnn: one of the two reference configurations "
                                    "(default: none, rnnlab's own defaults)")
    t.add_argument("--model", choices=["rnn", "lstm", "gru"], help=cfg("model", "recurrent cell type"))
    t.add_argument("--hidden-size", type=int, help=cfg("hidden_size", "units per recurrent layer"))
    t.add_argument("--num-layers", type=int, help=cfg("num_layers", "stacked recurrent layers"))
    t.add_argument("--dropout", type=float, help=cfg("dropout", "dropout between layers and before the head"))
    t.add_argument("--weight-drop", type=float, metavar="P",
                   help=cfg("weight_drop", "DropConnect on the recurrent weights W_hh, one mask per window, "
                                           "0 = off"))
    t.add_argument("--locked-dropout", action=argparse.BooleanOptionalAction, default=None,
                   help=cfg("locked_dropout", "one --dropout mask per window, shared by all its steps"))
    t.add_argument("--average", type=float, metavar="DECAY",
                   help=cfg("average", "validate, sample and keep best.npz with an average of the weights of "
                                       "this decay, 0 = off"))
    t.add_argument("--seq-len", type=int, help=cfg("seq_len", "characters per truncated-BPTT window"))
    t.add_argument("--batch-size", type=int, help=cfg("batch_size", "parallel streams per step"))
    t.add_argument("--optimizer", choices=["sgd", "momentum", "adagrad", "rmsprop", "adam"],
                   help=cfg("optimizer", "update rule"))
    t.add_argument("--lr", type=float, help=cfg("lr", "learning rate"))
    t.add_argument("--lr-decay", type=float, help=cfg("lr_decay", "multiply the learning rate by this per epoch "
                                                                  "after --lr-decay-after epochs"))
    t.add_argument("--lr-decay-after", type=int, help=cfg("lr_decay_after", "epochs before the decay starts"))
    t.add_argument("--clip", type=float, help=cfg("clip", "gradient clip, 0 = off"))
    t.add_argument("--val-frac", type=float, help=cfg("val_frac", "share of the text held out at its end "
                                                                  "for validation"))
    t.add_argument("--max-steps", type=int, help="stop at this step, counted from the run's start (a resumed run "
                                                 "included) (default: no step limit)")
    t.add_argument("--max-epochs", type=int, help="stop after this many passes over the text, counted from the run's "
                                                  "start (default: no limit)")
    t.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="wall-clock budget of the training steps of this start (a resumed run gets it again); "
                        "the final evaluation comes on top (default: 300 s when no budget is given)")
    t.add_argument("--eval-every", type=int,
                   help="steps between evaluations and checkpoints (default: 200, or more when the "
                        "validation text is large, so that evaluating takes about 2.5%% of the time)")
    t.add_argument("--patience", type=int, help="stop after this many evaluations without improvement; 0: "
                                                "never (default: never; with --resume, the run's — a run "
                                                "that stopped early goes on with a larger one, or 0)")
    t.add_argument("--seed", type=int, help=cfg("seed", "seed of the initialisation, dropout and order"))
    t.add_argument("--ngram", type=int, metavar="N",
                   help="also fit an N-gram (modified Kneser-Ney) on the training split and keep it, "
                        "mixed with the model, in RUN/ngram.npz for eval/sample --mix-ngram (default: none)")
    t.add_argument("--out", help="run directory (default: runs/<text name>)")
    t.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped (default: a new run)")
    t.add_argument("--force", action="store_true",
                   help="start over in a run directory that holds a run (the old run directory, with anything "
                        "put inside it, is replaced at the new one's first evaluation; a directory that is not "
                        "a run is never replaced)")
    t.add_argument("--encoding", help="encoding of TEXT (default: utf-8; with --resume, the one the run "
                                       "read its text in)")
    t.add_argument("--json", action="store_true", help="print one JSON object with the final metrics")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--workers", type=int, metavar="N",
                   help="data-parallel training on N processes of this machine under mpiexec, each "
                        "on its own --batch-size streams (needs rnnlab[mpi]; default: one process)")
    t.set_defaults(func=cmd_train, command_parser=t)


def _add_task(sub):
    k = sub.add_parser("task", help="the course applications: detect, forecast, classify, adding, "
                                    "order, gradflow, univariate", formatter_class=_Help)
    k.add_argument("name", choices=["detect", "forecast", "classify", "adding", "order", "gradflow",
                                    "univariate"], help="which application")
    k.add_argument("--model", choices=["rnn", "lstm", "gru", "tdnn", "all"],
                   help="model to train (default: the task's — rnn for detect and univariate, all for "
                        "gradflow, lstm otherwise)")
    k.add_argument("--seed", type=_seed, default=0, help="seed of the data and the initialisation")
    k.add_argument("--max-steps", type=int, help="training steps (default: the task's own budget, "
                                                 "300 to 2000 steps, when no --time-limit is given)")
    k.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="wall-clock budget of the whole task's training (gradflow splits it among its "
                        "trainings, six with --model all; --max-steps is per training) (default: none)")
    k.add_argument("--json", action="store_true", help="one JSON object with the metrics")
    k.add_argument("--plot", metavar="FILE", help="write a PNG figure, needs matplotlib (default: no figure)")
    k.add_argument("--word", help="detect: the target word, letters a-z (default: udacity)")
    k.add_argument("--threshold", type=float, help="detect: output level that counts as a detection (default: 0.9)")
    k.add_argument("--hidden-size", type=int, help="hidden units (default: the task's, 32 or 64)")
    k.add_argument("--series", choices=["sunspots", "co2"], help="forecast/univariate: bundled series "
                                                                 "(default: sunspots)")
    k.add_argument("--csv", help="forecast: a CSV file instead (default: the bundled series)")
    k.add_argument("--column", help="forecast: the CSV column (default: none; needed with --csv)")
    k.add_argument("--encoding", help="forecast: the CSV file's text encoding (default: utf-8)")
    k.add_argument("--window", type=int, help="forecast: past values seen (default: 10)")
    k.add_argument("--horizon", type=int, help="forecast: steps ahead (default: 1)")
    k.add_argument("--fill", choices=["none", "ffill", "interpolate", "drop"],
                   help="missing values: none (error), ffill (the last reading: the past only), interpolate "
                        "(from the readings on both sides, over the whole series before it is split: a filled "
                        "value may be drawn from a later reading — a window's own target, or a held-out "
                        "reading for a gap just before the test tail), drop "
                        "(default: none for forecast, interpolate for univariate)")
    k.add_argument("--test-frac", type=float, help="forecast: held-out tail (default: 0.2)")
    k.add_argument("--length", type=int, help="adding/order/gradflow: sequence length T (default: 50)")
    k.set_defaults(func=cmd_task, command_parser=k)


def build_parser():
    p = _Parser(prog="rnnlab", description="Recurrent neural networks from scratch on NumPy.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)

    s = sub.add_parser("sample", help="generate text from a trained model", formatter_class=_Help)
    s.add_argument("checkpoint", help="run directory (its best checkpoint) or .npz file")
    s.add_argument("--length", type=int, default=500, help="characters to generate after the prime")
    s.add_argument("--temperature", type=float, default=1.0, help="softmax temperature, 0 = greedy")
    s.add_argument("--top-k", type=int, default=0, help="sample among the k likeliest, 0 = all")
    s.add_argument("--prime", help="text to start from (default: none, the first character drawn uniformly)")
    s.add_argument("--prime-file", help="read the prime from this file (default: none)")
    s.add_argument("--seed", type=_seed, help="seed of the sampler (default: fresh randomness)")
    s.add_argument("--num-samples", type=int, default=1, help="independent samples, seeds seed, seed+1, ...")
    s.add_argument("--encoding", help="with --prime-file: its encoding (default: utf-8)")
    add_adaptation_options(s, "sample")
    s.set_defaults(func=cmd_sample, command_parser=s)

    e = sub.add_parser("eval", help="bits per character and perplexity of a model on a text",
                       formatter_class=_Help)
    e.add_argument("checkpoint", help="run directory (its best checkpoint) or .npz file")
    e.add_argument("text", help="text file to score")
    e.add_argument("--encoding", default="utf-8", help="encoding of TEXT")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    add_adaptation_options(e, "score")
    e.set_defaults(func=cmd_eval, command_parser=e)

    x = sub.add_parser("explore", help="write an interactive HTML page that looks inside a model",
                       formatter_class=_Help,
                       description="Write one self-contained HTML page (no network needed): training "
                                   "curves, surprisal, unit activations, gate saturation, an in-page sampler.")
    x.add_argument("checkpoint", metavar="RUN", help="run directory (its best.npz and metrics.jsonl) or .npz file")
    x.add_argument("text", nargs="?", metavar="TEXT",
                   help="text file to look at (default: the run's validation tail, read again from the "
                        "training text)")
    x.add_argument("--out", metavar="FILE.html",
                   help="page to write (default: RUN/explore.html, or <name>-explore.html beside a .npz)")
    x.add_argument("--max-chars", type=int, default=5000, help="characters of TEXT shown, from its start (at most 50,000: the page holds every unit's activation at each)")
    x.add_argument("--encoding", help="encoding of TEXT (default: utf-8), or without TEXT of the training "
                                       "text (default: the one the run read it in)")
    x.add_argument("--json", action="store_true", help="print one JSON object describing the page")
    x.set_defaults(func=cmd_explore, command_parser=x)

    n = sub.add_parser("ngram", help="character n-gram baseline (interpolated Kneser-Ney)", formatter_class=_Help)
    n.add_argument("text", help="text file: trained on its head, scored on its tail")
    n.add_argument("--order", type=int, default=5, help="n, characters of context plus one")
    n.add_argument("--modified", action="store_true",
                   help="modified Kneser-Ney: three discounts per order (default: one)")
    n.add_argument("--adapt", action="store_true",
                   help="a cache model: add each scored character's n-grams to the counts (default: off)")
    n.add_argument("--eval", help="score this file instead of the held-out tail (default: the tail); "
                                  "the n-gram still learns TEXT's head only")
    n.add_argument("--val-frac", type=float, default=0.1,
                   help="share of TEXT held out at its end, as rnnlab train's (0: learn all of TEXT)")
    n.add_argument("--encoding", default="utf-8", help="encoding of the files")
    n.add_argument("--json", action="store_true", help="print one JSON object")
    n.set_defaults(func=cmd_ngram, command_parser=n)

    _add_task(sub)

    b = sub.add_parser("bench", help="speed side by side with torch.nn on the CPU", formatter_class=_Help)
    b.add_argument("--repeats", type=int, default=7, help="timed repeats per training row, the median kept (sampling rows: half as many, at least 3)")
    b.add_argument("--row", action="append", help="run only this row, repeatable (default: every row)")
    b.add_argument("--no-torch", action="store_true", help="rnnlab's numbers only")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=cmd_bench, command_parser=b)

    d = sub.add_parser("demo", help="train an Elman RNN on the delayed-echo task", formatter_class=_Help)
    d.add_argument("--delay", type=int, default=3, help="steps by which the output lags the input")
    d.add_argument("--hidden", type=int, default=16, help="hidden units")
    d.add_argument("--steps", dest="iters", type=int, default=300, help="training iterations")
    d.add_argument("--seed", type=_seed, default=0, help="seed of the data and the initialisation")
    d.set_defaults(func=cmd_demo, command_parser=d)
    return p


def add_adaptation_options(p, verb):
    """Dynamic evaluation and n-gram mixing options of ``eval`` and ``sample``."""
    from ..models.scoring import DYN_DECAY, DYN_LR, DYN_SEG
    what = "adapt the weights to the text as it is scored" if verb == "score" else \
        "adapt the weights to the prime before sampling"
    p.add_argument("--dynamic", action="store_true",
                   help=f"dynamic evaluation: {what}; the gradient statistics it gathers on the training "
                        "text are kept beside the checkpoint (NAME-gradstats.npz) for later calls (default: off)")
    p.add_argument("--dyn-lr", type=float,
                   help="with --dynamic: its step size (the text is read as one stream, in order; "
                        f"default: {DYN_LR:g})")
    p.add_argument("--dyn-decay", type=float,
                   help=f"with --dynamic: its pull back toward the trained weights per segment, in [0, 1] "
                        f"(default: {DYN_DECAY:g})")
    p.add_argument("--dyn-seg", type=int, help=f"with --dynamic: its segment length (default: {DYN_SEG})")
    p.add_argument("--train-text", metavar="FILE",
                   help="with --dynamic: the training text, for its gradient statistics, read in the encoding "
                        "the run read its text in (default: the file the run was trained on)")
    p.add_argument("--mix-ngram", action="store_true",
                   help="mix with the run's n-gram (RUN/ngram.npz, from train --ngram N) (default: off)")
