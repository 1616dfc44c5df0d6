"""Files through the real model: transcript in the pane, SRT export, cancel, unreadable files, a responsive GUI."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from needs import require_module
from tests.desktop_app.stall_probe import StallProbe, assert_not_frozen

pytestmark = pytest.mark.model

FOX = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."
SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.strip().splitlines()
        assert lines[0].strip().isdigit(), block
        m = SRT_TIME.match(lines[1].strip())
        assert m, lines[1]
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        cues.append((start, end, " ".join(lines[2:])))
    return cues


def _ready(window, qtbot):
    qtbot.waitUntil(lambda: window._model_state in ("ready", "failed"), timeout=120_000)
    assert window._model_state == "ready", window.banner.message()


def _transcribe(window, qtbot, path, timeout_ms=180_000):
    assert window.open_file(path)
    qtbot.waitUntil(lambda: window._file_request is None, timeout=timeout_ms)


def test_window_is_interactive_while_the_model_loads(make_window, qtbot, pack_int8, record_property):
    started = time.perf_counter()
    probe = StallProbe()
    probe.start()
    window = make_window(pack=pack_int8)
    qtbot.waitExposed(window)
    shown_s = time.perf_counter() - started
    assert shown_s < 2.0
    qtbot.waitUntil(lambda: window._model_state in ("loading", "ready"))
    window.controls.select_languages("en", "")  # the GUI answers while the worker loads
    assert window.controls.source_language() == "en"
    _ready(window, qtbot)
    stall_s = probe.stop()
    record_property("max_event_loop_stall_during_load_ms", round(stall_s * 1000, 1))
    print(f"window shown after {shown_s * 1000:.0f} ms; max event-loop stall while loading: {stall_s * 1000:.1f} ms")
    # onnxruntime holds the GIL while it builds a session (~65 ms measured on 2 cores): the window
    # stays responsive but may skip a frame or a few while the model loads.
    assert_not_frozen(probe, stall_s)
    assert "running on" in window.controls.provider_label.text()
    assert "whisper-base" in window.status.model_label.text() or pack_int8.name in window.status.model_label.text()


def test_file_fills_transcript_and_exports_srt_that_parses(make_window, qtbot, pack_int8, speech_clip, tmp_path,
                                                           record_property):
    clip = speech_clip("fox", FOX)
    window = make_window(pack=pack_int8)
    _ready(window, qtbot)
    probe = StallProbe()
    probe.start()
    _transcribe(window, qtbot, clip)
    stall_s = probe.stop()
    record_property("max_event_loop_stall_ms", round(stall_s * 1000, 1))
    print(f"max event-loop stall while transcribing a file: {stall_s * 1000:.1f} ms "
          f"(at {probe.max_gap_at_s:.2f} s of {probe.elapsed_s:.2f} s)")

    text = window.transcript.transcript_text().lower()
    for word in ("quick", "brown", "fox", "lazy", "dog"):
        assert word in text, text
    assert "English" in window.controls.source_combo.itemText(0)
    assert window.status.rtf_label.text().startswith("RTF")

    out = window.export_to(tmp_path / "fox.srt", "srt")
    cues = parse_srt(out.read_text(encoding="utf-8"))
    assert cues and all(0 <= start < end for start, end, _ in cues)
    assert all(a[1] <= b[0] + 1e-3 for a, b in zip(cues, cues[1:]))
    assert "brown fox" in " ".join(c[2] for c in cues).lower()
    for fmt in ("txt", "vtt", "json"):
        assert window.export_to(tmp_path / f"fox.{fmt}", fmt).stat().st_size > 0
    assert_not_frozen(probe, stall_s)


def test_cancel_stops_a_long_file_and_the_app_stays_usable(make_window, qtbot, pack_int8, speech_clip,
                                                           record_property):
    long_clip = speech_clip("fox-long", FOX, repeat=12)  # about 80 s of speech
    window = make_window(pack=pack_int8)
    _ready(window, qtbot)
    probe = StallProbe()
    probe.start()
    assert window.open_file(long_clip)
    qtbot.waitUntil(lambda: window.progress.bar.value() > 0, timeout=120_000)
    window.progress.cancel_button.click()
    qtbot.waitUntil(lambda: window._file_request is None, timeout=60_000)
    stall_s = probe.stop()
    record_property("max_event_loop_stall_long_file_ms", round(stall_s * 1000, 1))
    print(f"max event-loop stall over {probe.elapsed_s:.1f} s of a long file: {stall_s * 1000:.1f} ms")
    assert_not_frozen(probe, stall_s)
    assert window.progress.bar.value() < 1000
    assert window.transcript.rowCount() == 0
    assert not window.banner.isVisible()
    assert window.open_action.isEnabled() and window.controls.start_button.isEnabled()


def test_unreadable_file_is_a_sentence_and_the_next_file_works(make_window, qtbot, pack_int8, speech_clip, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("these are meeting notes, not audio\n" * 20)
    window = make_window(pack=pack_int8)
    _ready(window, qtbot)
    _transcribe(window, qtbot, bad)
    message = window.banner.message()
    assert "notes.wav" in message and "Traceback" not in message and "\n" not in message
    _transcribe(window, qtbot, speech_clip("fox", FOX))
    assert "fox" in window.transcript.transcript_text().lower()


def test_translate_to_english_fills_the_translation_pane(make_window, qtbot, pack_int8, clip_dir, tmp_path):
    from bench import clips

    # Whisper base translates espeak-ng's Spanish loosely (faster-whisper gives no better on these
    # clips), so this asserts what the app does with it: detected language, an English line beside
    # the Spanish one, aligned on the same row.
    spanish = next(c for c in clips.clips("es") if c.id == "es01")
    clip = clips.synthesize(spanish, clip_dir)
    window = make_window(pack=pack_int8)
    window.controls.select_languages("", "en")
    _ready(window, qtbot)
    _transcribe(window, qtbot, clip)
    assert window.transcript.rowCount() > 0, window.banner.message()
    assert "Spanish" in window.controls.source_combo.itemText(0)
    transcript = window.transcript.transcript_text().lower()
    translation = window.transcript.translation_text().lower()
    assert translation and translation != transcript
    english = {"we", "the", "i", "to", "is", "are", "let's", "go", "going", "visit", "my"}
    assert english & set(translation.replace(",", " ").replace(".", " ").replace("!", " ").split()), translation
    assert all(r.translation for r in window.transcript.committed_rows())
    assert not window.view.isColumnHidden(2)
    # With a translation, the export is bilingual: each cue holds the Spanish and then the English.
    cues = parse_srt(window.export_to(tmp_path / "es.srt", "srt").read_text(encoding="utf-8"))
    both = " ".join(c[2] for c in cues).lower()
    row = window.transcript.committed_rows()[0]
    assert row.text.lower()[:12] in both and row.translation.lower()[:12] in both


def test_an_installed_translation_pack_is_offered_and_translates_a_file(make_window, qtbot, pack_int8, speech_clip,
                                                                         tmp_path, tmp_path_factory):
    require_module("transformers")
    import os
    import shutil

    from translate_fixtures import built

    pack = built(tmp_path_factory, "marian")[1]  # tiny random-weight en→de Marian: real runtime, arbitrary words
    shutil.copytree(pack, Path(os.environ["PARLEY_HOME"]) / "packs" / "translation" / pack.name)
    window = make_window(pack=pack_int8)
    targets = [window.controls.target_combo.itemData(i) for i in range(window.controls.target_combo.count())]
    assert "de" in targets and "en" in targets
    window.controls.select_languages("en", "de")
    _ready(window, qtbot)
    _transcribe(window, qtbot, speech_clip("fox", "The quick brown fox jumps over the lazy dog."))
    rows = window.transcript.committed_rows()
    assert rows and all(r.translation and r.translation != r.text for r in rows), window.banner.message()
