"""CharLM — a character-level language model: one-hot characters → recurrent stack
(RNN | LSTM | GRU) → Linear head → softmax over the vocabulary.

    logits_t = h_t W_yᵀ + b_y     (W_y = ``head.weight`` (V, H), the course's W_y)
    loss     = −(1/N) Σ_t ln softmax(logits_t)[x_{t+1}]     nats per character

Parameters are exposed flat as "rnn.<torch name>" and "head.weight"/"head.bias".
With ``dropout`` > 0, dropout is applied between recurrent layers (torch's place)
and to the top layer's output before the head (char-rnn's place), in training only.

Python API: ``CharLM.fit`` (charlm_run.py sets up the run, trainer.py is the loop), ``generate``, ``evaluate``,
``save``/``load`` (checkpoint.py). The CLI is a thin layer over these.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import checkpoint
from ..activations import log_softmax
from ..data.text import Vocab
from ..errors import CheckpointError, ConfigError, DataError
from ..generate import Stepper, check_sampling, sample_next
from ..layers import Dropout, Linear
from ..losses import softmax_cross_entropy
from ..metrics import lm_metrics
from ..module import Module
from ..optim import make_optimizer
from ..recurrent import GRU, LSTM, RNN

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@dataclass
class CharLMConfig:
    """Everything needed to rebuild and keep training a CharLM (saved in checkpoints).

    Defaults: the best configuration measured for two minutes on 2 cores on the
    Metamorphosis story, 10% held out (benchmarks/charlm_defaults.py; the table is in
    benchmarks/results/charlm_defaults_metamorphosis.jsonl): LSTM 2×256 with dropout
    0.25 reached 2.03 bits/char (dropout 0.4: 2.03), against 2.13 for LSTM 1×256 with
    dropout, 2.14 without, 2.11 for GRU 1×256, 2.14 for LSTM 1×512 and 2.16 for
    LSTM 1×128 — one layer overfits the 107k training characters within a minute."""
    model: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.25
    seq_len: int = 64
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 3e-3
    lr_decay: float = 1.0          # ×decay per epoch once lr_decay_after epochs are done (char-rnn)
    lr_decay_after: int = 10
    clip: float = 5.0
    clip_mode: str = "norm"        # "norm": global L2 norm; "value": clamp each entry (char-rnn)
    grad_reduction: str = "mean"   # "sum": gradient of the summed loss (min-char-rnn)
    val_frac: float = 0.1
    init: str = "torch"            # "torch": U(±1/√H); "char-rnn": U(±0.08), LSTM forget bias 1;
    #                                "min-char-rnn": weights N(0, 0.01²), biases 0
    seed: int = 0

    def validate(self):
        """Check every field's type and range; raise ConfigError naming the field."""
        def bad(msg):
            raise ConfigError(msg)
        if self.model not in LAYERS:
            bad(f"model must be one of {sorted(LAYERS)}, got {self.model!r}")
        for name in ("hidden_size", "num_layers", "seq_len", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr_decay_after", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("dropout", "lr", "lr_decay", "clip", "val_frac"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(f"{name} must be a finite number, got {v!r}")
        if not 0.0 <= self.dropout < 1.0:
            bad(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            bad(f"lr must be positive, got {self.lr}")
        if not 0.0 < self.lr_decay <= 1.0:
            bad(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if not self.clip >= 0:
            bad(f"clip must be >= 0 (0 = off), got {self.clip}")
        if self.clip_mode not in ("norm", "value"):
            bad(f"clip_mode must be 'norm' or 'value', got {self.clip_mode!r}")
        if self.grad_reduction not in ("mean", "sum"):
            bad(f"grad_reduction must be 'mean' or 'sum', got {self.grad_reduction!r}")
        if not 0.0 <= self.val_frac < 1.0:
            bad(f"val_frac must be in [0, 1), got {self.val_frac}")
        if self.init not in ("torch", "char-rnn", "min-char-rnn"):
            bad(f"init must be 'torch', 'char-rnn' or 'min-char-rnn', got {self.init!r}")
        make_optimizer(self.optimizer, **self.optimizer_kwargs())
        return self

    def optimizer_kwargs(self):
        kw = {"lr": self.lr}
        if self.optimizer == "rmsprop":
            kw["alpha"] = 0.95          # char-rnn's decay_rate
        return kw

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


PRESETS = {
    # Karpathy's min-char-rnn.py: vanilla RNN, hidden 100, seq 25, batch 1, Adagrad 0.1,
    # gradients of the summed loss clamped to ±5.
    "min-char-rnn": dict(model="rnn", hidden_size=100, num_layers=1, dropout=0.0, seq_len=25,
                         batch_size=1, optimizer="adagrad", lr=0.1, lr_decay=1.0, clip=5.0,
                         clip_mode="value", grad_reduction="sum", init="min-char-rnn"),
    # karpathy/char-rnn train.lua defaults: LSTM 2×128, seq 50, batch 50, RMSProp 2e-3
    # (decay 0.95), lr ×0.97 per epoch after 10, clamp ±5, 5% validation, U(±0.08).
    "char-rnn": dict(model="lstm", hidden_size=128, num_layers=2, dropout=0.0, seq_len=50,
                     batch_size=50, optimizer="rmsprop", lr=2e-3, lr_decay=0.97, lr_decay_after=10,
                     clip=5.0, clip_mode="value", grad_reduction="mean", val_frac=0.05, init="char-rnn"),
}


class CharLM(Module):
    """The character model as a module tree: children ``rnn`` (the recurrent stack),
    ``drop`` (dropout before the head, sharing the stack's generator) and ``head``."""

    def __init__(self, vocab, config=None, dtype=np.float32):
        super().__init__()
        self.vocab = vocab if isinstance(vocab, Vocab) else Vocab(vocab)
        self.config = (config or CharLMConfig()).validate()
        c, V = self.config, len(self.vocab)
        self.dtype = np.dtype(dtype)
        self.rnn = LAYERS[c.model](V, c.hidden_size, c.num_layers, dropout=c.dropout, dtype=dtype, seed=c.seed)
        self.drop = Dropout(c.dropout, seed=self.rnn.rng)
        self.head = Linear(c.hidden_size, V, dtype=dtype, seed=c.seed + 1)
        if c.init == "char-rnn":
            rng = np.random.default_rng(c.seed + 2)
            for layer in (self.rnn, self.head):
                for p in layer.params.values():
                    p[...] = rng.uniform(-0.08, 0.08, p.shape)
            if c.model == "lstm":
                H = c.hidden_size
                for k in range(c.num_layers):
                    self.rnn.params[f"bias_ih_l{k}"][H:2 * H] = 1.0
                    self.rnn.params[f"bias_hh_l{k}"][H:2 * H] = 0.0
        elif c.init == "min-char-rnn":
            rng = np.random.default_rng(c.seed + 2)
            for layer in (self.rnn, self.head):
                for name, p in layer.params.items():
                    p[...] = rng.standard_normal(p.shape) * 0.01 if "weight" in name else 0.0
        self.meta = {}          # training metadata carried by checkpoints (text, step...)

    # -- core -----------------------------------------------------------------------
    def forward(self, x_tm, state=None):
        """x_tm: (T, B) ids → logits (T, B, V), final state."""
        out, state = self.rnn.forward_time_major(x_tm, state, is_ids=True)
        return self.head.forward(self.drop.forward(out)), state

    def backward(self, dlogits):
        """dlogits (T, B, V) → gradients added into ``grads``; returns the state gradient."""
        return self.rnn.backward_time_major(self.drop.backward(self.head.backward(dlogits)))[1]

    def loss_and_grad(self, x_tm, y_tm, state=None):
        """One truncated-BPTT window: forward, loss (mean nats/char), backward into grads.
        Returns (loss, final state) — pass the state in for the next window."""
        logits, state = self.forward(x_tm, state)
        loss, dlogits = softmax_cross_entropy(logits, y_tm, reduction=self.config.grad_reduction)
        if self.config.grad_reduction == "sum":
            loss /= y_tm.size
        self.backward(dlogits)
        return loss, state

    def make_optimizer(self):
        return make_optimizer(self.config.optimizer, **self.config.optimizer_kwargs())

    # -- evaluation -----------------------------------------------------------------------
    def evaluate_ids(self, ids, streams=None, chunk=256):
        """Mean nats/char of predicting ids[1:] from their prefixes.

        The N−1 predictions are cut into S contiguous streams (S = min(64, ⌈(N−1)/1000⌉)
        unless given) run as one batch, each from a zero state, in chunks of ``chunk``
        steps with the state carried — one exact pass per stream. Dropout is off."""
        ids = np.asarray(ids, np.int64)
        M = len(ids) - 1
        if M < 1:
            raise DataError("need at least two characters to evaluate")
        S = streams or min(64, -(-M // 1000))
        L = -(-M // S)
        pad = S * L - M
        inp = np.concatenate([ids[:-1], np.zeros(pad, np.int64)]).reshape(S, L).T       # (L, S)
        tgt = np.concatenate([ids[1:], np.zeros(pad, np.int64)]).reshape(S, L).T
        valid = np.concatenate([np.ones(M, bool), np.zeros(pad, bool)]).reshape(S, L).T
        was_training = self.training
        self.eval()
        total, state = 0.0, None
        try:
            for s in range(0, L, chunk):
                logits, state = self.forward(inp[s:s + chunk], state)
                logp = log_softmax(logits.astype(np.float64), axis=-1)
                picked = np.take_along_axis(logp, tgt[s:s + chunk, :, None], axis=-1)[..., 0]
                total -= float(picked[valid[s:s + chunk]].sum())
        finally:
            self.train(was_training)
        return total / M

    def evaluate(self, text):
        """Metrics over a text: loss (nats/char), bpc, perplexity, chars scored, and
        ``oov``: characters outside the vocabulary, which are dropped before scoring."""
        known = "".join(ch for ch in text if ch in self.vocab.index)
        oov = len(text) - len(known)
        if len(known) < 2:
            raise DataError("the text has fewer than two characters the model knows")
        nats = self.evaluate_ids(self.vocab.encode(known))
        return {**lm_metrics(nats, len(known) - 1), "oov": oov}

    # -- generation --------------------------------------------------------------------------
    def generate(self, length=200, *, temperature=1.0, top_k=0, prime="", seed=None, stream=None):
        """Sample ``length`` characters after ``prime`` (which must use known characters).
        Without a prime the first character is drawn uniformly (char-rnn's behaviour).
        ``stream(ch)`` is called for every generated character. Returns the new text."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ConfigError(f"length must be an integer >= 0, got {length!r}")
        check_sampling(temperature, top_k)
        prime_ids = self.vocab.encode(prime) if prime else None
        rng = np.random.default_rng(seed)
        stepper = Stepper(self.rnn, self.head)
        V = len(self.vocab)
        if prime_ids is None:
            nxt = int(rng.integers(V))
            out = [nxt]
            if stream:
                stream(self.vocab.chars[nxt])
            length -= 1
        else:
            out = []
            for i in prime_ids[:-1]:
                stepper.step(int(i))
            nxt = int(prime_ids[-1])
        for _ in range(max(length, 0)):
            logits = stepper.step(nxt)
            nxt = sample_next(logits, temperature, top_k, rng)
            out.append(nxt)
            if stream:
                stream(self.vocab.chars[nxt])
        return self.vocab.decode(out)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path, *, optimizer=None, state=None, meta=None):
        arrays = {f"param/{k}": v for k, v in self.params.items()}
        if optimizer is not None:
            arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
        if state is not None:
            h, c = state if isinstance(state, tuple) else (state, None)
            arrays["state/h"] = h
            if c is not None:
                arrays["state/c"] = c
        header = {"kind": "CharLM", "config": self.config.to_dict(), "vocab": self.vocab.chars,
                  "dtype": self.dtype.name, **(meta or {})}
        return checkpoint.save(path, arrays, header)

    @classmethod
    def load(cls, path, *, with_training_state=False):
        arrays, meta = checkpoint.load(path)
        if meta.get("kind") != "CharLM":
            raise CheckpointError(f"{path}: not a CharLM checkpoint (kind {meta.get('kind')!r})")
        try:
            config = CharLMConfig.from_dict(meta["config"])
            model = cls(Vocab(meta["vocab"]), config, dtype=np.dtype(meta.get("dtype", "float32")))
            params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
            missing = set(model.params) - set(params)
            if missing or set(params) - set(model.params):
                raise CheckpointError(f"{path}: parameters do not match the saved configuration")
            for k, p in model.params.items():
                if params[k].shape != p.shape:
                    raise CheckpointError(f"{path}: parameter {k!r} has shape {params[k].shape}, "
                                          f"expected {p.shape}")
                np.copyto(p, params[k], casting="unsafe")
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: damaged checkpoint metadata ({e})") from None
        model.meta = {k: v for k, v in meta.items() if k not in ("config", "vocab")}
        if not with_training_state:
            return model
        opt_state = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
        state = None
        if "state/h" in arrays:
            state = (arrays["state/h"], arrays["state/c"]) if "state/c" in arrays else arrays["state/h"]
        return model, opt_state, state

    # -- training ---------------------------------------------------------------------------------
    def fit(self, text, train=None, **kwargs):
        """Train on ``text``. ``train``: a TrainConfig, or its fields as keywords
        (max_steps, max_epochs, time_limit, eval_every, patience); the other keywords are
        ``rnnlab.charlm_run.train_charlm``'s (out_dir, resume, progress, sample_chars...).
        Returns the training summary dict."""
        from ..charlm_run import train_charlm
        from ..trainer import TrainConfig
        if train is None:
            train, kwargs = TrainConfig.from_kwargs(kwargs)
        return train_charlm(self, text, train, **kwargs)
