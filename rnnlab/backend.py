"""The backend seam: where arrays live and which kernels run the time loop.

A backend is an array module plus kernels:

    backend.name      "cpu"
    backend.xp        the array module (NumPy; CuPy would be a GPU's)
    backend.select(kernel, dtype) -> the kernel to run (NumPy's, or a compiled twin)

Layers hold ``self.backend = get_backend(device)``: they create their arrays with
``backend.xp`` and ask it for kernels. ``scan`` allocates through the ``empty`` it is
given and computes with ufuncs (``np.matmul(..., out=)``), which dispatch on the array
type (NumPy's ``__array_ufunc__`` protocol, which CuPy implements), so one time loop
serves every backend. A second backend
(CUDA through CuPy) registers itself with ``register`` and supplies kernels with the
interface of ``kernels/base.py``; models and the trainer do not change. Only "cpu" is
built in. The trainer's ``grad_hook`` is the matching seam for data-parallel training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import ConfigError
from .kernels import select as cpu_select


@dataclass(frozen=True)
class Backend:
    name: str
    xp: Any                                   # the array module
    select: Callable                          # (kernel, dtype) -> kernel to run


_BACKENDS = {"cpu": Backend("cpu", np, cpu_select)}


def register(backend):
    """Make ``backend`` available as ``get_backend(backend.name)``."""
    _BACKENDS[backend.name] = backend
    return backend


def get_backend(device="cpu"):
    """The backend called ``device`` (ConfigError naming the choices otherwise)."""
    backend = _BACKENDS.get(device)
    if backend is None:
        raise ConfigError(f"device must be one of {sorted(_BACKENDS)}, got {device!r}")
    return backend

