"""Progress of a file transcription: bar, elapsed and remaining time, Cancel."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from desktop_app.transcript_model import format_clock


class FileProgress(QWidget):
    cancel_requested = Signal()

    def __init__(self, parent=None, clock=time.monotonic):
        super().__init__(parent)
        self.setObjectName("fileProgress")
        self._clock = clock
        self._started = 0.0
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.name_label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(True)
        self.time_label = QLabel(self)
        self.time_label.setMinimumWidth(190)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self._on_cancel)
        layout.addWidget(self.name_label)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.time_label)
        layout.addWidget(self.cancel_button)
        self.hide()

    def begin(self, name: str, stage: str = "") -> None:
        self._started = self._clock()
        self.name_label.setText(name)
        self.bar.setValue(0)
        self.bar.setFormat(f"{stage} %p%" if stage else "%p%")
        self.time_label.setText("starting…")
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, fraction: float, stage: str = "") -> None:
        fraction = max(0.0, min(1.0, fraction))
        self.bar.setValue(int(fraction * 1000))
        if stage:
            self.bar.setFormat(f"{stage} %p%")
        elapsed = self._clock() - self._started
        if fraction > 0.01:
            remaining = elapsed * (1 - fraction) / fraction
            self.time_label.setText(f"elapsed {format_clock(elapsed)} · about {format_clock(remaining)} left")
        else:
            self.time_label.setText(f"elapsed {format_clock(elapsed)}")

    def elapsed_s(self) -> float:
        return self._clock() - self._started

    def _on_cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.time_label.setText("cancelling…")
        self.cancel_requested.emit()

    def finish(self) -> None:
        self.hide()
