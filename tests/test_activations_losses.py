import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from rnnlab import activations as A
from rnnlab import losses as L
from helpers import relerr, t64, torch

shapes = st.tuples(st.integers(1, 5), st.integers(1, 7))


def numdiff_elementwise(f, x, eps=1e-6):
    return (f(x + eps) - f(x - eps)) / (2 * eps)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu"])
@given(shape=shapes, seed=st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_activation_derivative_matches_finite_differences(name, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    if name == "relu":
        x[np.abs(x) < 1e-3] = 0.5        # keep away from the kink
    f = getattr(A, name)
    g = getattr(A, name + "_grad")(x)
    assert relerr(g, numdiff_elementwise(f, x)) < 1e-6
    y = f(x)
    assert np.allclose(getattr(A, name + "_grad_from_output")(y), g, rtol=1e-12, atol=1e-15)


def test_sigmoid_is_stable_and_correct_for_large_inputs():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    y = A.sigmoid(x)
    assert np.all(np.isfinite(y))
    assert relerr(y, 1 / (1 + np.exp(-np.clip(x, -700, 700)))) < 1e-12


@given(shape=shapes, seed=st.integers(0, 10_000))
@settings(max_examples=20, deadline=None)
def test_softmax_backward_matches_finite_differences(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape)
    y = A.softmax(x)
    assert np.allclose(y.sum(-1), 1.0)
    analytic = A.softmax_backward(y, w)
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = 1e-6
        num[idx] = ((A.softmax(x + e) * w).sum() - (A.softmax(x - e) * w).sum()) / 2e-6
    assert relerr(analytic, num) < 1e-6


def test_softmax_does_not_overflow():
    y = A.softmax(np.array([[1000.0, 1001.0, 999.0]]))
    assert np.all(np.isfinite(y)) and np.isclose(y.sum(), 1.0)


def _loss_numgrad(fn, x, *rest, eps=1e-6):
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (fn(xp, *rest)[0] - fn(xm, *rest)[0]) / (2 * eps)
    return num


@given(shape=shapes, seed=st.integers(0, 10_000))
@settings(max_examples=15, deadline=None)
def test_loss_gradients_match_finite_differences(shape, seed):
    rng = np.random.default_rng(seed)
    y, d = rng.standard_normal(shape), rng.standard_normal(shape)
    assert relerr(L.mse(y, d)[1], _loss_numgrad(L.mse, y, d)) < 1e-6
    logits = rng.standard_normal(shape) * 2
    targets = rng.integers(0, shape[-1], size=shape[:-1])
    assert relerr(L.softmax_cross_entropy(logits, targets)[1],
                  _loss_numgrad(L.softmax_cross_entropy, logits, targets)) < 1e-6
    probs = rng.random(shape)
    assert relerr(L.bce_with_logits(logits, probs)[1], _loss_numgrad(L.bce_with_logits, logits, probs)) < 1e-6


def test_mse_is_the_course_half_squared_error():
    loss, grad = L.mse(np.array([[0.8]]), np.array([[1.0]]))
    assert loss == pytest.approx(0.5 * 0.2 ** 2)
    assert grad[0, 0] == pytest.approx(-0.2)
    # summed over outputs, averaged over the batch
    y, d = np.array([[1.0, 2.0], [0.0, 0.0]]), np.zeros((2, 2))
    assert L.mse(y, d)[0] == pytest.approx((0.5 * 5 + 0) / 2)


def test_losses_equal_torch(rng):
    logits = rng.standard_normal((4, 6, 9)) * 3
    targets = rng.integers(0, 9, size=(4, 6))
    tl = t64(logits, grad=True)
    ref = torch.nn.functional.cross_entropy(tl.reshape(-1, 9), torch.tensor(targets.reshape(-1)))
    ref.backward()
    loss, grad = L.softmax_cross_entropy(logits, targets)
    assert relerr(loss, ref.item()) < 1e-12 and relerr(grad, tl.grad.numpy()) < 1e-12

    z, d = rng.standard_normal((5, 3)) * 10, rng.random((5, 3))
    tz = t64(z, grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(tz, t64(d))
    ref.backward()
    loss, grad = L.bce_with_logits(z, d)
    assert relerr(loss, ref.item()) < 1e-12 and relerr(grad, tz.grad.numpy()) < 1e-12


def test_cross_entropy_is_stable_for_huge_logits():
    loss, grad = L.softmax_cross_entropy(np.array([[1e4, 0.0, -1e4]]), np.array([2]))
    assert loss == pytest.approx(2e4) and np.all(np.isfinite(grad))


def test_loss_shape_errors_are_clear():
    with pytest.raises(ValueError, match="shape"):
        L.mse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="targets"):
        L.softmax_cross_entropy(np.zeros((2, 3)), np.zeros((3,), int))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        L.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
