"""Model manager (list, delete), drag and drop, GPU fallback, closing while busy."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from desktop_app.model_manager import ModelManagerDialog


def _fake_installed_pack(home, name="whisper-base", precision="int8"):
    """A pack folder as installed_packs() sees it (files on disk; no model runs in these tests)."""
    folder = home / "packs" / f"{name}-{precision}"
    folder.mkdir(parents=True)
    (folder / "encoder_model.onnx").write_bytes(b"\0" * 300_000)
    (folder / "parley.json").write_text(json.dumps({"name": name, "precision": precision, "kind": "whisper",
                                                    "source": {"origin": "pypi:test"}}))
    return folder


def test_model_manager_lists_and_deletes_packs(make_window, qtbot, tmp_path):
    window = make_window(load_model=False)  # sets PARLEY_HOME to tmp_path / "parley-home"
    folder = _fake_installed_pack(tmp_path / "parley-home")
    window.refresh_models()
    assert window.controls.model_label() == "whisper-base · int8"

    dialog = ModelManagerDialog(window, confirm=lambda question: True)
    qtbot.addWidget(dialog)
    row = [dialog.table.item(0, c).text() for c in range(5)]
    assert row[:2] == ["whisper-base", "int8"] and row[3] == "pypi:test"
    assert row[2].endswith(" KB") and 292 < float(row[2].split()[0]) < 295  # 300,000 bytes of model + json
    dialog.packs_changed.connect(lambda: window.refresh_models())
    dialog.table.selectRow(0)
    dialog.delete_button.click()
    assert not folder.exists()
    assert dialog.table.rowCount() == 0 and dialog.empty_label.isVisibleTo(dialog)
    assert "not built yet" in window.controls.model_label()


def _drop(window, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    accepted = enter.isAccepted()
    if accepted:
        window.dropEvent(QDropEvent(QPoint(10, 10).toPointF(), Qt.DropAction.CopyAction, mime,
                                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    return accepted


def test_drag_and_drop_accepts_media_files_only(make_window, qtbot, tmp_path):
    window = make_window(load_model=False)
    assert not _drop(window, tmp_path / "notes.txt")
    assert _drop(window, tmp_path / "talk.mp3")
    qtbot.waitUntil(lambda: window.progress.isHidden())
    assert "talk.mp3" in window.banner.message() and "no model is loaded" in window.banner.message()


@pytest.mark.model
def test_gpu_requested_without_cuda_falls_back_and_says_why(make_window, qtbot, pack_int8):
    window = make_window(pack=pack_int8, load_model=False)
    window.controls.select_compute_device("cuda")
    window.load_selected_model()
    qtbot.waitUntil(lambda: window._model_state in ("ready", "failed"), timeout=120_000)
    provider = window._model_info.provider if window._model_info else ""
    if "CUDA" in provider:
        pytest.skip("this machine has a working CUDA provider")
    assert window._model_state == "ready"
    assert window.controls.provider_label.text() == "running on CPU"
    assert "GPU requested" in window.banner.message() and "CPU" in window.banner.message()


@pytest.mark.model
def test_closing_during_a_file_cancels_it_and_stops_the_thread(make_window, qtbot, pack_int8, speech_clip):
    clip = speech_clip("fox-long", "The quick brown fox jumps over the lazy dog. She sells sea shells.", repeat=12)
    window = make_window(pack=pack_int8)
    qtbot.waitUntil(lambda: window._model_state == "ready", timeout=120_000)
    assert window.open_file(clip)
    window.close()
    assert window.isVisible()  # waits for the cancel to land before it closes
    qtbot.waitUntil(lambda: window._closed, timeout=60_000)
    assert not window.worker_thread.isRunning()


@pytest.mark.model
def test_a_corrupt_pack_is_a_sentence_naming_the_file(make_window, qtbot, pack_int8, tmp_path):
    import shutil

    broken = tmp_path / "whisper-base-int8-broken"
    broken.mkdir()
    for f in pack_int8.iterdir():
        if f.suffix == ".json":
            shutil.copy(f, broken / f.name)
    for name in ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"):
        (broken / name).write_bytes(b"this is not an onnx graph")
    window = make_window(pack=broken)
    qtbot.waitUntil(lambda: window._model_state in ("ready", "failed"), timeout=60_000)
    assert window._model_state == "failed"
    message = window.banner.message()
    assert ".onnx" in message and "rebuild" in message.lower() and "Traceback" not in message
    assert window.controls.provider_label.text() == "not loaded"
    window.controls.start_button.click()  # still usable: Start says why it cannot run
    qtbot.waitUntil(lambda: "no model is loaded" in window.banner.message())
