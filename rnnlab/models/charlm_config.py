"""The configuration of a character model: ``CharLMConfig`` (saved in every checkpoint),
the two reference ``PRESETS``, and what a configuration implies before anything is
built — its parameter shapes and the memory it needs — so that a bad option or a
hostile checkpoint is refused before allocating.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from ..errors import ConfigError
from ..memory import available_memory
from ..optim import make_optimizer

MODELS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MAX_VOCAB = 1 << 20          # distinct characters (Unicode has about 1.1 million code points)
MAX_LAYERS = 1024            # stacked layers: far beyond any char model, checked before per-layer work


@dataclass
class CharLMConfig:
    """Everything needed to rebuild and keep training a CharLM (saved in checkpoints).

    Defaults — GRU 2×256, dropout 0.25, with AWD-LSTM's regularisers (weight drop 0.25
    on W_hh, locked dropout, an average of the weights of decay 0.99), seq 64, batch 32,
    Adam 5e-3 — were chosen by benchmarks/charlm_defaults.py: candidates trained on the
    Metamorphosis story and tiny Shakespeare (train 90%, validated on the next 5%; the
    last 5%, where benchmarks/quality.py reports, untouched) for 300 s on 2 cores, two
    seeds; the rule fixed beforehand: the lowest mean validation bits/char over both
    corpora and the 60, 120, 180 and 300 s marks (benchmarks/results/charlm_defaults.jsonl).
    GRU + regularisers 2.106, GRU 2×256 dropout 0.25 without them 2.109; seed 0 only:
    LSTM 2×192 dropout 0.2 2.199, LSTM 2×128 (char-rnn's shape, Adam) 2.223, LSTM 2×256
    + regularisers 2.252, LSTM 2×256 dropout 0.25 (the previous default) 2.276. The
    GRU learns fastest in the first minute (the LSTMs sit near the unigram for longer);
    the regularisers keep the story improving after 120 s (1.78 against 1.89 at 300 s)
    and cost 0.03–0.08 on the 1 MB text at these budgets: on a large text,
    ``weight_drop=0, locked_dropout=False, average=0`` learns faster — ``for_text``
    (what ``rnnlab train`` uses) leaves them off above LARGE_TEXT characters, with
    dropout 0.1 (a fourth round, LARGE_TEXT_SETTING). A third round
    tried the winner's learning rate: 5e-3 against 3e-3, over the cells run (seed 0 to
    180 s, seed 1 to 300 s, both corpora), 2.096 against 2.123 — faster in the first
    two minutes, level by 300 s; 2e-3 was worse everywhere (seed 0, 180 s)."""
    model: str = "gru"
    hidden_size: int = 256
    num_layers: int = 2
    dropout: float = 0.25
    seq_len: int = 64
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 5e-3
    lr_decay: float = 1.0          # ×decay per epoch once lr_decay_after epochs are done (char-rnn)
    lr_decay_after: int = 10
    clip: float = 5.0
    clip_mode: str = "norm"        # "norm": global L2 norm; "value": clamp each entry (char-rnn)
    grad_reduction: str = "mean"   # "sum": gradient of the summed loss (min-char-rnn)
    val_frac: float = 0.1
    init: str = "torch"            # "torch": U(±1/√H); "char-rnn": U(±0.08), LSTM forget bias 1;
    #                                "min-char-rnn": weights N(0, 0.01²), biases 0
    seed: int = 0
    # Regularisation for small texts (AWD-LSTM, Merity et al. 2017):
    weight_drop: float = 0.25      # DropConnect on every W_hh, one mask per training window (0 = off)
    locked_dropout: bool = True    # ``dropout`` with one mask per window, shared by all its steps
    average: float = 0.99          # decay of an average of the weights used to evaluate, 0 = off

    def validate(self):
        """Check every field's type and range; raise ConfigError naming the field."""
        def bad(msg):
            raise ConfigError(msg)
        if self.model not in MODELS:
            bad(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        for name in ("hidden_size", "num_layers", "seq_len", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(f"{name} must be a positive integer, got {v!r}")
        if self.num_layers > MAX_LAYERS:            # before anything is built per layer
            bad(f"num_layers must be at most {MAX_LAYERS}, got {self.num_layers}")
        for name in ("lr_decay_after", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                bad(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("dropout", "lr", "lr_decay", "clip", "val_frac", "weight_drop", "average"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(f"{name} must be a finite number, got {v!r}")
        if not 0.0 <= self.dropout < 1.0:
            bad(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.weight_drop < 1.0:
            bad(f"weight_drop must be in [0, 1), got {self.weight_drop}")
        if not isinstance(self.locked_dropout, bool):
            bad(f"locked_dropout must be true or false, got {self.locked_dropout!r}")
        if not 0.0 <= self.average < 1.0:
            bad(f"average must be in [0, 1) (the decay of the weight average; 0 = off), got {self.average}")
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

    @classmethod
    def for_text(cls, n_chars, **fields):
        """The config for a training text of ``n_chars`` characters: ``fields`` as given,
        and where they do not name them, LARGE_TEXT_SETTING (the three regularisers off,
        dropout 0.1) for a text of more than LARGE_TEXT characters. ``rnnlab train``
        builds its config this way (see LARGE_TEXT for the measurements behind it)."""
        if isinstance(n_chars, bool) or not isinstance(n_chars, numbers.Integral) or n_chars < 0:
            raise ConfigError(f"n_chars must be an integer >= 0, got {n_chars!r}")
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown CharLMConfig field(s) {unknown}")
        auto = LARGE_TEXT_SETTING if n_chars > LARGE_TEXT else {}
        return cls(**{**auto, **fields}).validate()

    def optimizer_kwargs(self):
        kw = {"lr": self.lr}
        if self.optimizer == "rmsprop":
            kw["alpha"] = 0.95          # char-rnn's decay_rate
        return kw

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """A validated config from a dict (unknown keys are ignored, as older and newer
        checkpoints may carry them); ConfigError for anything else."""
        if not isinstance(d, dict):
            raise ConfigError(f"a configuration must be a JSON object, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        # a checkpoint older than the regularisers lacks their fields and had them off
        return cls(**{**REGULARISERS_OFF, **{k: v for k, v in d.items() if k in names}}).validate()


# AWD-LSTM's regularisers switched off: the presets' setting, what a checkpoint written
# before they existed (it has none of these fields) meant, and part of CharLMConfig.for_text's
# setting for a large text (LARGE_TEXT_SETTING).
REGULARISERS_OFF = {"weight_drop": 0.0, "locked_dropout": False, "average": 0.0}
# Above this many characters CharLMConfig.for_text leaves the regularisers off. Measured
# (benchmarks/results/charlm_defaults.jsonl, validation bits/char, 2 cores, 60-300 s): on
# the 1.1M-character tiny Shakespeare, which those budgets pass over ~5 times, GRU 2x256
# with them scored 0.03-0.08 worse than without (2.196/2.196 against 2.165/2.156 at
# 300 s, two seeds); on the 118k-character story, passed over ~50 times, they were worth
# 0.11 at 300 s (1.780/1.789 against 1.899/1.888). A sixth round measured three sizes
# between (tiny Shakespeare's first 300k, 450k and 600k characters, two seeds, the default's
# setting against LARGE_TEXT_SETTING, 60/120/180/300 s, means over the seeds): at 300k
# (read ~25 times in 300 s) 2.244/2.123/2.075/2.038 against 2.182/2.158/2.158/2.158 (the
# unregularised run stops improving after a minute), the regularised setting 0.044
# better on the mean of the marks; at 600k (~12 times) 2.402/2.272/2.211/2.157 against
# 2.316/2.203/2.183/2.174, the large-text setting 0.041 better; at 450k (~15 times)
# 2.220/2.083/2.030/1.983 against 2.169/2.062/2.040/2.039, level (0.0015 apart). So on
# the mean of the marks (the rule the defaults were chosen by) the break-even is near
# 450k, and the threshold is on the measured side; by the 300 s mark alone it would lie
# near 800k (the regularised setting ahead by 0.056 at 450k, 0.017 at 600k, behind by
# 0.03-0.04 at 1.1M).
# It is the number of passes that decides: a much longer run over a large text (or one on
# a faster machine) may want the regularisers on again. Without the regularisers, dropout 0.1
# beat 0.25 on the whole of tiny Shakespeare at every mark on both seeds (validation 2.391/2.236/2.191/2.133 and
# 2.400/2.239/2.196/2.146 against 2.447/2.272/2.226/2.153 and 2.433/2.290/2.218/2.157 at
# 60/120/180/300 s; dropout 0 on seed 0: 2.391/2.214/2.193/2.155, level with 0.1 on the mean).
LARGE_TEXT = 300_000
LARGE_TEXT_SETTING = {**REGULARISERS_OFF, "dropout": 0.1}

PRESETS = {
    # Karpathy's min-char-rnn.py: vanilla RNN, hidden 100, seq 25, batch 1, Adagrad 0.1,
    # gradients of the summed loss clamped to ±5.
    "min-char-rnn": dict(model="rnn", hidden_size=100, num_layers=1, dropout=0.0, seq_len=25,
                         batch_size=1, optimizer="adagrad", lr=0.1, lr_decay=1.0, clip=5.0,
                         clip_mode="value", grad_reduction="sum", init="min-char-rnn", **REGULARISERS_OFF),
    # karpathy/char-rnn train.lua defaults: LSTM 2×128, seq 50, batch 50, RMSProp 2e-3
    # (decay 0.95), lr ×0.97 per epoch after 10, clamp ±5, 5% validation, U(±0.08).
    "char-rnn": dict(model="lstm", hidden_size=128, num_layers=2, dropout=0.0, seq_len=50,
                     batch_size=50, optimizer="rmsprop", lr=2e-3, lr_decay=0.97, lr_decay_after=10,
                     clip=5.0, clip_mode="value", grad_reduction="mean", val_frac=0.05, init="char-rnn",
                     **REGULARISERS_OFF),
}


def param_shapes(config, vocab_size):
    """{parameter name: shape} of a CharLM with this configuration (as built by CharLM)."""
    G, H, V = GATES[config.model], config.hidden_size, vocab_size
    shapes = {}
    for k in range(config.num_layers):
        f_in = V if k == 0 else H
        shapes.update({f"rnn.weight_ih_l{k}": (G * H, f_in), f"rnn.weight_hh_l{k}": (G * H, H),
                       f"rnn.bias_ih_l{k}": (G * H,), f"rnn.bias_hh_l{k}": (G * H,)})
    shapes.update({"head.weight": (V, H), "head.bias": (V,)})
    return shapes


def memory_needed(config, vocab_size, itemsize=4, training=True, window=None):
    """Bytes a CharLM of this configuration needs, estimated from above: parameters,
    gradients and two optimizer slots; the float64 draw of the largest weight at
    initialisation; per-step activations and work arrays of a training window (or of
    ``window`` positions — steps × streams — run forward and backward at once, dynamic
    evaluation's segments); the evaluation batch (64 streams × 256 steps, log-probabilities
    in float64: static scoring holds 64 steps at a time, the rest is headroom); the weight
    average and weight-drop masks when those are on. With ``window`` also what dynamic
    evaluation holds beside: per weight θ₀, rates, steps, a work array and the kept
    gradients (itemsize each) and the float64 μ², σ², RMS and floored RMS; per position
    the float64 logits, log-softmax and softmax (a review measured 35-40 bytes a weight
    and ~40·V bytes a position, 2026-12-06, where this counted neither)."""
    shapes = param_shapes(config, vocab_size)
    P = sum(math.prod(s) for s in shapes.values())
    biggest = max(math.prod(s) for s in shapes.values())
    G, H, L, V = GATES[config.model], config.hidden_size, config.num_layers, vocab_size
    total = P * itemsize * (4 if training else 2) + biggest * 8 * 2
    if training or window:
        TB = config.seq_len * config.batch_size if window is None else window
        total += TB * itemsize * (L * (8 * G * H + 8 * H) + 4 * V)
    if window:
        total += P * (5 * itemsize + 4 * 8) + window * 3 * 8 * V
    if training:
        total += P * itemsize * (2 if config.average else 0)        # the average, a swap copy
        total += L * G * H * H * itemsize * (3 if config.weight_drop else 0)   # mask, W_used, dW_used
    total += 64 * 256 * (itemsize * L * (G * H + 4 * H) + 8 * 3 * V)
    return int(total)


def check_fits(config, vocab_size, itemsize=4, training=True, what="this configuration", window=None):
    """ConfigError unless ``memory_needed`` fits in ``available_memory``; ``window``: the
    positions run forward and backward at once, where ``what`` names what sets them."""
    need, have = memory_needed(config, vocab_size, itemsize, training, window), available_memory()
    if need > have:
        sizes = f"hidden_size={config.hidden_size}, num_layers={config.num_layers}"
        if training and window is None:       # the training window counts too
            sizes += f", batch_size={config.batch_size}, seq_len={config.seq_len}"
        raise ConfigError(f"{sizes}: {what} needs about {_amount(need)} of memory and "
                          f"{_amount(have)} are available; choose smaller sizes")


def _amount(n):
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"
