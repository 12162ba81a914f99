import io
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import rnnlab
from rnnlab import Dropout, Linear, ReLU, Sequential, Sigmoid, Tanh, gradcheck, summary
from rnnlab.errors import ConfigError
from rnnlab.models.seq import SeqNet
from helpers import relerr, t64, torch


@given(b=st.integers(1, 4), fin=st.integers(1, 6), fout=st.integers(1, 6), seed=st.integers(0, 999))
@settings(max_examples=15, deadline=None)
def test_linear_gradcheck(b, fin, fout, seed):
    layer = Linear(fin, fout, dtype=np.float64, seed=seed)
    x = np.random.default_rng(seed).standard_normal((b, 3, fin))
    errors = gradcheck(layer, (x,))
    assert max(errors.values()) < 1e-6, errors


def test_linear_equals_torch(rng):
    layer = Linear(7, 4, dtype=np.float64, seed=3)
    ref = torch.nn.Linear(7, 4, dtype=torch.float64)
    ref.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    x, dy = rng.standard_normal((5, 7)), rng.standard_normal((5, 4))
    xt = t64(x, grad=True)
    yt = ref(xt)
    (yt * t64(dy)).sum().backward()
    y = layer.forward(x)
    dx = layer.backward(dy)
    assert relerr(y, yt.detach().numpy()) < 1e-9
    assert relerr(dx, xt.grad.numpy()) < 1e-9
    assert relerr(layer.grads["weight"], ref.weight.grad.numpy()) < 1e-9
    assert relerr(layer.grads["bias"], ref.bias.grad.numpy()) < 1e-9


def test_backward_accumulates(rng):
    layer = Linear(3, 2, dtype=np.float64, seed=0)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dy)
    once = layer.grads["weight"].copy()
    layer.forward(x)
    layer.backward(dy)
    assert np.allclose(layer.grads["weight"], 2 * once)
    layer.zero_grad()
    assert not layer.grads["weight"].any()


@pytest.mark.parametrize("act", [Tanh, Sigmoid, ReLU])
def test_sequential_mlp_gradcheck(act, rng):
    net = Sequential(Linear(3, 5, dtype=np.float64, seed=1), act(), Linear(5, 2, dtype=np.float64, seed=2))
    x = rng.standard_normal((4, 3)) + 0.01
    errors = gradcheck(net, (x,))
    assert max(errors.values()) < 1e-6, errors
    assert set(net.params) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_dropout_train_and_eval(rng):
    d = Dropout(0.4, seed=0)
    x = np.ones((200, 50))
    y = d.forward(x)
    kept = y != 0
    assert 0.55 < kept.mean() < 0.65                        # keep probability 1 − p
    assert np.allclose(y[kept], 1 / 0.6)                     # inverted scaling
    dy = rng.standard_normal(x.shape)
    assert np.array_equal(d.backward(dy), dy * y)            # same mask in backward
    d.eval()
    assert np.array_equal(d.forward(x), x)
    assert np.array_equal(Dropout(0.4, seed=7).forward(x), Dropout(0.4, seed=7).forward(x))
    with pytest.raises(ValueError, match="p must be"):
        Dropout(1.0)


def test_summary_counts_the_course_quiz_network():
    M, N = 7, 5
    net = Sequential(Linear(1, M, bias=False), Tanh(), Linear(M, N, bias=False), Tanh(), Linear(N, 1, bias=False))
    info = summary(net, file=io.StringIO())
    assert info["mults"] == M + M * N + N
    assert info["params"] == M + M * N + N
    rnn = rnnlab.RNN(3, 4)
    assert summary(rnn, seq_len=10, file=io.StringIO())["mults"] == 10 * (4 * 3 + 4 * 4)


def test_linear_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        Linear(3, 2).forward(np.zeros((2, 4)))


def test_gradcheck_catches_a_wrong_gradient(rng):
    class Broken(Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["bias"] *= 1.01        # a 1% error
            return dx

    errors = gradcheck(Broken(3, 2, dtype=np.float64, seed=0), (rng.standard_normal((2, 3)),))
    assert errors["bias"] > 1e-3 and errors["weight"] < 1e-6


def test_softmax_layer_gradcheck_and_torch(rng):
    x = rng.standard_normal((3, 4, 5))
    errors = gradcheck(rnnlab.Softmax(), (x,))
    assert max(errors.values()) < 1e-7, errors
    dy = rng.standard_normal(x.shape)
    layer = rnnlab.Softmax()
    y = layer.forward(x)
    dx = layer.backward(dy)
    xt = t64(x, grad=True)
    yt = torch.softmax(xt, dim=-1)
    yt.backward(t64(dy))
    assert relerr(y, yt.detach().numpy()) < 1e-12
    assert relerr(dx, xt.grad.numpy()) < 1e-12


def test_embedding_gradient_by_finite_differences_and_torch(rng):
    emb = rnnlab.Embedding(7, 3, dtype=np.float64, seed=2)
    ids = rng.integers(0, 7, size=(4, 5))
    ids[0, :2] = 6                      # a repeated id: its rows' gradients add up
    w = rng.standard_normal((4, 5, 3))
    emb.zero_grad()
    emb.forward(ids)
    emb.backward(w)
    W, eps = emb.params["weight"], 1e-6
    num = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        old = W[idx]
        W[idx] = old + eps
        plus = float((emb.forward(ids) * w).sum())
        W[idx] = old - eps
        minus = float((emb.forward(ids) * w).sum())
        W[idx] = old
        num[idx] = (plus - minus) / (2 * eps)
    assert relerr(emb.grads["weight"], num) < 1e-8
    ref = torch.nn.Embedding(7, 3, dtype=torch.float64)
    ref.load_state_dict({"weight": torch.tensor(W)})
    out = ref(torch.tensor(ids))
    out.backward(t64(w))
    assert relerr(emb.forward(ids), out.detach().numpy()) < 1e-15
    assert relerr(emb.grads["weight"], ref.weight.grad.numpy()) < 1e-12



def _entry_points():
    """{name: (what the error names, a call with one input replaced by ``bad``)}: every
    public forward/backward and loss that takes a user's array, fed through that argument."""
    def ran(layer, x):
        layer.forward(x)
        return layer
    rnn = lambda: rnnlab.GRU(3, 4, dtype=np.float64)            # noqa: E731
    jordan = lambda: rnnlab.JordanRNN(3, 4, 2, dtype=np.float64)  # noqa: E731
    x3 = np.zeros((2, 5, 3))
    return {
        "Linear": ("Linear", lambda bad: Linear(3, 2).forward(bad)),
        "Linear.backward": ("Linear.backward", lambda bad: ran(Linear(3, 2), np.zeros((2, 3))).backward(bad)),
        "Tanh": ("Tanh", lambda bad: Tanh().forward(bad)),
        "Tanh.backward": ("Tanh.backward", lambda bad: ran(Tanh(), np.zeros(3)).backward(bad)),
        "Softmax": ("Softmax", lambda bad: rnnlab.Softmax().forward(bad)),
        "Dropout": ("Dropout", lambda bad: Dropout(0.5, seed=0).forward(bad)),
        "Embedding": ("Embedding", lambda bad: rnnlab.Embedding(4, 2).forward(bad)),
        "Embedding.backward": ("Embedding.backward",
                               lambda bad: ran(rnnlab.Embedding(4, 2), np.array([1, 2])).backward(bad)),
        "GRU": ("GRU", lambda bad: rnn().forward(bad)),
        "GRU state": ("h0", lambda bad: rnn().forward(x3, bad)),
        "GRU.backward": ("GRU.backward", lambda bad: ran(rnn(), x3).backward(bad)),
        "GRUCell": ("GRUCell", lambda bad: rnnlab.GRUCell(3, 4).forward(bad)),
        "JordanRNN": ("JordanRNN", lambda bad: jordan().forward(bad)),
        "JordanRNN state": ("JordanRNN state", lambda bad: jordan().forward(x3, bad)),
        "SeqNet": ("SeqNet", lambda bad: SeqNet("gru", 3, 4, 2).forward(bad)),
        "mse": ("mse", lambda bad: rnnlab.mse(bad, np.zeros(3))),
        "mse target": ("mse target", lambda bad: rnnlab.mse(np.zeros(3), bad)),
        "softmax_cross_entropy": ("softmax_cross_entropy",
                                  lambda bad: rnnlab.softmax_cross_entropy(bad, np.zeros(3, int))),
        "bce_with_logits targets": ("bce_with_logits targets",
                                    lambda bad: rnnlab.bce_with_logits(np.zeros(3), bad)),
    }


@pytest.mark.parametrize("bad", [np.array(["a", "b", "c"]), np.array([1 + 2j, 0, 0]),
                                 np.array([1, None, 2], dtype=object), [[1.0, 2.0], [3.0]]],
                         ids=["strings", "complex", "objects", "ragged"])
@pytest.mark.parametrize("entry", list(_entry_points()))
def test_arrays_that_are_not_real_numbers_are_refused_by_name(entry, bad):
    """Strings, complex numbers, objects and ragged lists: a ConfigError naming the entry
    point — not NumPy's own error, and never an imaginary part dropped with a warning."""
    named, call = _entry_points()[entry]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # a ComplexWarning would fail here
        with pytest.raises(ConfigError, match=rf"^{re.escape(named)}: expected"):
            call(bad)


@pytest.mark.parametrize("module", [Linear(3, 2), Tanh(), Sigmoid(), rnnlab.Softmax(), rnnlab.Embedding(4, 2),
                                    rnnlab.GRU(3, 4), rnnlab.JordanRNN(3, 4, 2)],
                         ids=lambda m: type(m).__name__)
def test_backward_before_forward_says_so(module):
    with pytest.raises(RuntimeError, match=rf"^{type(module).__name__}\.backward called before forward"):
        module.backward(np.zeros((2, 2)))
