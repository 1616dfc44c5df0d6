"""One way to run background work in the app: ``BackgroundJob`` runs ``work(progress, cancel) -> result`` on a
QThread of its own and speaks only through signals — progress, done, failed, cancelled — delivered on the
thread that created it. Used by the model manager's pack jobs and by saving corrections; the engine worker
(one long-lived thread for file and live jobs) and the fine-tune (a child process) are the two others."""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop_app.errors import describe_error

JobFn = Callable[[Callable[[str, float], None], threading.Event], object]


class _Runner(QObject):
    progress = Signal(str, float)
    done = Signal(object)
    failed = Signal(str)
    cancelled = Signal(str)

    def __init__(self, work: JobFn, doing: str, cancel: threading.Event):
        super().__init__()
        self.work, self.doing, self.cancel = work, doing, cancel

    @Slot()
    def run(self) -> None:
        from engine.errors import CancelledError

        try:
            result = self.work(lambda stage, frac: self.progress.emit(stage, frac), self.cancel)
        except CancelledError:
            self.cancelled.emit(f"{self.doing[0].upper()}{self.doing[1:]} was cancelled; nothing was installed.")
            return
        except Exception as e:  # noqa: BLE001 - every failure becomes a sentence in the window
            self.failed.emit(describe_error(e, self.doing))
            return
        self.done.emit(result)


class BackgroundJob(QObject):
    """`doing` words the failure sentence ("importing /path"). start() runs the work once; cancel() sets the
    event the work polls; stop(), after one of done/failed/cancelled, quits and waits for the thread."""

    progress = Signal(str, float)  # stage, fraction 0..1
    done = Signal(object)  # what the work returned
    failed = Signal(str)  # a sentence (desktop_app.errors.describe_error)
    cancelled = Signal(str)
    _run_requested = Signal()

    def __init__(self, work: JobFn, doing: str, parent: QObject | None = None):
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._thread = QThread(self)
        self._thread.setObjectName("parley-job")
        self._runner = _Runner(work, doing, self.cancel_event)
        self._runner.moveToThread(self._thread)
        self._run_requested.connect(self._runner.run)
        for name in ("progress", "done", "failed", "cancelled"):
            getattr(self._runner, name).connect(getattr(self, name))
        self._thread.finished.connect(self._runner.deleteLater)

    def start(self) -> None:
        self._thread.start()
        self._run_requested.emit()

    def cancel(self) -> None:
        self.cancel_event.set()

    def stop(self) -> None:
        """Quit the thread once its work has returned, and wait for it (never destroyed while running)."""
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait()
