"""Run directories: where a training run keeps its files, and the rules that keep a
user's files safe.

A run directory is recognised by the marker file ``rnnlab-run.json`` that rnnlab writes
into it (directories from before the marker existed are recognised by their
``latest.npz``). Rules:

- a new run goes into a directory that does not exist or is empty; a run is refused
  unless ``force``, and a directory with other files always (``force`` replaces a run
  directory whole, files put inside it included, and never a directory that is not a run);
- with ``force``, the new run is built beside the old one, in a hidden sibling
  ``.<name>.new-XXXX``, and swapped in at its first evaluation of weights that can be
  saved (``commit``): a run that stops before that — diverged, interrupted, killed — leaves the
  old run untouched (``pending`` says so afterwards), a crash after it the new run —
  never a mix of the two;
- resuming needs a run directory with a resumable ``latest.npz``; ``metrics.jsonl`` is
  cut back to the resumed step, so a record is never there twice;
- leftovers of a killed run (``.tmp-*.npz`` from an interrupted checkpoint write,
  ``*.json.tmp``, ``*.jsonl.tmp``, stale ``.<name>.new-*`` siblings) are removed on the
  next start, and a swap cut between its two renames is undone (the old run put back).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

from .errors import ConfigError, DataError

MARKER = "rnnlab-run.json"


def is_run(path):
    return os.path.isfile(os.path.join(path, MARKER)) or os.path.isfile(os.path.join(path, "latest.npz"))


def best_checkpoint(run_dir):
    """``run_dir``'s best.npz (what sample, eval and explore read from a run directory), or
    a DataError that points to its latest.npz where only that one is there (a run stopped
    before its first evaluation)."""
    best, latest = os.path.join(run_dir, "best.npz"), os.path.join(run_dir, "latest.npz")
    if os.path.isfile(best):
        return best
    hint = (f" (the run stopped before its first evaluation; its last state is {latest})"
            if os.path.isfile(latest) else "")
    raise DataError(f"{run_dir}: no best.npz in this run directory{hint}")


def write_json(path, obj):
    """Write ``obj`` as JSON through a temporary file and a rename."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)


def _leftover(f):
    """A file an interrupted rnnlab write leaves behind."""
    return (f.startswith(".tmp-") and f.endswith(".npz")) or f.endswith((".json.tmp", ".jsonl.tmp"))


def _only_leftovers(path):
    """True for a directory that holds nothing but a killed write's leftovers (or nothing)."""
    return all(_leftover(f) for f in os.listdir(path))


def _ours(path):
    """A directory rnnlab made and may remove: a run, or only leftovers of one."""
    return os.path.isdir(path) and not os.path.islink(path) and (is_run(path) or _only_leftovers(path))


def recover(path):
    """Repair what a killed run left at ``path``, before a run directory is read or made:
    of a forced replacement cut between its two renames (``path`` missing), put the old
    run back; remove stale siblings; remove interrupted writes in ``path``. Only what
    rnnlab made is touched: a sibling named like a staging directory that holds anything
    but a run or its leftovers, and the leftovers in a directory that is not a run but
    holds other files, are the user's and stay."""
    path = os.path.abspath(path)
    parent, name = os.path.split(path)
    if os.path.isdir(parent):
        for f in os.listdir(parent):
            old = os.path.join(parent, f)
            if not f.startswith(f".{name}.old-") or not os.path.isdir(old) or os.path.islink(old):
                continue
            if set(os.listdir(old)) - {name}:
                continue                                     # not a swap's: leave it
            moved = os.path.join(old, name)
            if not os.path.exists(path) and _ours(moved):
                os.rename(moved, path)
            if not os.listdir(old) or _ours(moved):
                shutil.rmtree(old, ignore_errors=True)
        for f in os.listdir(parent):
            if f.startswith(f".{name}.new-") and _ours(os.path.join(parent, f)):
                shutil.rmtree(os.path.join(parent, f), ignore_errors=True)
    if os.path.isdir(path) and (is_run(path) or _only_leftovers(path)):
        for f in os.listdir(path):
            if _leftover(f):
                os.unlink(os.path.join(path, f))


class RunDir:
    """The directory a run writes to. ``create``/``resume`` check the rules at once but
    touch nothing on disk until the first ``file(name)`` — so a run that fails on its
    input leaves the directory as it was. ``file(name)`` is where ``name`` goes now;
    ``commit()`` (called at the first evaluation) swaps a forced new run into place;
    ``pending``: a forced run not swapped in (yet)."""

    def __init__(self, path, mode, step=0):
        self.path, self._mode, self._step = os.path.abspath(path), mode, step
        self._staging, self._open = None, False
        self.pending = mode == "replace"

    @classmethod
    def create(cls, path, force=False):
        """A directory for a new run at ``path`` (see the module rules). Every check is on
        the absolute path the run writes to ("new/../R" is R, which the system would not
        resolve while "new" does not exist), the messages name ``path`` as given."""
        shown, path = path, os.path.abspath(path)
        if os.path.exists(path) and not os.path.isdir(path):
            raise ConfigError(f"out {shown} exists and is not a directory")
        _check_writable(shown, path)
        recover(path)                  # first: a half-done swap is undone
        if force and os.path.islink(path):
            raise ConfigError(f"out {shown} is a symbolic link: force= would replace the link, not the run it "
                              f"points to; give {os.path.realpath(path)} itself")
        if os.path.isdir(path) and _user_files(path):
            if not is_run(path):
                raise ConfigError(f"out {shown} is not empty and is not an rnnlab run (force= replaces runs only, "
                                  f"never other files); choose another directory")
            if not force:
                raise ConfigError(f"out {shown} already holds a run; pass resume= to continue it, force= to "
                                  f"replace it, or choose another directory")
            _check_writable(shown, os.path.dirname(path))    # the new run is staged beside it, then renamed
            return cls(path, "replace")
        return cls(path, "new")

    @classmethod
    def resume(cls, path, step):
        """The run directory at ``path``, to continue from ``step``."""
        shown, path = path, os.path.abspath(path)
        recover(path)
        if not is_run(path):
            raise ConfigError(f"resume {shown} is not an rnnlab run directory")
        metrics = os.path.join(path, "metrics.jsonl")
        if os.path.lexists(metrics) and not os.path.isfile(metrics):   # a FIFO would block the resume
            raise ConfigError(f"resume {shown}: its metrics.jsonl is not a regular file")
        return cls(path, "resume", step)

    def _prepare(self):
        recover(self.path)
        if self._mode == "replace":
            parent, name = os.path.split(self.path)
            self._staging = tempfile.mkdtemp(prefix=f".{name}.new-", dir=parent)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._staging, 0o777 & ~umask)       # as os.makedirs would make it
        elif self._mode == "new":
            os.makedirs(self.path, exist_ok=True)
        else:
            _cut_metrics(os.path.join(self.path, "metrics.jsonl"), self._step)
        self._open = True
        if not os.path.isfile(self.file(MARKER)):
            write_json(self.file(MARKER), {"format": "rnnlab-run", "version": 1})

    def file(self, name):
        if not self._open:
            self._prepare()
        return os.path.join(self._staging or self.path, name)

    def commit(self):
        """Swap a forced new run into place (once, at its first evaluation)."""
        if not self._open:
            self._prepare()
        if self._staging is None:
            return
        parent, name = os.path.split(self.path)
        old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
        os.rename(self.path, os.path.join(old, name))
        os.rename(self._staging, self.path)
        self._staging, self.pending = None, False
        shutil.rmtree(old, ignore_errors=True)


    def discard(self):
        """Remove a forced run that was never swapped in (``pending`` stays True)."""
        if self.pending and self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging, self._open = None, False


def _check_writable(shown, path):
    """ConfigError (naming ``shown``, the out given) unless ``path`` — or, where it does
    not exist yet, the nearest folder above it that does — is a directory this process can
    write in: checked when the run directory is chosen, not at its first write, after
    training has begun."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ConfigError(f"out {shown}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"out {shown}: {existing} is not writable")


def _user_files(path):
    """The directory's entries that are not leftovers of an interrupted rnnlab write."""
    return [f for f in os.listdir(path) if not _leftover(f)]


MAX_RECORD = 1 << 16       # characters: a metrics.jsonl record is ~200; a longer "line" is not one


def _cut_metrics(metrics, step):
    """Keep the records of steps ≤ ``step`` (and nothing after a torn line)."""
    if not os.path.isfile(metrics):
        return
    keep = []
    with open(metrics, encoding="utf-8", errors="replace") as f:      # a torn tail is not UTF-8
        for line in iter(lambda: f.readline(MAX_RECORD), ""):       # no line read past MAX_RECORD
            try:
                record = json.loads(line)
            except ValueError:
                break
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
                keep.append(line if line.endswith("\n") else line + "\n")
    tmp = metrics + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(keep)
    os.replace(tmp, metrics)
