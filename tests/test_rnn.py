"""The Elman RNN: finite differences, torch parity and truncated BPTT."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rnnlab import RNN, RNNCell, gradcheck
from helpers import relerr, t64, torch_module


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@given(B=st.integers(1, 3), T=st.integers(5, 7), F=st.integers(1, 4), H=st.integers(1, 4),
       seed=st.integers(0, 999))
@settings(max_examples=6, deadline=None)
def test_rnn_gradcheck_with_initial_state_and_final_state_gradient(nonlinearity, B, T, F, H, seed):
    rng = np.random.default_rng(seed)
    rnn = RNN(F, H, nonlinearity=nonlinearity, dtype=np.float64, seed=seed)
    x, h0 = rng.standard_normal((B, T, F)), rng.standard_normal((1, B, H))
    errors = gradcheck(rnn, (x, h0))          # weights both out and h_n
    assert set(errors) >= {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "input[0]", "input[1]"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("seed", range(4))
def test_rnn_equals_torch(nonlinearity, seed):
    rng = np.random.default_rng(seed)
    B, T, F, H = rng.integers(1, 5), rng.integers(1, 9), rng.integers(1, 6), rng.integers(1, 7)
    rnn = RNN(F, H, nonlinearity=nonlinearity, dtype=np.float64, seed=seed)
    ref = torch_module("RNN", rnn)
    x, h0 = rng.standard_normal((B, T, F)), rng.standard_normal((1, B, H))
    dout, dhn = rng.standard_normal((B, T, H)), rng.standard_normal((1, B, H))
    xt, h0t = t64(x, True), t64(h0, True)
    out_t, hn_t = ref(xt, h0t)
    ((out_t * t64(dout)).sum() + (hn_t * t64(dhn)).sum()).backward()
    out, hn = rnn.forward(x, h0)
    dx, dh0 = rnn.backward(dout, dhn)
    assert relerr(out, out_t.detach().numpy()) < 1e-9
    assert relerr(hn, hn_t.detach().numpy()) < 1e-9
    assert relerr(dx, xt.grad.numpy()) < 1e-9
    assert relerr(dh0, h0t.grad.numpy()) < 1e-9
    for k, p in ref.named_parameters():
        assert relerr(rnn.grads[k], p.grad.numpy()) < 1e-9, k


def _cell_loop_grads(rnn, x, h0, dout, cut_every=None):
    """Reference BPTT with the step-by-step cell (an independent path through the math).
    With cut_every=k the state gradient is cut at every k-step window boundary."""
    cell = RNNCell(rnn.input_size, rnn.hidden_size, nonlinearity=rnn.nonlinearity, dtype=np.float64)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in rnn.params.items()})
    T = x.shape[1]
    h, caches, outs = h0[0], [], []
    for t in range(T):
        h, cache = cell.step(x[:, t], h)
        caches.append(cache)
        outs.append(h)
    dh = np.zeros_like(h)
    for t in reversed(range(T)):
        if cut_every and (t + 1) % cut_every == 0:
            dh = np.zeros_like(dh)
        _, dh = cell.backward_step(dh + dout[:, t], caches[t])
    return np.stack(outs, 1), {k + "_l0": v for k, v in cell.grads.items()}


def test_truncated_bptt_equals_one_long_pass(rng):
    B, T, F, H, k = 2, 12, 3, 5, 4
    rnn = RNN(F, H, dtype=np.float64, seed=1)
    x, h0 = rng.standard_normal((B, T, F)), rng.standard_normal((1, B, H))
    dout = rng.standard_normal((B, T, H))
    long_out, long_hn = rnn.forward(x, h0)

    # k windows with the state carried (the min-char-rnn hprev pattern)
    rnn.zero_grad()
    h, outs = h0, []
    for s in range(0, T, k):
        out, h = rnn.forward(x[:, s:s + k], h)
        rnn.backward(dout[:, s:s + k])
        outs.append(out)
    assert relerr(np.concatenate(outs, 1), long_out) < 1e-12
    assert relerr(h, long_hn) < 1e-12

    # the summed window gradients = the long pass's gradient with the state gradient cut
    ref_out, cut_grads = _cell_loop_grads(rnn, x, h0, dout, cut_every=k)
    assert relerr(ref_out, long_out) < 1e-12
    for name, g in cut_grads.items():
        assert relerr(rnn.grads[name], g) < 1e-10, name
    # and without the cut it is full BPTT, which differs
    rnn.zero_grad()
    rnn.forward(x, h0)
    rnn.backward(dout)
    _, full = _cell_loop_grads(rnn, x, h0, dout)
    for name, g in full.items():
        assert relerr(rnn.grads[name], g) < 1e-10, name
    assert relerr(full["weight_hh_l0"], cut_grads["weight_hh_l0"]) > 1e-3


def test_rnn_default_dtype_is_float32_and_seed_is_reproducible(rng):
    a, b = RNN(3, 4, seed=5), RNN(3, 4, seed=5)
    assert a.params["weight_hh_l0"].dtype == np.float32
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    assert np.array_equal(a.forward(x)[0], b.forward(x)[0])
    bound = 1 / np.sqrt(4)
    assert np.abs(a.params["weight_ih_l0"]).max() <= bound


def test_rnn_shape_errors_are_clear():
    rnn = RNN(3, 4)
    with pytest.raises(ValueError, match=r"expected input \(B, T, 3\)"):
        rnn.forward(np.zeros((2, 5, 4)))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 2, 4\)"):
        rnn.forward(np.zeros((2, 5, 3)), np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(RuntimeError, match="before forward"):
        RNN(3, 4).backward(np.zeros((2, 5, 4)))
    rnn.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="dout must have shape"):
        rnn.backward(np.zeros((2, 4, 4)))


def test_integer_ids_equal_one_hot_inputs(rng):
    V, H = 7, 5
    rnn = RNN(V, H, dtype=np.float64, seed=0)
    ids = rng.integers(0, V, size=(3, 6))
    onehot = np.eye(V)[ids]
    dout = rng.standard_normal((3, 6, H))
    out_ids, _ = rnn.forward(ids)
    rnn.backward(dout)
    g_ids = {k: v.copy() for k, v in rnn.grads.items()}
    rnn.zero_grad()
    out_oh, _ = rnn.forward(onehot)
    rnn.backward(dout)
    assert relerr(out_ids, out_oh) < 1e-12
    for k in g_ids:
        assert relerr(g_ids[k], rnn.grads[k]) < 1e-12, k
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        rnn.forward(np.array([[7]]))
