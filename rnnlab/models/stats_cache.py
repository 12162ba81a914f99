"""Dynamic evaluation's gradient statistics kept beside a checkpoint, so that they are
gathered once per model rather than on every ``rnnlab eval --dynamic`` or ``sample
--dynamic``: gathering them runs forward and backward passes over the segments in the
first 2,000 steps of the training text at 64 streams and at one, taken from streams spread
over the 64 (``scoring.gradient_stats``) — seconds, where scoring a short text takes a
fraction of one.

The file, ``<checkpoint>-gradstats.npz`` (``path_for``), is a checkpoint-format archive
(written atomically by checkpoint.save, read without pickle) holding μ² and σ² of every
parameter as float64 arrays, ``mu2/<name>`` and ``var/<name>``, and in its metadata a
key: the SHA-256 of everything the statistics depend on — every weight (names, dtypes,
shapes, bytes), the training ids, the segment length, the sampling (streams, steps, which
streams the one-stream samples take) and whether the compiled kernels ran (their tanh
differs from NumPy's in the last place). It is used only when its key is the one computed
now and every array is float64 of its parameter's shape, finite, ≥ 0 and within
MAX_SQUARE, and not all below MIN_LARGEST; anything else —
other weights (a run trained on), another text or ``seg_len``, a damaged or foreign file —
is a miss: the statistics are gathered again and the file replaced. Where it cannot be written (a
read-only directory), only the caching is lost.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .. import checkpoint
from ..errors import CheckpointError
from ..kernels import compiled_active
from .charlm_io import weights_digest
from .scoring import STATS_STEPS, STATS_STREAMS, GradientStats, gradient_stats

# what no gathered statistics come near, each way: a squared gradient beyond 1e30 (its RMS
# would overflow float32 steps), or every one below 1e-30 (a model whose every gradient
# vanishes; the head's bias alone moves ~1e-2 in any model that is not perfect). A file
# outside them — forged with its key recomputed, say — is a miss: a review's 1e308 values
# gave overflow warnings and blamed --dyn-lr, its zeros a loss of 722,827 and exit 0
MAX_SQUARE, MIN_LARGEST = 1e30, 1e-30
KIND = "GradientStats"
SUFFIX = "-gradstats.npz"


def path_for(checkpoint_path):
    """Where the statistics of the model in ``checkpoint_path`` are kept: RUN/best.npz →
    RUN/best-gradstats.npz."""
    stem = os.fspath(checkpoint_path)
    return (stem[:-4] if stem.endswith(".npz") else stem) + SUFFIX


def stats_key(model, ids, seg_len):
    """SHA-256 (hex) of what ``gradient_stats(model, ids, seg_len)`` depends on."""
    h = hashlib.sha256(json.dumps({"seg_len": int(seg_len), "streams": STATS_STREAMS, "steps": STATS_STEPS,
                                   "columns": "spread", "compiled": compiled_active()}).encode())
    h.update(weights_digest(model.params).encode())
    h.update(np.ascontiguousarray(ids, np.int64).data)
    return h.hexdigest()


def load(path, key, shapes):
    """The GradientStats at ``path`` if its key is ``key`` and it holds a float64, finite,
    non-negative μ² and σ² of each shape in ``shapes`` ({name: shape}) and nothing else,
    within the bounds above; else None."""
    wanted = {f"{part}/{name}": shape for name, shape in shapes.items() for part in ("mu2", "var")}
    try:
        with checkpoint.Checkpoint(path) as ck:
            if ck.meta.get("kind") != KIND or ck.meta.get("key") != key or set(ck.members) != {"__meta__", *wanted}:
                return None
            arrays = {member: ck.read(member, shape, (np.float64,)) for member, shape in wanted.items()}
    except CheckpointError:
        return None
    if not all(np.isfinite(a).all() and (a >= 0).all() and (a <= MAX_SQUARE).all() for a in arrays.values()) \
            or max(a.max(initial=0.0) for a in arrays.values()) < MIN_LARGEST:
        return None
    return GradientStats({n: arrays[f"mu2/{n}"] for n in shapes}, {n: arrays[f"var/{n}"] for n in shapes})


def save(path, key, stats):
    """Write ``stats`` under ``key`` to ``path``; False where the file cannot be written."""
    arrays = {**{f"mu2/{n}": a for n, a in stats.mu2.items()}, **{f"var/{n}": a for n, a in stats.var.items()}}
    try:
        checkpoint.save(path, arrays, {"kind": KIND, "key": key})
    except OSError:
        return False
    return True


def cached_gradient_stats(model, ids, seg_len, path):
    """``gradient_stats(model, ids, seg_len)``, read from ``path`` when it holds them for
    exactly these weights, ids and seg_len, else gathered and written there."""
    key = stats_key(model, ids, seg_len)
    stats = load(path, key, {name: p.shape for name, p in model.params.items()})
    if stats is None:
        stats = gradient_stats(model, ids, seg_len=seg_len)
        save(path, key, stats)
    return stats
