"""Optimizers over dicts of arrays, gradient clipping and a learning-rate schedule.

Every optimizer has ``step(params, grads)``: it updates each ``params[k]`` IN PLACE
from ``grads[k]`` (so layers and models that share arrays see the update) and keeps
its per-parameter state under the same keys. ``state_dict()`` / ``load_state_dict()``
save and restore that state (for exact resume).

Update rules (g = gradient, θ = parameter, η = lr):

- SGD:      θ ← θ − η g;  with momentum μ: v ← μ v + g, θ ← θ − η v;
            Nesterov: θ ← θ − η (g + μ v)            (torch.optim.SGD, dampening 0)
- Adagrad:  m ← m + g²;  θ ← θ − η g / √(m + ε)     (min-char-rnn: ε = 1e-8 INSIDE the
            root, the default ``eps_inside=True``); with ``eps_inside=False``:
            θ ← θ − η g / (√m + ε)                      (torch.optim.Adagrad)
- RMSProp:  v ← α v + (1 − α) g²;  θ ← θ − η g / (√v + ε)  (torch.optim.RMSprop, and
            char-rnn's optim.rmsprop; char-rnn uses α = 0.95)
- Adam:     m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
            θ ← θ − η m̂ / (√v̂ + ε), m̂ = m/(1−β1^t), v̂ = v/(1−β2^t)   (torch.optim.Adam)
"""
from __future__ import annotations

import math

import numpy as np
from .errors import ConfigError


def _positive(name, value):
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value}")
    return value


def _in_unit(name, value, closed_low=True):
    value = float(value)
    ok = (0.0 <= value < 1.0) if closed_low else (0.0 < value < 1.0)
    if not ok:
        raise ConfigError(f"{name} must be in {'[0' if closed_low else '(0'}, 1), got {value}")
    return value


class Optimizer:
    slots = ()                                        # the per-parameter arrays it keeps
    NON_NEGATIVE = {"sum_sq", "square_avg", "exp_avg_sq"}   # sums and averages of g²

    def __init__(self, lr):
        self.lr = _positive("lr", lr)
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        for k, p in params.items():
            g = grads[k]
            if g.shape != p.shape:
                raise ConfigError(f"gradient for {k!r} has shape {g.shape}, parameter {p.shape}")
            self._update(k, p, g)

    def _slot(self, key, name, like):
        s = self.state.setdefault(key, {})
        if name not in s:
            s[name] = np.zeros_like(like)
        return s[name]

    def state_dict(self):
        """Flat dict of arrays ("param/slot") plus the step count, for checkpoints."""
        d = {f"{k}/{n}": v.copy() for k, s in self.state.items() for n, v in s.items()}
        d["__t__"] = np.array(self.t)
        d["__lr__"] = np.array(self.lr)
        return d

    def load_state_dict(self, d, params=None):
        """Restore ``state_dict()``'s output. With ``params`` ({key: array}, the model's),
        the state is checked first — a step count ≥ 0, a positive rate, after any step
        exactly this optimizer's slots for every parameter, in its shape, sums and averages of
        g² ≥ 0 — and ConfigError says what is wrong; nothing is changed unless it passes."""
        if params is not None:
            self._check_state(d, params)
        self.state = {}
        for name, v in d.items():
            if name in ("__t__", "__lr__"):
                continue
            k, slot = name.rsplit("/", 1)
            self.state.setdefault(k, {})[slot] = np.array(v)
        self.t = int(d["__t__"])
        self.lr = float(d["__lr__"])

    def _check_state(self, d, params):
        t = d.get("__t__")
        if t is None or int(t) < 0:
            raise ConfigError(f"optimizer step count {None if t is None else int(t)} is not a count")
        _positive("the saved lr", d.get("__lr__", float("nan")))
        want = {f"{k}/{s}" for k in params for s in self.slots} if int(t) > 0 else set()
        have = set(d) - {"__t__", "__lr__"}
        if have != want:
            wrong = sorted(have - want) or sorted(want - have)
            raise ConfigError(f"optimizer slots {'unexpected' if have - want else 'missing'}: {wrong[:3]}")
        for name in have:
            k, slot = name.rsplit("/", 1)
            v = np.asarray(d[name])
            if v.shape != params[k].shape:
                raise ConfigError(f"optimizer slot {name!r} has shape {v.shape}, its parameter {params[k].shape}")
            if slot in self.NON_NEGATIVE and (v < 0).any():
                raise ConfigError(f"optimizer slot {name!r} (a sum of squares) has negative values")


class SGD(Optimizer):
    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = _in_unit("momentum", momentum)
        if nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.slots = ("velocity",) if self.momentum else ()

    def _update(self, k, p, g):
        if self.momentum == 0:
            p -= self.lr * g
            return
        v = self._slot(k, "velocity", p)
        v *= self.momentum
        v += g
        p -= self.lr * (g + self.momentum * v if self.nesterov else v)


class Momentum(SGD):
    """SGD with momentum (default μ = 0.9)."""

    def __init__(self, lr=0.01, momentum=0.9, nesterov=False):
        super().__init__(lr, momentum=momentum, nesterov=nesterov)


class Adagrad(Optimizer):
    slots = ("sum_sq",)

    def __init__(self, lr=0.1, eps=1e-8, eps_inside=True):
        super().__init__(lr)
        self.eps = _positive("eps", eps)
        self.eps_inside = bool(eps_inside)

    def _update(self, k, p, g):
        m = self._slot(k, "sum_sq", p)
        m += g * g
        denom = np.sqrt(m + self.eps) if self.eps_inside else np.sqrt(m) + self.eps
        p -= self.lr * g / denom


class RMSProp(Optimizer):
    slots = ("square_avg",)

    def __init__(self, lr=0.002, alpha=0.99, eps=1e-8):
        super().__init__(lr)
        self.alpha = _in_unit("alpha", alpha)
        self.eps = _positive("eps", eps)

    def _update(self, k, p, g):
        v = self._slot(k, "square_avg", p)
        v *= self.alpha
        v += (1.0 - self.alpha) * g * g
        p -= self.lr * g / (np.sqrt(v) + self.eps)


class Adam(Optimizer):
    slots = ("exp_avg", "exp_avg_sq")

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(lr)
        self.beta1 = _in_unit("beta1", betas[0])
        self.beta2 = _in_unit("beta2", betas[1])
        self.eps = _positive("eps", eps)

    def _update(self, k, p, g):
        m = self._slot(k, "exp_avg", p)
        v = self._slot(k, "exp_avg_sq", p)
        m *= self.beta1
        m += (1.0 - self.beta1) * g
        v *= self.beta2
        v += (1.0 - self.beta2) * g * g
        bc1 = 1.0 - self.beta1 ** self.t
        bc2 = 1.0 - self.beta2 ** self.t
        p -= (self.lr / bc1) * m / (np.sqrt(v / bc2) + self.eps)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adagrad": Adagrad, "rmsprop": RMSProp, "adam": Adam}


def make_optimizer(name, **kwargs):
    """Build an optimizer by name: sgd, momentum, adagrad, rmsprop, adam."""
    try:
        cls = OPTIMIZERS[str(name).lower()]
    except KeyError:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}") from None
    return cls(**kwargs)


def clip_by_value(grads, clip):
    """Clamp every gradient entry to [−clip, clip] in place (min-char-rnn, char-rnn)."""
    clip = float(clip)
    if not clip >= 0:
        raise ConfigError(f"clip value must be non-negative, got {clip}")
    for g in grads.values():
        np.clip(g, -clip, clip, out=g)
    return grads


def global_norm(grads):
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads, max_norm):
    """Scale all gradients in place so their global L2 norm is at most ``max_norm``
    (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping."""
    max_norm = float(max_norm)
    if not max_norm >= 0:
        raise ConfigError(f"max_norm must be non-negative, got {max_norm}")
    norm = global_norm(grads)
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads.values():
            g *= scale
    return norm


class DecaySchedule:
    """char-rnn's learning-rate decay: after each epoch ≥ ``start_epoch`` the rate is
    multiplied by ``decay`` (char-rnn: 0.97 after epoch 10).

    ``lr_at(epochs_done)`` = base_lr · decay^max(0, epochs_done − max(start_epoch, 1) + 1):
    a decay comes only when an epoch ends, so start_epoch 0 and 1 are the same schedule (as
    in char-rnn, which checks the epoch count at each epoch's end)."""

    def __init__(self, base_lr, decay=0.97, start_epoch=10):
        self.base_lr = _positive("lr", base_lr)
        decay = float(decay)
        if not 0 < decay <= 1:
            raise ConfigError(f"lr decay must be in (0, 1], got {decay}")
        if int(start_epoch) < 0:
            raise ConfigError("start_epoch must be non-negative")
        self.decay, self.start_epoch = decay, int(start_epoch)

    def lr_at(self, epochs_done):
        n = max(0, int(epochs_done) - max(self.start_epoch, 1) + 1)
        return self.base_lr * self.decay ** n
