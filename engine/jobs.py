"""The jobs both front-ends run: the command line (engine/cli/) and the app's worker (desktop_app/worker.py)
parse, show and write; what is done, and by which rules, is here.

    open_model      a model by name or pack folder, the pack's precision following the device that will run it
    plan_file_job   what a file job does: Whisper's task, and the target its segments are translated into
    run_file_job    one file: transcribe → translate → FileJobResult, with progress and cancel

A translation that fails after transcription (its pair is known only once the language is detected) does not
lose the transcript: the result keeps it and says why the translation is missing.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from engine import file_translation
from engine.errors import CancelledError, ParleyError
from engine.packs.install import ensure_pack
from engine.packs.sources import ProgressFn
from engine.whisper import TranscribeOptions, Transcript, WhisperModel

log = logging.getLogger(__name__)

# (stage, done, total): "transcribing" counts seconds of audio, "translating" a fraction of the segments (total 1)
JobProgress = Callable[[str, float, float], None]


def runs_on(device: str) -> str:
    """Where a model asked to run on ``device`` (auto, cpu, cuda) really runs: "cuda" only when onnxruntime's
    CUDA provider is usable. A pack's default precision follows it: fp16 pays off on CUDA only."""
    from engine.runtime import resolve_device

    return "cuda" if device != "cpu" and "CUDAExecutionProvider" in resolve_device(device)[0] else "cpu"


def open_model(model: str, precision: str | None = None, device: str = "auto", threads: int | None = None,
               progress: ProgressFn | None = None) -> WhisperModel:
    """The Whisper model ``model`` names (a pack folder, or a known model built on first use), in ``precision``
    or else the one its device runs fastest."""
    pack = ensure_pack(model, precision, runs_on(device), progress)
    whisper = WhisperModel.load(pack, device=device, threads=threads)
    log.info("model %s on %s", pack.name, whisper.provider)
    return whisper


@dataclasses.dataclass(frozen=True)
class FileJob:
    options: TranscribeOptions  # Whisper's: language, task (transcribe, or translate into English text), beams
    translate_to: str | None = None  # each segment translated into this language after transcription


def plan_file_job(language: str | None = None, task: str = "transcribe", translate_to: str | None = None,
                  bilingual: bool = False, **whisper) -> FileJob:
    """The job for what was asked: ``translate_to`` "en" without ``bilingual`` lets Whisper translate the whole
    file (one pass); with ``bilingual`` (the app's rows, the CLI's two-line cues) each segment is translated
    after transcription. ``whisper`` goes to TranscribeOptions (beam_size, word_timestamps, ...). ParleyError
    for a combination that cannot be done."""
    target = translate_to or None
    if bilingual and not target:
        raise ParleyError("--bilingual needs --translate-to LANG")
    if target and task == "translate":
        raise ParleyError("give --task translate (English text only) or --translate-to LANG, not both")
    if target == "en" and not bilingual:
        task, target = "translate", None  # English only: Whisper translates the whole file directly
    return FileJob(TranscribeOptions(language=language or None, task=task, **whisper), target)


def open_translator(job: FileJob, model: WhisperModel) -> Callable[[str, str | None, str], str] | None:
    """The installed text packs' translator the job needs (None when it needs none: no target, or English,
    which Whisper translates from the audio). A missing pair fails here, before the long part."""
    if job.translate_to and job.translate_to != "en":
        return file_translation.text_translator(job.translate_to, model.device, model.threads,
                                                job.options.language)
    return None


@dataclasses.dataclass(frozen=True)
class FileJobResult:
    path: Path
    transcript: Transcript
    target: str | None  # what the segments were to be translated into
    translated: list | None = None  # TranslatedSegment per spoken segment; None when not asked for or failed
    translation_error: ParleyError | None = None  # why a translation asked for is missing; the transcript stays

    def with_translations(self) -> list[tuple[object, str]]:
        """Every transcript segment with its translation ("" where there is none)."""
        done = iter(self.translated or ())  # translate_segments skips the segments without text
        pairs = []
        for segment in self.transcript.segments:
            translated = next(done, None) if segment.text.strip() else None
            pairs.append((segment, translated.translation if translated is not None else ""))
        return pairs

    def cues(self, bilingual: bool = False) -> list:
        """What a subtitle or text file holds: the transcript's segments, or their translations (with the
        transcript too when ``bilingual``; a translation has no word timings of its own)."""
        if self.translated is None:
            return list(self.transcript.segments)
        if bilingual:
            return list(self.translated)
        return [dataclasses.replace(d, text=d.translation, words=()) for d in self.translated]


def run_file_job(model: WhisperModel, path: str | Path, job: FileJob, *,
                 translate_text: Callable[[str, str | None, str], str] | None = None,
                 progress: JobProgress | None = None, cancel: threading.Event | None = None,
                 on_transcript: Callable[[Transcript], None] | None = None) -> FileJobResult:
    """Transcribe ``path`` and translate its segments into ``job.translate_to`` (``translate_text`` from
    :func:`open_translator`). Into English, Whisper translates each segment's own audio; into other languages
    the text packs translate its text. Raises ParleyError when the file cannot be transcribed and
    CancelledError once ``cancel`` is set; a translation that fails afterwards is kept in
    ``translation_error``, with the transcript. ``on_transcript`` sees the transcript before its translation
    starts."""

    def stage(name: str) -> Callable[[float, float], None] | None:
        return None if progress is None else (lambda done, total: progress(name, done, total))

    transcript = model.transcribe(path, job.options, stage("transcribing"), cancel)
    if on_transcript is not None:
        on_transcript(transcript)
    result = FileJobResult(Path(path), transcript, job.translate_to)
    if not job.translate_to or not transcript.segments:
        return result
    step = stage("translating")

    def translated(fraction: float) -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled")
        if step is not None:
            step(fraction, 1.0)

    try:
        done = file_translation.translate_segments(
            transcript.segments, job.translate_to, transcript.language or job.options.language, model=model,
            path=path, translate_text=translate_text, progress=translated)
    except CancelledError:
        raise
    except ParleyError as e:
        log.info("%s: transcribed, not translated into %s: %s", path, job.translate_to, e)
        return dataclasses.replace(result, translation_error=e)
    return dataclasses.replace(result, translated=done)
