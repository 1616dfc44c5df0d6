"""A live sentence that cannot be translated says why in its translation cell (greyed), and the reason stays
out of the subtitles the window exports."""

from __future__ import annotations

from desktop_app.live_events import apply_live_event
from desktop_app.transcript_model import TRANSLATION_COL
from engine.events import Committed, SentenceEnd, Translated


def test_the_translation_cell_says_why_a_sentence_was_not_translated(make_window):
    window = make_window(load_model=False)
    for segment_id, text in ((1, "Bonjour à tous."), (2, "The cat sat.")):
        apply_live_event(window, Committed(segment_id, text, segment_id - 1.0, segment_id * 1.0, (), 0.0, "fr"))
        apply_live_event(window, SentenceEnd(segment_id, 0.0))
    apply_live_event(window, Translated(1, "", False, 0.0, "de", error="no fr→de pack; installed: en→de"))
    apply_live_event(window, Translated(2, "Die Katze saß.", False, 0.0, "de"))
    model = window.transcript
    cells = [model.index(row, TRANSLATION_COL).data() for row in range(model.rowCount())]
    assert cells == ["not translated: no fr→de pack; installed: en→de", "Die Katze saß."]
    assert not window.view.isColumnHidden(TRANSLATION_COL)
    assert [s.translation for s in model.export_segments()] == [None, "Die Katze saß."]


def test_starting_live_with_a_fixed_language_no_pack_serves_is_refused_and_keeps_the_transcript(
        make_window, tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))  # no translation pack installed at all
    window = make_window(load_model=False)
    apply_live_event(window, Committed(1, "What was said before.", 0.0, 1.0, (), 0.0, "en"))
    apply_live_event(window, SentenceEnd(1, 0.0))
    window.controls.source_language = lambda: "fr"
    window.controls.target_language = lambda: "de"
    window.start_live()
    assert window.transcript.rowCount() == 1  # nothing lost
    assert "Cannot start" in window.banner.message() and "de" in window.banner.message()
