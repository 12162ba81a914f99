"""Checkpoints: one ``.npz`` per checkpoint — named arrays plus JSON metadata —
never pickled, written atomically, read without trusting the file.

Layout of the archive (a zip of ``.npy`` members, as ``np.savez`` writes it):
    "__meta__.npy"  uint8 array holding UTF-8 JSON: {"format": "rnnlab-checkpoint",
                    "version": 1, ...caller's metadata (config, vocabulary, step,
                    optimizer and generator state)...}
    any other key   a real float (or int) array: parameters "param/...", optimizer slots
                    "optim/...", carried state "state/..."

``save`` writes to a temporary file in the target's directory, fsyncs it and renames
it over the target, so a crash never leaves a half-written checkpoint; the file gets the
permissions the umask gives a new file (as ``open`` would), and an error while writing
names the target.

Reading is two-phase, so that nothing is allocated on the file's word:
``open_checkpoint(path)`` reads only the metadata (capped at 4 MB, JSON nesting capped)
and each member's ``.npy`` header (dtype, shape); the caller checks those against what
the metadata implies; ``Checkpoint.read(name, shape, dtypes)`` then reads one member,
at most the bytes its checked header promises (a member that inflates beyond that is
damage, not data), into an array allocated for exactly that. Every kind of damage —
zip, header, JSON, sizes — becomes one ``CheckpointError`` line. The zip's own sizes
are checked too before anything is allocated on them: every member must lie inside the
file, a stored member's size is its stored bytes, a deflated one's at most what deflate
can inflate to (MAX_INFLATION), and a member's .npy header must promise exactly the
member's size; names are unique and dimensions non-negative. Only stored and deflated
members are read (COMPRESSIONS), and a header is read through a cap (MAX_HEADER), never
at the length it declares.
"""
from __future__ import annotations

import json
import os
import struct
import tokenize
import zipfile
import zlib
from math import prod

import numpy as np

from .atomic import write_atomic
from .errors import CheckpointError

FORMAT = "rnnlab-checkpoint"
VERSION = 1
MAX_META_BYTES = 4 << 20
MAX_JSON_DEPTH = 32
MAX_INFLATION = 1032          # deflate's largest expansion: 258 bytes from 2 bits, plus slack
MAX_HEADER = 1 << 16          # a .npy header's bytes (NumPy writes ~128; a version 2/3 one may declare 4 GiB)
# the zip compressions read: what np.savez writes. bzip2 and LZMA members inflate without
# a bound in zipfile (one small read can become gigabytes), so they are refused
COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# what reading a damaged archive can raise, besides CheckpointError (tokenize and syntax
# errors come from NumPy's parser of .npy header dicts; found by fuzzing the headers)
DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError,
          UnicodeDecodeError, RuntimeError, NotImplementedError, zlib.error, struct.error,
          OverflowError, RecursionError, TypeError, IndexError, tokenize.TokenError, SyntaxError)


def save(path, arrays, meta):
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    header = {"format": FORMAT, "version": VERSION, **meta}
    payload = {"__meta__": np.frombuffer(json.dumps(header, allow_nan=False).encode("utf-8"), dtype=np.uint8)}
    for k, v in arrays.items():
        v = np.asarray(v)
        if v.dtype == object:
            raise TypeError(f"checkpoint array {k!r} has dtype object")
        payload[k] = v
    def write(f):
        try:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        except OSError as e:                   # a full disk: name the file being written
            raise OSError(e.errno, e.strerror, path) from None
    return write_atomic(path, write, binary=True, suffix=".npz")


def _sizes_possible(info, file_size):
    """Whether a zip member's recorded sizes could be true of a file of ``file_size`` bytes."""
    if info.header_offset + info.compress_size > file_size:
        return False
    if info.compress_type == zipfile.ZIP_STORED:
        return info.file_size == info.compress_size
    return info.file_size <= MAX_INFLATION * info.compress_size + 1024


def _depth(obj, limit):
    """Nesting depth of parsed JSON, stopping at ``limit`` (no recursion)."""
    stack, deepest = [(obj, 1)], 0
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return deepest


class Checkpoint:
    """An opened checkpoint: ``meta`` (dict), ``members`` {name: (dtype, shape)} from the
    ``.npy`` headers; ``read`` a member after checking it. Use as a context manager."""

    def __init__(self, path):
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            raise CheckpointError(f"{self.path}: a directory, not a checkpoint file (a run's are best.npz and "
                                  f"latest.npz in it)")
        if not os.path.isfile(self.path):
            raise CheckpointError(f"{self.path}: no such checkpoint file")
        self._zip = None
        try:
            self._zip = zipfile.ZipFile(self.path)
            self._infos = {}
            size = os.path.getsize(self.path)
            for info in self._zip.infolist():
                if not info.filename.endswith(".npy"):
                    raise CheckpointError(f"{self.path}: damaged or foreign checkpoint (member {info.filename!r} is not an array)")
                if info.compress_type not in COMPRESSIONS:
                    raise CheckpointError(f"{self.path}: damaged or foreign checkpoint (member {info.filename!r} "
                                          f"is compressed with a method rnnlab does not read)")
                if info.filename[:-4] in self._infos:
                    raise CheckpointError(f"{self.path}: damaged checkpoint (member {info.filename!r} twice)")
                if not _sizes_possible(info, size):
                    raise CheckpointError(f"{self.path}: damaged checkpoint (member {info.filename!r} "
                                          f"claims more than the file holds)")
                self._infos[info.filename[:-4]] = info
            if "__meta__" not in self._infos:
                raise CheckpointError(f"{self.path}: not an rnnlab checkpoint (no metadata)")
            self.members = {}
            for name in self._infos:
                self.members[name] = self._header(name)[:2]
            self.meta = self._read_meta()
        except CheckpointError:
            self.close()
            raise
        except DAMAGE as e:
            self.close()
            raise CheckpointError(f"{self.path}: damaged or not an rnnlab checkpoint "
                                  f"({type(e).__name__})") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def _header(self, name):
        """(dtype, shape, data offset) from a member's .npy header; reads only the header."""
        with self._zip.open(self._infos[name]) as member:
            f = _Capped(member, 12 + MAX_HEADER,     # the magic, version and length fields, then the header
                        f"{self.path}: damaged checkpoint (member {name!r}: a .npy header longer than "
                        f"{MAX_HEADER:,} bytes)")
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise CheckpointError(f"{self.path}: member {name!r} has an unknown .npy version")
            offset = f.tell()
        if fortran or dtype.hasobject or dtype.fields is not None:
            raise CheckpointError(f"{self.path}: damaged or foreign checkpoint (member {name!r} is not a plain array)")
        if any(d < 0 for d in shape) or offset + dtype.itemsize * prod(shape) != self._infos[name].file_size:
            raise CheckpointError(f"{self.path}: damaged checkpoint (member {name!r}: its header's shape "
                                  f"{tuple(shape)} does not match its size)")
        return dtype, tuple(shape), offset

    def _read_meta(self):
        dtype, shape, _ = self._header("__meta__")
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
            raise CheckpointError(f"{self.path}: damaged checkpoint metadata (not a UTF-8 JSON array "
                                  f"of at most {MAX_META_BYTES >> 20} MB)")
        raw = self.read("__meta__", shape, (np.uint8,)).tobytes()
        meta = json.loads(raw.decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"{self.path}: not an rnnlab checkpoint (written by another program)")
        if _depth(meta, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise CheckpointError(f"{self.path}: damaged checkpoint metadata (nested too deeply)")
        version = meta.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise CheckpointError(f"{self.path}: damaged checkpoint metadata (version {version!r})")
        if version > VERSION:
            raise CheckpointError(f"{self.path}: checkpoint format version {version} is newer than this "
                                  f"rnnlab reads ({VERSION}); upgrade rnnlab")
        return meta

    def read(self, name, shape, dtypes):
        """Member ``name`` as an array, after checking its header against ``shape`` (a
        tuple) and ``dtypes`` (allowed dtypes); reads at most the bytes that promises."""
        try:
            dtype, got_shape, offset = self._header(name)
            if got_shape != tuple(shape) or not any(dtype == np.dtype(d) for d in dtypes):
                raise CheckpointError(f"{self.path}: array {name!r} is {dtype} {got_shape}, expected "
                                      f"{' or '.join(np.dtype(d).name for d in dtypes)} {tuple(shape)}")
            out = np.empty(shape, dtype)
            view = memoryview(out.reshape(-1).view(np.uint8))
            with self._zip.open(self._infos[name]) as f:
                f.read(offset)
                got = 0
                while got < len(view):
                    n = f.readinto(view[got:])
                    if not n:
                        raise CheckpointError(f"{self.path}: array {name!r} is truncated")
                    got += n
                if f.read(1):
                    raise CheckpointError(f"{self.path}: array {name!r} holds more data than its header says")
            return out
        except CheckpointError:
            raise
        except DAMAGE as e:
            raise CheckpointError(f"{self.path}: damaged array {name!r} ({type(e).__name__})") from None


class _Capped:
    """A stream that refuses, with ``message``, any read past its first ``limit`` bytes:
    a .npy header is parsed through it, so a declared length is never read beyond it."""

    def __init__(self, f, limit, message):
        self._f, self._left, self._message = f, limit, message

    def read(self, n=-1):
        if n is None or n < 0 or n > self._left:
            raise CheckpointError(self._message)
        self._left -= n
        return self._f.read(n)

    def tell(self):
        return self._f.tell()


def load(path):
    """(arrays, meta) of a small checkpoint whose members are all read as they are —
    for tests and tools; models use ``Checkpoint`` to check before reading."""
    with Checkpoint(path) as ck:
        arrays = {name: ck.read(name, shape, (dtype,)) for name, (dtype, shape) in ck.members.items()
                  if name != "__meta__"}
        return arrays, ck.meta
