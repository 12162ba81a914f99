"""Helpers shared by the tasks: budgets, plotting (matplotlib, imported lazily)."""
from __future__ import annotations

from ..errors import RnnlabError


def budget(max_steps, time_limit, default_steps):
    """(max_steps, time_limit): the given budget, or ``default_steps`` if none is given."""
    if max_steps is not None and max_steps < 1:
        raise ValueError("--max-steps must be positive")
    if time_limit is not None and not time_limit > 0:
        raise ValueError("--time-limit must be positive")
    if max_steps is None and time_limit is None:
        return default_steps, None
    return max_steps, time_limit


def pyplot():
    """matplotlib.pyplot with a file-only backend, or a clear error."""
    try:
        import matplotlib
    except ImportError:
        raise RnnlabError("--plot needs matplotlib: pip install 'rnnlab[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
