"""CharLM — a character-level language model: one-hot characters → recurrent stack
(RNN | LSTM | GRU) → Linear head → softmax over the vocabulary.

    logits_t = h_t W_yᵀ + b_y     (W_y = ``head.weight`` (V, H), the course's W_y)
    loss     = −(1/N) Σ_t ln softmax(logits_t)[x_{t+1}]     nats per character

Parameters are exposed flat as "rnn.<torch name>" and "head.weight"/"head.bias".
With ``dropout`` > 0, dropout is applied between recurrent layers (torch's place)
and to the top layer's output before the head (char-rnn's place), in training only;
``locked_dropout`` shares each window's mask over its steps, ``weight_drop`` drops
W_hh entries (recurrent.py), ``average`` evaluates with averaged weights (averaging.py).

Python API: ``CharLM.fit`` (charlm_run.py sets up the run, trainer.py is the loop), ``generate``, ``evaluate``,
``save``/``load`` (charlm_io.py). The CLI is a thin layer over these.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..activations import log_softmax
from ..data.text import Vocab, split_train_val
from ..errors import ConfigError, DataError
from ..generate import Stepper, check_sampling, sample_next
from ..layers import Dropout, Linear
from ..losses import softmax_cross_entropy
from ..metrics import lm_metrics
from ..module import Module
from ..optim import make_optimizer
from ..recurrent import GRU, LSTM, RNN
from .charlm_config import CharLMConfig, check_fits
from .mixing import NgramMixture
from .scoring import (CHUNK, DYN_DECAY, DYN_LR, DYN_SEG, check_dynamic, check_train_text, dynamic_logprobs,
                      gradient_stats, static_logprobs)
from .charlm_io import check_training_state, load_charlm, save_charlm, weights_digest
from .stats_cache import cached_gradient_stats

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
        between = c.dropout if c.num_layers > 1 else 0.0        # one layer: only self.drop applies it
        self.rnn = LAYERS[c.model](V, c.hidden_size, c.num_layers, dropout=between, dtype=dtype, seed=c.seed,
                                   weight_drop=c.weight_drop, locked_dropout=c.locked_dropout)
        self.drop = Dropout(c.dropout, seed=self.rnn.rng, locked_axis=0 if c.locked_dropout else None)
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
        self.averaged = None    # the weight average (config.average) of a resumable checkpoint or run

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
    def evaluate_ids(self, ids, streams=None, chunk=CHUNK):
        """Mean nats/char of predicting ids[1:] from their prefixes (scoring.static_logprobs:
        S = min(64, ⌈(N−1)/1000⌉) contiguous streams unless given, each from a zero state,
        run in chunks of ``chunk`` steps with the state carried). Dropout is off."""
        return float(-static_logprobs(self, ids, streams, chunk).mean())

    def evaluate(self, text, *, dynamic=False, train_text=None, mixture=None, dyn_lr=None,
                 dyn_decay=None, dyn_seg=None, stats_cache=None):
        """Metrics over a text: loss (nats/char), bpc, perplexity, chars scored, and
        ``oov``: characters outside the vocabulary, which are dropped before scoring.

        dynamic: dynamic evaluation (models/scoring.py: the text read as one stream, in
        order) with step ``dyn_lr``, decay ``dyn_decay`` toward the trained weights and
        segments of ``dyn_seg`` characters (None: scoring.py's DYN_LR, DYN_DECAY,
        DYN_SEG); the gradient statistics come from ``train_text`` (the training split of
        it, ``config.val_frac`` held out), which it always needs — ``stats_cache``, a file
        path, only saves gathering them again when it holds them for these weights and
        that text (``gradient_stats``). Without ``dynamic`` those five are refused, not
        ignored. mixture: an NgramMixture (models/mixing.py) mixed in; with ``dynamic``
        its n-gram adapts too (a cache) and its λs are refitted on its validation tail
        under the same regime.

        The weights, the gradients and the train/eval mode are as they were afterwards;
        what the last forward kept for backward is not (a backward needs a new forward)."""
        if not isinstance(text, str):
            raise ConfigError(f"text must be a str, got {type(text).__name__}")
        self._check_mixture(mixture)
        given = [name for name, v in (("train_text", train_text), ("dyn_lr", dyn_lr), ("dyn_decay", dyn_decay),
                                      ("dyn_seg", dyn_seg), ("stats_cache", stats_cache)) if v is not None]
        if given and not dynamic:
            raise ConfigError(f"{given[0]} applies to dynamic evaluation: pass dynamic=True, or drop it")
        known = self.vocab.known(text)
        oov = len(text) - len(known)
        if len(known) < 2:
            raise DataError("the text has fewer than two characters the model knows")
        score = self._scorer(dynamic, train_text, dyn_lr, dyn_decay, dyn_seg, stats_cache)
        logp = score(known)
        if mixture is not None:
            logp_ng, ctx = mixture.ngram.logprobs(known, adapt=dynamic)
            if dynamic:
                mixture = mixture.adaptive(score)
            logp = mixture.mix(logp, logp_ng, ctx)
        return {**lm_metrics(float(-logp.mean()), len(known) - 1), "oov": oov}

    def _check_mixture(self, mixture):
        """ConfigError unless ``mixture`` is None or an NgramMixture over this model's
        characters (the n-gram's distributions are indexed by the same vocabulary)."""
        if mixture is None:
            return
        if not isinstance(mixture, NgramMixture):
            raise ConfigError(f"mixture must be an NgramMixture, got {type(mixture).__name__}")
        if "".join(mixture.ngram.vocab) != "".join(sorted(self.vocab.chars)):
            raise ConfigError("mixture: its n-gram's vocabulary is not this model's")

    def _scorer(self, dynamic, train_text, dyn_lr, dyn_decay, dyn_seg, stats_cache=None):
        """text (known characters) → per-position ln p, static or dynamic."""
        if not dynamic:
            return lambda t: static_logprobs(self, self.vocab.encode(t))
        return self._dynamic(train_text, dyn_lr, dyn_decay, dyn_seg, stats_cache)

    def _dynamic(self, train_text, dyn_lr, dyn_decay, dyn_seg, stats_cache):
        """text (known characters) → dynamic_logprobs(self, its ids, ...) with these settings
        (None: scoring.py's DYN_LR, DYN_DECAY, DYN_SEG) and the statistics gathered (or kept)
        for them; keyword arguments pass through (streams, restore)."""
        dyn_lr, dyn_decay, dyn_seg = (default if v is None else v for v, default in
                                      ((dyn_lr, DYN_LR), (dyn_decay, DYN_DECAY), (dyn_seg, DYN_SEG)))
        check_dynamic(dyn_lr, dyn_decay, dyn_seg)
        stats = self.gradient_stats(train_text, dyn_seg, cache=stats_cache)
        return lambda t, **kw: dynamic_logprobs(self, self.vocab.encode(t), stats, lr=dyn_lr, decay=dyn_decay,
                                                seg_len=dyn_seg, **kw)

    def adapt_to(self, prime, *, train_text, mixture=None, dyn_lr=None, dyn_decay=None, dyn_seg=None,
                 stats_cache=None):
        """Dynamic evaluation over ``prime`` (at least two known characters, read as one
        stream), the adapted weights kept: what ``rnnlab sample --dynamic`` does before
        sampling. The other arguments as in ``evaluate``. With ``mixture`` it returns the
        mixture to sample from, the one ``evaluate(dynamic=True, mixture=...)`` scores
        with: λs refitted on the validation tail under dynamic evaluation (from the
        trained weights) and an adapting n-gram, and a copy of the n-gram that has read
        the prime; the caller's mixture is unchanged. Without one it returns None.

        Each call adapts the trained weights: a second call first puts back the weights
        the first one started from — unless they were changed since (``fit``, an
        optimizer step), when the weights as they are count as the trained ones. (The
        model keeps that copy of the weights until the next call.) A call that raises —
        refused, diverged or interrupted — leaves the weights as they were before it."""
        self._check_mixture(mixture)
        if len(prime) < 2:
            raise DataError("dynamic evaluation adapts to the prime: it needs two characters or more")
        self.vocab.encode(prime)                      # unknown characters: refused before anything runs
        before, adapted = {k: p.copy() for k, p in self.params.items()}, getattr(self, "_adapted", None)
        try:
            self._undo_adaptation()
            score = self._dynamic(train_text, dyn_lr, dyn_decay, dyn_seg, stats_cache)
            if mixture is not None:
                mixture = mixture.adaptive(score)
                mixture.ngram = mixture.ngram.copy().read(prime)
            trained = {k: p.copy() for k, p in self.params.items()}
            score(prime, restore=False)               # one stream, the default
        except BaseException:
            for k, p in self.params.items():
                p[...] = before[k]
            self._adapted = adapted
            raise
        self._adapted = (weights_digest(self.params), trained)
        return mixture

    def _undo_adaptation(self):
        """The weights the last ``adapt_to`` started from, put back if the model still
        holds exactly the weights it left (else they were trained on since: kept)."""
        adapted, self._adapted = getattr(self, "_adapted", None), None
        if adapted is not None and weights_digest(self.params) == adapted[0]:
            for k, p in self.params.items():
                p[...] = adapted[1][k]

    def gradient_stats(self, train_text, seg_len=DYN_SEG, cache=None):
        """Dynamic evaluation's per-weight gradient statistics (scoring.GradientStats),
        gathered on the training split of ``train_text`` (``config.val_frac`` held out, as
        in training). ``cache``: a file path (stats_cache.path_for gives the one beside a
        checkpoint) that serves them when it holds them for exactly these weights, that
        text and ``seg_len``, and otherwise receives them (stats_cache.py)."""
        check_train_text(train_text)
        check_dynamic(DYN_LR, DYN_DECAY, seg_len)
        train = split_train_val(self.vocab.known(train_text), self.config.val_frac)[0]
        if len(train) < 2:
            raise DataError("the training text has fewer than two characters the model knows")
        ids = self.vocab.encode(train)
        if cache is not None:
            return cached_gradient_stats(self, ids, seg_len, cache)
        return gradient_stats(self, ids, seg_len=seg_len)

    # -- generation --------------------------------------------------------------------------
    def generate(self, length=200, *, temperature=1.0, top_k=0, prime="", seed=None, stream=None,
                 mixture=None):
        """Sample ``length`` characters after ``prime`` (which must use known characters).
        Without a prime the first character is drawn uniformly (char-rnn's behaviour).
        ``stream(ch)`` is called for every generated character. ``mixture``: sample from
        the NgramMixture of this model and its n-gram (temperature and top-k then apply
        to the mixed distribution's log-probabilities). Returns the new text."""
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
            raise ConfigError(f"length must be an integer >= 0, got {length!r}")
        self._check_mixture(mixture)
        check_sampling(temperature, top_k)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ConfigError(f"seed must be None or an integer >= 0, got {seed!r}")
        prime_ids = self.vocab.encode(prime) if prime else None
        rng = np.random.default_rng(seed)
        stepper = Stepper(self.rnn, self.head)
        V = len(self.vocab)
        if length == 0:
            return ""
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
        history = prime[:-1]             # + each character fed below
        for _ in range(length):
            logits = stepper.step(nxt)
            if mixture is not None:
                history = (history + self.vocab.chars[nxt])[-mixture.ngram.order:]
                p = np.exp(log_softmax(logits.astype(np.float64)))
                logits = np.log(np.maximum(mixture.distribution(p, history, self.vocab.chars), 1e-300))
            nxt = sample_next(logits, temperature, top_k, rng)
            out.append(nxt)
            if stream:
                stream(self.vocab.chars[nxt])
        return self.vocab.decode(out)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path, *, optimizer=None, state=None, meta=None, averages=None):
        """Write a checkpoint (see charlm_io.save_charlm)."""
        return save_charlm(self, path, optimizer=optimizer, state=state, meta=meta, averages=averages)

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
        Returns the training summary dict. Afterwards the model holds the last step's
        weights; with ``config.average`` the averaged ones — what was evaluated, and what
        best.npz and ``rnnlab eval``/``sample`` use — are ``model.averaged``, and
        ``CharLM.load(out_dir + "/best.npz")`` gives the best evaluated model."""
        from ..charlm_run import train_charlm
        from ..trainer import TrainConfig
        if train is None:
            train, kwargs = TrainConfig.from_kwargs(kwargs)
        return train_charlm(self, text, train, **kwargs)
