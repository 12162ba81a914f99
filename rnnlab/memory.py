"""How much memory this process may use — so that a configuration (a model size, an
n-gram order) that cannot fit is refused before anything is allocated."""
from __future__ import annotations

import os


def available_memory():
    """Bytes of memory this process may use: MemAvailable (Linux), else physical memory;
    lowered by an address-space limit (``ulimit -v``) when one is set."""
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
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            avail = min(avail, soft)
    except (ImportError, OSError, ValueError):
        pass
    return avail
