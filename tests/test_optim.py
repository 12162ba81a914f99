import numpy as np
import pytest

from rnnlab import optim
from helpers import relerr, t64, torch


def _params(rng):
    return {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}


def _run_ours(opt, params, grad_seq):
    params = {k: v.copy() for k, v in params.items()}
    for grads in grad_seq:
        opt.step(params, grads)
    return params


def _run_torch(make, params, grad_seq):
    ts = {k: t64(v, True) for k, v in params.items()}
    opt = make(list(ts.values()))
    for grads in grad_seq:
        for k, t in ts.items():
            t.grad = t64(grads[k])
        opt.step()
    return {k: t.detach().numpy() for k, t in ts.items()}


CASES = [
    (lambda: optim.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda: optim.SGD(lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    (lambda: optim.Momentum(lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    (lambda: optim.Adagrad(lr=0.1, eps=1e-10, eps_inside=False),
     lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10)),
    (lambda: optim.RMSProp(lr=0.01, alpha=0.95), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.95)),
    (lambda: optim.Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (lambda: optim.Adam(lr=0.003, betas=(0.8, 0.99), eps=1e-6),
     lambda p: torch.optim.Adam(p, lr=0.003, betas=(0.8, 0.99), eps=1e-6)),
]


@pytest.mark.parametrize("ours,theirs", CASES)
def test_optimizer_steps_equal_torch(ours, theirs, rng):
    params = _params(rng)
    grad_seq = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(5)]
    a = _run_ours(ours(), params, grad_seq)
    b = _run_torch(theirs, params, grad_seq)
    for k in a:
        assert relerr(a[k] - params[k], b[k] - params[k]) < 1e-9, k


def test_adagrad_min_char_rnn_closed_form(rng):
    """min-char-rnn: mem += g*g; p += -lr * g / np.sqrt(mem + 1e-8) (epsilon inside the root;
    torch puts it outside, tested above)."""
    p0 = rng.standard_normal(5)
    g1, g2 = rng.standard_normal(5), rng.standard_normal(5)
    p = {"p": p0.copy()}
    opt = optim.Adagrad(lr=0.1)
    opt.step(p, {"p": g1})
    opt.step(p, {"p": g2})
    mem1, mem2 = g1 * g1, g1 * g1 + g2 * g2
    expected = p0 - 0.1 * g1 / np.sqrt(mem1 + 1e-8) - 0.1 * g2 / np.sqrt(mem2 + 1e-8)
    assert relerr(p["p"], expected) < 1e-14


def test_optimizer_state_round_trip_continues_identically(rng):
    params = _params(rng)
    grad_seq = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(4)]
    straight = _run_ours(optim.Adam(lr=0.01), params, grad_seq)
    opt = optim.Adam(lr=0.01)
    half = _run_ours(opt, params, grad_seq[:2])
    resumed = optim.Adam(lr=0.5)
    resumed.load_state_dict(opt.state_dict())
    done = _run_ours(resumed, half, grad_seq[2:])
    for k in straight:
        assert np.array_equal(straight[k], done[k])


def test_clipping(rng):
    g = {"a": np.array([-10.0, 0.5, 7.0]), "b": np.array([[3.0, -4.0]])}
    optim.clip_by_value(g, 5.0)
    assert np.array_equal(g["a"], [-5.0, 0.5, 5.0]) and np.array_equal(g["b"], [[3.0, -4.0]])

    grads = {"a": rng.standard_normal((3, 3)) * 10, "b": rng.standard_normal(4) * 10}
    ts = [t64(v, True) for v in grads.values()]
    for t, v in zip(ts, grads.values()):
        t.grad = t64(v)
    ref_norm = torch.nn.utils.clip_grad_norm_(ts, 1.5)
    norm = optim.clip_grad_norm(grads, 1.5)
    assert relerr(norm, ref_norm.item()) < 1e-12
    for t, v in zip(ts, grads.values()):
        assert relerr(v, t.grad.numpy()) < 1e-12
    assert optim.global_norm(grads) == pytest.approx(1.5, rel=1e-5)


def test_char_rnn_decay_schedule():
    s = optim.DecaySchedule(2e-3, decay=0.97, start_epoch=10)
    assert s.lr_at(9) == 2e-3
    assert s.lr_at(10) == pytest.approx(2e-3 * 0.97)
    assert s.lr_at(12) == pytest.approx(2e-3 * 0.97 ** 3)
    # a decay comes at an epoch's end: starting at epoch 0 is starting at 1 (char-rnn's check)
    for start in (0, 1):
        s = optim.DecaySchedule(1.0, decay=0.5, start_epoch=start)
        assert [s.lr_at(e) for e in range(3)] == [1.0, 0.5, 0.25]


def test_clip_by_value_records_the_norm_before_clipping():
    """Trainer(track=True) keeps the gradient's norm as it came, in both clip modes."""
    from rnnlab.trainer import TrainConfig, Trainer
    for mode in ("norm", "value"):
        trainer = Trainer(None, None, TrainConfig(max_steps=1), clip=0.5, clip_mode=mode, track=True)
        grads = {"w": np.array([3.0, 4.0, 0.0])}
        assert trainer._clip(grads) == pytest.approx(5.0)
        assert np.abs(grads["w"]).max() <= 0.5 + 1e-12


@pytest.mark.parametrize("bad", [
    lambda: optim.SGD(lr=0), lambda: optim.SGD(lr=-1), lambda: optim.Adam(lr=float("nan")),
    lambda: optim.SGD(lr=0.1, momentum=1.5), lambda: optim.SGD(lr=0.1, nesterov=True),
    lambda: optim.RMSProp(alpha=1.0), lambda: optim.Adam(betas=(0.9, 1.0)),
    lambda: optim.clip_by_value({}, -1), lambda: optim.clip_grad_norm({}, -1),
    lambda: optim.make_optimizer("lbfgs", lr=0.1), lambda: optim.DecaySchedule(0.1, decay=0),
])
def test_invalid_hyperparameters_raise_value_error(bad):
    with pytest.raises(ValueError):
        bad()


def test_make_optimizer_names():
    assert isinstance(optim.make_optimizer("Adam", lr=0.1), optim.Adam)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        optim.make_optimizer("lbfgs")


@pytest.mark.parametrize("max_steps,saves", [(6, [3, 6]), (7, [3, 6, 7])])
def test_a_run_ending_on_an_evaluation_step_saves_that_state_once(max_steps, saves):
    """The evaluation step's save already wrote the last state: the final save wrote the
    same checkpoint again (latest.npz twice)."""
    from rnnlab.layers import Linear
    from rnnlab.trainer import TrainConfig, Trainer
    model = Linear(2, 1, dtype=np.float64, seed=0)

    class Objective:
        def loss_and_grad(self, pos):
            y = model.forward(np.ones((1, 2)))
            model.backward(y)
            return float(0.5 * (y ** 2).sum())

        def commit(self):
            pass
    trainer = Trainer(model, optim.SGD(lr=0.1), TrainConfig(max_steps=max_steps, eval_every=3))
    written = []
    trainer.run(Objective(), evaluate=lambda: 1.0, save=lambda: written.append(trainer.counters["step"]))
    assert written == saves


@pytest.mark.parametrize("losses, stopped_at", [
    ([1.0, 4.0, 1.0, 4.0, 4.0, 1.0, 1.0, 1.0], None),   # spikes of one and two steps: trained on
    ([1.0, 1.0, 4.0, 4.0, 4.0, 1.0, 1.0, 1.0], 5),      # three in a row: stopped before step 5's update
    ([1.0, 1.0, float("nan"), 1.0, 1.0, 1.0, 1.0, 1.0], 3),   # a NaN at once
])
def test_divergence_is_a_loss_above_the_factor_for_steps_in_a_row(losses, stopped_at):
    """One batch's loss may spike alone (min-char-rnn's batch of 25 characters went above
    3x its first loss for one step on a third of the seeds, and trained on); a run stops
    when the loss stays above the factor ``divergence_steps`` steps in a row, or at once
    on a non-finite loss — before that step's update."""
    from rnnlab.layers import Linear
    from rnnlab.trainer import TrainConfig, Trainer
    model = Linear(2, 1, dtype=np.float64, seed=0)
    updates = []

    class Objective:
        def loss_and_grad(self, pos):
            return losses[len(updates)]

        def commit(self):
            updates.append(1)
    trainer = Trainer(model, optim.SGD(lr=0.1), TrainConfig(max_steps=len(losses)), divergence_factor=3.0,
                      divergence_steps=3)
    summary = trainer.run(Objective())
    if stopped_at is None:
        assert summary["stop_reason"] == "max_steps" and len(updates) == len(losses)
    else:
        assert summary["stop_reason"] == "diverged" and len(updates) == stopped_at - 1
