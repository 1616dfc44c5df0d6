"""Fixtures for the desktop app: windows on a temporary settings file, espeak-ng clips."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QSettings

from desktop_app.app import create_main_window
from desktop_app.settings import AppSettings
from needs import require_command


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    """What engine.audio.capture.list_devices returns, for tests that need a device list without a sound server."""

    index: int
    name: str
    hostapi: str = "test"
    max_input_channels: int = 1
    default_samplerate: float = 48000.0
    is_monitor: bool = False


DEVICES = [FakeDevice(0, "Built-in Microphone"), FakeDevice(1, "USB Headset"),
           FakeDevice(2, "Monitor of Speakers", is_monitor=True)]


@pytest.fixture
def settings_path(tmp_path) -> Path:
    return tmp_path / "parley-test.ini"


@pytest.fixture
def make_window(qtbot, settings_path, monkeypatch, tmp_path):
    """make_window(**kwargs) -> a shown MainWindow on the temporary settings; closed (drained) at teardown."""
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "parley-home"))  # no packs installed unless a test says so
    windows = []

    def make(pack: Path | None = None, load_model: bool = True, **kwargs):
        settings = AppSettings(QSettings(str(settings_path), QSettings.Format.IniFormat))
        if pack is not None:
            settings.model = str(pack)
        kwargs.setdefault("list_devices", lambda: DEVICES)
        window = create_main_window(settings, load_model=load_model, **kwargs)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        qtbot.waitUntil(lambda w=window: w._closed, timeout=60_000)
        assert not window.worker_thread.isRunning()


@pytest.fixture
def speech_clip(clip_dir):
    """speech_clip(name, text, repeat=1, voice="en") -> a wav made by espeak-ng (cached for the run)."""
    return lambda name, text, repeat=1, voice="en": espeak_clip(clip_dir, name, text, repeat, voice)


def espeak_clip(folder: Path, name: str, text: str, repeat: int = 1, voice: str = "en") -> Path:
    """A spoken clip (espeak-ng), optionally repeated end to end."""
    require_command("espeak-ng", "espeak-ng")
    out = folder / f"{name}.wav"
    if out.exists():
        return out
    one = folder / f"{name}-once.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(one), text], check=True)
    if repeat == 1:
        one.rename(out)
    else:
        speech, rate = sf.read(one, dtype="float32")
        sf.write(out, np.concatenate([speech] * repeat), rate)
    return out
