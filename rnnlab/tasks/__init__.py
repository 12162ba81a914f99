"""The course applications as runnable tasks (``rnnlab task NAME`` or ``run_task``).

    detect      the sequence (word) detector
    forecast    time-series forecasting on real data
    classify    digits read row by row, many-to-one
    adding      H&S (1997) adding problem at length T
    order       H&S (1997) temporal-order problem at length T
    gradflow    vanishing/exploding gradients: ‖∂E_T/∂h_t‖ for every t
    univariate  the two-weight RNN and the exponentially weighted moving average

Each returns a dict: the task's metrics for the model and for each baseline under
"metrics", training facts under "training", plus plot data under "_plot".
"""
from __future__ import annotations

import os
from functools import partial

from . import classify, detect, forecast, gradflow, longlag, univariate
from ..errors import ConfigError

TASKS = {
    "detect": (detect.run, detect.plot),
    "forecast": (forecast.run, forecast.plot),
    "classify": (classify.run, classify.plot),
    "adding": (partial(longlag.run, "adding"), longlag.plot),
    "order": (partial(longlag.run, "order"), longlag.plot),
    "gradflow": (gradflow.run, gradflow.plot),
    "univariate": (univariate.run, univariate.plot),
}


def run_task(name, plot=None, **options):
    """Run a task by name; with ``plot`` a PNG file path, also draw its figure."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    run, draw = TASKS[name]
    if plot:
        if not str(plot).lower().endswith(".png") or os.path.isdir(plot):
            raise ConfigError(f"plot must be the path of a .png file, got {plot!r}")
        if os.path.lexists(plot) and (os.path.islink(plot) or not os.path.isfile(plot)):
            raise ConfigError(f"plot {plot!r} exists and is not a plain file (a link, a FIFO, a device): "
                              f"the figure replaces only a plain file")
        folder = os.path.dirname(os.path.abspath(plot))
        if not (os.path.isdir(folder) and os.access(folder, os.W_OK)):     # before training, not after
            raise ConfigError(f"plot: cannot write into {folder!r} (no such folder, or not writable)")
        from .common import pyplot
        pyplot()                      # fail before training if matplotlib is missing
    result = run(**options)
    if plot:                      # None where a training ended before its first step: no curve to draw
        result["plot"] = plot if all(_steps(result)) else None
        if result["plot"]:
            draw(result, plot)
    return result


def _steps(result):
    """Every "steps" count in a task's result (one per model trained)."""
    for k, v in result.items():
        if k == "steps" and isinstance(v, int):
            yield v
        elif isinstance(v, dict):
            yield from _steps(v)


def public(result):
    """The result without plot data, with NumPy scalars as Python numbers (for JSON)."""
    import numpy as np

    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if not k.startswith("_")}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
        return v
    return clean(result)
