"""The control rows above the panes: input (device, level, Start/Stop) and languages + model + CPU/GPU."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QPushButton, QWidget

from desktop_app.device_picker import DevicePicker
from desktop_app.languages import WHISPER_LANGUAGES, language_name, translation_targets
from desktop_app.level_meter import LevelMeter
from desktop_app.states import LiveState

AUTO_LABEL = "Auto-detect"


class ControlBar(QWidget):
    start_clicked = Signal()
    stop_clicked = Signal()
    model_changed = Signal()
    compute_changed = Signal()
    languages_changed = Signal()

    def __init__(self, parent=None, list_devices=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)

        self.devices = DevicePicker(self, list_devices)
        self.level = LevelMeter(self)
        self.start_button = QPushButton("● Start", self)
        self.start_button.setObjectName("startButton")
        self.start_button.setToolTip("Listen to the selected input and transcribe it live")
        self.start_button.clicked.connect(self._on_start_stop)
        self._running = False
        grid.addWidget(QLabel("Input", self), 0, 0)
        grid.addWidget(self.devices, 0, 1, 1, 3)
        grid.addWidget(self.level, 0, 4, 1, 2)
        grid.addWidget(self.start_button, 0, 6)

        self.source_combo = QComboBox(self)
        self.source_combo.setObjectName("sourceLanguage")
        self.source_combo.addItem(AUTO_LABEL, "")
        for code, name in sorted(WHISPER_LANGUAGES.items(), key=lambda kv: kv[1]):
            self.source_combo.addItem(name, code)
        self.target_combo = QComboBox(self)
        self.target_combo.setObjectName("targetLanguage")
        self.target_combo.addItem("No translation", "")
        for code, name in translation_targets().items():
            self.target_combo.addItem(name, code)
        self.source_combo.currentIndexChanged.connect(lambda _i: self.languages_changed.emit())
        self.target_combo.currentIndexChanged.connect(lambda _i: self.languages_changed.emit())
        grid.addWidget(QLabel("Speech", self), 1, 0)
        grid.addWidget(self.source_combo, 1, 1)
        grid.addWidget(QLabel("Translate to", self), 1, 2, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.target_combo, 1, 3)

        self.model_combo = QComboBox(self)
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setToolTip("Installed model packs (Models → Manage models… to build or delete)")
        self.model_combo.activated.connect(lambda _i: self.model_changed.emit())
        self.compute_combo = QComboBox(self)
        self.compute_combo.setObjectName("computeCombo")
        self.compute_combo.addItem("CPU", "cpu")
        self.compute_combo.addItem("GPU (CUDA)", "cuda")
        self.compute_combo.activated.connect(lambda _i: self.compute_changed.emit())
        self.provider_label = QLabel(self)
        self.provider_label.setObjectName("providerLabel")
        grid.addWidget(self.model_combo, 1, 4)
        grid.addWidget(self.compute_combo, 1, 5)
        grid.addWidget(self.provider_label, 1, 6)
        for combo in (self.source_combo, self.target_combo, self.model_combo):
            combo.setMinimumContentsLength(10)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        grid.setColumnStretch(1, 2)
        grid.setColumnStretch(3, 2)
        grid.setColumnStretch(4, 2)

    # Start / Stop
    def _on_start_stop(self) -> None:
        (self.stop_clicked if self._running else self.start_clicked).emit()

    def set_live_state(self, state: LiveState) -> None:
        """IDLE, RUNNING or FINISHING (Stop pressed, draining the audio already captured)."""
        self._running = state == "running"
        self.start_button.setText({"idle": "● Start", "running": "■ Stop", "finishing": "Finishing…"}[state])
        self.start_button.setEnabled(state != "finishing")
        locked = state != "idle"
        for w in (self.devices, self.source_combo, self.target_combo, self.model_combo, self.compute_combo):
            w.setEnabled(not locked)
        if state == "idle":
            self.level.reset()

    # Languages
    def source_language(self) -> str | None:
        return self.source_combo.currentData() or None

    def target_language(self) -> str | None:
        return self.target_combo.currentData() or None

    def select_languages(self, source: str, target: str) -> None:
        i = self.source_combo.findData(source or "")
        self.source_combo.setCurrentIndex(max(0, i))
        j = self.target_combo.findData(target or "")
        self.target_combo.setCurrentIndex(max(0, j))

    def show_detected(self, code: str | None, probability: float | None = None) -> None:
        """With auto-detect chosen, its entry names the language found."""
        if code and probability:
            text = f"{AUTO_LABEL} ({language_name(code)}, {probability:.0%})"
        elif code:
            text = f"{AUTO_LABEL} ({language_name(code)})"
        else:
            text = AUTO_LABEL
        self.source_combo.setItemText(0, text)

    # Model and compute device
    def set_models(self, entries: list[tuple[str, str, str]], selected_path: str) -> None:
        """entries: (label, pack path, tooltip); an empty path marks a pack that is not built yet."""
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for label, path, tip in entries:
            self.model_combo.addItem(label, path)
            self.model_combo.setItemData(self.model_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        i = self.model_combo.findData(selected_path) if selected_path else -1
        self.model_combo.setCurrentIndex(i if i >= 0 else 0)
        self.model_combo.blockSignals(False)

    def model_path(self) -> str:
        return self.model_combo.currentData() or ""

    def model_label(self) -> str:
        return self.model_combo.currentText()

    def compute_device(self) -> str:
        return self.compute_combo.currentData()

    def select_compute_device(self, device: str) -> None:
        self.compute_combo.setCurrentIndex(max(0, self.compute_combo.findData(device)))

    def set_provider(self, text: str, tooltip: str = "", warn: bool = False) -> None:
        self.provider_label.setText(text)
        self.provider_label.setToolTip(tooltip)
        self.provider_label.setStyleSheet("color: #b3261e;" if warn else "")
