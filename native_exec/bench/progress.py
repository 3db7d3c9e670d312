"""The progress line on stderr: scenario, repeat i/n, contender.

On a terminal one line is redrawn in place; otherwise (a pipe, a log, a
test) one line is written per repeat.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    def __init__(self, stream: Optional[TextIO] = None, enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.started = time.monotonic()
        self.prefix = ""

    def scenario(self, index: int, count: int, name: str) -> None:
        self.prefix = "[%d/%d] %s" % (index, count, name)

    def step(self, repeat: int, warmup: int, repeats: int, role: str, first: bool) -> None:
        """Before running contender ``role`` in run ``repeat`` (0-based, warmups first)."""
        if not self.enabled or not (self.tty or first):
            return
        if repeat < warmup:
            what = "warmup %d/%d" % (repeat + 1, warmup)
        else:
            what = "repeat %d/%d" % (repeat - warmup + 1, repeats)
        text = "%s  %s" % (self.prefix, what)
        if self.tty:
            text += "  %-8s %5.0f s" % (role, time.monotonic() - self.started)
        self._write(text)

    def note(self, text: str) -> None:
        if self.enabled:
            self._write("%s  %s" % (self.prefix, text))

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _write(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
