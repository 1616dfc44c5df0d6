"""The model manager's Import… and Download… (pytest-qt, offscreen): choosers injected, a tiny Whisper
pack, a local server laid out like the Hugging Face hub; PARLEY_HOME is a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from hub_fixtures import _Hub, hub  # noqa: E402,F401 - the fixture
from whisper_fixtures import home, publish_optimum, tiny_pack  # noqa: E402,F401 - fixtures

from desktop_app.model_manager import ModelManagerDialog  # noqa: E402


def _dialog(qtbot, **choosers) -> ModelManagerDialog:
    dialog = ModelManagerDialog(confirm=lambda question: True, **choosers)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _rows(dialog) -> list[list[str]]:
    return [[dialog.table.item(r, c).text() for c in range(5)] for r in range(dialog.table.rowCount())]


def test_import_of_a_pack_folder_lists_it_and_says_packs_changed(home, qtbot, tiny_pack):
    dialog = _dialog(qtbot, choose_folder=lambda: str(tiny_pack))
    assert dialog.table.rowCount() == 0 and dialog.empty_label.isVisibleTo(dialog)
    with qtbot.waitSignal(dialog.packs_changed, timeout=60_000):
        dialog.import_folder_action.trigger()
        assert dialog.building() and not dialog.import_button.isEnabled() and dialog.cancel_button.isHidden()
    (row,) = _rows(dialog)
    assert row[0] == "tiny-whisper" and row[1] == "fp32" and row[4] == str(home / "packs" / "tiny-whisper")
    assert dialog.message.text() == f"Imported {home / 'packs' / 'tiny-whisper'}."
    assert not dialog.building() and dialog.import_button.isEnabled() and dialog.progress.isHidden()
    assert not dialog.empty_label.isVisibleTo(dialog)


def test_import_of_a_bad_folder_shows_a_sentence_naming_it(home, qtbot, tmp_path):
    bad = tmp_path / "my recordings"
    bad.mkdir()
    (bad / "notes.txt").write_text("not a model")
    dialog = _dialog(qtbot, choose_folder=lambda: str(bad))
    changed = []
    dialog.packs_changed.connect(lambda: changed.append(True))
    dialog.import_folder()
    qtbot.waitUntil(lambda: not dialog.building(), timeout=30_000)
    text = dialog.message.text()
    assert text.startswith(f"{bad}: not a model Parley can import") and text.endswith(".") and "Traceback" not in text
    assert not changed and dialog.table.rowCount() == 0 and dialog.import_button.isEnabled()


def test_a_cancelled_chooser_starts_nothing(home, qtbot):
    dialog = _dialog(qtbot, choose_folder=lambda: None, choose_file=lambda: None, choose_repo=lambda: None)
    dialog.import_folder()
    dialog.import_file()
    dialog.download()
    assert not dialog.building() and dialog.message.text() == ""


def test_download_installs_the_pack(home, qtbot, tiny_pack, hub, monkeypatch):
    root, url = hub
    monkeypatch.setattr("engine.packs.hub.HUB_URL", url)
    publish_optimum(tiny_pack, root / "someone" / "whisper-tiny")
    dialog = _dialog(qtbot, choose_repo=lambda: ("someone/whisper-tiny", "quantized"))
    fractions = []
    # The bar's own signal, emitted on the GUI thread (a plain function patched over the slot would be
    # called directly on the worker thread and touch widgets there).
    dialog.progress.valueChanged.connect(lambda value: fractions.append(value / 1000))
    with qtbot.waitSignal(dialog.packs_changed, timeout=60_000):
        dialog.download_button.click()
        assert dialog.cancel_button.isVisibleTo(dialog) and dialog.cancel_button.isEnabled()
    assert fractions and fractions[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in fractions)
    (row,) = _rows(dialog)
    assert row[0] == "whisper-tiny-quantized" and row[1] == "int8" and row[3] == "hf:someone/whisper-tiny@main (quantized)"
    assert dialog.cancel_button.isHidden() and dialog.message.text().startswith("Downloaded ")


def test_cancelling_a_download_leaves_no_pack(home, qtbot, tiny_pack, hub, monkeypatch):
    root, url = hub
    monkeypatch.setattr("engine.packs.hub.HUB_URL", url)
    publish_optimum(tiny_pack, root / "someone" / "whisper-tiny")
    _Hub.delay = 0.3  # per file: the download is still running when Cancel is clicked
    dialog = _dialog(qtbot, choose_repo=lambda: ("someone/whisper-tiny", ""))
    changed = []
    dialog.packs_changed.connect(lambda: changed.append(True))
    dialog.download()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=30_000)
    dialog.close()  # refused while the download runs
    assert dialog.isVisible() and "can be cancelled" in dialog.message.text()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.building(), timeout=30_000)
    assert dialog.message.text() == "Downloading someone/whisper-tiny was cancelled; nothing was installed."
    assert not changed and dialog.table.rowCount() == 0
    assert not (home / "packs").exists() or list((home / "packs").iterdir()) == []
