"""The layer contract shared by every rnnlab layer.

    layer.params            dict[str, np.ndarray]   (PyTorch's names and shapes)
    layer.grads             same keys and shapes; backward ACCUMULATES (+=)
    layer.zero_grad()
    y  = layer.forward(x)   caches what backward needs
    dx = layer.backward(dy) adds into layer.grads, returns dL/dx

Optimizers update ``params`` in place, so a container (``Sequential``, a model)
may expose its children's arrays under prefixed keys ("0.weight") without
copying them.
"""
from __future__ import annotations

import numpy as np


class Module:
    """Base class: parameter/gradient dicts, train/eval mode, state_dict I/O."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    # -- parameters -----------------------------------------------------------
    def _add_param(self, name, value):
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)

    def children(self):
        return []

    def zero_grad(self):
        for g in self.grads.values():
            g.fill(0)

    def num_parameters(self):
        return int(sum(p.size for p in self.params.values()))

    def multiplications(self, seq_len=1):
        """Weight multiplications (multiply-adds) in one forward pass of one example."""
        return 0

    # -- modes ------------------------------------------------------------------
    def train(self, mode=True):
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # -- weights in and out -----------------------------------------------------
    def state_dict(self):
        """Copies of the parameters under PyTorch's keys."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        """Copy arrays in, key by key. Keys and shapes must match exactly; any floating
        dtype is accepted and cast to the layer's dtype (as torch does); anything else
        raises ValueError naming the key."""
        missing = [k for k in self.params if k not in state]
        extra = [k for k in state if k not in self.params]
        if missing:
            raise ValueError(f"load_state_dict: missing key(s) {missing}")
        if extra:
            raise ValueError(f"load_state_dict: unexpected key(s) {extra}")
        for k, p in self.params.items():
            v = np.asarray(state[k])
            if v.shape != p.shape:
                raise ValueError(f"load_state_dict: key {k!r} has shape {v.shape}, expected {p.shape}")
            if not np.issubdtype(v.dtype, np.floating):
                raise ValueError(f"load_state_dict: key {k!r} has dtype {v.dtype}, expected a float array")
        for k, p in self.params.items():
            np.copyto(p, np.asarray(state[k]), casting="unsafe")
        return self

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def make_rng(seed):
    """A Generator from a seed, or the Generator itself if one is passed."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)
