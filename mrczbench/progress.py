"""One progress printer for long work (a run's cases, dataset generation, conversions).

On a terminal it rewrites one line (at most a few times a second); otherwise (a log file, CI)
it prints a whole line every `interval` seconds and at the end, so logs stay short. A line
says: what, count/total, percent, elapsed, ETA, MiB/s of raw data when bytes are known, and a
note (e.g. the case in flight)."""
from __future__ import annotations

import math
import shutil
import sys
import time

from mrczbench.units import MiB, format_duration as duration


class Progress:
    """`update(done, note, bytes_done)` with `done` a count (fractions allowed: part of an
    item); `close()` ends the line. Disabled (or total 0): prints nothing."""

    TTY_REFRESH = 0.2   # seconds between rewrites of a terminal line

    def __init__(self, total: float, what: str = "", enabled: bool = True, stream=None,
                 interval: float = 10.0):
        self.total = total
        self.what = what
        self.enabled = enabled and total > 0
        self.stream = stream or sys.stderr
        self.tty = self.enabled and self.stream.isatty()
        self.interval = interval
        self.start = time.monotonic()
        self.last_print = -math.inf
        self.printed_final = False

    def line(self, done: float, note: str = "", bytes_done: float | None = None) -> str:
        elapsed = time.monotonic() - self.start
        eta = duration(elapsed / done * (self.total - done)) if done > 0 else "?"
        count = f"{math.floor(done + 1e-9):d}"  # whole items done; a part shows in the percent
        text = (f"{self.what + ' ' if self.what else ''}[{count}/{self.total:g}] "
                f"{100 * done / self.total:3.0f}%  elapsed {duration(elapsed)}  ETA {eta}")
        if bytes_done is not None and elapsed > 0:
            text += f"  {bytes_done / MiB / elapsed:,.0f} MiB/s"
        return text + (f"  {note}" if note else "")

    def update(self, done: float, note: str = "", bytes_done: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        final = done >= self.total
        wait = self.TTY_REFRESH if self.tty else self.interval
        if not final and now - self.last_print < wait:
            return
        if final and self.printed_final:
            return
        self.printed_final = final
        self.last_print = now
        text = self.line(done, note, bytes_done)
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:width].ljust(width))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
            self.tty = False
