"""Helpers shared by the tasks: budgets, plotting (matplotlib, imported lazily)."""
from __future__ import annotations

from ..errors import RnnlabError
from ..trainer import TrainConfig


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
