"""How each live event from the engine changes the window (panes, overlay, status, meter)."""

from __future__ import annotations

import logging
from typing import Protocol

from engine.events import (Committed, Error, Level, Partial, SentenceEnd, SessionEnded, Stats, Status,
                           Translated)

log = logging.getLogger(__name__)


class LiveView(Protocol):
    """What a live event touches in the window (desktop_app.main_window.MainWindow is one)."""

    transcript: object  # TranscriptModel
    controls: object  # ControlBar
    view: object  # TranscriptView
    status: object  # StatusBar
    overlay: object  # CaptionOverlay

    def show_error(self, message: str) -> None: ...


def apply_live_event(window: LiveView, event) -> None:
    """Draw one engine event. SessionEnded changes no pane: the window's state machine handles it."""
    model = window.transcript
    match event:
        case Partial():
            model.set_tentative(event.text.strip(), event.start_s, event.end_s, source_key=event.segment_id)
        case Committed():
            # The words keep Whisper's leading spaces, so fragments joined into one row read "lazy dog"
            # (and CJK text, which has none, joins without spaces). Words that do not spell the text
            # (an engine that sends none, or only some) fall back to the text after one space.
            joined = "".join(w.text for w in event.words or ())
            text = joined if joined.strip() == event.text.strip() else " " + event.text.strip()
            model.upsert_committed(event.segment_id, event.start_s, event.end_s, text,
                                   tuple(event.words or ()), merge=True)
            if event.language and not window.controls.source_language():
                window.controls.show_detected(event.language)
        case SentenceEnd():
            model.finish_sentence(event.segment_id)
        case Translated():
            if event.error is not None:
                model.set_translation_note(event.segment_id, f"not translated: {event.error}")
            elif not model.set_translation(event.segment_id, event.text.strip(), bool(event.draft)):
                log.debug("translation for unknown segment %s dropped", event.segment_id)
            if window.view.isColumnHidden(2):
                window.view.set_translation_visible(True)
        case Level():
            window.controls.level.set_level(event.rms_db, event.peak)
        case Stats():
            window.status.set_stats(event.rtf, event.lag_s, event.dropped_blocks)
        case Status():
            if event.provider:
                short = event.provider.replace("ExecutionProvider", "")
                window.controls.set_provider(f"running on {short}", event.provider)
            if event.message:
                window.status.showMessage(event.message, 5000)
        case Error():
            window.show_error(event.message)
        case SessionEnded():
            pass
        case _:
            log.debug("ignoring live event %r", event)
    if isinstance(event, (Partial, Committed, Translated)):
        window.overlay.show_rows(model.last_lines(2))
