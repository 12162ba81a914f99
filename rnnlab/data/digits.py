"""scikit-learn's handwritten digits (1,797 images of 8×8 pixels, values 0–16), read
from the data file that ships inside the scikit-learn package (no import of sklearn,
no download). Install it with the ``tasks`` extra: pip install 'rnnlab[tasks]'."""
from __future__ import annotations

import gzip
import importlib.util
import os

import numpy as np

from ..errors import DataError


def load_digits():
    """Returns images (1797, 8, 8) float in [0, 1] and labels (1797,) int."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits task needs scikit-learn's bundled data: pip install 'rnnlab[tasks]'")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "digits.csv.gz")
    if not os.path.exists(path):
        raise DataError(f"scikit-learn is installed but {path} is missing")
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    images = data[:, :64].reshape(-1, 8, 8) / 16.0
    return images, data[:, 64].astype(np.int64)
