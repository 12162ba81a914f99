"""Test-wide settings: floating-point errors raise (underflow to zero is correct
arithmetic, so it is the one exception), warnings are errors (pyproject.toml)."""
import numpy as np
import pytest
from hypothesis import settings

np.seterr(all="raise", under="ignore")

# Hypothesis draws the same examples on every run: CI is reproducible, and a failure
# seen once is seen again.
settings.register_profile("rnnlab", derandomize=True, deadline=None)
settings.load_profile("rnnlab")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_terminal_summary(terminalreporter):
    """Which kernels were tested, and the worst relative errors the torch and
    finite-difference checks measured (test_recurrent_torch: per layer type against
    torch.nn; test_regularisation: per regulariser check)."""
    import sys
    from rnnlab import kernels as fused
    terminalreporter.write_line("rnnlab LSTM/GRU kernels: " + (
        "compiled (rnnlab._gates) and NumPy both tested" if fused.available()
        else "NumPy only — the optional compiled extension was not built"))
    for module, what in (("test_recurrent_torch", "vs torch.nn"), ("test_regularisation", "of the regularisers")):
        worst = getattr(sys.modules.get(module), "WORST", None)
        if worst:
            terminalreporter.write_line(f"worst relative error {what}: "
                                        + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items())))
