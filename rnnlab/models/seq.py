"""Sequence models for the tasks: a recurrent stack (or a time-delay network) with a
Linear head, and a small training loop.

``SeqNet(kind, input_size, hidden_size, output_size, many_to_one=...)``
    kind "rnn" | "lstm" | "gru": x (B, T, F) → recurrent layer → head.
        many_to_one=True:  y (B, O) from the last step's hidden state
        many_to_one=False: y (B, T, O), one output per step
    kind "tdnn": the time-delay neural network — the window (B, T, F) flattened to
        (B, T·F) → Linear → tanh → Linear (many-to-one only).
``fit(model, batches, loss, train, ...)`` trains with Adam and global-norm clipping on the
one loop of trainer.py.
"""
from __future__ import annotations

import numpy as np

from ..layers import Linear, Tanh
from ..module import Module, real_array
from ..optim import SGD, Adam
from ..recurrent import GRU, LSTM, RNN
from ..trainer import Trainer
from ..errors import ConfigError
from ..memory import available_memory
from .charlm_config import GATES

KINDS = ("rnn", "lstm", "gru", "tdnn")


def memory_needed(kind, input_size, hidden_size, output_size, positions, tdnn_window=1, data=0):
    """Bytes a task's SeqNet needs in float64, estimated from above: the parameters five
    times (weights, gradients, Adam's two slots, the float64 draw at initialisation) and,
    per position of the largest batch it reads at once (batch × length), its input and
    output and what the forward pass keeps for the backward (gates, states), 5·G·H + 2·H
    values (``tdnn_window``: the TDNN's window, which sizes its first layer), plus ``data``
    bytes the task holds besides (forecast's windows of the whole series). Measured peaks
    are 0.6-0.7 of it (2026-12-05: order at length 400, 1.5 GB against 2.3; adding with
    hidden 256 at length 200, 2.8 GB against 4.6; detect with hidden 256, 0.19 against 0.29)."""
    G, F, H, O = GATES.get(kind, 1), input_size, hidden_size, output_size
    params = (tdnn_window * F * H + H if kind == "tdnn" else G * H * (F + H + 2)) + O * (H + 1)
    return 8 * (5 * params + positions * (5 * G * H + 2 * H + F + O)) + data


def check_fits(kind, input_size, hidden_size, output_size, positions, /, tdnn_window=1, data=0, **named):
    """ConfigError unless ``memory_needed`` fits in ``available_memory``; ``named``: the
    options that set the size (hidden_size=64, length=50), for the message. Tasks call it
    before they allocate anything."""
    need = memory_needed(kind, input_size, hidden_size, output_size, positions, tdnn_window, data)
    have = available_memory()
    if need > have:
        what = ", ".join(f"{k}={v}" for k, v in named.items())
        raise ConfigError(f"{what}: the task needs about {need / 2**30:,.1f} GiB of memory and "
                          f"{have / 2**30:.1f} GiB are available; choose smaller sizes")


class SeqNet(Module):
    """Children: ``body`` (the recurrent layer) or ``hidden`` + ``act`` (the TDNN), and
    ``head``; parameters "body.weight_ih_l0", "head.weight", ... from the module tree."""

    def __init__(self, kind, input_size, hidden_size, output_size, *, many_to_one=True, window=None,
                 num_layers=1, nonlinearity="tanh", bias=True, dtype=np.float64, seed=0):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"model must be one of {KINDS}, got {kind!r}")
        self.kind, self.many_to_one = kind, many_to_one
        if kind == "tdnn":
            if not many_to_one or not window:
                raise ConfigError("the TDNN reads a fixed window: many_to_one with a window length")
            self.body = None
            self.hidden = Linear(window * input_size, hidden_size, dtype=dtype, seed=seed)
            self.act = Tanh()
        else:
            cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[kind]
            kw = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
            self.body = cls(input_size, hidden_size, num_layers, bias=bias, dtype=dtype, seed=seed, **kw)
        self.head = Linear(hidden_size, output_size, dtype=dtype, seed=seed + 1)

    def forward(self, x, state=None):
        x = real_array(x, "SeqNet")
        if self.body is None:
            self._shape = x.shape
            return self.head.forward(self.act.forward(self.hidden.forward(x.reshape(x.shape[0], -1))))
        out, self.state = self.body.forward(x, state)
        self._T = out.shape[1]
        if self.many_to_one:
            return self.head.forward(out[:, -1])
        return self.head.forward(out)

    def backward(self, dy):
        if self.body is None:
            return self.hidden.backward(self.act.backward(self.head.backward(dy))).reshape(self._shape)
        dh = self.head.backward(dy)
        if self.many_to_one:
            dout = np.zeros((dh.shape[0], self._T, dh.shape[1]), dh.dtype)
            dout[:, -1] = dh
        else:
            dout = dh
        return self.body.backward(dout)[0]


class SupervisedObjective:
    """Minibatch training: ``batches(step)`` gives (x, y); ``loss_fn(pred, y)`` gives
    (loss, dpred)."""

    def __init__(self, model, batches, loss_fn):
        self.model, self.batches, self.loss_fn = model, batches, loss_fn
        self.step = 0

    def loss_and_grad(self, pos):
        x, y = self.batches(self.step)
        loss, dpred = self.loss_fn(self.model.forward(x), y)
        self.model.backward(dpred)
        return loss

    def commit(self):
        self.step += 1


def fit(model, batches, loss_fn, train, *, lr=1e-2, clip=1.0, optimizer="adam", progress=None,
        on_step=None):
    """Train with Adam (or ``optimizer="sgd"``) at ``lr`` and global-norm clipping (clip,
    0 = off) for the budget in ``train`` (a TrainConfig), on the one loop of trainer.py.
    A non-finite loss stops training before its update. Returns {"losses": [...],
    "steps", "seconds", "grad_norms"} (the norm of each step's gradient before clipping)."""
    opt = Adam(lr=lr) if optimizer == "adam" else SGD(lr=lr)
    trainer = Trainer(model, opt, train, clip=clip, track=True, progress=progress, on_step=on_step,
                      rate_name="steps/s")
    summary = trainer.run(SupervisedObjective(model, batches, loss_fn))
    model.eval()
    return {"losses": trainer.history["losses"], "steps": summary["steps"],
            "seconds": summary["elapsed"], "grad_norms": trainer.history["grad_norms"]}
