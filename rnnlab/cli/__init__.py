"""The ``rnnlab`` command line: a thin layer over the Python API.

    rnnlab train [TEXT]            train a character model (default text: Python's stdlib sources)
    rnnlab sample RUN_OR_CKPT      stream generated text
    rnnlab eval RUN_OR_CKPT TEXT   nats/char, bits/char, perplexity
    rnnlab explore RUN_OR_CKPT     one HTML page that shows what the model learned
    rnnlab ngram TEXT [--order N]  the Kneser-Ney n-gram baseline on the same split
    rnnlab task NAME               the course applications (detect, forecast, classify, ...)
    rnnlab bench                   speed side by side with torch.nn on the CPU
    rnnlab demo                    a tiny Elman RNN learning a delayed echo

Every user error — a missing, empty, binary or undecodable file, an invalid option,
unknown prime characters, a damaged or foreign checkpoint — prints one line on
stderr and exits with code 2, before any existing file is touched.
"""
from __future__ import annotations

import re
import sys

from .usage import UsageError
from .parser import build_parser
from ..parallel import abort_started, env_rank, fail_unsettled, is_quiet_rank, started


def _flag_message(message, command_parser, given=()):
    """Library messages name their own parameters — first ("hidden_size must be ...") or as
    "name=value" — and the CLI says its flags instead ("--hidden-size must be ...",
    "--fill ffill") where the command has that option. What the user typed (``given``: the
    command line's words, file names among them) is left as it is: a folder "seed=1" or a
    file named "column" is not an option."""
    flags = {a.dest: a.option_strings[-1] for a in command_parser._actions if a.option_strings}
    kept = sorted({w for w in given if len(w) > 1 and not w.startswith("-") and w in message},
                  key=len, reverse=True)
    for i, w in enumerate(kept):      # out of the rewriting's way (put back below), as whole words only:
        message = re.sub(rf"(?<!\w){re.escape(w)}(?!\w)", f"\0{i}\0", message)   # "size" in hidden_size stays
    name, _, rest = message.partition(" ")
    key = name.rstrip(":")
    if key in flags:
        message = f"{flags[key]}{name[len(key):]} {rest}"
    # "name=value" elsewhere in the message is the option "--name value"
    message = re.sub(r"\b([a-z_]+)=", lambda m: flags[m.group(1)] + ("" if m.end() == len(message) or
                     message[m.end()] == " " else " ") if m.group(1) in flags else m.group(0), message)
    for i, w in enumerate(kept):
        message = message.replace(f"\0{i}\0", w)
    return message


def _paths_printable(stream):
    """A path that is not UTF-8 reaches Python as lone surrogates; a strict stdout would
    fail on printing it (after the work was done). Write those bytes back as they were —
    on the process's own stdout only: a stream a host put in its place (a notebook, a test's
    capture) is the host's to configure."""
    if stream is not sys.__stdout__:
        return
    if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
        try:
            stream.reconfigure(errors="surrogateescape")
        except (ValueError, OSError):          # a stream that cannot change: leave it
            pass


def _fail(err, line, code):
    """Print ``line`` and let the other ranks of an MPI job know: before the ranks agreed
    to start, at that agreement (and only rank 0 speaks for all); after it, this rank's
    error is its own, so it says it (with its rank) and ends the whole job."""
    fail_unsettled(err)
    if started():
        rank = env_rank() or 0
        print(f"rnnlab: error: {'' if rank == 0 else f'rank {rank}: '}{line}", file=sys.stderr)
        abort_started(code)
    elif not is_quiet_rank():
        print(f"rnnlab: error: {line}", file=sys.stderr)
    return code


def main(argv=None):
    from ..errors import RnnlabError
    _paths_printable(sys.stdout)
    args = None
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except (UsageError, RnnlabError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, RnnlabError) and args is not None:
            msg = _flag_message(msg, args.command_parser, args.argv)
        return _fail(e, msg, 2)
    except OSError as e:
        name = e.filename2 or e.filename                   # a rename: its target
        return _fail(e, f"{name}: {e.strerror}" if name else (e.strerror or str(e)), 2)
    except KeyboardInterrupt as e:          # before training's own handler is in place
        fail_unsettled(e)
        if not is_quiet_rank():
            print("rnnlab: interrupted", file=sys.stderr)
        return 130
    except Exception as e:                  # a bug: its traceback, and under MPI no rank left waiting
        fail_unsettled(e)
        if started():
            import traceback
            traceback.print_exc()
            abort_started(1)
        raise


if __name__ == "__main__":
    sys.exit(main())
