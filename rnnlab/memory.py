"""How much memory this process may use — so that a configuration (a model size, an
n-gram order) that cannot fit is refused before anything is allocated."""
from __future__ import annotations

import os


SHARE_VAR = "RNNLAB_MEMORY_SHARE"    # set by ``--workers N`` (mpilaunch.py): N ranks share this machine


def available_memory():
    """Bytes of memory this process may use: MemAvailable (Linux), else physical memory,
    divided among the ranks ``--workers N`` started on this machine (``SHARE_VAR``: each
    checked its whole model against all of it, and N of them together needed N times
    that); lowered by an address-space limit (``ulimit -v``) when one is set."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 1 << 40
    share = os.environ.get(SHARE_VAR, "1")
    if share.isdigit() and 1 <= int(share) <= 1 << 20:     # anything else: not ours, ignored
        avail //= int(share)
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            avail = min(avail, soft)
    except (ImportError, OSError, ValueError):
        pass
    return avail
