"""Kernels: the step math of each cell type, one implementation per backend.

    base.py       the kernel contract, gate scaling, the NumPy time loops
    elman.py      ElmanKernel   h_t = φ(gx_t + gh_t)
    lstm.py       LSTMKernel    gates i, f, g, o
    gru.py        GRUKernel     gates r, z, n
    compiled.py   the LSTM/GRU twins whose elementwise step is one C call (rnnlab/_gates.c)

``make_kernel(mode, nonlinearity)`` builds the NumPy kernel of a cell type;
``select(kernel, dtype)`` returns the kernel to run it with (its compiled twin where
built and enabled). ``set_compiled(False)`` or ``RNNLAB_PURE_NUMPY=1`` keeps NumPy.
``decayed_step`` is dynamic evaluation's per-segment update in one compiled pass.
"""
from ..errors import ConfigError
from .base import Kernel
from .compiled import available, compiled_active, decayed_step, select, set_compiled
from .elman import ElmanKernel
from .gru import GRUKernel
from .lstm import LSTMKernel

MODES = {"RNN": ElmanKernel, "LSTM": LSTMKernel, "GRU": GRUKernel}


def make_kernel(mode, nonlinearity="tanh"):
    """The NumPy kernel of ``mode`` ("RNN", "LSTM" or "GRU")."""
    if mode == "RNN":
        return ElmanKernel(nonlinearity)
    if mode in MODES:
        return MODES[mode]()
    raise ConfigError(f"mode must be one of {sorted(MODES)}, got {mode!r}")


__all__ = ["Kernel", "ElmanKernel", "LSTMKernel", "GRUKernel", "make_kernel", "select",
           "available", "compiled_active", "set_compiled", "decayed_step"]
