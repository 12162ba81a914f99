"""Numeric series for forecasting: the bundled real series, CSV columns, missing-value
policies, scaling fitted on the training part only, and sliding windows.

Bundled (see series/README.md for sources): ``sunspots`` (yearly, 1700–2008) and
``co2`` (weekly Mauna Loa CO2, 1958–2001, with 59 missing weeks).
"""
from __future__ import annotations

import csv
import io
import os

import numpy as np

from ..errors import DataError
from .text import read_text

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "series")
BUNDLED = {"sunspots": ("sunspots.csv", "SUNACTIVITY"), "co2": ("co2.csv", "co2")}
FILL_POLICIES = ("none", "ffill", "interpolate", "drop")
MAX_ABS = 1e100       # larger values overflow the squared errors the models train on


def load_series(name):
    """One of the bundled series as float64 values (NaN where a reading is missing)."""
    if name not in BUNDLED:
        raise DataError(f"unknown series {name!r}; choose one of {sorted(BUNDLED)}")
    fname, column = BUNDLED[name]
    return read_csv_column(os.path.join(HERE, fname), column)


def read_csv_column(path, column, encoding="utf-8"):
    """A numeric CSV column; empty fields (and NA, NaN in any case) are missing values
    (NaN). Anything else that is not a number written in ASCII digits (no "1_000") is an
    error naming the row, as is a column name given twice."""
    text = read_text(path, encoding)  # read whole, within the memory cap: /dev/zero has no lines
    text = text[1:] if text.startswith("\ufeff") else text        # a BOM (Excel's "CSV UTF-8")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if not reader.fieldnames:
            raise DataError(f"{path}: empty CSV file")
        reader.fieldnames = [f.strip() for f in reader.fieldnames]          # "a, b" names b
        if column not in reader.fieldnames:
            raise DataError(f"{path}: no column {column!r}; columns are {reader.fieldnames}")
        if reader.fieldnames.count(column) > 1:           # DictReader would keep the last, silently
            raise DataError(f"{path}: {reader.fieldnames.count(column)} columns are named {column!r}")
        values = []
        for row_no, row in enumerate(reader, start=2):
            cell = (row.get(column) or "").strip()
            if cell.upper() in ("", "NA", "NAN", "-NAN", "+NAN"):          # any spelling of not-a-number
                values.append(np.nan)
                continue
            try:
                if not cell.isascii() or "_" in cell:       # float() takes "1_000" and other scripts' digits
                    raise ValueError
                v = float(cell)
            except ValueError:
                raise DataError(f"{path}: row {row_no}, column {column!r}: {cell!r} is not a number") from None
            if not abs(v) <= MAX_ABS:
                raise DataError(f"{path}: row {row_no}, column {column!r}: {cell!r} is not a finite "
                                f"number of magnitude at most {MAX_ABS:g}")
            values.append(v)
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    if not values:
        raise DataError(f"{path}: column {column!r} has no rows")
    out = np.array(values, dtype=np.float64)
    if np.isinf(out).any():
        raise DataError(f"{path}: column {column!r} holds infinite values")
    return out


def fill_missing(values, policy="none"):
    """Apply a missing-value policy: none (error if any is missing), ffill (carry the last
    reading forward; a leading gap is an error), interpolate (linear between neighbours;
    ends take the nearest reading), drop (remove them)."""
    if policy not in FILL_POLICIES:
        raise DataError(f"fill must be one of {FILL_POLICIES}, got {policy!r}")
    values = np.asarray(values, np.float64)
    missing = np.isnan(values)
    if not missing.any():
        return values
    if policy == "none":
        first = int(np.flatnonzero(missing)[0])
        raise DataError(f"the series has {int(missing.sum())} missing value(s) (first at position {first}); "
                        f"choose a policy with fill=ffill|interpolate|drop")
    if missing.all():
        raise DataError("the series has no values at all")
    if policy == "drop":
        return values[~missing]
    if policy == "ffill":
        if missing[0]:
            raise DataError("fill=ffill cannot fill a gap at the start of the series; use fill=interpolate or fill=drop")
        idx = np.where(~missing, np.arange(values.size), 0)
        np.maximum.accumulate(idx, out=idx)
        return values[idx]
    x = np.arange(values.size)
    return np.interp(x, x[~missing], values[~missing])


def window_count(size, window, horizon=1):
    """How many windows ``make_windows`` cuts from ``size`` values (nothing allocated);
    DataError when there is not even one."""
    for name, v in (("window", window), ("horizon", horizon)):
        if v < 1:
            raise DataError(f"{name} must be positive, got {v}")
    n = size - window - horizon + 1
    if n < 1:
        raise DataError(f"the series has {size} values; window={window} and horizon={horizon} "
                        f"need at least {window + horizon}")
    return n


def make_windows(values, window, horizon=1):
    """Sliding windows: X[i] = values[i : i+window], y[i] = values[i+window+horizon−1].
    Returns X (N, window), y (N,), target_index (N,)."""
    values = np.asarray(values, np.float64)
    n = window_count(values.size, window, horizon)
    idx = np.arange(n)[:, None] + np.arange(window)[None, :]
    target_index = np.arange(n) + window + horizon - 1
    return values[idx], values[target_index], target_index


class Scaler:
    """Standardisation with the mean and standard deviation of the training part only."""

    def __init__(self, train_values):
        train_values = np.asarray(train_values, np.float64)
        self.mean = float(train_values.mean())
        self.std = float(train_values.std()) or 1.0

    def transform(self, v):
        return (np.asarray(v, np.float64) - self.mean) / self.std

    def inverse(self, v):
        return np.asarray(v, np.float64) * self.std + self.mean
