"""Live sessions are recorded to disk only while Training → Record live sessions is on (a saved setting)."""

from __future__ import annotations

import os
from pathlib import Path


def start_and_get_request(window, qtbot):
    requests = []
    window._live_start_requested.connect(requests.append)
    window.start_live()
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=10_000)  # no model: it fails, stays usable
    window._live_start_requested.disconnect(requests.append)
    (request,) = requests
    return request


def test_recording_live_sessions_can_be_turned_off_and_the_choice_is_kept(make_window, qtbot):
    window = make_window(load_model=False)
    recordings = Path(os.environ["PARLEY_HOME"]) / "recordings"
    assert window.record_live_action.isChecked()  # on by default: corrections of live lines need the audio
    on = start_and_get_request(window, qtbot)
    assert on.record_path is not None and Path(on.record_path).parent == recordings

    window.record_live_action.setChecked(False)
    off = start_and_get_request(window, qtbot)
    assert off.record_path is None
    assert not list(recordings.glob("*.wav"))  # (the worker never got to write the first one either)
    window.settings.sync()
    assert make_window(load_model=False).record_live_action.isChecked() is False
