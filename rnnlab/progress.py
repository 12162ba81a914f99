"""A small progress line on stderr: redrawn in place on a terminal, one line per
report otherwise (logs, CI)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total=None, stream=None, enabled=True, min_interval=0.25):
        self.total, self.stream, self.enabled = total, stream or sys.stderr, enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval, self._last, self._shown = min_interval, 0.0, False

    def _bar(self, step):
        if not self.total:
            return f"step {step}"
        frac = min(step / self.total, 1.0)
        filled = int(20 * frac)
        return f"[{'#' * filled}{'.' * (20 - filled)}] {step}/{self.total}"

    def update(self, step, **fields):
        """Redraw the line (terminal only, rate-limited)."""
        if not (self.enabled and self.tty):
            return
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return
        self._last = now
        self.stream.write("\r" + self._bar(step) + "  " + _fmt(fields) + "\033[K")
        self.stream.flush()
        self._shown = True

    def report(self, step, **fields):
        """A permanent line (each evaluation)."""
        if not self.enabled:
            return
        self.message(self._bar(step) + "  " + _fmt(fields))

    def message(self, text):
        if not self.enabled:
            return
        if self._shown:
            self.stream.write("\r\033[K")
            self._shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        if self._shown:
            self.stream.write("\n")
            self._shown = False


def _fmt(fields):
    parts = []
    for k, v in fields.items():
        if v is None:
            continue
        parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return "  ".join(parts)
