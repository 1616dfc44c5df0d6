"""Screenshots for the docs: the main window after a file transcription, and the caption overlay.

    Xvfb :99 -screen 0 1400x900x24 & DISPLAY=:99 .venv/bin/python tests/desktop_app/make_screenshots.py \\
        --pack ~/.cache/parley/packs/whisper-base-int8 --clip talk.wav --translate en --out assets/screenshot.png

Not a test (no test_ prefix): a script run by hand, under a real X server so the overlay is composited.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from desktop_app.app import create_main_window  # noqa: E402
from desktop_app.settings import AppSettings  # noqa: E402


def wait(app: QApplication, condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--translate", default="")
    ap.add_argument("--out", default="assets/screenshot.png")
    ap.add_argument("--overlay-out", default="")
    args = ap.parse_args()

    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        settings = AppSettings(QSettings(str(Path(tmp) / "shot.ini"), QSettings.Format.IniFormat))
        settings.model = args.pack
        settings.target_language = args.translate
        settings.overlay_rect = (200, 460, 900, 130)
        window = create_main_window(settings, list_devices=lambda: [])
        window.resize(1180, 620)
        window.move(40, 30)
        window.show()
        wait(app, lambda: window._model_state in ("ready", "failed"), 120)
        window.open_file(args.clip)
        wait(app, lambda: window._file_request is None, 600)
        window.captions_action.setChecked(True)
        for _ in range(30):
            app.processEvents()
            time.sleep(0.02)
        window.grab().save(args.out)
        print(f"main window: {args.out}")
        if args.overlay_out:
            screen = app.primaryScreen()
            screen.grabWindow(0).save(args.overlay_out)
            print(f"screen with overlay: {args.overlay_out}")
        window.close()
        wait(app, lambda: window._closed, 60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
