"""Screenshots for the docs: the main window after a file transcription or during a live session, and the
caption overlay over another window.

    Xvfb :99 -screen 0 1400x900x24 & DISPLAY=:99 .venv/bin/python tests/desktop_app/make_screenshots.py \\
        --pack ~/.cache/parley/packs/whisper-base-int8 --clip talk.wav --translate en --out assets/screenshot.png
    DISPLAY=:99 .venv/bin/python tests/desktop_app/make_screenshots.py --live --language es --translate en \\
        --pack ... --clip spanish.wav --out docs/live.png --overlay-out docs/overlay.png
    DISPLAY=:99 .venv/bin/python tests/desktop_app/make_screenshots.py --improve --language en --pack ... \\
        --clip names.wav --fix "0=My brother works for Draxelon." ... --out docs/improve.png

With ``--live`` the clip is played with paplay into a private PulseAudio null sink and the app captures
the sink's monitor ("computer audio") through sounddevice, as it would a video playing on the computer;
the shot is taken a moment after the clip ends, while the newest line may still be tentative.

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
sys.path.append(str(Path(__file__).resolve().parents[1]))

from desktop_app.app import create_main_window  # noqa: E402
from desktop_app.settings import AppSettings  # noqa: E402


def wait(app: QApplication, condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.02)


def file_window(app: QApplication, tmp: Path, pack: str, clip: str, **settings_values):
    """The main window on a temporary settings file, its model loaded and `clip` transcribed."""
    settings = AppSettings(QSettings(str(tmp / "shot.ini"), QSettings.Format.IniFormat))
    settings.model = pack
    for name, value in settings_values.items():
        setattr(settings, name, value)
    window = create_main_window(settings, list_devices=lambda: [])
    window.resize(1180, 620)
    window.move(40, 30)
    window.show()
    wait(app, lambda: window._model_state in ("ready", "failed"), 120)
    window.open_file(clip)
    wait(app, lambda: window._file_request is None, 600)
    return window


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", required=True)
    ap.add_argument("--clip", required=True)
    ap.add_argument("--translate", default="")
    ap.add_argument("--out", default="assets/screenshot.png")
    ap.add_argument("--overlay-out", default="")
    ap.add_argument("--live", action="store_true", help="play the clip into PulseAudio and capture it live")
    ap.add_argument("--language", default="", help="spoken language ('' = detect)")
    ap.add_argument("--after-s", type=float, default=1.0, help="live: seconds after the clip ends to shoot")
    ap.add_argument("--improve", action="store_true",
                    help="correct lines with --fix OLD=NEW, save them, and shoot Improve recognition while it trains")
    ap.add_argument("--fix", action="append", default=[], help="with --improve: 'row=corrected text' (row from 0)")
    args = ap.parse_args()
    if args.live:
        return live_shots(args)
    if args.improve:
        return improve_shots(args)

    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        window = file_window(app, Path(tmp), args.pack, args.clip, target_language=args.translate,
                             overlay_rect=(200, 460, 900, 130))
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


def _video_stand_in():
    """A plain dark window standing in for a video player, for the overlay to float over."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    video = QLabel("video playing on the computer")
    video.setAlignment(Qt.AlignmentFlag.AlignCenter)
    video.setStyleSheet("background: qlineargradient(x1:0, y1:0, x2:1, y2:1, stop:0 #24323f, stop:1 #5b6e58);"
                        "color: #c8d0d8; font-size: 22px;")
    video.setWindowTitle("Video")
    video.resize(1000, 560)
    video.move(150, 290)
    return video


def live_shots(args) -> int:
    import os
    import subprocess

    from conftest_pulse import SINK, _ensure_sink, _start, _stop
    from engine.audio.capture import list_devices

    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        proc, env = _start(Path(tmp) / "pulse")
        os.environ.update(env)
        try:
            _ensure_sink(env)
            settings = AppSettings(QSettings(str(Path(tmp) / "shot.ini"), QSettings.Format.IniFormat))
            settings.model = args.pack
            settings.source_language = args.language
            settings.target_language = args.translate
            settings.overlay_rect = (250, 670, 900, 160)
            video = _video_stand_in()
            video.show()
            window = create_main_window(settings, list_devices=list_devices)
            window.resize(1180, 560)
            window.move(40, 20)
            window.show()
            picker = window.controls.devices
            picker.refresh()
            index = next(i for i in range(picker.combo.count())
                         if getattr(picker.combo.itemData(i), "pulse_source", None) == f"{SINK}.monitor")
            picker.combo.setCurrentIndex(index)
            wait(app, lambda: window._model_state in ("ready", "failed"), 120)
            window.captions_action.setChecked(True)
            window.controls.start_button.click()
            wait(app, lambda: window.live_state() == "running", 30)
            player = subprocess.Popen(["paplay", f"--device={SINK}", args.clip], env={**os.environ, **env})
            wait(app, lambda: player.poll() is not None, 600)
            deadline = time.monotonic() + args.after_s
            wait(app, lambda: time.monotonic() > deadline, args.after_s + 1)
            window.grab().save(args.out)
            print(f"main window, live: {args.out}")
            if args.overlay_out:
                video.raise_()
                window.overlay.raise_()
                for _ in range(20):
                    app.processEvents()
                    time.sleep(0.02)
                app.primaryScreen().grabWindow(0).save(args.overlay_out)
                print(f"screen with overlay: {args.overlay_out}")
            window.controls.start_button.click()
            wait(app, lambda: window.live_state() == "idle", 120)
            window.close()
            wait(app, lambda: window._closed, 60)
        finally:
            _stop(proc)
    return 0


def improve_shots(args) -> int:
    """A file transcribed, some lines corrected and saved as training data, Improve recognition running."""
    import os

    from desktop_app.transcript_model import TEXT_COL

    from engine.packs.paths import parley_home, sources_root

    sources = sources_root()  # the CTranslate2 weights the pack was built from: training starts there
    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PARLEY_HOME"] = str(Path(tmp) / "home")  # corrections and the tuned pack go here
        parley_home().mkdir(parents=True)
        if sources.is_dir():
            sources_root().symlink_to(sources, target_is_directory=True)
        window = file_window(app, Path(tmp), args.pack, args.clip, source_language=args.language)
        for fix in args.fix:
            row, text = fix.split("=", 1)
            window.transcript.setData(window.transcript.index(int(row), TEXT_COL), text)
        window.save_corrections()
        wait(app, lambda: not window.training.saving, 60)
        dialog = window.open_improve_dialog()
        dialog.move(420, 240)
        dialog.start()
        wait(app, lambda: dialog.bar.maximum() == 100 and dialog.bar.value() > 0 or not dialog.running(), 900)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        app.primaryScreen().grabWindow(0).copy(30, 20, 1200, 690).save(args.out)
        print(f"improve recognition: {args.out}")
        dialog.cancel()
        window.close()
        wait(app, lambda: window._closed, 60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
