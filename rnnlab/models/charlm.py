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

import numpy as np

from ..activations import log_softmax
from ..data.text import Vocab
from ..errors import ConfigError, DataError
from ..generate import Stepper, check_sampling, sample_next
from ..layers import Dropout, Linear
from ..losses import softmax_cross_entropy
from ..metrics import lm_metrics
from ..module import Module
from ..optim import make_optimizer
from ..recurrent import GRU, LSTM, RNN
from .charlm_config import CharLMConfig, check_fits
from .charlm_io import check_training_state, load_charlm, save_charlm

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


class CharLM(Module):
    """The character model as a module tree: children ``rnn`` (the recurrent stack),
    ``drop`` (dropout before the head, sharing the stack's generator) and ``head``."""

    def __init__(self, vocab, config=None, dtype=np.float32):
        super().__init__()
        self.vocab = vocab if isinstance(vocab, Vocab) else Vocab(vocab)
        self.config = (config or CharLMConfig()).validate()
        c, V = self.config, len(self.vocab)
        self.dtype = np.dtype(dtype)
        check_fits(c, V, self.dtype.itemsize)         # refuse before allocating, not after
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
        """Write a checkpoint (see charlm_io.save_charlm)."""
        return save_charlm(self, path, optimizer=optimizer, state=state, meta=meta)

    @classmethod
    def load(cls, path, *, with_training_state=False):
        """A CharLM from a checkpoint, every byte checked first (see charlm_io.load_charlm);
        with ``with_training_state``: (model, optimizer state, carried state)."""
        return load_charlm(cls, path, with_training_state=with_training_state)

    def check_training_state(self, steps_per_epoch):
        """The training counters in ``meta`` (from a resumable checkpoint) checked against a
        text of ``steps_per_epoch`` batches; returns the generator states to restore."""
        return check_training_state(self.meta, steps_per_epoch)

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
