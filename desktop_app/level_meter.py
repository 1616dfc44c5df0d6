"""A horizontal input level meter: RMS bar with a decaying peak tick, in dBFS from -60 to 0."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0


class LevelMeter(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("levelMeter")
        self.setMinimumSize(80, 12)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level")
        self._rms_db = FLOOR_DB
        self._peak_db = FLOOR_DB
        # Without new levels (capture stopped) the bar falls back to silence instead of freezing.
        self._decay = QTimer(self, interval=50)
        self._decay.timeout.connect(self._fall)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(160, 14)

    @property
    def rms_db(self) -> float:
        return self._rms_db

    def set_level(self, rms_db: float, peak: float | None = None) -> None:
        self._rms_db = max(FLOOR_DB, min(0.0, rms_db if math.isfinite(rms_db) else FLOOR_DB))
        peak_db = 20 * math.log10(peak) if peak and peak > 0 else self._rms_db
        self._peak_db = max(self._peak_db, min(0.0, peak_db))
        if not self._decay.isActive():
            self._decay.start()
        self.update()

    def reset(self) -> None:
        self._rms_db = self._peak_db = FLOOR_DB
        self._decay.stop()
        self.update()

    def _fall(self) -> None:
        self._rms_db = max(FLOOR_DB, self._rms_db - 1.5)
        self._peak_db = max(FLOOR_DB, self._peak_db - 0.75)
        if self._rms_db <= FLOOR_DB and self._peak_db <= FLOOR_DB:
            self._decay.stop()
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        p.setPen(self.palette().color(QPalette.ColorRole.Mid))
        p.setBrush(self.palette().color(QPalette.ColorRole.Base))
        p.drawRoundedRect(rect, 3, 3)
        frac = (self._rms_db - FLOOR_DB) / -FLOOR_DB
        if frac > 0:
            colour = QColor(80, 190, 90) if self._rms_db < -12 else (
                QColor(230, 190, 60) if self._rms_db < -3 else QColor(220, 70, 60))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(colour)
            p.drawRoundedRect(QRectF(rect.x() + 1, rect.y() + 1, (rect.width() - 2) * frac, rect.height() - 2), 2, 2)
        peak_frac = (self._peak_db - FLOOR_DB) / -FLOOR_DB
        if peak_frac > 0:
            x = rect.x() + 1 + (rect.width() - 3) * peak_frac
            p.setPen(self.palette().color(QPalette.ColorRole.Text))
            p.drawLine(int(x), int(rect.y() + 2), int(x), int(rect.bottom() - 2))
