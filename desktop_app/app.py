"""Entry points: `run_app()` opens Parley's window; `create_main_window()` builds one for tests."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from desktop_app.main_window import MainWindow
from desktop_app.settings import AppSettings
from engine.logfile import attach_log_file

log = logging.getLogger(__name__)


def _preload_engine() -> None:
    """Import the engine's native extensions here, before the window shows: an import in the worker
    thread holds the GIL for tens of milliseconds at a time (onnxruntime's module init) and would
    freeze the visible window; here it only delays it by ~0.2 s."""
    try:
        import engine.whisper  # noqa: F401
    except Exception:  # noqa: BLE001 - the worker will report the failure as a sentence
        log.warning("the engine could not be imported", exc_info=True)


def create_main_window(settings: QSettings | AppSettings | None = None, audio_source_factory: Callable | None = None,
                       model_loader: Callable | None = None, list_devices: Callable | None = None,
                       load_model: bool = True) -> MainWindow:
    """A main window (not shown). The model starts loading in the background once the event loop runs.

    audio_source_factory(device_index) -> the `source` handed to engine.live.session.LiveSession (tests
    replay a clip through it); model_loader(pack_path, device) -> a loaded model.
    """
    _preload_engine()
    app_settings = settings if isinstance(settings, AppSettings) else AppSettings(settings)
    window = MainWindow(app_settings, model_loader=model_loader, audio_source_factory=audio_source_factory,
                        list_devices=list_devices)
    if load_model:
        QTimer.singleShot(0, window.load_selected_model)
    return window


def run_app(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    attach_log_file(logging.INFO)  # what the error banner points at
    app = QApplication.instance() or QApplication(sys.argv if argv is None else ["parley", *argv])
    app.setApplicationName("Parley")
    app.setOrganizationName("Parley")
    app.setQuitOnLastWindowClosed(False)  # the caption overlay is a window too; the main window decides
    window = create_main_window()
    window.closed.connect(app.quit)
    window.show()
    return app.exec()
