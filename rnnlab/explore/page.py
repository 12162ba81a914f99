"""The explorer page: one self-contained HTML file — the template ``page.html`` with
``page.css``, ``page.js`` and the data inlined; nothing is fetched.

The data is one JSON object in a ``<script type="application/json">`` element:
the model's weights as base64 of their little-endian float32 (or float64) bytes, for
the in-page forward pass; the hidden states (and LSTM cells) of every layer quantised
per unit — 8 bits when they fit the size budget, else 4 bits (a colour scale needs no
more) — unit-major, so that one unit's series is one contiguous row; surprisal,
predictions, correlations, gate saturation and the training curves as plain JSON.
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
from importlib import resources

import numpy as np

from ..rundir import MAX_RECORD
from .analysis import FEATURES

EIGHT_BIT_BUDGET = 2_500_000        # quantised values stored with 8 bits up to this many


def b64(array, dtype):
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
                            .tobytes()).decode("ascii")


def quantise(x, bits):
    """x (N, U) → (per-unit scale (U,), bytes of the codes (U rows of N), unit-major).
    Codes: round(x / scale · m) + m, m = 127 (8 bits) or 7 (4 bits, two codes a byte,
    rows padded to an even length); decoded as (q − m) / m · scale."""
    x = np.asarray(x, np.float64)
    scale = np.maximum(np.abs(x).max(axis=0), 1e-6) if x.size else np.ones(x.shape[1])
    m = 127 if bits == 8 else 7
    q = (np.rint(x / scale * m) + m).astype(np.uint8).T          # (U, N)
    if bits == 4:
        if q.shape[1] % 2:
            q = np.concatenate([q, np.full((q.shape[0], 1), m, np.uint8)], axis=1)
        q = (q[:, 0::2] << 4) | q[:, 1::2]
    return scale, np.ascontiguousarray(q).tobytes()


def dequantise(scale, raw, n, bits):
    """The inverse of ``quantise`` (for tests): (N, U) float64."""
    m = 127 if bits == 8 else 7
    q = np.frombuffer(raw, np.uint8).reshape(len(scale), -1)
    if bits == 4:
        q = np.stack([q >> 4, q & 15], axis=2).reshape(len(scale), -1)
    return ((q[:, :n].astype(np.float64) - m) / m * scale[:, None]).T


MAX_ROWS = 20_000          # the curves' points: beyond this, every other one is dropped


def read_metrics(path):
    """The records of metrics.jsonl as {step, elapsed, train_bits, val_bpc}; the last run
    only where a restart (--force) appended a second one (steps go down). Read line by
    line; what is not a record (bytes that are not UTF-8, a line of another shape, a step
    that is not an integer, numbers beyond float's range) is skipped, and a file of more
    than MAX_ROWS records is thinned to at most MAX_ROWS points (the latest record always
    one of them), so no file can stop the page or fill memory."""
    rows, stride, seen, last = [], 1, 0, None
    if not os.path.isfile(path):            # a FIFO or a device in its place would block or never end
        return []
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return []
    with f:
        for line in iter(lambda: f.readline(MAX_RECORD), ""):       # no line read past MAX_RECORD
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if (not isinstance(r, dict) or isinstance(r.get("step"), bool) or not isinstance(r.get("step"), int)
                    or not 0 <= r["step"] < 2 ** 53):
                continue
            step = r["step"]
            if last is not None and step <= last["step"]:
                rows, stride, seen = [], 1, 0
            train = _num(r.get("train_loss"))
            last = {"step": step, "elapsed": _num(r.get("elapsed")),
                    "train_bits": None if train is None else round(train / math.log(2), 4),
                    "val_bpc": _num(r.get("val_bpc"))}
            seen += 1
            if seen % stride:
                continue
            rows.append(last)
            if len(rows) >= MAX_ROWS:
                rows, stride = rows[1::2], stride * 2
    if last is not None and (not rows or rows[-1] is not last):
        rows.append(last)                    # the latest record is always a point: the curve ends where the run is
    return rows


def _num(v):
    return round(float(v), 4) if isinstance(v, (int, float)) and abs(v) < 1e300 else None


def page_data(model, text, result, *, metrics=(), source="", checkpoint=""):
    """The JSON object the page reads (see the module docstring)."""
    rnn, n = model.rnn, len(text)
    series = [(k, kind, layer[kind]) for k, layer in enumerate(result["layers"])
              for kind in ("h", "c") if layer[kind] is not None]
    bits = 8 if sum(s.size for _, _, s in series) <= EIGHT_BIT_BUDGET else 4
    acts = []
    for k, kind, s in series:
        scale, raw = quantise(s, bits)
        acts.append({"layer": k, "kind": kind, "units": s.shape[1],
                     "scale": [float(f"{v:.5g}") for v in scale], "b64": base64.b64encode(raw).decode("ascii")})
    wdtype = "float64" if model.dtype == np.float64 else "float32"
    params = {name: [list(p.shape), b64(p, wdtype)] for name, p in model.params.items()}
    b = result["bits"]
    return {
        "checkpoint": checkpoint, "source": source,
        "model": {"type": rnn.mode, "layers": rnn.num_layers, "hidden": rnn.hidden_size,
                  "nonlinearity": getattr(rnn, "nonlinearity", "tanh"), "vocab": model.vocab.chars,
                  "parameters": int(model.num_parameters()), "dtype": wdtype, "params": params},
        "text": text,
        "bits": [None if not math.isfinite(v) else round(float(v), 2) for v in b],
        "mean_bits": None if result["mean_bits"] is None else round(result["mean_bits"], 4),
        "top_k": int(result["top"].shape[1]),          # 5, or the vocabulary's size when it is smaller
        "top": result["top"].ravel().tolist(),
        "top_p": [round(float(p), 4) for p in result["top_p"].ravel()],
        "acts": {"bits": bits, "n": n, "series": acts},
        "features": [list(f) for f in FEATURES],
        "ranked": result["ranked"],
        "saturation": [{g: [[round(float(v), 4) for v in lr] for lr in pair] for g, pair in layer.items()}
                       for layer in result["saturation"]],
        "metrics": list(metrics),
    }


def _asset(name):
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render(data, title="rnnlab explore"):
    """The HTML page for ``data``: template, style, script and data inlined."""
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    blob = blob.replace("<", "\\u003c")               # nothing in the JSON can close the <script>
    values = {"TITLE": _escape(title), "CSS": _asset("page.css"), "DATA": blob, "JS": _asset("page.js")}
    # one pass: what is put in is never searched again (the text may contain "{{JS}}")
    html = re.sub(r"\{\{(TITLE|CSS|DATA|JS)\}\}", lambda m: values[m.group(1)], _asset("page.html"))
    return html


def _escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
