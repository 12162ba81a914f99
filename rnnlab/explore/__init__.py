"""``rnnlab explore``: one self-contained HTML page that looks inside a character model —
training curves, the surprisal of each character, any unit's activation and the units
that track simple features of the text, gate saturation, and a sampler that runs the
model in the page.

    info = explore("runs/stdlib")                        # writes runs/stdlib/explore.html
    html, info = build_page(model, text, metrics=read_metrics(path))

analysis.py computes (NumPy, the library's forward pass); page.py assembles the file
from page.html, page.css and page.js (package data).
"""
from __future__ import annotations

import os

from ..atomic import write_atomic
from ..data.corpus import default_corpus
from ..data.text import read_text, split_train_val, text_fingerprint
from ..errors import DataError
from ..models.charlm_io import training_encoding
from ..rundir import best_checkpoint
from .analysis import analyse
from .page import page_data, read_metrics, render

MAX_CHARS = 5000
# the most a page shows: it holds every unit's activation at every character (~680 bytes a
# character for an LSTM 2x256: 34 MB here), and the analysis float64 arrays of each (a
# review's 2,000,000 ran 25 s, then failed allocating 954 MiB)
MAX_PAGE_CHARS = 50_000


def validation_tail(model, encoding=None):
    """(text, description): the validation tail of the text the model was trained on,
    read again from ``model.meta["text_source"]`` (in ``encoding``, default the one the run
    read it in) and split as training split it."""
    source = model.meta.get("text_source")
    if not source:
        raise DataError("the checkpoint does not say which text it was trained on; pass TEXT")
    if source.startswith("default:"):
        text = default_corpus()
    else:
        try:
            text = read_text(source, encoding or training_encoding(model.meta), regular=True)
        except DataError as e:
            raise DataError(f"the training text is not available ({e}); pass TEXT") from None
    _, val = split_train_val(text, model.config.val_frac)
    if len(val) < 2:
        raise DataError("the run has no validation split (val_frac 0); pass TEXT")
    what = f"the validation tail of {source}"
    fp = model.meta.get("text_fingerprint")
    if fp is not None and fp != text_fingerprint(text):
        what += " (the text has changed since training)"
    return val, what


def _check_max_chars(max_chars):
    if not isinstance(max_chars, int) or isinstance(max_chars, bool) or not 2 <= max_chars <= MAX_PAGE_CHARS:
        raise DataError(f"max_chars must be an integer from 2 to {MAX_PAGE_CHARS:,}, got {max_chars!r}")


def build_page(model, text, *, metrics=(), source="", checkpoint="", max_chars=MAX_CHARS):
    """(html, info) for ``text``: characters outside the vocabulary are dropped (counted
    in info["oov"]), then the first ``max_chars`` are shown."""
    _check_max_chars(max_chars)
    known = "".join(ch for ch in text if ch in model.vocab.index)
    oov = len(text) - len(known)
    shown = known[:max_chars]
    if len(shown) < 2:
        raise DataError("the text has fewer than two characters the model knows")
    result = analyse(model, shown)
    source, checkpoint = printable(source), printable(checkpoint)
    data = page_data(model, shown, result, metrics=metrics, source=source, checkpoint=checkpoint)
    html = render(data, title=f"rnnlab explore — {checkpoint or model.rnn.mode}")
    return html, {"chars": len(shown), "oov": oov, "mean_bits": result["mean_bits"],
                  "bytes": len(html.encode("utf-8")), "activation_bits": data["acts"]["bits"]}


def printable(path):
    """A path as the page can show it: bytes that are not UTF-8 (a file name from another
    system, decoded by Python as lone surrogates, which no page can encode) become U+FFFD."""
    if not isinstance(path, str):
        return path
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _check_out(out):
    """The page goes to an .html path in an existing directory, never over anything but a
    plain file: a checkpoint, a directory or a device given as ``out`` by mistake stays."""
    if not os.fspath(out).lower().endswith((".html", ".htm")):
        raise DataError(f"out {out}: the page is an HTML file; give a path ending in .html")
    if os.path.lexists(out) and not os.path.isfile(out):
        raise DataError(f"out {out} exists and is not a plain file")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise DataError(f"out {out}: no such directory")


def explore(run, text_path=None, out=None, *, max_chars=MAX_CHARS, encoding=None):
    """Write the page for a run directory (its best.npz and metrics.jsonl) or a .npz
    (metrics.jsonl from its directory, if there). ``out`` defaults to RUN/explore.html,
    or <name>-explore.html beside a .npz. Returns build_page's info plus "out"."""
    from ..models.charlm import CharLM
    if os.path.isdir(run):
        ckpt, run_dir = best_checkpoint(run), run
        default_out = os.path.join(run, "explore.html")
    elif os.path.isfile(run):
        ckpt, run_dir = run, os.path.dirname(run) or "."
        default_out = os.path.join(run_dir, os.path.splitext(os.path.basename(run))[0] + "-explore.html")
    else:
        raise DataError(f"{run}: no such run directory or checkpoint")
    out = out or default_out
    _check_out(out)                          # before the analysis, which takes seconds
    _check_max_chars(max_chars)
    model = CharLM.load(ckpt)
    source = text_path if text_path is not None else model.meta.get("text_source")
    if source and os.path.isfile(out) and os.path.isfile(source) and os.path.samefile(out, source):
        raise DataError(f"out {out} is the text it would show ({'TEXT' if text_path else 'the training text'}): "
                        f"the page would replace it")
    if text_path is None:
        text, source = validation_tail(model, encoding)
    else:
        text, source = read_text(text_path, encoding or "utf-8"), os.path.abspath(text_path)
    metrics = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
    html, info = build_page(model, text, metrics=metrics, source=source, checkpoint=ckpt,
                            max_chars=max_chars)
    write_atomic(out, lambda f: f.write(html), binary=False, suffix=".html")
    return {**info, "out": out, "source": source, "metrics": len(metrics)}


__all__ = ["explore", "build_page", "validation_tail", "read_metrics", "printable", "MAX_CHARS", "MAX_PAGE_CHARS"]
