"""The progress line the commands draw on stderr."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """A one-line progress bar on stderr; redraws at most 10 times a second."""

    def __init__(self, label: str, enabled: bool = True, stream=None):
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._last_pct = -1
        self._t0 = time.monotonic()

    def __call__(self, done: float, total: float) -> None:
        if not self.enabled or total <= 0:
            return
        frac = min(max(done / total, 0.0), 1.0)
        now = time.monotonic()
        pct = int(frac * 100)
        if self.tty:
            if now - self._last < 0.1 and frac < 1.0:
                return
            width = 30
            fill = int(frac * width)
            elapsed = now - self._t0
            eta = elapsed / frac - elapsed if frac > 0 else 0.0
            self.stream.write(
                f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {pct:3d}% "
                f"{done:7.1f}/{total:.1f} s  elapsed {elapsed:5.1f} s  left {eta:5.1f} s"
            )
            if frac >= 1.0:
                self.stream.write("\n")
        elif pct // 10 != self._last_pct // 10 or frac >= 1.0 and self._last_pct < 100:
            self.stream.write(f"{self.label}: {pct}% ({done:.1f}/{total:.1f} s)\n")
            self._last_pct = pct
        self._last = now
        self.stream.flush()

    def stage(self, text: str, frac: float) -> None:
        """Adapter for the model manager's (stage, fraction) progress."""
        self.label = text
        self(frac, 1.0)
