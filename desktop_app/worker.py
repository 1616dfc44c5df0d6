"""The engine worker: a QObject moved to a QThread that loads the model and runs files and live sessions.

The window talks to it only through signals (queued across the thread boundary), so the GUI thread
never runs a model. Cancelling a file sets the request's threading.Event from the GUI thread (the
worker thread is busy inside the engine then, which polls the event). Live events arrive from the
session's own thread and are re-emitted as `live_event`, queued to the window.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal, Slot

from desktop_app.errors import describe_error
from desktop_app.transcript_model import SegmentRow
from engine.events import Level

log = logging.getLogger(__name__)

LEVEL_INTERVAL_S = 0.04  # the meter needs no more than 25 updates a second
PROGRESS_INTERVAL_S = 0.1


@dataclasses.dataclass(frozen=True)
class FileRequest:
    path: str
    language: str | None  # None: detect
    translate_to: str | None  # None: no translation; 'en': Whisper's speech translation
    # Set from the GUI thread to cancel; one per request, so a cancel sent before the job starts counts.
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event, compare=False)
    glossary: object = None  # engine.glossary.Glossary: the user's words bias recognition; None: none


@dataclasses.dataclass(frozen=True)
class LiveRequest:
    device: object  # engine.audio.capture.DeviceInfo, or None for the default input
    language: str | None
    translate_to: str | None
    record_path: str | None = None  # the session's audio is written here (corrections become training data)
    glossary: object = None  # engine.glossary.Glossary: the user's words bias recognition; None: none


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    requested_device: str
    provider: str
    note: str  # why it fell back to CPU, when it did


@dataclasses.dataclass(frozen=True)
class FileResult:
    path: str
    rows: list
    language: str | None
    language_probability: float | None
    duration_s: float
    elapsed_s: float
    note: str = ""  # the transcript is here but something about it is not, e.g. why it was not translated


def default_model_loader(pack_path: str, device: str):
    from engine.jobs import open_model

    return open_model(pack_path, device=device)


def _cuda_fallback_note(device_reason: str) -> str:
    """Why a GPU request runs on the CPU: the model's own ``device_reason`` when it says so (what the runtime
    found when the model was opened), else a fresh probe, else a generic sentence."""
    reason = device_reason if "unavailable" in device_reason else ""
    if not reason:
        reason = "no NVIDIA GPU, driver or CUDA/cuDNN libraries were found"
        try:
            from engine.runtime import resolve_device

            reason = resolve_device("cuda")[1]
        except Exception:  # noqa: BLE001 - the generic sentence will do
            log.debug("could not ask the runtime why CUDA is unavailable", exc_info=True)
    return f"GPU requested, but it is not usable here ({reason}); Parley runs on the CPU."


class EngineWorker(QObject):
    model_loading = Signal(str)
    model_loaded = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    file_progress = Signal(float, str)  # fraction 0..1, stage
    file_done = Signal(object)  # FileResult
    file_cancelled = Signal(str)
    file_failed = Signal(str)
    live_started = Signal()
    live_event = Signal(object)  # engine.events dataclasses, from the session's thread
    live_finished = Signal()
    live_failed = Signal(str)

    def __init__(self, model_loader: Callable | None = None, audio_source_factory: Callable | None = None):
        super().__init__()
        self._loader = model_loader or default_model_loader
        self._source_factory = audio_source_factory
        self._model = None
        self._live_job = None
        self._last_level = 0.0
        self._last_progress = 0.0

    def has_model(self) -> bool:
        return self._model is not None

    @Slot(str, str, str)
    def load_model(self, name: str, pack_path: str, device: str) -> None:
        self.model_loading.emit(name)
        self._model = None
        try:
            model = self._loader(pack_path, device)
        except Exception as e:  # noqa: BLE001 - becomes a sentence in the window
            self.model_failed.emit(describe_error(e, f"loading the model {name}"))
            return
        self._model = model
        provider = str(getattr(model, "provider", "CPUExecutionProvider"))
        note = ""
        if device == "cuda" and "CUDA" not in provider:
            note = _cuda_fallback_note(str(getattr(model, "device_reason", "")))
        self.model_loaded.emit(ModelInfo(name, pack_path, device, provider, note))

    @Slot(object)
    def transcribe_file(self, request: FileRequest) -> None:
        name = Path(request.path).name
        if request.cancel.is_set():
            self.file_cancelled.emit(f"Cancelled {name}.")
            return
        if self._model is None:
            self.file_failed.emit(f"Cannot transcribe {name}: no model is loaded. Choose or build a model first.")
            return
        started = time.monotonic()
        try:
            from engine.jobs import open_translator, plan_file_job, run_file_job

            # The rows hold the transcript and its translation side by side: each segment is translated (into
            # English by Whisper from the segment's own audio, other targets by the text packs).
            job = plan_file_job(request.language, translate_to=request.translate_to,
                                bilingual=bool(request.translate_to), glossary=request.glossary or None)
            share = 0.5 if job.translate_to else 1.0
            stages = {"transcribing": self._progress_fn(0.0, share, "transcribing"),
                      "translating": self._progress_fn(0.5, 0.5, "translating")}
            result = run_file_job(self._model, request.path, job, translate_text=open_translator(job, self._model),
                                  progress=lambda stage, done, total: stages[stage](done, total),
                                  cancel=request.cancel)
            note = ""
            if result.translation_error is not None:
                # Known only after language detection: the transcript stays, the banner says why.
                note = describe_error(result.translation_error, f"translating {name}")
                note = f"{name} was transcribed, but not translated into {job.translate_to}: {note}"
            rows = [SegmentRow(i, s.start_s, s.end_s, s.text.strip(), translation,
                               words=tuple(getattr(s, "words", None) or ()))
                    for i, (s, translation) in enumerate(result.with_translations())]
        except Exception as e:  # noqa: BLE001
            if type(e).__name__ == "CancelledError" or request.cancel.is_set():
                self.file_cancelled.emit(f"Cancelled {name}.")
            else:
                self.file_failed.emit(describe_error(e, f"transcribing {name}"))
            return
        transcript = result.transcript
        self.file_done.emit(FileResult(request.path, rows, transcript.language,
                                       getattr(transcript, "language_probability", None),
                                       float(getattr(transcript, "duration_s", 0.0) or 0.0),
                                       time.monotonic() - started, note))

    def _progress_fn(self, offset: float, share: float, stage: str):
        def progress(done_s: float, total_s: float) -> None:
            now = time.monotonic()
            if total_s <= 0 or (now - self._last_progress < PROGRESS_INTERVAL_S and done_s < total_s):
                return
            self._last_progress = now
            self.file_progress.emit(offset + share * min(1.0, done_s / total_s), stage)

        return progress

    # Live
    @Slot(object)
    def start_live(self, request: LiveRequest) -> None:
        if self._model is None:
            self.live_failed.emit("Cannot start: no model is loaded. Choose or build a model first.")
            return
        try:
            from engine.jobs import plan_live_job, start_live_job

            options = plan_live_job(request.language, translate_to=request.translate_to, device=request.device,
                                    record_path=request.record_path, glossary=request.glossary)
            source = self._source_factory(request.device) if self._source_factory else None
            self._live_job = start_live_job(self._model, options, self._on_live_event, source=source)
        except Exception as e:  # noqa: BLE001
            self._live_job = None
            self.live_failed.emit(describe_error(e, "starting live transcription"))
            return
        self.live_started.emit()

    @Slot()
    def stop_live(self) -> None:
        """Stop capture, then drain: everything already recorded is still transcribed."""
        job, self._live_job = self._live_job, None
        if job is None:
            self.live_finished.emit()
            return
        try:
            job.finish()  # stops the capture first
        except Exception as e:  # noqa: BLE001
            self.live_failed.emit(describe_error(e, "finishing live transcription"))
        self.live_finished.emit()

    def _on_live_event(self, event) -> None:
        if isinstance(event, Level):
            now = time.monotonic()
            if now - self._last_level < LEVEL_INTERVAL_S:
                return
            self._last_level = now
        self.live_event.emit(event)
