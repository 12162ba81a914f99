"""Test-wide settings: floating-point errors raise (underflow to zero is correct
arithmetic, so it is the one exception), warnings are errors (pyproject.toml)."""
import numpy as np
import pytest

np.seterr(all="raise", under="ignore")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
