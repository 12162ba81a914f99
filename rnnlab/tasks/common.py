"""Helpers shared by the tasks: budgets, option checks, plotting (matplotlib, imported lazily).

Every task's ``run`` takes, besides its own options: ``model`` (rnn, lstm, gru, or the
task's other choices), ``seed`` (the one seed of its initialisation, data and
batches: the same seed gives the same result), ``max_steps`` (each training's steps),
``time_limit`` (seconds for the whole task), ``progress`` (a progress.Progress or
None) — and returns a dict of plain values whose "metrics" hold what it measured."""
from __future__ import annotations

from ..atomic import write_atomic
from ..errors import ConfigError, RnnlabError
from ..module import check_sizes, finite_real
from ..trainer import TrainConfig


def check_options(sizes=None, fractions=None, positive=None):
    """A task's own options, before anything is made: ``sizes`` positive integers,
    ``fractions`` numbers in (0, 1), ``positive`` finite numbers > 0 — each {name: value},
    the name first in the error (the CLI says its flag there)."""
    check_sizes(None, **(sizes or {}))
    for name, v in (fractions or {}).items():
        if not finite_real(v) or not 0 < v < 1:
            raise ConfigError(f"{name} must be a number in (0, 1), got {v!r}")
    for name, v in (positive or {}).items():
        if not finite_real(v) or not v > 0:
            raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")


def budget(max_steps, time_limit, default_steps):
    """The TrainConfig of a task: the given budget, or ``default_steps`` if none is given
    (no periodic evaluation: the tasks evaluate once, after training)."""
    if max_steps is None and time_limit is None:
        max_steps = default_steps
    return TrainConfig(max_steps=max_steps, time_limit=time_limit, eval_every=None).validate()


def pyplot():
    """matplotlib.pyplot with a file-only backend, or a clear error."""
    try:
        import matplotlib
    except ImportError:
        raise RnnlabError("plot needs matplotlib: pip install 'rnnlab[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path):
    """Write the figure to ``path`` whole or not at all (atomic.write_atomic)."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    try:
        return write_atomic(path, lambda f: fig.savefig(f, dpi=110, format="png"), binary=True, suffix=".png")
    finally:
        plt.close(fig)
