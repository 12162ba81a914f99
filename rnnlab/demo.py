"""A built-in demo: an Elman RNN learns to echo its input delayed by a few steps,
trained by full BPTT with Adam; the loss is printed as it falls."""
from __future__ import annotations

import numpy as np

from .layers import Linear
from .losses import mse
from .optim import Adam, clip_grad_norm
from .recurrent import RNN


def echo_batch(rng, batch, steps, delay):
    """x: (B, T, 1) random ±1; target y_t = x_{t−delay} (0 for t < delay)."""
    x = rng.choice([-1.0, 1.0], size=(batch, steps, 1))
    y = np.zeros_like(x)
    y[:, delay:] = x[:, :-delay]
    return x, y


def train_echo(delay=3, hidden=16, steps=20, batch=32, iters=300, lr=0.01, seed=0,
               dtype=np.float64, log=None, log_every=50):
    """Train RNN + Linear head on the echo task; return the list of losses."""
    rng = np.random.default_rng(seed)
    rnn = RNN(1, hidden, dtype=dtype, seed=seed)
    head = Linear(hidden, 1, dtype=dtype, seed=seed + 1)
    params = {**{f"rnn.{k}": v for k, v in rnn.params.items()},
              **{f"head.{k}": v for k, v in head.params.items()}}
    grads = {**{f"rnn.{k}": v for k, v in rnn.grads.items()},
             **{f"head.{k}": v for k, v in head.grads.items()}}
    opt = Adam(lr=lr)
    losses = []
    for it in range(1, iters + 1):
        x, y = echo_batch(rng, batch, steps, delay)
        out, _ = rnn.forward(x)
        pred = head.forward(out)
        loss, dpred = mse(pred, y)
        rnn.zero_grad()
        head.zero_grad()
        rnn.backward(head.backward(dpred))
        clip_grad_norm(grads, 5.0)
        opt.step(params, grads)
        losses.append(loss)
        if log and (it == 1 or it % log_every == 0):
            log(f"step {it:4d}  loss {loss:.4f}")
    return losses
