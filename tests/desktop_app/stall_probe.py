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


# A shared 2-core CI machine delays a 10 ms timer by 100+ ms now and then, so the tests do not assert a
# frame budget (that is measured and recorded, not gated). They assert what a user notices: the window
# never freezes for long, and never for the bulk of the work, as it would if the work ran on the GUI thread.
FREEZE_S = 0.5


def assert_not_frozen(probe: StallProbe, stall_s: float) -> None:
    assert stall_s < FREEZE_S, f"the GUI froze for {stall_s * 1000:.0f} ms"
    assert stall_s < 0.5 * probe.elapsed_s or probe.elapsed_s < 2 * FREEZE_S, (
        f"the GUI froze for {stall_s * 1000:.0f} ms of {probe.elapsed_s * 1000:.0f} ms of work")
