"""Synthetic sequence tasks, each drawn from an ``np.random.Generator``.

- ``detector_stream``: random letters with a target word inserted at random (the
  course's sequence detector); labels are 1 exactly at the last letter of every
  occurrence of the word.
- ``adding_problem``: Hochreiter & Schmidhuber (1997)'s adding problem in its common
  modern form (Le et al. 2015): x_t = (value ~ U(0, 1), marker); exactly two markers,
  one in each half of the sequence; the target is the sum of the two marked values.
- ``temporal_order``: H&S (1997) experiment 6a: distractor symbols a, b, c, d and two
  relevant symbols, each X or Y, at positions drawn from [0.1T, 0.2T) and [0.5T, 0.6T)
  (the paper's 10–20 and 50–60 for T = 100); classes XX, XY, YX, YY.
"""
from __future__ import annotations

import string

import numpy as np
from ..errors import ConfigError


def detector_stream(rng, length, word, insert_prob=0.02):
    """Returns (letters: str of length ``length``, labels: float array (length,))."""
    if not word or not word.isalpha() or not word.islower():
        raise ConfigError(f"word must be lowercase letters, got {word!r}")
    if length < len(word):
        raise ConfigError("the stream must be at least as long as the word")
    letters = np.array(list(string.ascii_lowercase))
    chars = list(letters[rng.integers(0, 26, size=length)])
    i = 0
    while i <= length - len(word):
        if rng.random() < insert_prob:
            chars[i:i + len(word)] = list(word)
            i += len(word)
        else:
            i += 1
    text = "".join(chars)
    labels = np.zeros(length)
    start = text.find(word)
    while start != -1:
        labels[start + len(word) - 1] = 1.0
        start = text.find(word, start + 1)
    return text, labels


def detector_inputs(text, word):
    """One-hot over the word's distinct letters (sorted); any other letter is all zeros.
    Returns (len(text), n_letters) float array."""
    letters = sorted(set(word))
    index = {c: i for i, c in enumerate(letters)}
    x = np.zeros((len(text), len(letters)))
    for t, c in enumerate(text):
        j = index.get(c)
        if j is not None:
            x[t, j] = 1.0
    return x


def adding_problem(rng, n, length):
    """x (n, T, 2), y (n, 1)."""
    if length < 2:
        raise ConfigError("length must be at least 2 for the adding problem")
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=2)
    y = (values[np.arange(n), first] + values[np.arange(n), second])[:, None]
    return x, y


def temporal_order(rng, n, length):
    """x (n, T, 6) one-hot symbols, y (n,) class ids in 0..3.

    Symbols 0–3 (a, b, c, d) are distractors; X (4) or Y (5) sits at one step in
    [0.1T, 0.2T) and one in [0.5T, 0.6T); the class is their order, 2·first + second:
    XX, XY, YX, YY = 0, 1, 2, 3."""
    if length < 10:
        raise ConfigError("length must be at least 10 for the temporal-order problem")
    sym = rng.integers(0, 4, size=(n, length))
    lo1, hi1 = int(0.1 * length), max(int(0.2 * length), int(0.1 * length) + 1)
    lo2, hi2 = int(0.5 * length), max(int(0.6 * length), int(0.5 * length) + 1)
    t1 = rng.integers(lo1, hi1, size=n)
    t2 = rng.integers(lo2, hi2, size=n)
    first = rng.integers(0, 2, size=n)
    second = rng.integers(0, 2, size=n)
    sym[np.arange(n), t1] = 4 + first
    sym[np.arange(n), t2] = 4 + second
    x = np.eye(6)[sym]
    return x, 2 * first + second
