"""The module tree every rnnlab layer and model is built from.

    module.params           dict[str, array]: its own parameters, then each child's under
                            "<child>.<key>" (torch's dotted keys: "rnn.weight_ih_l0", "0.bias")
    module.grads            the same keys and shapes; backward ACCUMULATES (+=)
    module.zero_grad()
    y  = module.forward(x)  caches what backward needs
    dx = module.backward(dy) adds into grads, returns dL/dx
    module.train() / .eval(), state_dict() / load_state_dict(), rng_states()

A module owns its parameters (``add_param``) and its children: assigning a Module to
an attribute makes it a child under that name, as in torch.nn (``add_child`` does the
same for names that are not identifiers, such as Sequential's "0", "1"). Everything
that concerns the whole model — the flat parameter and gradient dicts, zero_grad,
the train/eval mode, state_dict, and the random generators a checkpoint must save —
is derived from the tree here, in one place. The dicts hold the children's own arrays
(never copies), so an optimizer's in-place update reaches every layer.

Modules that draw random numbers (dropout) keep their Generator in ``self.rng``;
``rng_states()`` collects their states by module path for checkpoints.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import ConfigError


class Module:
    """Base class: a node of the module tree (see the module docstring)."""

    saved = ()      # the attributes in which forward keeps what backward needs (forget_forward)

    def __init__(self):
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_grads", {})
        object.__setattr__(self, "_children", {})
        self.training = True

    # -- the tree -------------------------------------------------------------------
    def __setattr__(self, name, value):
        children = self.__dict__.get("_children")
        if children is not None and not name.startswith("_"):
            if isinstance(value, Module):
                children[name] = value
            else:
                children.pop(name, None)
        object.__setattr__(self, name, value)

    def add_child(self, name, module):
        """Register ``module`` as the child ``name`` (any string without a dot)."""
        if "." in name:
            raise ConfigError(f"child names cannot contain '.', got {name!r}")
        self._children[name] = module
        return module

    def add_param(self, name, value):
        """Own parameter ``name`` with a zero gradient of the same shape."""
        self._params[name] = value
        self._grads[name] = np.zeros_like(value)
        return value

    def children(self):
        return list(self._children.values())

    def named_modules(self, prefix=""):
        """(path, module) for this module and every descendant, depth first."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def _collect(self, attr):
        own = getattr(self, attr)
        if not self._children:
            return own
        out = dict(own)
        for name, child in self._children.items():
            for k, v in child._collect(attr).items():
                out[f"{name}.{k}"] = v
        return out

    @property
    def params(self):
        return self._collect("_params")

    @property
    def grads(self):
        return self._collect("_grads")

    def forget_forward(self):
        """Drop what every forward in the tree kept for its backward, so that a backward
        raises until the next forward: an evaluation runs forwards of its own, and a
        backward after it would otherwise pair the caller's output gradient with the
        evaluation's activations. (Dropout keeps no activations: after an eval-mode
        forward its backward is the identity, as it should be, and it lists nothing.)"""
        for _, m in self.named_modules():
            for name in m.saved:
                setattr(m, name, None)

    def zero_grad(self):
        for _, m in self.named_modules():
            for g in m._grads.values():
                g.fill(0)

    def flatten_grads(self, align=16):
        """Make every gradient array a view of one contiguous 1-D buffer, which is returned
        (each array starts at a multiple of ``align`` elements; the gaps stay zero). The
        values are kept and backward still adds into the same arrays, so a data-parallel
        all-reduce can sum one buffer in place (parallel.py). All gradients share one dtype."""
        modules = list({id(m): m for _, m in self.named_modules()}.values())
        owners = [(m, k, g) for m in modules for k, g in m._grads.items()]
        dtypes = {g.dtype for _, _, g in owners}
        if len(dtypes) != 1:
            raise ConfigError(f"flatten_grads: gradients of one dtype needed, got {sorted(map(str, dtypes))}")
        sizes = [-(-g.size // align) * align for _, _, g in owners]
        flat = np.zeros(sum(sizes), dtype=dtypes.pop())
        offset = 0
        for (m, k, g), size in zip(owners, sizes):
            view = flat[offset:offset + g.size].reshape(g.shape)
            view[...] = g
            m._grads[k] = view
            offset += size
        return flat

    def num_parameters(self):
        return int(sum(p.size for p in self.params.values()))

    def multiplications(self, seq_len=1):
        """Weight multiplications (multiply-adds) in one forward pass of one example."""
        return sum(c.multiplications(seq_len) for c in self._children.values())

    # -- modes ------------------------------------------------------------------------
    def train(self, mode=True):
        for _, m in self.named_modules():
            m.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    # -- random generators --------------------------------------------------------------
    def rng_states(self):
        """{module path: bit-generator state} of every Generator in the tree (``.rng``),
        each once (children may share their parent's generator)."""
        seen, out = set(), {}
        for path, m in self.named_modules():
            rng = m.__dict__.get("rng")
            if isinstance(rng, np.random.Generator) and id(rng) not in seen:
                seen.add(id(rng))
                out[path] = rng.bit_generator.state
        return out

    def load_rng_states(self, states):
        """Restore what ``rng_states`` returned (unknown paths raise ConfigError)."""
        modules = dict(self.named_modules())
        for path, state in states.items():
            m = modules.get(path)
            if m is None or not isinstance(m.__dict__.get("rng"), np.random.Generator):
                raise ConfigError(f"no random generator at module path {path!r}")
            m.rng.bit_generator.state = state

    # -- weights in and out ---------------------------------------------------------------
    def state_dict(self):
        """Copies of the parameters under their dotted keys."""
        return {k: v.copy() for k, v in self.params.items()}

    def load_state_dict(self, state):
        """Copy arrays in, key by key. Keys and shapes must match exactly; any real floating
        dtype is accepted and cast to the parameter's dtype (as torch does); anything else
        raises ConfigError naming the key. Nothing is copied unless everything matches."""
        params = self.params
        missing = [k for k in params if k not in state]
        extra = [k for k in state if k not in params]
        if missing:
            raise ConfigError(f"load_state_dict: missing key(s) {missing}")
        if extra:
            raise ConfigError(f"load_state_dict: unexpected key(s) {extra}")
        for k, p in params.items():
            v = np.asarray(state[k])
            if v.shape != p.shape:
                raise ConfigError(f"load_state_dict: key {k!r} has shape {v.shape}, expected {p.shape}")
            if not np.issubdtype(v.dtype, np.floating):
                raise ConfigError(f"load_state_dict: key {k!r} has dtype {v.dtype}, expected a float array")
        for k, p in params.items():
            np.copyto(p, np.asarray(state[k]), casting="unsafe")
        return self


def check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ConfigError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def real_array(x, who, dtype=None):
    """``x`` as an array of real numbers (bools, integers or floats), converted to
    ``dtype`` where given. Anything else — strings, complex numbers, objects, ragged
    nested lists — is a ConfigError naming ``who``, where NumPy would raise its own error
    or drop an imaginary part with only a warning."""
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{who}: expected an array of numbers, got {type(x).__name__} ({e})") from None
    if a.dtype.kind not in "biuf":
        raise ConfigError(f"{who}: expected real numbers, got an array of {a.dtype}")
    return a if dtype is None else a.astype(dtype, copy=False)


def forward_saved(saved, who):
    """What ``who``'s forward kept for its backward; RuntimeError when forward has not run
    (``saved`` still None) or ``forget_forward`` dropped it."""
    if saved is None:
        raise RuntimeError(f"{who}.backward called before forward (or after an evaluation, which keeps "
                           f"nothing for backward: run forward again)")
    return saved


def finite_real(v):
    """True for a finite real number (an int, a float, a NumPy scalar, a Fraction; not a
    bool, not a string; an int too large for a float is not finite): the check of the
    tasks' options and of scoring's and sampling's numbers."""
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def check_sizes(who, **sizes):
    """Each size a positive int (bools and floats such as 8.5 refused); returns them.
    ``who`` prefixes the error (None: the size's name comes first, as the CLI's flags do)."""
    out = []
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"{who + ': ' if who else ''}{name} must be a positive integer, got {v!r}")
        out.append(int(v))
    return out


def make_rng(seed):
    """A Generator from a seed, or the Generator itself if one is passed."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def dropout_mask(rng, shape, p, dtype):
    """Inverted-dropout mask: each entry 1/(1−p) with probability 1−p, else 0 — drawn as
    uniform < 1−p from ``rng``. The one source of dropout masks in rnnlab."""
    keep = 1.0 - p
    return (rng.random(shape) < keep).astype(dtype) / keep
