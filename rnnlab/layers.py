"""The feedforward part: Linear, activations as layers, Dropout, Embedding, Sequential,
and ``summary``.

Course notation: a neuron computes y = φ(Σ_i w_i x_i + b); a layer of them is
y = φ(x Wᵀ + b) with ``weight`` W of shape (out, in) and ``bias`` b of shape (out,),
exactly torch.nn.Linear's layout.
"""
from __future__ import annotations

import numpy as np

from . import activations as act
from .errors import ConfigError
from .init import uniform
from .module import Module, check_dtype, check_sizes, dropout_mask, forward_saved, make_rng, real_array


class Linear(Module):
    """y = x Wᵀ + b.  x: (..., in_features) → y: (..., out_features).

    Initialised as torch.nn.Linear: W, b ~ U(±1/√in_features).
    """

    saved = ("_x",)

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, seed=None):
        super().__init__()
        self.in_features, self.out_features = check_sizes("Linear", in_features=in_features,
                                                          out_features=out_features)
        self.dtype = check_dtype(dtype)
        rng = make_rng(seed)
        bound = 1.0 / np.sqrt(in_features)
        self.add_param("weight", uniform(rng, (out_features, in_features), bound, self.dtype))
        if bias:
            self.add_param("bias", uniform(rng, (out_features,), bound, self.dtype))
        self._x = None

    def forward(self, x):
        x = real_array(x, "Linear", self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ConfigError(f"Linear: expected input (..., {self.in_features}), got {x.shape}")
        self._x = x
        y = x @ self.params["weight"].T
        if "bias" in self.params:
            y += self.params["bias"]
        return y

    def backward(self, dy):
        x2 = forward_saved(self._x, "Linear").reshape(-1, self.in_features)
        dy = real_array(dy, "Linear.backward", self.dtype)
        dy2 = dy.reshape(-1, self.out_features)
        self.grads["weight"] += dy2.T @ x2
        if "bias" in self.params:
            self.grads["bias"] += dy2.sum(axis=0)
        return dy @ self.params["weight"]

    def multiplications(self, seq_len=1):
        return self.in_features * self.out_features


class _Activation(Module):
    saved = ("_y",)
    fn = None
    grad_from_output = None
    _y = None

    def forward(self, x):
        self._y = type(self).fn(real_array(x, type(self).__name__))
        return self._y

    def backward(self, dy):
        y = forward_saved(self._y, type(self).__name__)
        return real_array(dy, f"{type(self).__name__}.backward") * type(self).grad_from_output(y)


class Tanh(_Activation):
    fn = staticmethod(act.tanh)
    grad_from_output = staticmethod(act.tanh_grad_from_output)


class Sigmoid(_Activation):
    fn = staticmethod(act.sigmoid)
    grad_from_output = staticmethod(act.sigmoid_grad_from_output)


class ReLU(_Activation):
    fn = staticmethod(act.relu)
    grad_from_output = staticmethod(act.relu_grad_from_output)


class Softmax(Module):
    """Softmax over the last axis as a layer (for use with a loss on probabilities)."""

    saved = ("_y",)
    _y = None

    def forward(self, x):
        self._y = act.softmax(real_array(x, "Softmax"))
        return self._y

    def backward(self, dy):
        return act.softmax_backward(forward_saved(self._y, "Softmax"), real_array(dy, "Softmax.backward"))


class Dropout(Module):
    """Inverted dropout: in training mode each element is kept with probability 1−p and
    scaled by 1/(1−p); in eval mode the layer is the identity. The mask comes from
    ``module.dropout_mask`` and the layer's Generator ``rng`` (``seed``: an int, or a
    Generator to share, as CharLM shares its recurrent stack's), so runs are
    reproducible and a checkpoint can save the generator's state.

    ``locked_axis``: an axis along which one mask is shared — locked (variational)
    dropout; 0 for time-major (T, B, F) sequences draws one (1, B, F) mask per call,
    the same at every step. None (default): an independent draw for every element."""

    def __init__(self, p=0.5, seed=None, locked_axis=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"Dropout: p must be in [0, 1), got {p}")
        if locked_axis is not None and (isinstance(locked_axis, bool) or not isinstance(locked_axis, int)):
            raise ConfigError(f"Dropout: locked_axis must be an axis (int) or None, got {locked_axis!r}")
        self.p = float(p)
        self.locked_axis = locked_axis
        self.rng = make_rng(seed)
        self._mask = None

    def forward(self, x):
        x = real_array(x, "Dropout")
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        shape = list(x.shape)
        if self.locked_axis is not None:
            shape[self.locked_axis] = 1
        self._mask = dropout_mask(self.rng, tuple(shape), self.p, x.dtype)
        return x * self._mask

    def backward(self, dy):
        return dy if self._mask is None else dy * self._mask


class Embedding(Module):
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by integer ids.

    ids: (...) int → (..., embedding_dim). Equivalent to one-hot(ids) @ weight, done as
    a row gather. Initialised N(0, 1) as torch.nn.Embedding.
    """

    saved = ("_ids",)
    _ids = None

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float32, seed=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = check_sizes(
            "Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.dtype = check_dtype(dtype)
        rng = make_rng(seed)
        self.add_param("weight", rng.standard_normal((num_embeddings, embedding_dim)).astype(self.dtype))

    def forward(self, ids):
        ids = real_array(ids, "Embedding")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ConfigError("Embedding: ids must be integers")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ConfigError(f"Embedding: ids must lie in [0, {self.num_embeddings})")
        self._ids = ids
        return self.params["weight"][ids]

    def backward(self, dy):
        ids = forward_saved(self._ids, "Embedding").reshape(-1)
        dy = real_array(dy, "Embedding.backward")
        if dy.shape != (*self._ids.shape, self.embedding_dim):
            raise ConfigError(f"Embedding.backward: dy must have shape {(*self._ids.shape, self.embedding_dim)}, "
                              f"got {dy.shape}")
        np.add.at(self.grads["weight"], ids, dy.reshape(-1, self.embedding_dim))
        return None


class Sequential(Module):
    """Layers applied in order: children "0", "1", ..., so ``params`` has torch's keys
    ("0.weight", "2.bias")."""

    def __init__(self, *layers):
        super().__init__()
        self._layers = list(layers)
        for i, layer in enumerate(self._layers):
            self.add_child(str(i), layer)

    @property
    def layers(self):
        return self._layers

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)


def summary(model, seq_len=1, file=None):
    """Print (and return) a table of each layer's parameter count and the number of
    weight multiplications in one forward pass of one example (``seq_len`` time steps
    for recurrent layers). Elementwise products (gates, activations) are not counted,
    as in the course's count: for the net 1 → M → N → 1 this gives M + M·N + N."""
    layers = model.layers if isinstance(model, Sequential) else [model]
    rows = [("#", "layer", "params", "mults")]
    for i, layer in enumerate(layers):
        rows.append((str(i), _describe(layer), str(layer.num_parameters()),
                     str(layer.multiplications(seq_len))))
    total_p = sum(layer.num_parameters() for layer in layers)
    total_m = sum(layer.multiplications(seq_len) for layer in layers)
    rows.append(("", "total", str(total_p), str(total_m)))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines = ["  ".join(r[c].ljust(widths[c]) if c < 2 else r[c].rjust(widths[c]) for c in range(4))
             for r in rows]
    text = "\n".join(lines)
    print(text, file=file)
    return {"params": total_p, "mults": total_m, "text": text}


def _describe(layer):
    if isinstance(layer, Linear):
        return f"Linear({layer.in_features} -> {layer.out_features})"
    if isinstance(layer, Dropout):
        return f"Dropout(p={layer.p})"
    describe = getattr(layer, "describe", None)
    return describe() if describe else type(layer).__name__
