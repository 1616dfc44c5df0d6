"""Live rows follow the engine's sentences: a row ends where the recogniser ended the sentence (at a pause, even
without an end mark), its translation lands in the same row, and the overlay shows both."""

from __future__ import annotations

from desktop_app.live_events import apply_live_event
from engine.events import Committed, Partial, SentenceEnd, Translated, Word


def _committed(segment_id: int, text: str, start: float, end: float) -> Committed:
    return Committed(segment_id, text, start, end, (Word(start, end, " " + text),), emitted_at=0.0, language="es")


def test_a_sentence_the_engine_ended_is_one_row_with_its_translation(make_window):
    window = make_window()
    events = [
        _committed(0, "Mañana vamos", 0.0, 1.0),
        _committed(1, "al campo", 1.0, 2.0),  # the speaker paused here without an end mark
        SentenceEnd(1, emitted_at=0.0),
        Partial(2, "Mi herm", 3.0, 3.4, emitted_at=0.0),
        Translated(1, "Tomorrow we go to the countryside", draft=False, emitted_at=0.0, language="en"),
        _committed(2, "Mi hermano estudia", 3.0, 4.0),  # 1 s later: the old rule would have joined the row
    ]
    window.settings.overlay_mode = "both"
    for event in events[:5]:
        apply_live_event(window, event)
    # The finished sentence and its translation are on screen together while the next one is spoken.
    assert window.overlay.caption_text().split("\n") == ["Mañana vamos al campo",
                                                         "Tomorrow we go to the countryside", "Mi herm"]
    apply_live_event(window, events[5])
    rows = window.transcript.committed_rows()
    assert [r.text for r in rows] == ["Mañana vamos al campo", "Mi hermano estudia"]
    assert rows[0].translation == "Tomorrow we go to the countryside" and not rows[0].translation_draft
