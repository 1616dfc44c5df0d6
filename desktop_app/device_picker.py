"""Input device picker: microphones and "what the computer plays" (monitor sources), with Refresh."""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QToolButton, QWidget

log = logging.getLogger(__name__)


def _engine_list_devices():
    from engine.audio.capture import list_devices

    return list_devices()


class DevicePicker(QWidget):
    error = Signal(str)
    changed = Signal()

    def __init__(self, parent=None, list_devices: Callable[[], list] | None = None):
        super().__init__(parent)
        self._list_devices = list_devices or _engine_list_devices
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox(self)
        self.combo.setObjectName("deviceCombo")
        self.combo.setMinimumContentsLength(14)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.refresh_button = QToolButton(self)
        self.refresh_button.setText("⟳")
        self.refresh_button.setToolTip("Refresh the list of input devices")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.refresh_button)

    def refresh(self, select_name: str | None = None) -> None:
        keep = select_name if select_name is not None else self.current_name()
        try:
            devices = list(self._list_devices())
        except Exception as e:  # noqa: BLE001 - any backend failure becomes a sentence, not a crash
            log.warning("listing audio devices failed", exc_info=True)
            devices = []
            self.error.emit(f"Could not list audio input devices ({e}). Check that a sound server is running, "
                            "then press Refresh.")
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("Default input", None)
        inputs = [d for d in devices if getattr(d, "max_input_channels", 1) > 0]
        for d in sorted(inputs, key=lambda d: bool(getattr(d, "is_monitor", False))):
            label = d.name
            if getattr(d, "is_monitor", False):
                label = f"{d.name} (computer audio)"
            self.combo.addItem(label, d)
            tip = f"{getattr(d, 'hostapi', '')} · {getattr(d, 'default_samplerate', 0):.0f} Hz"
            self.combo.setItemData(self.combo.count() - 1, tip, 3)  # 3 = ToolTipRole
        index = next((i for i in range(1, self.combo.count()) if self.combo.itemData(i).name == keep), 0)
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        self.changed.emit()

    def current_device(self):
        """The selected DeviceInfo, or None for the system default."""
        return self.combo.currentData()

    def current_name(self) -> str:
        device = self.current_device()
        return device.name if device is not None else ""
