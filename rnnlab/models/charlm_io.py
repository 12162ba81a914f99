"""CharLM checkpoints: what a checkpoint holds and how it is checked before use.

    param/<name>          the weights (float32/float64, the config's shapes, all finite); in
                          best.npz of a run with weight averaging: the averaged weights
    avg/<name>            latest.npz of a run with weight averaging (config ``average``):
                          the averaged weights (param/ then holds the raw ones)
    optim/<name>/<slot>   optimizer slots (the parameter's shape), optim/__t__, optim/__lr__
    state/h, state/c      the hidden state carried between training windows (L, N·B, H):
                          B streams (config batch_size) on each of ``workers`` N ranks
    metadata              kind "CharLM", config, vocab, dtype, and the training counters

``load_charlm`` trusts nothing in the file: the metadata is checked against a schema
(types, ranges, the vocabulary's size), the configuration against the memory it would
need, every array's header against the shape and dtype the configuration implies —
all before the model is built or an array is read — and then every array read is
checked to be finite. Anything wrong is a ``CheckpointError`` (one line, exit 2 in
the CLI). ``check_training_state`` does the same for the counters a resume uses.

A checkpoint with "avg/" arrays loads with the averaged weights as the model's weights
(the weights to evaluate and sample with); loaded ``with_training_state``, the model
holds the raw weights and ``model.averaged`` the averages, for an exact resume.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np

from .. import checkpoint
from ..data.text import SURROGATE, Vocab
from ..errors import CheckpointError, ConfigError, DataError
from ..memory import available_memory
from .charlm_config import MAX_VOCAB, CharLMConfig, check_fits, param_shapes

FLOATS = (np.float32, np.float64)
SLOTS = {"velocity", "sum_sq", "square_avg", "exp_avg", "exp_avg_sq"}
INT_COUNTERS = ("step", "epoch", "bad_evals", "chars_seen", "last_eval_step", "steps_per_epoch", "high_steps")
FLOAT_COUNTERS = ("best_val", "initial_loss", "smooth_loss", "elapsed")


def weights_digest(params):
    """SHA-256 (hex) of a model's weights — every name, dtype, shape and byte: what a file
    kept beside a checkpoint (dynamic evaluation's statistics, the n-gram mixture's λs)
    was computed for."""
    h = hashlib.sha256()
    for name, p in sorted(params.items()):
        h.update(f"{name} {p.dtype.str} {p.shape}\n".encode())
        h.update(np.ascontiguousarray(p).data)
    return h.hexdigest()


def save_charlm(model, path, *, optimizer=None, state=None, meta=None, averages=None):
    """Write ``model`` (and, for a resumable checkpoint, the optimizer state, the carried
    hidden state and the averaged weights) to ``path`` atomically."""
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    if averages is not None:
        arrays.update({f"avg/{k}": v for k, v in averages.items()})
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    if state is not None:
        h, c = state if isinstance(state, tuple) else (state, None)
        arrays["state/h"] = h
        if c is not None:
            arrays["state/c"] = c
    header = {"kind": "CharLM", "config": model.config.to_dict(), "vocab": model.vocab.chars,
              "dtype": model.dtype.name, **(meta or {})}
    return checkpoint.save(path, arrays, header)


def _finite(path, name, a):
    if not np.isfinite(a).all():
        raise CheckpointError(f"{path}: array {name!r} holds NaN or infinite values "
                              f"(a diverged or damaged run); use an earlier checkpoint")
    return a


# No trained model comes near this; a weight of float32's ±3.4e38 overflows the first product
# (NaN scores, NaN in JSON), and at ≤ 1e15 a forward pass of any size memory allows stays finite.
MAX_ABS_WEIGHT = 1e15
# the optimizer's slots (sums and averages of squared gradients among them) and the carried
# state: far beyond any training's, and far enough below float32's 3.4e38 that the next
# update stays finite (a forged 3e38 slot gave a page of overflow warnings and a "divergence")
MAX_ABS_STATE = 1e30


def loadable(arrays, bound=MAX_ABS_WEIGHT):
    """True where every array of ``arrays`` ({name: array}) is one ``load_charlm`` accepts:
    finite and within ±``bound`` (MAX_ABS_WEIGHT for weights, MAX_ABS_STATE for the
    training state; training saves nothing it would refuse to load)."""
    return all(np.isfinite(a).all() and _bounded(a, bound) for a in arrays.values())


def _bounded(a, bound):
    """Every entry within ±bound (min and max: no temporary array)."""
    return not a.size or (a.max() <= bound and a.min() >= -bound)


def _weights(path, name, a, bound=MAX_ABS_WEIGHT):
    _finite(path, name, a)
    if not _bounded(a, bound):
        raise CheckpointError(f"{path}: array {name!r} holds values beyond ±{bound:g}, which no "
                              f"trained model has (a damaged or forged checkpoint)")
    return a


def load_charlm(cls, path, *, with_training_state=False):
    """Build a ``cls`` (CharLM) from the checkpoint at ``path``; see the module docstring."""
    with checkpoint.Checkpoint(path) as ck:
        meta, members = ck.meta, ck.members
        if meta.get("kind") != "CharLM":
            raise CheckpointError(f"{path}: not a CharLM checkpoint (kind {meta.get('kind')!r})")
        try:
            config = CharLMConfig.from_dict(meta.get("config"))
        except ConfigError as e:
            raise CheckpointError(f"{path}: damaged checkpoint metadata (config: {e})") from None
        chars = meta.get("vocab")
        if not isinstance(chars, str) or not 0 < len(chars) <= MAX_VOCAB:
            raise CheckpointError(f"{path}: damaged checkpoint metadata (vocab)")
        try:
            vocab = Vocab(chars)
        except DataError as e:
            raise CheckpointError(f"{path}: damaged checkpoint metadata (vocab: {e})") from None
        if meta.get("dtype", "float32") not in ("float32", "float64"):
            raise CheckpointError(f"{path}: damaged checkpoint metadata (dtype {meta.get('dtype')!r})")
        dtype = np.dtype(meta.get("dtype", "float32"))
        try:
            check_fits(config, len(vocab), dtype.itemsize, training=with_training_state,
                       what="the model this checkpoint describes")
        except ConfigError as e:
            raise CheckpointError(f"{path}: {e}") from None
        shapes = param_shapes(config, len(vocab))
        workers = meta.get("workers", 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1 << 20:
            raise CheckpointError(f"{path}: damaged checkpoint metadata (workers {workers!r})")
        carried = (2 if config.model == "lstm" else 1) * config.num_layers * config.batch_size * workers * \
            config.hidden_size * 8
        if with_training_state and carried > available_memory():     # state/h is (L, workers·B, H)
            raise CheckpointError(f"{path}: its carried state ({workers:,} workers × batch {config.batch_size}) "
                                  f"would need {carried / 2**30:,.1f} GiB")
        _check_members(path, members, shapes, config, with_training_state, workers)
        params = {k: _weights(path, k, ck.read(f"param/{k}", s, FLOATS)) for k, s in shapes.items()}
        averaged = None
        if f"avg/{next(iter(shapes))}" in members:
            averaged = {k: _weights(path, f"avg/{k}", ck.read(f"avg/{k}", s, FLOATS))
                        for k, s in shapes.items()}
            if not with_training_state:
                params, averaged = averaged, None       # the weights to use
        opt_state, state = None, None
        if with_training_state:
            opt_state = {}
            for name, (_, shape) in members.items():
                if name.startswith("optim/"):
                    allowed = (np.int64,) if name == "optim/__t__" else FLOATS
                    a = ck.read(name, shape, allowed)      # a slot bounded; the step count and lr finite
                    opt_state[name[len("optim/"):]] = (_finite(path, name, a) if name in ("optim/__t__", "optim/__lr__")
                                                       else _weights(path, name, a, MAX_ABS_STATE))
            if "state/h" in members:
                h = _weights(path, "state/h", ck.read("state/h", members["state/h"][1], FLOATS), MAX_ABS_STATE)
                state = h
                if "state/c" in members:
                    state = (h, _weights(path, "state/c", ck.read("state/c", members["state/c"][1], FLOATS),
                                         MAX_ABS_STATE))
    for k in ("text_source", "text_fingerprint", "text_encoding"):    # a file name, a hash, a codec name
        v = meta.get(k)
        if v is not None and (not isinstance(v, str) or len(v) > 4096 or SURROGATE.search(v)):
            raise CheckpointError(f"{path}: damaged checkpoint metadata ({k} = {v!r:.80})")
    model = cls(vocab, config, dtype=dtype)
    model.load_state_dict(params)
    model.meta = {k: v for k, v in meta.items() if k not in ("config", "vocab")}
    model.averaged = averaged
    if not with_training_state:
        return model
    return model, opt_state, state


def _check_members(path, members, shapes, config, with_training_state, workers=1):
    """Every member's header against what the configuration implies (no data read)."""
    def expect(name, shape, dtypes=FLOATS):
        got = members.get(name)
        if got is None:
            raise CheckpointError(f"{path}: array {name!r} is missing")
        dtype, got_shape = got
        if got_shape != tuple(shape) or not any(dtype == np.dtype(d) for d in dtypes):
            raise CheckpointError(f"{path}: array {name!r} is {dtype} {got_shape}, expected "
                                  f"{' or '.join(np.dtype(d).name for d in dtypes)} {tuple(shape)}")
    for k, s in shapes.items():
        expect(f"param/{k}", s)
    L, H, B = config.num_layers, config.hidden_size, config.batch_size * workers
    for name, (dtype, shape) in members.items():
        if name == "__meta__" or (name.startswith("param/") and name[6:] in shapes):
            continue
        if name.startswith("optim/"):
            key = name[len("optim/"):]
            if key in ("__t__", "__lr__"):
                expect(name, (), (np.int64,) if key == "__t__" else FLOATS)
                continue
            pname, _, slot = key.rpartition("/")
            if pname not in shapes or slot not in SLOTS:
                raise CheckpointError(f"{path}: unexpected array {name!r}")
            expect(name, shapes[pname])
        elif name.startswith("avg/"):
            if not config.average:
                raise CheckpointError(f"{path}: unexpected array {name!r} (its configuration "
                                      f"does not average the weights)")
            if name[len("avg/"):] not in shapes:
                raise CheckpointError(f"{path}: unexpected array {name!r}")
            expect(name, shapes[name[len("avg/"):]])
        elif name in ("state/h", "state/c"):
            if name == "state/c" and config.model != "lstm":
                raise CheckpointError(f"{path}: unexpected array {name!r} (only an LSTM has a cell state)")
            expect(name, (L, B, H))
        else:
            raise CheckpointError(f"{path}: unexpected array {name!r}")
    if with_training_state and not any(n.startswith("optim/") for n in members):
        raise CheckpointError(f"{path}: holds no training state (optimizer); resume from a run "
                              f"directory or its latest.npz, not best.npz")
    if with_training_state:
        for key in ("optim/__t__", "optim/__lr__"):
            if key not in members:
                raise CheckpointError(f"{path}: array {key!r} is missing")
    if config.model == "lstm" and ("state/h" in members) != ("state/c" in members):
        raise CheckpointError(f"{path}: an LSTM's carried state needs both state/h and state/c")
    if any(n.startswith("avg/") for n in members) or (with_training_state and config.average):
        for k in shapes:                      # the averages: all of them or none
            expect(f"avg/{k}", shapes[k])


def training_encoding(meta):
    """The encoding the run's training text was read in ("utf-8" for a checkpoint from
    before it was kept, or a run on the default corpus); CheckpointError for a non-string."""
    v = meta.get("text_encoding")
    if v is None:
        return "utf-8"
    if not isinstance(v, str) or not v or len(v) > 64:
        raise CheckpointError(f"the checkpoint's text_encoding is damaged ({v!r})")
    return v


def saved_cadence(meta):
    """(eval_every, patience) the run was trained with, each an int ≥ 1 or None (a run
    without them, or a checkpoint from before they were kept). CheckpointError otherwise."""
    out = []
    for k in ("eval_every", "patience"):
        v = meta.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < 2 ** 53):
            raise CheckpointError(f"the checkpoint to resume has damaged training state ({k} = {v!r})")
        out.append(v)
    return tuple(out)


def check_training_state(meta, steps_per_epoch):
    """The counters of a resumable checkpoint (``model.meta``), type- and range-checked
    against the text being resumed (``steps_per_epoch`` batches per epoch); returns the
    generator states to restore. CheckpointError otherwise."""
    def bad(what):
        raise CheckpointError(f"the checkpoint to resume has damaged training state ({what})")
    for k in INT_COUNTERS:
        v = meta.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            bad(f"{k} = {v!r}")
    for k in FLOAT_COUNTERS:
        v = meta.get(k, 0.0 if k == "elapsed" else None)     # a number, or None where nothing was measured yet
        if v is None and k != "elapsed":
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            bad(f"{k} = {v!r}")             # (a loss is ≥ 0: exactly 0 for a one-character vocabulary)
    pos = meta.get("pos", 0)
    if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < steps_per_epoch:
        bad(f"pos = {pos!r}, expected 0 ≤ pos < {steps_per_epoch}")
    if meta.get("steps_per_epoch", steps_per_epoch) != steps_per_epoch:
        bad(f"steps_per_epoch {meta.get('steps_per_epoch')} does not match this text's {steps_per_epoch}")
    rngs = meta.get("rngs") or ({"rnn": meta["dropout_rng"]} if "dropout_rng" in meta else {})
    if not isinstance(rngs, dict):
        bad("rngs")
    for name, st in rngs.items():
        try:
            np.random.Generator(np.random.PCG64()).bit_generator.state = st
        except (TypeError, ValueError, KeyError, OverflowError):
            bad(f"generator state of {name!r}")
    return rngs
