"""The status bar: real-time factor, lag, dropped audio, model and the provider that actually runs."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar


class StatusBar(QStatusBar):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.rtf_label = QLabel(self)
        self.lag_label = QLabel(self)
        self.dropped_label = QLabel(self)
        self.dropped_label.setStyleSheet("color: #b3261e;")
        self.model_label = QLabel("no model", self)
        for label in (self.rtf_label, self.lag_label, self.dropped_label):
            self.addPermanentWidget(label)
        self.addPermanentWidget(self.model_label)
        self.clear_stats()

    def set_model(self, text: str, tooltip: str = "") -> None:
        self.model_label.setText(text)
        self.model_label.setToolTip(tooltip)

    def set_stats(self, rtf: float | None = None, lag_s: float | None = None, dropped_blocks: int = 0) -> None:
        if rtf is not None:
            self.rtf_label.setText(f"RTF {rtf:.2f}")
            self.rtf_label.setToolTip("real-time factor: processing time / audio time (below 1 keeps up)")
            self.rtf_label.show()
        if lag_s is not None:
            self.lag_label.setText(f"lag {lag_s:.1f} s")
            self.lag_label.setToolTip("how far the committed text is behind the audio")
            self.lag_label.show()
        if dropped_blocks:
            self.dropped_label.setText(f"dropped {dropped_blocks} audio blocks")
            self.dropped_label.setToolTip("the computer could not keep up and some audio was skipped")
            self.dropped_label.show()

    def clear_stats(self) -> None:
        for label in (self.rtf_label, self.lag_label, self.dropped_label):
            label.clear()
            label.hide()
