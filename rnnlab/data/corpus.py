"""The default corpus: text that every machine with Python already has.

It is gathered deterministically from the Python standard library's own source
files: the top-level ``*.py`` modules of the running interpreter's stdlib, in
sorted order, each preceded by a header line, until ``max_chars`` characters.
Nothing is downloaded or bundled. The text depends on the Python version, which is
recorded as ``default_corpus_source()``.
"""
from __future__ import annotations

import os
import sys
import sysconfig

from ..errors import DataError


def default_corpus_source():
    return f"python{sys.version_info.major}.{sys.version_info.minor}-stdlib"


def default_corpus(max_chars=1_000_000):
    stdlib = sysconfig.get_paths()["stdlib"]
    try:
        names = sorted(n for n in os.listdir(stdlib) if n.endswith(".py"))
    except OSError:
        names = []
    parts, total = [], 0
    for name in names:
        try:
            with open(os.path.join(stdlib, name), encoding="utf-8") as f:
                src = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        piece = f"# ==== {name} ====\n{src}\n"
        parts.append(piece)
        total += len(piece)
        if total >= max_chars:
            break
    text = "".join(parts)[:max_chars]
    if len(text) < 10_000:
        raise DataError(f"could not gather the default corpus from the standard library at {stdlib}; "
                        f"pass a TEXT file")
    return text
