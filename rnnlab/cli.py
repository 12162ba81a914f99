"""The ``rnnlab`` command line. Every user error prints one line on stderr and exits 2."""
from __future__ import annotations

import argparse
import sys


class UsageError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _cmd_demo(args):
    from .demo import train_echo
    print(f"Elman RNN (hidden {args.hidden}) learning to echo its input delayed by {args.delay} steps")
    losses = train_echo(delay=args.delay, hidden=args.hidden, iters=args.steps, seed=args.seed,
                        log=print, log_every=max(1, args.steps // 10))
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return 0


def build_parser():
    p = _Parser(prog="rnnlab", description="Recurrent neural networks from scratch on NumPy.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    d = sub.add_parser("demo", help="train an Elman RNN on the delayed-echo task")
    d.add_argument("--delay", type=int, default=3)
    d.add_argument("--hidden", type=int, default=16)
    d.add_argument("--steps", type=int, default=300)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as e:
        print(f"rnnlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
