"""Shared test helpers: torch references after a weight copy."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch (the test extra) is needed for reference checks")


def relerr(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-300)
    return float(np.abs(a - b).max(initial=0) / scale)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, np.float64), dtype=torch.float64, requires_grad=grad)


def torch_module(mode, layer):
    """The torch.nn twin of an rnnlab recurrent layer, weights copied in (float64)."""
    cls = getattr(torch.nn, mode)
    kw = dict(num_layers=layer.num_layers, bias=layer.bias, batch_first=True,
              bidirectional=layer.bidirectional, dtype=torch.float64)
    if mode == "RNN":
        kw["nonlinearity"] = layer.nonlinearity
    m = cls(layer.input_size, layer.hidden_size, **kw)
    m.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    return m
