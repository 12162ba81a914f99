"""A built-in demo: an Elman RNN learns to echo its input delayed by a few steps,
trained by full BPTT with Adam on the one loop of trainer.py; the loss is printed as
it falls."""
from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .layers import Linear
from .losses import mse
from .models.seq import SupervisedObjective, check_fits
from .module import Module
from .optim import Adam
from .recurrent import RNN
from .trainer import TrainConfig, Trainer


def echo_batch(rng, batch, steps, delay):
    """x: (B, T, 1) random ±1; target y_t = x_{t−delay} (0 for t < delay)."""
    x = rng.choice([-1.0, 1.0], size=(batch, steps, 1))
    y = np.zeros_like(x)
    y[:, delay:] = x[:, :-delay]
    return x, y


class EchoNet(Module):
    """Children ``rnn`` (Elman, one input) and ``head`` (Linear H → 1), one output per step."""

    def __init__(self, hidden, dtype=np.float64, seed=0):
        super().__init__()
        self.rnn = RNN(1, hidden, dtype=dtype, seed=seed)
        self.head = Linear(hidden, 1, dtype=dtype, seed=seed + 1)

    def forward(self, x):
        return self.head.forward(self.rnn.forward(x)[0])

    def backward(self, dy):
        return self.rnn.backward(self.head.backward(dy))[0]


def train_echo(delay=3, hidden=16, steps=20, batch=32, iters=300, lr=0.01, seed=0,
               dtype=np.float64, log=None, log_every=50):
    """Train EchoNet on the echo task (delay in [1, steps)); return the list of losses."""
    for name, v in (("delay", delay), ("hidden", hidden), ("steps", steps), ("iters", iters)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must be a positive integer, got {v!r}")
    if delay >= steps:
        raise ConfigError(f"delay must be shorter than the sequence ({steps} steps), got {delay}")
    check_fits("rnn", 1, hidden, 1, batch * steps, hidden=hidden)
    if log:                                      # after the checks: an error is the only line
        log(f"Elman RNN (hidden {hidden}) learning to echo its input delayed by {delay} steps")
    rng = np.random.default_rng(seed)
    net = EchoNet(hidden, dtype, seed)

    def on_step(step, loss):
        if log and (step == 1 or step % log_every == 0):
            log(f"step {step:4d}  loss {loss:.4f}")
    trainer = Trainer(net, Adam(lr=lr), TrainConfig(max_steps=iters, eval_every=None), clip=5.0,
                      track=True, on_step=on_step)
    trainer.run(SupervisedObjective(net, lambda step: echo_batch(rng, batch, steps, delay), mse))
    return trainer.history["losses"]
