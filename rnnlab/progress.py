"""Progress on stderr. On a terminal, a live bar redrawn in place between evaluations —
steps done of the budget, rate, ETA and the trainer's fields; elsewhere (logs, CI) a
plain line every ``log_every`` seconds. ``report`` and ``message`` print permanent lines
in both cases.

    p = Progress(total=5000, time_limit=300)      # the budget, when known, for the ETA
    p.update(step, loss=..., **{"char/s": ...})    # every step (cheap: rate-limited)
    p.report(step, loss=..., val=...)             # each evaluation
    p.message("text"); p.close()

The ETA is the sooner of the step budget at the rate measured since the first update
((total − step) / rate) and the time budget (time_limit − time since the start). A step
lower than the last one, or an update after ``close``, starts a new phase (the tasks run
several trainings through one Progress): the rate, the clock and the time budget restart.
"""
from __future__ import annotations

import shutil
import sys
import time


class Progress:
    def __init__(self, total=None, stream=None, enabled=True, min_interval=0.25, *, time_limit=None,
                 log_every=10.0, clock=time.monotonic):
        self.total, self.stream, self.enabled = total, stream or sys.stderr, enabled
        self.time_limit, self.log_every, self.clock = time_limit, log_every, clock
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval, self._last, self._shown = min_interval, 0.0, False
        self._start = clock()                 # the time budget counts from here
        self._first = None                    # (time, step) of the phase's first update
        self._step, self._last_log = None, self._start

    # -- what is shown ------------------------------------------------------------------
    def _phase(self, step, now):
        if self._first is None or (self._step is not None and step < self._step):
            if self._first is not None or self._start is None:
                self._start = now
            self._first, self._last_log = (now, step), now
        self._step = step

    def rate(self, now=None):
        """Steps per second since the phase's first update (None before two updates)."""
        if self._first is None:
            return None
        now = self.clock() if now is None else now
        t0, s0 = self._first
        return (self._step - s0) / (now - t0) if self._step > s0 and now > t0 else None

    def eta(self, now=None):
        """Seconds left, or None when neither budget is known (or no rate yet)."""
        now = self.clock() if now is None else now
        left = []
        rate = self.rate(now)
        if self.total and rate and self._step is not None:
            left.append(max(self.total - self._step, 0) / rate)
        if self.time_limit and self._start is not None:
            left.append(max(self.time_limit - (now - self._start), 0.0))
        return min(left) if left else None

    def _fraction(self, now):
        fracs = []
        if self.total:
            fracs.append(min(self._step / self.total, 1.0))
        if self.time_limit and self._start is not None:
            fracs.append(min((now - self._start) / self.time_limit, 1.0))
        return max(fracs) if fracs else None

    def _head(self, step, now, bar):
        self._step = step
        frac = self._fraction(now)
        if frac is None:
            text = f"step {step}"
        else:
            count = f"{step}/{self.total}" if self.total else f"step {step}"
            text = (f"[{'#' * int(20 * frac)}{'.' * (20 - int(20 * frac))}] " if bar else "") \
                + f"{count} {100 * frac:3.0f}%"
        return text

    def _line(self, step, fields, now, bar):
        parts = [self._head(step, now, bar)]
        rate = self.rate(now)
        if rate and not any(k.endswith("/s") and k.startswith("step") for k in fields):
            parts.append(f"{rate:.3g} step/s")
        eta = self.eta(now)
        if eta is not None:
            parts.append("ETA " + clock(eta))
        elif self._first is not None:
            parts.append("elapsed " + clock(now - self._first[0]))
        rest = _fmt(fields)
        return "  ".join(parts + ([rest] if rest else []))

    # -- the interface the trainer uses -----------------------------------------------------
    def update(self, step, **fields):
        """After each step: redraw the bar (terminal, at most every ``min_interval`` s), or
        print a plain line every ``log_every`` s (not a terminal)."""
        if not self.enabled:
            return
        now = self.clock()
        self._phase(step, now)
        if self.tty:
            if now - self._last < self.min_interval:
                return
            self._last = now
            width = max(shutil.get_terminal_size((100, 24)).columns - 1, 20)
            self.stream.write("\r" + self._line(step, fields, now, bar=True)[:width] + "\033[K")
            self.stream.flush()
            self._shown = True
        elif self.log_every is not None and now - self._last_log >= self.log_every:
            self._write(self._line(step, fields, now, bar=False))

    def report(self, step, **fields):
        """A permanent line (each evaluation)."""
        if not self.enabled:
            return
        now = self.clock()
        if self._first is None:
            self._phase(step, now)
        self._step = step
        self.message(self._line(step, fields, now, bar=True))

    def message(self, text):
        if not self.enabled:
            return
        self._write(text)

    def _write(self, text):
        if self._shown:
            self.stream.write("\r\033[K")
            self._shown = False
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_log = self.clock()

    def close(self):
        """Erase the bar (a stale one would mislead); the next update starts a new phase."""
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
        self._first, self._step, self._start = None, None, None


def clock(seconds):
    """h:mm:ss or m:ss."""
    s = int(round(max(seconds, 0)))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def _fmt(fields):
    parts = []
    for k, v in fields.items():
        if v is None:
            continue
        parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return "  ".join(parts)
