"""Text for character-level models: reading files, the character vocabulary, the
train/validation split and char-rnn's batching.

Batching (char-rnn's): the training ids are cut into ``batch_size`` contiguous
streams of equal length; step k of an epoch takes the k-th window of ``seq_len``
characters from every stream, so the hidden state can be carried from one step to
the next (truncated BPTT). Inputs are x[t], targets x[t+1]. What does not fill a whole
window is left out of the epoch: the end of each stream past its last full window, and
the few characters that do not divide into the streams (as many in all as char-rnn
leaves out, though spread over the streams' ends rather than in one tail).
"""
from __future__ import annotations

import codecs
import hashlib
import os
import re

import numpy as np

from ..errors import DataError
from ..memory import available_memory


# A text takes about this many bytes of memory per byte of file once it is decoded, encoded
# as ids and cut into batches (str up to 4, int64 ids 8, inputs and targets 16, the rest
# slack); read_text refuses a file that could not fit in what this process may use.
BYTES_PER_TEXT_BYTE = 40
_CHUNK = 1 << 20


def _read_capped(f, path, limit):
    """The bytes of ``f``, read in chunks; DataError past ``limit`` bytes (a FIFO or device
    such as /dev/zero has no size to check first)."""
    chunks, size = [], 0
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise DataError(f"{path}: larger than the {limit / 2**20:,.0f} MiB of text this machine's "
                            f"memory can hold")
        chunks.append(chunk)


def read_text(path, encoding="utf-8", regular=False):
    """Read a whole text file; clear DataError for missing, empty, binary, undecodable or
    too large files (see BYTES_PER_TEXT_BYTE) and for encodings that are not text codecs.
    ``regular``: refuse anything but a regular file — for a path a checkpoint recorded
    (a FIFO put there would block the command; a user's own TEXT may be a pipe)."""
    try:
        if not getattr(codecs.lookup(encoding), "_is_text_encoding", True):
            raise DataError(f"{encoding!r} is not a text encoding")
    except (LookupError, UnicodeError):            # a name no codec has, or not even text (lone surrogates)
        raise DataError(f"unknown encoding {encoding!r}") from None
    if "\x00" in os.fsdecode(path):                        # open() would raise ValueError
        raise DataError(f"{path!r}: not a file name (it contains a NUL character)")
    if regular and os.path.exists(path) and not os.path.isfile(path):
        raise DataError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as f:
            raw = _read_capped(f, path, available_memory() // BYTES_PER_TEXT_BYTE)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a text file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if not raw:
        raise DataError(f"{path}: the file is empty")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"{path}: not valid {encoding} text: undecodable byte 0x{raw[e.start]:02x} at "
                        f"byte offset {e.start} (line {line}); if the file uses another encoding, "
                        f"give it (encoding=NAME)") from None
    except (UnicodeError, ValueError) as e:           # codecs such as punycode raise their own
        raise DataError(f"{path}: not valid {encoding} text ({e})") from None
    if "\x00" in text:
        raise DataError(f"{path}: looks like a binary file (it contains NUL characters)")
    bad = SURROGATE.search(text)
    if bad:
        raise DataError(f"{path}: decoding as {encoding} gave a lone surrogate (U+{ord(bad.group()):04X}) "
                        f"at character {bad.start()}, which is not a character")
    return text


SURROGATE = re.compile("[\ud800-\udfff]")


class Vocab:
    """A set of Unicode characters in a fixed order; ids are positions in that order
    (``from_text``: a text's characters, sorted — what the CLI builds)."""

    def __init__(self, chars):
        chars = list(chars)                  # a string, a list, or any iterable of characters
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise DataError("a vocabulary is a sequence of single characters")
        chars = "".join(chars)
        if len(set(chars)) != len(chars) or not chars:
            raise DataError("a vocabulary needs at least one character and no duplicates")
        bad = SURROGATE.search(chars)
        if bad:
            raise DataError(f"a lone surrogate (U+{ord(bad.group()):04X}) is not a character")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def unknown(self, text):
        """The characters of ``text`` that are not in the vocabulary (sorted, unique)."""
        return sorted(set(text) - set(self.index))

    def known(self, text):
        """``text`` without the characters outside the vocabulary."""
        return "".join(ch for ch in text if ch in self.index)

    def encode(self, text):
        missing = self.unknown(text)
        if missing:
            shown = ", ".join(repr(c) for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise DataError(f"{len(missing)} character(s) not in the model's vocabulary: {shown}")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids):
        ids = [int(i) for i in ids]
        if any(not 0 <= i < len(self.chars) for i in ids):
            raise DataError(f"ids must be in [0, {len(self.chars)}) to decode")
        return "".join(self.chars[i] for i in ids)


def split_train_val(ids, val_frac):
    """Contiguous split: the last ``val_frac`` of the ids are validation (as char-rnn)."""
    if not 0.0 <= val_frac < 1.0:
        raise DataError(f"val_frac must be in [0, 1), got {val_frac}")
    n_val = int(round(len(ids) * val_frac))
    if val_frac > 0 and n_val < 2:
        raise DataError(f"text too short for a validation split of {val_frac:g} "
                        f"({len(ids)} characters)")
    return (ids[:len(ids) - n_val], ids[len(ids) - n_val:]) if n_val else (ids, ids[:0])


def steps_per_epoch(n_ids, batch_size, seq_len):
    """Number of full windows per epoch for char-rnn batching."""
    stream_len = (n_ids - 1) // batch_size
    return stream_len // seq_len


def char_batches(ids, batch_size, seq_len):
    """(inputs, targets) for one epoch, time-major: arrays (steps, seq_len, batch_size) int64;
    ``inputs[k][:, b]`` is the k-th window of stream b."""
    steps = steps_per_epoch(len(ids), batch_size, seq_len)
    if steps < 1:
        raise DataError(f"text too short for one batch: {len(ids)} training characters, but batch "
                        f"size {batch_size} × sequence length {seq_len} needs at least "
                        f"{batch_size * seq_len + 1}")
    span = steps * seq_len
    stream_len = (len(ids) - 1) // batch_size
    starts = np.arange(batch_size) * stream_len
    idx = starts[:, None] + np.arange(span + 1)[None, :]         # (B, span + 1)
    streams = ids[idx]
    x = streams[:, :-1].reshape(batch_size, steps, seq_len).transpose(1, 2, 0)
    y = streams[:, 1:].reshape(batch_size, steps, seq_len).transpose(1, 2, 0)
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def text_fingerprint(text):
    """A short hash of a text: a resumed run checks it is given the same text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
