"""Small seeded training runs that must learn, and the course's worked example."""
import numpy as np

from rnnlab import SGD, Adam, Linear, Sequential, Sigmoid, Tanh, bce_with_logits, mse
from rnnlab.demo import train_echo


def test_course_worked_example_one_sgd_step_matches_hand_derivation():
    """Two inputs, three hidden neurons (sigmoid), one linear output, E = ½(d − y)².
    Backprop by hand, scalar by scalar:
        δ = y − d;  Δv_j = −η δ h_j;  Δc = −η δ
        δ_j = δ v_j h_j (1 − h_j);  Δw_ji = −η δ_j x_i;  Δb_j = −η δ_j
    """
    x, d, eta = np.array([0.5, -0.3]), 0.8, 0.5
    net = Sequential(Linear(2, 3, dtype=np.float64, seed=4), Sigmoid(), Linear(3, 1, dtype=np.float64, seed=5))
    W, b = net.params["0.weight"].copy(), net.params["0.bias"].copy()
    v, c = net.params["2.weight"][0].copy(), net.params["2.bias"][0]

    h = [1 / (1 + np.exp(-(W[j, 0] * x[0] + W[j, 1] * x[1] + b[j]))) for j in range(3)]
    y = sum(v[j] * h[j] for j in range(3)) + c
    delta = y - d
    dv = [-eta * delta * h[j] for j in range(3)]
    dW = [[-eta * delta * v[j] * h[j] * (1 - h[j]) * x[i] for i in range(2)] for j in range(3)]
    db = [-eta * delta * v[j] * h[j] * (1 - h[j]) for j in range(3)]

    out = net.forward(x[None])
    loss, dy = mse(out, np.array([[d]]))
    assert np.isclose(loss, 0.5 * (d - y) ** 2)
    net.zero_grad()
    net.backward(dy)
    SGD(lr=eta).step(net.params, net.grads)
    assert np.allclose(net.params["2.weight"][0] - v, dv, rtol=1e-12, atol=0)
    assert np.allclose(net.params["2.bias"][0] - c, -eta * delta, rtol=1e-12)
    assert np.allclose(net.params["0.weight"] - W, dW, rtol=1e-12, atol=1e-18)
    assert np.allclose(net.params["0.bias"] - b, db, rtol=1e-12, atol=1e-18)


def test_mlp_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    net = Sequential(Linear(2, 8, dtype=np.float64, seed=0), Tanh(), Linear(8, 1, dtype=np.float64, seed=1))
    opt = Adam(lr=0.05)
    for _ in range(500):
        logits = net.forward(X)
        loss, dlogits = bce_with_logits(logits, Y)
        net.zero_grad()
        net.backward(dlogits)
        opt.step(net.params, net.grads)
    assert np.array_equal(net.forward(X) > 0, Y > 0)
    assert loss < 0.05


def test_elman_rnn_learns_to_echo_with_delay_3():
    losses = train_echo(delay=3, hidden=16, iters=300, seed=0)
    # chance (predicting 0 for ±1 targets) is ½ · 17/20 ≈ 0.43
    assert losses[0] > 0.3
    assert np.mean(losses[-20:]) < 0.01
