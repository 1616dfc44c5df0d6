"""The jobs both front-ends run: the command line (engine/cli/) and the app's worker (desktop_app/worker.py)
parse, show and write; what is done, and by which rules, is here (the app translates no text on its own: the
text job has the CLI only, so far).

    open_model       a model by name or pack folder, the pack's precision following the device that will run it
    translator_into  the installed text packs' translator into a language (refused early where none serves)
    plan_file_job    what a file job does: Whisper's task, and the target its segments are translated into
    run_file_job     one file: transcribe → translate → FileJobResult, with progress and cancel
    plan_live_job    LiveOptions for what was asked, by the same task rules
    start_live_job   one live session: its translation stage, events out, stop (finish what was heard) or cancel
    run_live_job     the same, until its source runs out, a stop, or a duration → LiveJobResult
    plan_text_job    what a text translation does: a pack, the installed packs (pivoting), or a Whisper pack's
                     shared speech/text space
    run_text_job     lines of text → TextJobResult (the translations, and a pivot's note)

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
from engine.events import Committed, Stats, Translated
from engine.live.cues import Sentence, sentences, with_translations
from engine.live.options import LiveOptions
from engine.live.session import LiveSession
from engine.packs.install import ensure_pack
from engine.packs.sources import ProgressFn
from engine.translate.languages import canonical
from engine.whisper import TranscribeOptions, Transcript, WhisperModel

log = logging.getLogger(__name__)

TextTranslator = Callable[[str, str | None, str], str]  # (text, source language, target) → translation
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
    target = _target(translate_to)
    if bilingual and not target:
        raise ParleyError("--bilingual needs --translate-to LANG")
    _one_way_into_english(task, target)
    if target == "en" and not bilingual:
        task, target = "translate", None  # English only: Whisper translates the whole file directly
    return FileJob(TranscribeOptions(language=language or None, task=task, **whisper), target)


def _target(translate_to: str | None) -> str | None:
    """The language asked for, None for none; English however it is written ("EN", "eng") as "en", which
    Whisper translates into from the speech (everything after the plan compares with "en")."""
    if not translate_to:
        return None
    return "en" if canonical(translate_to) == "en" else translate_to


def _one_way_into_english(task: str, target: str | None) -> None:
    if target and task == "translate":
        raise ParleyError("give --task translate (English text only) or --translate-to LANG (transcript and "
                          "translation), not both")


def translator_into(target: str | None, language: str | None = None, device: str = "cpu",
                    threads: int | None = None) -> TextTranslator | None:
    """The installed text packs' translator into ``target`` (None for no target, or English, which Whisper
    translates from the speech). MissingPairError here, naming the installed pairs, when no pack translates
    into ``target`` or, for a fixed spoken ``language``, none serves it (nor Whisper's English then a pack)."""
    if not target or canonical(target) == "en":
        return None
    return file_translation.text_translator(target, device, threads, language)


def open_translator(job: FileJob, model: WhisperModel) -> TextTranslator | None:
    """The translator the file job needs, on the model's device. A missing pair fails here, before the long
    part."""
    return translator_into(job.translate_to, job.options.language, model.device, model.threads)


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


# --- live ----------------------------------------------------------------------------------------------------

def plan_live_job(language: str | None = None, task: str = "transcribe", translate_to: str | None = None,
                  **live) -> LiveOptions:
    """The live session for what was asked: ``language`` "auto" (or None, "") is detected; the same task rule as
    a file's. ``live`` goes to LiveOptions (device, beam_size, record_path, ...). ParleyError for what cannot
    be done."""
    target = _target(translate_to)
    _one_way_into_english(task, target)
    try:
        return LiveOptions(language=None if language in (None, "", "auto") else language, task=task,
                           translate_to=target, **live)
    except ValueError as e:
        raise ParleyError(f"live options: {e}") from e


@dataclasses.dataclass(frozen=True)
class LiveJobResult:
    committed: list[Committed]  # every committed fragment, in order
    translated: list[Translated]  # the final translations (no drafts, none that failed), in order
    failed: str | None  # why the session ended early (the device went away, a failure); None: it did not
    steps: int  # decodes run
    dropped_blocks: int  # audio blocks the capture ring dropped: the machine did not keep up
    searches: tuple[int, int] = (0, 0)  # finalising decodes searched with the beam, and unsure ones left greedy

    @property
    def text(self) -> str:
        return "".join(" " + c.text for c in self.committed).strip()

    def cues(self, bilingual: bool = False) -> list[Sentence]:
        """What a subtitle or text file holds: the committed words as sentences, each with its translation
        when ``bilingual``."""
        cues = sentences(self.committed)
        return with_translations(cues, self.committed, self.translated) if bilingual else cues


class LiveJob:
    """One live session, started: events go to ``on_event`` from the session's threads (recognition and
    translation) until its last, ``SessionEnded``. ``stop`` ends the capture and what was heard is still
    transcribed and translated (``finish`` waits for it); ``cancel`` drops what is still buffered."""

    def __init__(self, model, options: LiveOptions, on_event: Callable[[object], None] | None = None, *,
                 source=None, text_translator: TextTranslator | None = None):
        self._on_event = on_event or (lambda event: None)
        self._lock = threading.Lock()
        self._translated: list[Translated] = []
        self._dropped = 0
        if text_translator is None:  # refused here, before the device opens, when no pack serves the pair
            text_translator = translator_into(options.translate_to, options.language, model.device, model.threads)
        self.session = LiveSession(model, options, on_event=self._event, source=source,
                                   text_translator=text_translator)
        self.session.start()

    def _event(self, event) -> None:
        with self._lock:
            if isinstance(event, Translated) and not event.draft and event.error is None:
                self._translated.append(event)
            elif isinstance(event, Stats):
                self._dropped = max(self._dropped, event.dropped_blocks)
        self._on_event(event)

    def wait(self, timeout: float | None = None) -> bool:
        """True once the session ended (its source ran out, it was stopped, or it failed)."""
        return self.session.wait(timeout)

    def stop(self) -> None:
        self.session.stop()

    def cancel(self) -> None:
        self.session.abort()

    def finish(self, timeout: float | None = None) -> LiveJobResult:
        """Stop, transcribe and translate what was heard, and return everything committed."""
        committed = self.session.finish(timeout)
        with self._lock:
            dropped = max(self._dropped, int(getattr(self.session.source, "dropped_blocks", 0)))
            return LiveJobResult(committed, list(self._translated), self.session.failed, self.session.steps,
                                 dropped, self.session.final_searches)

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> LiveJobResult:
        """Wait until the source runs out, ``stop`` is set or ``duration_s`` of listening passed, then finish."""
        waited = 0.0
        while not self.wait(0.2):
            waited += 0.2
            if (stop is not None and stop.is_set()) or (duration_s is not None and waited >= duration_s):
                break
        return self.finish()


def start_live_job(model, options: LiveOptions, on_event: Callable[[object], None] | None = None, *,
                   source=None, text_translator: TextTranslator | None = None) -> LiveJob:
    """Start a live session over ``source`` (None: the capture device ``options.device``) with its translation
    stage: ``text_translator`` or the installed packs into ``options.translate_to``. Raises before anything
    runs when the device cannot open (AudioDeviceError) or no pack serves a fixed language (MissingPairError)."""
    return LiveJob(model, options, on_event, source=source, text_translator=text_translator)


def run_live_job(model, options: LiveOptions, on_event: Callable[[object], None] | None = None, *,
                 source=None, text_translator: TextTranslator | None = None, stop: threading.Event | None = None,
                 duration_s: float | None = None) -> LiveJobResult:
    """:func:`start_live_job`, run until its source runs out, ``stop`` is set or ``duration_s`` passed."""
    return start_live_job(model, options, on_event, source=source, text_translator=text_translator).run(
        stop, duration_s)


# --- text ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TextJob:
    source: str
    target: str
    via: str = "pack"  # "pack": the text packs; "shared": a fine-tuned Whisper pack's text encoder into its decoder
    pack: Path | None = None  # this text pack instead of choosing among the installed ones
    model: str | None = None  # with via "shared": the Whisper pack (folder or installed name)
    beam_size: int | None = None  # None: the pack's (via "shared": greedy)


@dataclasses.dataclass(frozen=True)
class TextJobResult:
    texts: list[str]  # one translation per input line ("" for an empty line via "shared")
    note: str | None = None  # how it was done when that is worth saying (a pivot through English)


def plan_text_job(source: str | None, target: str | None, via: str = "pack", pack: str | Path | None = None,
                  model: str | None = None, beam_size: int | None = None) -> TextJob:
    """What a text translation does: ``via`` "pack" (a pack folder, or the installed packs, pivoting through
    English where none serves the pair) or "shared" (into English, Whisper's translate task, or back into the
    source language). ParleyError for what cannot be done."""
    if not source or not target:
        raise ParleyError("say which languages: --from <code> --to <code> (e.g. --from en --to de)")
    if via not in ("pack", "shared"):
        raise ParleyError(f"via {via!r}: 'pack' or 'shared'")
    if via == "shared" and target != source and canonical(target) != "en":
        raise ParleyError(f"--via shared writes English (--to en) or the source language (--to {source}); "
                          f"for --to {target} use a translation pack (--via pack)")
    return TextJob(source, target, via, Path(pack) if pack else None, model, beam_size)


def run_text_job(lines: list[str], job: TextJob, device: str = "auto", threads: int | None = None,
                 packs_root: str | Path | None = None) -> TextJobResult:
    """Translate each of ``lines``. MissingPairError (naming the installed pairs) when no pack serves the
    pair; ParleyError for a pack that cannot be used."""
    if job.via == "shared":
        return TextJobResult(_via_shared_space(lines, job, device, threads))
    if job.pack is not None:
        from engine.translate.translator import Translator

        return TextJobResult(Translator.load(job.pack, device, threads).translate(
            lines, job.source, job.target, job.beam_size))
    from engine.translate.registry import PairRegistry
    from engine.translate.router import RouteTranslator

    routed = RouteTranslator(PairRegistry.scan(packs_root), device, threads).translate(
        lines, job.source, job.target, job.beam_size)
    return TextJobResult(routed.texts, routed.note if routed.route.pivoted else None)


def _via_shared_space(lines: list[str], job: TextJob, device: str, threads: int | None) -> list[str]:
    """Text → the pack's text encoder → the Whisper decoder: into English (Whisper's translate task) or back
    into the source language (transcribe: what the decoder reconstructs from the shared space)."""
    from engine.whisper.text_encoder import text_via_shared_space

    task = "transcribe" if job.target == job.source else "translate"
    whisper = WhisperModel.load(_shared_pack(job.model), device=device, threads=threads)
    whisper.check_language(job.source)
    return [text_via_shared_space(whisper, line, language=job.source, task=task, beam_size=job.beam_size or 1)
            if line.strip() else "" for line in lines]


def _shared_pack(model: str | None) -> Path:
    """The Whisper pack to run text through: the one named, else the installed pack with a text encoder."""
    from engine.packs.installed import installed_packs
    from engine.packs.paths import packs_root
    from engine.whisper.text_encoder import TEXT_ENCODER_FILE, has_text_encoder

    if model:
        path = Path(model) if Path(model).is_dir() else packs_root() / model
        if not path.is_dir():
            raise ParleyError(f"{model}: no such pack folder or installed pack (see `parley models list`)")
        if not has_text_encoder(path):
            raise ParleyError(f"{path}: this pack has no {TEXT_ENCODER_FILE}; train one with `python -m export "
                              "train --text-encoder-epochs N` (docs/training.md)")
        return path
    found = [p.path for p in installed_packs() if p.kind == "whisper" and has_text_encoder(p.path)]
    if not found:
        raise ParleyError("no installed Whisper pack has a text encoder; train one with `python -m export train "
                          "--text-encoder-epochs N --out <pack>` (docs/training.md), or name it with --model")
    return found[-1]
