"""How each live event from the engine changes the window (panes, overlay, status, meter)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from desktop_app.main_window import MainWindow

log = logging.getLogger(__name__)

_TEXT_EVENTS = ("Partial", "Committed", "Translated")


def apply_live_event(window: MainWindow, event) -> None:
    """Dispatch by event class name, so the window needs no import of the engine to draw events."""
    kind = type(event).__name__
    model = window.transcript
    if kind == "Partial":
        model.set_tentative(event.text.strip(), event.start_s, event.end_s, source_key=event.segment_id)
    elif kind == "Committed":
        # The words keep Whisper's leading spaces, so fragments joined into one row read "lazy dog"
        # (and CJK text, which has none, joins without spaces). Words that do not spell the text
        # (an engine that sends none, or only some) fall back to the text after one space.
        joined = "".join(w.text for w in event.words or ())
        text = joined if joined.strip() == event.text.strip() else " " + event.text.strip()
        model.upsert_committed(event.segment_id, event.start_s, event.end_s, text,
                               tuple(event.words or ()), merge=True)
        if event.language and not window.controls.source_language():
            window.controls.show_detected(event.language)
    elif kind == "SentenceEnd":
        model.finish_sentence(event.segment_id)
    elif kind == "Translated":
        if not model.set_translation(event.segment_id, event.text.strip(), bool(event.draft)):
            log.debug("translation for unknown segment %s dropped", event.segment_id)
        if window.view.isColumnHidden(2):
            window.view.set_translation_visible(True)
    elif kind == "Level":
        window.controls.level.set_level(event.rms_db, event.peak)
    elif kind == "Stats":
        window.status.set_stats(event.rtf, event.lag_s, event.dropped_blocks)
    elif kind == "Status":
        if event.provider:
            short = event.provider.replace("ExecutionProvider", "")
            window.controls.set_provider(f"running on {short}", event.provider)
        if event.message:
            window.status.showMessage(event.message, 5000)
    elif kind == "Error":
        window.show_error(event.message)
    else:
        log.debug("ignoring live event %r", event)
    if kind in _TEXT_EVENTS:
        window.overlay.show_rows(model.last_lines(2))
