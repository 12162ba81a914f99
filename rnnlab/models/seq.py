"""Sequence models for the tasks: a recurrent stack (or a time-delay network) with a
Linear head, and a small training loop.

``SeqNet(kind, input_size, hidden_size, output_size, many_to_one=...)``
    kind "rnn" | "lstm" | "gru": x (B, T, F) → recurrent layer → head.
        many_to_one=True:  y (B, O) from the last step's hidden state
        many_to_one=False: y (B, T, O), one output per step
    kind "tdnn": the time-delay neural network — the window (B, T, F) flattened to
        (B, T·F) → Linear → tanh → Linear (many-to-one only).
``fit(model, batches, loss, ...)`` trains with Adam and global-norm clipping.
"""
from __future__ import annotations

import time

import numpy as np

from ..layers import Linear, Tanh
from ..module import Module
from ..optim import SGD, Adam, clip_grad_norm, global_norm
from ..progress import Progress
from ..recurrent import GRU, LSTM, RNN

KINDS = ("rnn", "lstm", "gru", "tdnn")


class SeqNet(Module):
    def __init__(self, kind, input_size, hidden_size, output_size, *, many_to_one=True, window=None,
                 num_layers=1, nonlinearity="tanh", bias=True, dtype=np.float64, seed=0):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"--model must be one of {KINDS}, got {kind!r}")
        self.kind, self.many_to_one = kind, many_to_one
        if kind == "tdnn":
            if not many_to_one or not window:
                raise ValueError("the TDNN reads a fixed window: many_to_one with a window length")
            self.body = None
            self.hidden = Linear(window * input_size, hidden_size, dtype=dtype, seed=seed)
            self.act = Tanh()
        else:
            cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[kind]
            kw = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
            self.body = cls(input_size, hidden_size, num_layers, bias=bias, dtype=dtype, seed=seed, **kw)
        self.head = Linear(hidden_size, output_size, dtype=dtype, seed=seed + 1)
        parts = [("body", self.body)] if self.body is not None else [("hidden", self.hidden)]
        for prefix, m in parts + [("head", self.head)]:
            for k in m.params:
                self.params[f"{prefix}.{k}"] = m.params[k]
                self.grads[f"{prefix}.{k}"] = m.grads[k]

    def children(self):
        return [m for m in (self.body, getattr(self, "hidden", None), self.head) if m is not None]

    def forward(self, x, state=None):
        x = np.asarray(x)
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


def fit(model, batches, loss_fn, *, max_steps=None, time_limit=None, lr=1e-2, clip=1.0,
        optimizer="adam", progress=None, log_every=50):
    """Train with Adam (or ``optimizer="sgd"``) at ``lr`` and global-norm clipping (clip,
    0 = off). ``batches(step)``
    returns (x, y); ``loss_fn(pred, y)`` returns (loss, dpred). Stops at ``max_steps``
    or after ``time_limit`` seconds. Returns {"losses": [...], "steps", "seconds", "grad_norms"}."""
    if max_steps is None and time_limit is None:
        raise ValueError("give a training budget: --max-steps or --time-limit")
    opt = Adam(lr=lr) if optimizer == "adam" else SGD(lr=lr)
    progress = progress or Progress(enabled=False)
    losses, norms = [], []
    start = time.perf_counter()
    step = 0
    model.train()
    while (max_steps is None or step < max_steps) and (time_limit is None or time.perf_counter() - start < time_limit):
        x, y = batches(step)
        pred = model.forward(x)
        loss, dpred = loss_fn(pred, y)
        if not np.isfinite(loss):
            progress.message(f"training stopped at step {step + 1}: the loss is not finite")
            break
        model.zero_grad()
        model.backward(dpred)
        norms.append(clip_grad_norm(model.grads, clip) if clip else global_norm(model.grads))
        opt.step(model.params, model.grads)
        losses.append(loss)
        step += 1
        if step % log_every == 0:
            progress.update(step, loss=float(np.mean(losses[-log_every:])))
    progress.close()
    model.eval()
    return {"losses": losses, "steps": step, "seconds": time.perf_counter() - start, "grad_norms": norms}
