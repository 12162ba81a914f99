"""``rnnlab train --workers N``: the training re-executed as ``python -m rnnlab train ...``
(without ``--workers``) on N ranks of this machine, under the mpiexec that belongs to the
installed MPI (``find_mpiexec``). The launcher sets what a user would otherwise have to
know: Open MPI's consent to run as root and to oversubscribe, no core binding, and
cores/N BLAS threads per rank (OMP/OPENBLAS/MKL_NUM_THREADS, unless set); it passes
SIGINT/SIGTERM on to every rank (they agree to stop, rank 0 saves; a second signal ends
the job), drops the MPI launcher's own banners from the output (rank 0 prints the one
line that matters) and returns the job's exit code — a worker killed ends the whole job.
"""
from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

from .errors import ConfigError
from .memory import available_memory
from .parallel import INSTALL, PIDS_VAR, THREAD_VARS, cores


def find_mpiexec():
    """The mpiexec that belongs to the installed MPI: $RNNLAB_MPIEXEC; the one mpi4py was
    built with; the one a pip-installed MPI put beside this Python; then $PATH."""
    if os.environ.get("RNNLAB_MPIEXEC"):
        return os.environ["RNNLAB_MPIEXEC"]
    candidates = []
    try:
        import mpi4py
        cc = mpi4py.get_config().get("mpicc")
        if cc:
            candidates.append(os.path.join(os.path.dirname(cc), "mpiexec"))
    except Exception:                       # mpi4py missing or unusual: look elsewhere
        pass
    candidates += [os.path.join(os.path.dirname(sys.executable), "mpiexec"),
                   os.path.join(sys.prefix, "bin", "mpiexec")]
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return shutil.which("mpiexec") or shutil.which("mpirun")


def launch_command(mpiexec, n, args, env=None, program=None):
    """(command, environment) that start ``python -m rnnlab ARGS`` (or ``program`` ARGS) on
    ``n`` ranks here."""
    env = dict(os.environ if env is None else env)
    threads = str(max(1, cores() // n))
    for k in THREAD_VARS:
        env.setdefault(k, threads)
    try:
        version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    cmd = [mpiexec]
    if "Open MPI" in version or "OpenRTE" in version:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        cmd += ["--oversubscribe", "--bind-to", "none"]
    elif "HYDRA" in version or "Intel" in version:       # MPICH, Intel MPI: root and oversubscription are fine
        cmd += ["-bind-to", "none"]
    return cmd + ["-n", str(n), *(program or [sys.executable, "-m", "rnnlab"]), *args], env


_BANNER_RULE = re.compile(r"^\s*(-{20,}|={20,})\s*$")
_LAUNCHER_LINE = re.compile(r"^\[[^\]]*(:\d+|@[^\]]*)\]")       # "[host:pid] ...", "[mpiexec@host] ..."


def _filter(stream, out, dropped=None, passed=None):
    """Copy the job's stderr, dropping the MPI launcher's own banners (blocks between rules
    of dashes or equals signs), its log lines and the NUL byte Open MPI's prterun ends an
    aborted job's output with: rank 0 prints the one line that matters. ``dropped`` (a
    bounded deque) keeps the last dropped lines, ``passed`` (a list) one entry per line
    copied: when the job fails with no word from a rank, ``launch`` says the launcher's."""
    inside = False
    for line in iter(stream.readline, b""):
        text = line.decode("utf-8", "replace").replace("\x00", "")
        if not text:
            continue
        if _BANNER_RULE.match(text):
            inside = not inside
            continue
        if inside or _LAUNCHER_LINE.match(text):
            if dropped is not None and text.strip():
                dropped.append(text.strip())
            continue
        if passed is not None:
            passed.append(1)
        out.write(text)
        out.flush()


def without_workers(args):
    """The command line less its ``--workers N`` (or ``--workers=N``, or an abbreviation)."""
    out, skip = [], False
    for t in args:
        if skip:
            skip = False
            continue
        name = t.split("=", 1)[0]
        if len(name) >= 4 and "--workers".startswith(name):
            skip = "=" not in t
            continue
        out.append(t)
    return out


# --workers N's ceiling: ranks per core (oversubscription is allowed, for testing N ranks on
# a small machine) and the memory of one rank before its model (Python, NumPy, mpi4py and the
# MPI library's shared segments, ~100 MiB; the model's own is checked by each rank).
MAX_RANKS_PER_CORE = 16
RANK_MEMORY = 100 << 20


def check_workers(n):
    """ConfigError unless ``n`` ranks may start here (MAX_RANKS_PER_CORE, RANK_MEMORY)."""
    top = max(1, min(MAX_RANKS_PER_CORE * cores(), available_memory() // RANK_MEMORY))
    if n > top:
        raise ConfigError(f"workers={n}: at most {top} ranks on this machine ({cores()} cores, "
                          f"{available_memory() / 2**30:.1f} GiB of memory available); for more, "
                          f"start mpiexec across machines")


def launch(n, args):
    """``rnnlab ARGS`` on ``n`` ranks of this machine under mpiexec; returns the exit code.
    SIGINT/SIGTERM are passed on to every rank (they agree to stop, rank 0 saves, exit
    128+signal); a second one ends the job at once."""
    import importlib.util
    if importlib.util.find_spec("mpi4py") is None:
        raise ConfigError(f"workers needs mpi4py and an MPI runtime: {INSTALL}")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise ConfigError(f"workers needs an MPI launcher (mpiexec), none found: {INSTALL}")
    cmd, env = launch_command(mpiexec, n, args)
    piddir = tempfile.mkdtemp(prefix="rnnlab-ranks-")
    env[PIDS_VAR] = piddir
    try:
        proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, start_new_session=True)
        signals = []

        def forward(signum, frame):
            signals.append(signum)
            pids = [f for f in os.listdir(piddir) if f.endswith(".pid")]
            if len(signals) > 1 or not pids:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                return
            for f in pids:
                with contextlib.suppress(ValueError, OSError):
                    with open(os.path.join(piddir, f)) as fh:
                        os.kill(int(fh.read().strip()), signum)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            dropped, passed = collections.deque(maxlen=8), []
            copier = threading.Thread(target=_filter, args=(proc.stderr, sys.stderr, dropped, passed), daemon=True)
            copier.start()
            rc = proc.wait()
            copier.join(timeout=5)
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        started = bool(os.listdir(piddir))          # each rank writes its pid there as it starts
    finally:
        shutil.rmtree(piddir, ignore_errors=True)
    rc = 128 - rc if rc < 0 else rc
    if signals:                                   # stopped by the user: 130/143, whatever mpiexec made of it
        return 128 + signals[0]
    telling = [t for t in dropped if re.search(r"(?i)error|unable|cannot|not found|failed|killed|signal", t)]
    said = f"; the MPI launcher said: {(telling or list(dropped))[-1]}" if dropped else ""
    if rc not in (0, 130, 143) and not started and not passed:     # mpiexec itself failed: say what it said
        print(f"rnnlab: error: the MPI launcher ({os.path.basename(mpiexec)}) ended with exit code {rc} before "
              f"any rank started training{said}", file=sys.stderr)
        return rc
    if rc not in (0, 1, 2, 130, 143):
        print(f"rnnlab: error: the MPI job ended with exit code {rc} (a worker died or was killed){said}; "
              f"every rank was stopped and the last checkpoint is intact: continue with --resume",
              file=sys.stderr)
    return rc
