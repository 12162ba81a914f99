"""Checkpoints: one ``.npz`` per checkpoint — named arrays plus JSON metadata —
never pickled, written atomically.

Layout of the archive:
    "__meta__"      uint8 array holding UTF-8 JSON: {"format": "rnnlab-checkpoint",
                    "version": 1, ...caller's metadata (config, vocabulary, step,
                    optimizer and RNG state)...}
    any other key   a float/int array (parameters "param/...", optimizer slots
                    "optim/...", carried state "state/...")

``save`` writes to a temporary file in the target's directory, fsyncs it and
renames it over the target, so a crash never leaves a half-written checkpoint.
``load`` reads with ``allow_pickle=False`` and turns every kind of damage into a
``CheckpointError`` with one clear line.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

from .errors import CheckpointError

FORMAT = "rnnlab-checkpoint"
VERSION = 1


def save(path, arrays, meta):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    header = {"format": FORMAT, "version": VERSION, **meta}
    payload = {"__meta__": np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)}
    for k, v in arrays.items():
        v = np.asarray(v)
        if v.dtype == object:
            raise TypeError(f"checkpoint array {k!r} has dtype object")
        payload[k] = v
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load(path):
    """Return (arrays, meta). Raises CheckpointError for anything that is not a sound
    rnnlab checkpoint of a version this code can read."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            if "__meta__" not in z.files:
                raise CheckpointError(f"{path}: not an rnnlab checkpoint (no metadata)")
            meta = json.loads(z["__meta__"].tobytes().decode("utf-8"))
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: damaged or not an rnnlab checkpoint ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnnlab checkpoint (written by another program)")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this rnnlab "
                              f"reads ({VERSION}); upgrade rnnlab")
    return arrays, meta
