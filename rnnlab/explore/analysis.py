"""What the explorer shows, computed in NumPy with the library's own forward pass.

``run_model(model, ids)`` runs a CharLM's recurrent stack over one sequence from a zero
state, one ``scan`` per layer with the layer's NumPy kernel (as ``generate.Stepper``
does, without the dropout of training), and keeps every step's hidden state h, the
LSTM's cell c and the activated gates (``buf.act``: LSTM blocks i, f, g, o; GRU r, z, n),
then the head's log-probabilities in float64.

``text_features(text)``: simple features of the text at each position, read as "after
the character at t" (the state h_t has just read it): inside double quotes, inside single
quotes, bracket depth, position in the line, just after a space, just after a newline.

``correlations(series, features)``: Pearson's r of every unit with every feature;
``saturation(gate)``: each unit's fraction of steps with the gate below 0.1 (left
saturated) and above 0.9 (right saturated) — Karpathy, Johnson & Fei-Fei (2015), Fig. 3.
"""
from __future__ import annotations

import math

import numpy as np

from ..activations import log_softmax
from ..scan import scan

GATES = {"LSTM": {"input": 0, "forget": 1, "output": 3}, "GRU": {"reset": 0, "update": 1}}
LEFT, RIGHT = 0.1, 0.9

FEATURES = (
    ("in_double_quotes", 'inside "double quotes"'),
    ("in_single_quotes", "inside 'single quotes'"),
    ("bracket_depth", "bracket depth ( [ {"),
    ("line_position", "position in the line"),
    ("after_space", "just after a space"),
    ("after_newline", "just after a newline"),
)
OPEN, CLOSE = "([{", ")]}"


def run_model(model, ids):
    """Per layer {"h": (N, H), "c": (N, H) or None, "gates": {name: (N, H)}} and the
    log-probabilities (N, V) float64 of the character after each position."""
    rnn = model.rnn
    kernel, H, dtype = rnn.kernel, rnn.hidden_size, rnn.dtype
    xs = np.asarray(ids, np.int64).reshape(-1, 1)          # (T, B=1) time-major ids
    layers, is_ids = [], True
    for k in range(rnn.num_layers):
        w = rnn.prepared_weights(kernel, k)
        zeros = np.zeros((1, H), dtype)
        buf = scan(kernel, w, xs, zeros, zeros.copy() if kernel.has_cell else None, ids=is_ids)
        h = buf.h[1:, 0].copy()
        gates = {name: buf.act[:, 0, blk * H:(blk + 1) * H].copy()
                 for name, blk in GATES.get(rnn.mode, {}).items()}
        layers.append({"h": h, "c": buf.c[1:, 0].copy() if kernel.has_cell else None, "gates": gates})
        xs, is_ids = buf.h[1:], False
    logits = model.head.forward(layers[-1]["h"])
    return layers, log_softmax(np.asarray(logits, np.float64), axis=-1)


def text_features(text):
    """{name: (N,) float64} for the names in FEATURES."""
    n = len(text)
    f = {name: np.zeros(n) for name, _ in FEATURES}
    dq = sq = False
    depth = col = 0
    for t, ch in enumerate(text):
        prev = text[t - 1] if t else "\n"
        nxt = text[t + 1] if t + 1 < n else " "
        if ch == '"':
            dq = not dq
        elif ch == "'" and not (prev.isalnum() and nxt.isalnum()):   # not an apostrophe
            sq = not sq
        if ch == "\n":
            sq, col = False, 0
        else:
            col += 1
        if ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth = max(depth - 1, 0)
        f["in_double_quotes"][t] = dq or ch == '"'
        f["in_single_quotes"][t] = sq or ch == "'" and not (prev.isalnum() and nxt.isalnum())
        f["bracket_depth"][t] = depth
        f["line_position"][t] = col
        f["after_space"][t] = ch == " "
        f["after_newline"][t] = ch == "\n"
    return f


def correlations(series, features):
    """series (N, U), features {name: (N,)} → {name: (U,) Pearson r}; 0 where either
    side is constant."""
    x = np.asarray(series, np.float64)
    x = x - x.mean(axis=0)
    sx = np.sqrt((x * x).sum(axis=0))
    out = {}
    for name, v in features.items():
        y = np.asarray(v, np.float64) - np.mean(v)
        sy = math.sqrt(float(y @ y))
        denom = sx * sy
        r = np.zeros(x.shape[1])
        ok = denom > 1e-12
        r[ok] = (y @ x)[ok] / denom[ok]
        out[name] = np.clip(r, -1.0, 1.0)
    return out


def saturation(gate):
    """gate (N, H) activated values in [0, 1] → (left, right): fractions (H,) of steps
    below LEFT and above RIGHT."""
    g = np.asarray(gate)
    return (g < LEFT).mean(axis=0), (g > RIGHT).mean(axis=0)


def top_units(corr, count=10):
    """corr {(layer, kind): {feature: (U,)}} → {feature: [[layer, kind, unit, r], ...]}
    the ``count`` units with the largest |r| over every layer and kind."""
    ranked = {}
    for name, _ in FEATURES:
        rows = [(float(r), layer, kind, int(u)) for (layer, kind), by_feat in corr.items()
                for u, r in enumerate(by_feat[name])]
        rows.sort(key=lambda row: -abs(row[0]))
        ranked[name] = [[layer, kind, u, round(r, 3)] for r, layer, kind, u in rows[:count]]
    return ranked


def analyse(model, text):
    """Everything the page shows about ``text`` (every character in the vocabulary):
    surprisal (bits of each character given the ones before; None for the first), the
    top-5 predictions made before each character, per-layer activations, correlations
    with the features, gate saturation."""
    ids = model.vocab.encode(text)
    layers, logp = run_model(model, ids)
    bits = np.full(len(ids), np.nan)
    bits[1:] = -logp[np.arange(len(ids) - 1), ids[1:]] / math.log(2)
    top = np.argsort(-logp[:-1], axis=1, kind="stable")[:, :5]
    top_p = np.exp(np.take_along_axis(logp[:-1], top, axis=1))
    feats = text_features(text)
    corr = {}
    for k, layer in enumerate(layers):
        for kind in ("h", "c"):
            if layer[kind] is not None:
                corr[(k, kind)] = correlations(layer[kind], feats)
    sat = [{name: saturation(g) for name, g in layer["gates"].items()} for layer in layers]
    return {"ids": ids, "bits": bits, "top": top, "top_p": top_p, "layers": layers,
            "features": feats, "corr": corr, "ranked": top_units(corr), "saturation": sat,
            "mean_bits": float(np.nanmean(bits)) if len(ids) > 1 else None}
