"""Files written whole or not at all: the content goes to a temporary file beside the
target (``.tmp-*``, which a killed run's next start may remove), which then replaces the
target in one rename — a killed process leaves the old file or the new one, never a part
(against a crash of the machine itself the writer syncs the file first, as checkpoints
do). The file gets the permissions a new file would (the umask's), not mkstemp's 0600."""
from __future__ import annotations

import os
import tempfile


def write_atomic(path, write, *, binary, suffix):
    """Call ``write(f)`` on a temporary file in ``path``'s directory (opened for bytes when
    ``binary``, else UTF-8 text), then rename it over ``path``; returns ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
