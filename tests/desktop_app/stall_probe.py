"""The event-loop stall probe shared by the file and live tests."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer


class StallProbe:
    """A 10 ms QTimer on the GUI thread; the longest gap between its ticks is the worst event-loop stall."""

    def __init__(self, interval_ms: int = 10):
        self.max_gap_s = 0.0
        self._last = None
        self.timer = QTimer(interval=interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None and now - self._last > self.max_gap_s:
            self.max_gap_s = now - self._last
            self.max_gap_at_s = self._last - self._started  # when the worst stall began, from start()
        self._last = now

    def start(self) -> None:
        self._last = None
        self._started = time.perf_counter()
        self.max_gap_at_s = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        self.elapsed_s = time.perf_counter() - self._started
        return self.max_gap_s
