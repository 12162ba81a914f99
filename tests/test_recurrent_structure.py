"""Finite differences and structural checks for every cell and layer."""
import numpy as np
import pytest

import rnnlab
from rnnlab import GRUCell, LSTMCell, RNNCell, gradcheck
from helpers import relerr
from fixed_masks import fixed_masks

MODES = ["RNN", "LSTM", "GRU"]
CELLS = {"RNN": RNNCell, "LSTM": LSTMCell, "GRU": GRUCell}


def _layer(mode, F, H, L=1, **kw):
    return getattr(rnnlab, mode)(F, H, L, dtype=np.float64, **kw)


def _random_state(mode, rng, shape):
    return (rng.standard_normal(shape), rng.standard_normal(shape)) if mode == "LSTM" else rng.standard_normal(shape)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("L,bidirectional", [(1, False), (2, True)])
def test_layer_gradcheck(mode, L, bidirectional, rng):
    layer = _layer(mode, 3, 3, L, bidirectional=bidirectional, seed=1)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((2, 5, 3))
    state = _random_state(mode, rng, (L * D, 2, 3))
    errors = gradcheck(layer, (x, state))
    assert max(errors.values()) < 1e-6, errors
    assert "input[0]" in errors and "input[1]" in errors


@pytest.mark.parametrize("mode", MODES)
def test_cell_gradcheck(mode, rng):
    cell = CELLS[mode](3, 4, dtype=np.float64, seed=2)
    x = rng.standard_normal((2, 3))
    state = _random_state(mode, rng, (2, 4))

    class OneStep:                    # adapt step/backward_step to the gradcheck contract
        params, grads = cell.params, cell.grads
        zero_grad = cell.zero_grad

        def forward(self, x, state):
            self.new, self.cache = cell.step(x, state)
            return self.new

        def backward(self, *dnew):
            return cell.backward_step(dnew if mode == "LSTM" else dnew[0], self.cache)

    errors = gradcheck(OneStep(), (x, state))
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("mode", MODES)
def test_layer_equals_its_cell_run_in_a_python_loop(mode, rng):
    B, T, F, H = 3, 7, 4, 5
    layer = _layer(mode, F, H, seed=3)
    cell = CELLS[mode](F, H, dtype=np.float64)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in layer.params.items()})
    x = rng.standard_normal((B, T, F))
    s0 = _random_state(mode, rng, (B, H))
    dout = rng.standard_normal((B, T, H))

    state, caches, outs = s0, [], []
    for t in range(T):
        state, cache = cell.step(x[:, t], state)
        caches.append(cache)
        outs.append(state[0] if mode == "LSTM" else state)
    dstate = (np.zeros((B, H)), np.zeros((B, H))) if mode == "LSTM" else np.zeros((B, H))
    dxs = [None] * T
    for t in reversed(range(T)):
        if mode == "LSTM":
            dstate = (dstate[0] + dout[:, t], dstate[1])
        else:
            dstate = dstate + dout[:, t]
        dxs[t], dstate = cell.backward_step(dstate, caches[t])

    layer_state = (s0[0][None], s0[1][None]) if mode == "LSTM" else s0[None]
    out, _ = layer.forward(x, layer_state)
    dx, dstate0 = layer.backward(dout)
    assert relerr(out, np.stack(outs, 1)) < 1e-12
    assert relerr(dx, np.stack(dxs, 1)) < 1e-12
    for k, g in cell.grads.items():
        assert relerr(layer.grads[k + "_l0"], g) < 1e-12, k
    if mode == "LSTM":
        assert relerr(dstate0[0][0], dstate[0]) < 1e-12 and relerr(dstate0[1][0], dstate[1]) < 1e-12
    else:
        assert relerr(dstate0[0], dstate) < 1e-12


@pytest.mark.parametrize("mode", MODES)
def test_reverse_direction_equals_forward_layer_on_time_reversed_input(mode, rng):
    B, T, F, H = 2, 6, 3, 4
    bi = _layer(mode, F, H, bidirectional=True, seed=4)
    fwd, rev = _layer(mode, F, H, seed=0), _layer(mode, F, H, seed=0)
    fwd.load_state_dict({k: v for k, v in bi.params.items() if not k.endswith("_reverse")})
    rev.load_state_dict({k[:-len("_reverse")]: v for k, v in bi.params.items() if k.endswith("_reverse")})
    x = rng.standard_normal((B, T, F))
    dout = rng.standard_normal((B, T, 2 * H))
    out, sn = bi.forward(x)
    dx = bi.backward(dout)[0]
    out_f, sn_f = fwd.forward(x)
    dx_f = fwd.backward(dout[:, :, :H])[0]
    out_r, sn_r = rev.forward(x[:, ::-1])
    dx_r = rev.backward(dout[:, ::-1, H:])[0]
    assert relerr(out, np.concatenate([out_f, out_r[:, ::-1]], axis=2)) < 1e-12
    assert relerr(dx, dx_f + dx_r[:, ::-1]) < 1e-12
    h_n = sn[0] if mode == "LSTM" else sn
    assert relerr(h_n[0], (sn_f[0] if mode == "LSTM" else sn_f)[0]) < 1e-12
    assert relerr(h_n[1], (sn_r[0] if mode == "LSTM" else sn_r)[0]) < 1e-12
    for k, g in rev.grads.items():
        assert relerr(bi.grads[k + "_reverse"], g) < 1e-12


@pytest.mark.parametrize("mode", MODES)
def test_truncated_bptt_with_carried_state_equals_one_long_pass(mode, rng):
    B, T, F, H, L, k = 2, 12, 3, 4, 2, 5          # windows of 5, 5, 2
    layer = _layer(mode, F, H, L, seed=6)
    x = rng.standard_normal((B, T, F))
    state0 = _random_state(mode, rng, (L, B, H))
    long_out, long_state = layer.forward(x, state0)
    state, outs = state0, []
    for s in range(0, T, k):
        out, state = layer.forward(x[:, s:s + k], state)      # LSTM carries (h, c)
        outs.append(out)
    assert relerr(np.concatenate(outs, 1), long_out) < 1e-12
    for a, b in zip(state if mode == "LSTM" else [state], long_state if mode == "LSTM" else [long_state]):
        assert relerr(a, b) < 1e-12


def test_dropout_between_layers(rng):
    x = rng.standard_normal((4, 6, 3))
    a = rnnlab.LSTM(3, 8, 3, dropout=0.5, dtype=np.float64, seed=1)
    b = rnnlab.LSTM(3, 8, 3, dropout=0.5, dtype=np.float64, seed=1)
    plain = rnnlab.LSTM(3, 8, 3, dtype=np.float64, seed=1)
    out_a, out_b = a.forward(x)[0], b.forward(x)[0]
    assert np.array_equal(out_a, out_b)                        # reproducible under the seed
    assert not np.allclose(out_a, plain.forward(x)[0])         # dropout acts in training
    assert not np.allclose(out_a, a.forward(x)[0])             # fresh mask each call
    a.eval()
    assert np.array_equal(a.forward(x)[0], plain.forward(x)[0])   # identity in eval mode
    # not after the last layer: a one-layer stack ignores dropout entirely (and says so, as torch does)
    with pytest.warns(UserWarning, match="changes nothing"):
        one = rnnlab.GRU(3, 8, 1, dropout=0.5, dtype=np.float64, seed=2)
    one_plain = rnnlab.GRU(3, 8, 1, dtype=np.float64, seed=2)
    assert np.array_equal(one.forward(x)[0], one_plain.forward(x)[0])


@pytest.mark.parametrize("mode", MODES)
def test_dropout_gradients_with_a_fixed_mask(mode, rng):
    layer = _layer(mode, 3, 3, 2, dropout=0.3, seed=5)
    errors = gradcheck(fixed_masks(layer), (rng.standard_normal((2, 4, 3)),))
    assert max(errors.values()) < 1e-6, errors


def test_train_eval_modes_and_errors():
    lstm = rnnlab.LSTM(3, 4, 2, dropout=0.2)
    assert lstm.eval() is lstm and not lstm.training
    assert lstm.train().training
    with pytest.raises(ValueError, match="dropout"):
        rnnlab.GRU(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match=r"state must be a tuple \(h0, c0\)"):
        lstm.forward(np.zeros((1, 2, 3)), np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match="batch-first"):
        rnnlab.RNN(3, 4, batch_first=False)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_jordan_rnn_gradcheck(nonlinearity, rng):
    net = rnnlab.JordanRNN(3, 4, 2, nonlinearity=nonlinearity, dtype=np.float64, seed=1)
    x, y0 = rng.standard_normal((2, 6, 3)), rng.standard_normal((1, 2, 2))
    errors = gradcheck(net, (x, y0))
    assert max(errors.values()) < 1e-6, errors


def test_jordan_rnn_feeds_back_the_output(rng):
    net = rnnlab.JordanRNN(2, 3, 1, dtype=np.float64, seed=0)
    x = rng.standard_normal((1, 4, 2))
    y, yT = net.forward(x)
    p = net.params
    prev = np.zeros(1)
    for t in range(4):
        h = np.tanh(p["weight_ih"] @ x[0, t] + p["bias_ih"] + p["weight_yh"] @ prev)
        prev = p["weight_ho"] @ h + p["bias_ho"]
        assert np.allclose(y[0, t], prev)
    assert np.allclose(yT[0, 0], prev)
