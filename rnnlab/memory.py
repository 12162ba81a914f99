"""How much memory this process may use — so that a configuration (a model size, an
n-gram order) that cannot fit is refused before anything is allocated."""
from __future__ import annotations

import os


# what MPI launchers set to the number of ranks on this machine (Open MPI; MPICH and Intel
# MPI), else the job's size (PMI_SIZE: all of it on one machine, more than that across several)
LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_SIZE")


def ranks_here(default=1):
    """The MPI ranks on this machine: the first of LOCAL_SIZE_VARS set to a count, else
    ``default`` (1: outside MPI); anything else there is not a launcher's, passed over."""
    for k in LOCAL_SIZE_VARS:
        v = os.environ.get(k, "").strip()
        if v.isascii() and v.isdecimal() and 1 <= int(v) <= 1 << 20:
            return int(v)
    return default


def available_memory():
    """Bytes of memory this process may use: MemAvailable (Linux), else physical memory,
    divided among the MPI ranks on this machine (``ranks_here``: each checked its whole
    model against all of it, and N of them together needed N times that); lowered by an
    address-space limit (``ulimit -v``) when one is set."""
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
    avail //= ranks_here()
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            avail = min(avail, soft)
    except (ImportError, OSError, ValueError):
        pass
    return avail
