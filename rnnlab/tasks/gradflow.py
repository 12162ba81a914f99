"""``gradflow`` — the vanishing and exploding gradient lab.

For a sequence of length T and the error E_T at the last step only (the adding
problem's squared error), BPTT sums the contributions of every earlier state; the
size of each is ‖∂E_T/∂h_t‖. It is computed by running the model's own cell step by
step (``cells.py``) and recording dL/dh_t on the way back (batch-averaged L2 norm),
for RNN, LSTM and GRU at initialisation and after training on the adding problem.
"lstm_fb1" is the LSTM with its forget-gate bias set to 1 (char-rnn's and Jozefowicz
et al.'s choice): with torch's default init the forget gate starts near σ(0) = ½, so
the cell's gradient path shrinks by about ½ per step, as fast as the Elman RNN's.

Exploding gradients: an Elman RNN whose recurrent matrix is scaled to spectral
radius ``explode_radius`` (default 3) is trained by plain SGD with and without
gradient clipping (global norm 1) — SGD, because Adam's step does not grow with the
gradient, which would hide the explosion. Reported: ‖∂E_T/∂h_t‖ at initialisation
(at the default sizes it grows backwards in time; how fast depends on the hidden
size and T, and a small layer can shrink instead), and for each run every step's
gradient norm as it was (infinite where it overflowed float64: then clipping scales
the step to nothing, as torch's does), how many overflowed, the largest finite norm,
the size of the first update (None when it overflowed) and the final loss.
"""
from __future__ import annotations

import numpy as np

from ..cells import GRUCell, LSTMCell, RNNCell
from ..data.synthetic import adding_problem
from ..losses import mse
from ..models.seq import SeqNet, check_fits, fit
from .common import budget, check_options, pyplot, save
from ..errors import ConfigError

CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def _mean_norm(dL_dh):
    """The mean over the batch of each example's ‖∂E_T/∂h_t‖, from dL/dh_t (B, H) of the
    batch-mean loss L = mean_b E_T(b): row b is ∂E_T(b)/∂h_t divided by B."""
    B = dL_dh.shape[0]
    return float(np.linalg.norm(dL_dh * B, axis=-1).mean())


def state_gradient_norms(net, x, y):
    """‖∂E_T/∂h_t‖ for t = 0..T (h_0 the initial state), E_T = one example's loss at the
    last step, averaged over the batch (a batch of 8 or 128 gives about the same numbers)."""
    layer, kind = net.body, net.kind
    cell = CELLS[kind](layer.input_size, layer.hidden_size, dtype=layer.dtype)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in layer.params.items() if k.endswith("_l0")})
    T = x.shape[1]
    state, caches = None, []
    for t in range(T):
        state, cache = cell.step(x[:, t], state)
        caches.append(cache)
    h_T = state[0] if kind == "lstm" else state
    _, dy = mse(net.head.forward(h_T), y)
    dh = net.head.backward(dy)
    dstate = (dh, np.zeros_like(dh)) if kind == "lstm" else dh
    norms = [0.0] * (T + 1)
    norms[T] = _mean_norm(dh)
    for t in reversed(range(T)):
        _, dstate = cell.backward_step(dstate, caches[t])
        norms[t] = _mean_norm(dstate[0] if kind == "lstm" else dstate)
    return norms


def run(model="all", seed=0, max_steps=None, time_limit=None, length=50, hidden_size=32,
        batch_size=32, explode_radius=3.0, progress=None):
    """``model``: rnn, lstm, gru, or all (the three and lstm_fb1); the adding problem at
    ``length`` steps (inputs (B, length, 2), B = ``batch_size``), ``hidden_size`` units;
    ``explode_radius`` > 0: the spectral radius the exploding RNN's W_hh is scaled to.
    Returns the norms per t (length + 1 values, t = 0 the initial state) at init and
    trained, and the exploding experiment (see the module docstring)."""
    budget(max_steps, time_limit, 300)           # the options checked as given
    check_options(sizes=dict(length=length, hidden_size=hidden_size, batch_size=batch_size),
                  positive=dict(explode_radius=explode_radius))
    kinds = ["rnn", "lstm", "lstm_fb1", "gru"] if model == "all" else [model]
    # a time limit is the whole task's: split among its trainings (each model, then the
    # exploding RNN unclipped and clipped); max_steps is per training
    train_cfg = budget(max_steps, None if time_limit is None else time_limit / (len(kinds) + 2), 300)
    if any(k.replace("_fb1", "") not in CELLS for k in kinds):
        raise ConfigError("gradflow compares model rnn, lstm, gru or all")
    # twice the layer's positions: state_gradient_norms keeps a cell's cache per step beside them (a review's
    # --length 18000 peaked at 3.39 GiB where one count estimated 3.03, and 21500 ran out of memory)
    check_fits("lstm" if model == "all" else model, 2, hidden_size, 1, 2 * batch_size * length,
               hidden_size=hidden_size, length=length)
    rng = np.random.default_rng(seed)
    x, y = adding_problem(np.random.default_rng(seed + 1), batch_size, length)
    table = {}
    for kind in kinds:
        net = SeqNet(kind.replace("_fb1", ""), 2, hidden_size, 1, seed=seed)
        if kind == "lstm_fb1":
            H = hidden_size
            net.body.params["bias_ih_l0"][H:2 * H] = 1.0
            net.body.params["bias_hh_l0"][H:2 * H] = 0.0
        with np.errstate(over="ignore", invalid="ignore"):        # long T: norms may overflow
            at_init = state_gradient_norms(net, x, y)
            fit(net, lambda s: adding_problem(rng, batch_size, length), mse, train=train_cfg, lr=1e-2,
                progress=progress)
            trained = state_gradient_norms(net, x, y)
        table[kind] = {"init": at_init, "trained": trained,
                       "ratio_first_to_last_init": at_init[0] / max(at_init[-1], 1e-300),
                       "ratio_first_to_last_trained": trained[0] / max(trained[-1], 1e-300)}

    exploding = {"radius": explode_radius}
    for clip in (0.0, 1.0):
        net = SeqNet("rnn", 2, hidden_size, 1, seed=seed)
        w = net.body.params["weight_hh_l0"]
        w *= explode_radius / max(np.abs(np.linalg.eigvals(w)).max(), 1e-12)
        erng = np.random.default_rng(seed + 2)
        lr = 0.05
        with np.errstate(over="ignore", invalid="ignore"):
            if clip == 0.0:
                exploding["state_grad_norms_init"] = state_gradient_norms(net, x, y)
            hist = fit(net, lambda s: adding_problem(erng, batch_size, length), mse, train=train_cfg, lr=lr,
                       clip=clip, optimizer="sgd")
        norms = [float(g) for g in hist["grad_norms"]]
        finite = [g for g in norms if np.isfinite(g)]
        first = norms[0] if norms else float("nan")
        exploding["clipped" if clip else "unclipped"] = {
            "max_grad_norm": max(finite) if finite else None,
            "overflowed_steps": len(norms) - len(finite),
            "first_update_norm": lr * (min(first, clip) if clip else first) if np.isfinite(first) else None,
            "final_loss": float(np.mean(hist["losses"][-20:])) if hist["losses"] else None,
            "steps": hist["steps"], "grad_norms": norms}
    return {"task": "gradflow", "length": length, "table": table, "exploding": exploding,
            "metrics": {k: {"ratio_first_to_last_init": v["ratio_first_to_last_init"],
                            "ratio_first_to_last_trained": v["ratio_first_to_last_trained"]}
                        for k, v in table.items()},
            "_plot": {}}


def plot(result, path):
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    for kind, v in result["table"].items():
        line, = a.plot(v["init"], ls="--", label=f"{kind} at init")
        a.plot(v["trained"], c=line.get_color(), label=f"{kind} trained")
    a.set_yscale("log")
    a.set_xlabel("t")
    a.set_ylabel("‖∂E_T/∂h_t‖")
    a.set_title(f"gradient reaching each step (T = {result['length']})")
    a.legend(fontsize=8)
    for name in ("unclipped", "clipped"):
        v = result["exploding"][name]
        finite = np.where(np.isfinite(v["grad_norms"]), v["grad_norms"], np.nan)     # log axis: no inf
        b.plot(finite, label=f"{name}: final loss {v['final_loss']:.3g}")
    b.set_yscale("log")
    b.set_xlabel("training step")
    b.set_ylabel("gradient norm (before clipping)")
    b.set_title(f"RNN, recurrent spectral radius {result['exploding']['radius']:g}, SGD")
    b.legend()
    return save(fig, path)
