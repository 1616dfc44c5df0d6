"""The model manager shows a damaged pack and why (pytest-qt, offscreen): a truncated graph, a graph with one byte
altered (same size: only its sha256 tells), a pack whose parley.json is unreadable, and a folder of another
format, beside a good pack, in a temporary PARLEY_HOME. The files are checked in the background after the
listing; each damaged row says "damaged" and the line under the table names the pack, its file and what to do.
Deleting a damaged pack from the dialog leaves the good one in place."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from whisper_fixtures import home, tiny_pack  # noqa: E402,F401 - fixtures

from desktop_app.model_manager import ModelManagerDialog  # noqa: E402

FILES = 5  # the table's "Files" column: checking…, ok or damaged


def _install(home: Path, pack: Path, name: str) -> Path:
    dest = home / "packs" / name
    shutil.copytree(pack, dest)
    return dest


def _statuses(dialog) -> dict[str, str]:
    table = dialog.table
    return {Path(table.item(r, 4).text()).name: table.item(r, FILES).text() for r in range(table.rowCount())}


def _row(dialog, name: str) -> int:
    return next(r for r in range(dialog.table.rowCount()) if Path(dialog.table.item(r, 4).text()).name == name)


@pytest.fixture
def packs(home, tiny_pack) -> dict[str, Path]:
    packs = {name: _install(home, tiny_pack, name) for name in ("good", "truncated", "altered", "unreadable")}
    encoder = packs["truncated"] / "encoder_model.onnx"
    encoder.write_bytes(encoder.read_bytes()[: encoder.stat().st_size // 2])
    decoder = packs["altered"] / "decoder_model_merged.onnx"
    data = bytearray(decoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    decoder.write_bytes(bytes(data))
    (packs["unreadable"] / "parley.json").write_text("{ not json")
    (home / "packs" / "whisper.cpp-base").mkdir()
    (home / "packs" / "whisper.cpp-base" / "ggml-base.bin").write_bytes(b"ggml")
    return packs


def _dialog(qtbot) -> ModelManagerDialog:
    dialog = ModelManagerDialog(confirm=lambda question: True)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_each_damaged_pack_is_marked_with_its_file_and_what_to_do(packs, qtbot):
    dialog = _dialog(qtbot)
    # listed at once, checked in the background: the window never waits for a pack to be hashed
    assert set(_statuses(dialog).values()) == {"checking…"}
    with qtbot.waitSignal(dialog.checked, timeout=60_000):
        pass
    assert _statuses(dialog) == {"good": "ok", "truncated": "damaged", "altered": "damaged",
                                 "unreadable": "damaged"}
    assert dialog.problems_label.isVisibleTo(dialog)
    lines = dialog.problems_label.text().splitlines()
    why = {line.split(" ", 1)[0]: line for line in lines}
    assert set(why) == {"truncated", "altered", "unreadable", str(packs["good"].parent / "whisper.cpp-base:"),
                        "Delete"}
    assert str(packs["truncated"] / "encoder_model.onnx") in why["truncated"]
    assert "bytes where the pack lists" in why["truncated"]
    assert str(packs["altered"] / "decoder_model_merged.onnx") in why["altered"] and "sha256" in why["altered"]
    assert str(packs["unreadable"] / "parley.json") in why["unreadable"]
    assert "whisper.cpp model" in why[str(packs["good"].parent / "whisper.cpp-base:")]
    assert lines[-1] == "Delete a damaged pack and build, import or download it again."
    for name in ("truncated", "altered"):  # the row says why too, on hover
        tip = dialog.table.item(_row(dialog, name), 0).toolTip()
        assert tip in why[name] and str(packs[name]) in tip
    assert str(packs["good"]) not in dialog.problems_label.text()


def test_deleting_the_damaged_packs_leaves_the_good_one_and_clears_the_warning(packs, home, qtbot):
    dialog = _dialog(qtbot)
    with qtbot.waitSignal(dialog.checked, timeout=60_000):
        pass
    for name in ("truncated", "altered", "unreadable"):
        dialog.table.selectRow(_row(dialog, name))
        with qtbot.waitSignal(dialog.checked, timeout=60_000):
            dialog.delete_button.click()
        assert dialog.message.text() == f"Deleted {packs[name]}."
        assert not packs[name].exists() and name not in _statuses(dialog)
    assert _statuses(dialog) == {"good": "ok"}
    assert (packs["good"] / "encoder_model.onnx").is_file()
    assert dialog.problems_label.text().startswith(f"{home / 'packs' / 'whisper.cpp-base'}: not a Parley model pack")
    shutil.rmtree(home / "packs" / "whisper.cpp-base")
    with qtbot.waitSignal(dialog.checked, timeout=60_000):
        dialog.refresh()
    assert not dialog.problems_label.isVisibleTo(dialog) and _statuses(dialog) == {"good": "ok"}


def test_a_pack_damaged_after_it_was_checked_is_found_at_the_next_listing(packs, qtbot):
    dialog = _dialog(qtbot)
    with qtbot.waitSignal(dialog.checked, timeout=60_000):
        pass
    assert _statuses(dialog)["good"] == "ok"
    encoder = packs["good"] / "encoder_model.onnx"  # checked once (stamped), then altered in place
    data = bytearray(encoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    encoder.write_bytes(bytes(data))
    with qtbot.waitSignal(dialog.checked, timeout=60_000):
        dialog.refresh()
    assert _statuses(dialog)["good"] == "damaged"
    assert str(encoder) in dialog.problems_label.text()
