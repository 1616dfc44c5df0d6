"""A live session: audio source → VAD → streaming Whisper → LocalAgreement policy → events.

    session = LiveSession(model, LiveOptions(language="en"), on_event=print)
    session.start()          # opens the device (AudioDeviceError at once if it cannot), starts a thread
    ...
    session.stop()           # stops capture; what was already captured is still transcribed
    session.finish()         # waits until it is, and the tentative tail is committed

The worker thread reads whatever audio arrived, runs the VAD over it, and once at least
``min_step_s`` of new audio is in (more when steps run slower than that, so no backlog builds up)
re-decodes the rolling buffer: log-mel of just the buffered audio, the encoder over those frames
(``encoder_frames="audio"``; "full" pads to Whisper's 30 s as the peers do), the decoder with word
timestamps and the committed text as prompt. The policy (engine.streaming) turns consecutive
hypotheses into committed words and a tentative tail. Events go to ``on_event`` from the worker
thread (engine.events: Partial, Committed, Status, Error, Stats, Level).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine.errors import AudioDeviceError, ParleyError
from engine.events import Committed, Error, Level, Partial, Stats, Status, Word
from engine.features import HOP_LENGTH, N_FRAMES, SAMPLE_RATE, log_mel_spectrogram
from engine.streaming import PolicyOptions, StepResult, StreamingPolicy, is_sentence_end, join_words
from engine.whisper.decoding import DecodeOptions

log = logging.getLogger(__name__)

_INGEST_S = 0.1  # the VAD and the policy see the audio in pieces this long
_TOKENS_PER_FRAME = 0.12  # 12 tokens per second of audio, timestamps included


@dataclasses.dataclass(frozen=True)
class LiveOptions:
    device: Any = None  # audio input: DeviceInfo, index, name or None (the default input)
    language: str | None = None  # None: detected from the first speech, then kept
    task: str = "transcribe"  # or "translate" (speech → English)
    beam_size: int = 1
    # New audio between two decodes (at least; more when a step takes longer). Measured at 1x over 10 min of
    # English (bench/stream_latency.py, offline WER 4.4 %): 1.0 s → commit lag p50 1.97 s, p90 3.04 s, WER
    # 5.9 %, CPU RTF 0.46; 0.5 s with a 1 s agreement gap → p50 1.76 s and tentative text twice as often, but
    # WER 6.6 % and twice the CPU.
    min_step_s: float = 1.0
    encoder_frames: str = "audio"  # "audio": encode the buffered audio only; "full": pad to 30 s
    # "audio" mode appends this much silence (zero log-mel frames) after the buffered audio before
    # encoding: without it the decoder, seeing speech run to the very last frame, does not end and loops
    # (measured: 5 s of speech → 224 looping tokens, 7.9 s); with 2 s it ends, and the text equals the
    # 30 s padded window's at a third to a fifth of the encoder time.
    encoder_pad_s: float = 2.0
    vad: bool = True  # gate the recogniser with Silero VAD (silence never produces text)
    vad_threshold: float = 0.5
    # Without the VAD, audio whose peak stays below this (dBFS) counts as silence: Whisper turns digital
    # silence into "You" otherwise. None: everything is speech.
    silence_threshold_db: float | None = -60.0
    max_fallbacks: int = 1  # temperature fallbacks per step (a live step cannot afford all five)
    no_speech_threshold: float | None = 0.6
    log_prob_threshold: float | None = -1.0
    compression_ratio_threshold: float | None = 2.4
    # Live, two hypotheses close together agree too easily on the same mistake (both heard the buffer's end
    # cut off, with nearly the same context), so an agreed word waits until 0.6 s of audio follows it.
    # Measured, 10 min of English fast-forwarded (offline WER 4.4 %): 0.5 s steps 8.2 %; 0.5 s steps
    # comparing each hypothesis with the one decoded 1 s earlier (agree_gap_s=1.0, `parley live --step 0.5
    # --agree-gap 1`) 6.4 %; 1.0 s steps 6.0 %. At 1.0 s steps the gap only delays commits (1x: lag p50 2.18 s
    # vs 1.97 s, WER no better), so it is off by default. The policy's own defaults are 0 (pure LA-2).
    policy: PolicyOptions = PolicyOptions(edge_guard_s=0.6)
    initial_prompt: str | None = None  # names and spellings to prime the recogniser with
    # Translate committed sentences into this language ("en": Whisper's own speech translation; others
    # need ``text_translator``). None: no translation.
    translate_to: str | None = None
    # The tentative tail is retranslated as a draft at most this often (None: committed sentences only).
    # Into English a draft is a Whisper decode of the tail's audio: on a CPU that competes with recognition
    # for the same cores, so it is off there unless speech_drafts_on_cpu.
    draft_interval_s: float | None = 1.5
    speech_drafts_on_cpu: bool = False
    level_interval_s: float = 0.05  # Level events at most this often
    # Write everything the session hears to this wav (16 kHz mono, 16-bit), on the same clock as the
    # segments' times, so corrected lines can be cut out of it as training data (engine.corrections).
    record_path: str | None = None

    def __post_init__(self):
        if self.task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', got {self.task!r}")
        if self.encoder_frames not in ("audio", "full"):
            raise ValueError(f"encoder_frames must be 'audio' or 'full', got {self.encoder_frames!r}")
        if self.draft_interval_s is not None and self.draft_interval_s <= 0:
            raise ValueError(f"draft_interval_s must be > 0 or None, got {self.draft_interval_s}")
        if self.min_step_s <= 0 or self.beam_size < 1 or self.encoder_pad_s < 0:
            raise ValueError("min_step_s must be > 0, beam_size ≥ 1 and encoder_pad_s ≥ 0")
        if (self.policy.max_buffer_s + self.encoder_pad_s) * 100 > N_FRAMES:
            raise ValueError("policy.max_buffer_s must fit one 30 s encoder window")


class LiveSession:
    """One run of live transcription over one audio source (a Capture, a FileSource, or anything with
    ``start()``, ``read(timeout)`` → 16 kHz mono float32, ``stop()``, ``drain()``)."""

    def __init__(self, model, options: LiveOptions | None = None, on_event: Callable[[Any], None] | None = None,
                 source=None, vad=None, text_translator=None):
        self.model = model
        self.options = options or LiveOptions()
        self.on_event = on_event or (lambda event: None)
        self.model.check_language(self.options.language)  # LanguageError now, not in the thread
        if source is None:
            from engine.capture import Capture

            source = Capture(self.options.device)
        self.source = source
        self._vad = vad
        self._text_translator = text_translator
        self.translator = None
        self.policy = StreamingPolicy(self.options.policy)
        self.language = self.options.language
        self._audio = np.zeros(0, np.float32)  # the rolling buffer: policy.buffer_start_s → buffer_end_s
        self._received = 0  # samples since the stream started
        self._since_decode = 0  # samples received since the last decode
        self._was_speech = False
        self._speech_ended = False  # the VAD closed since the last decode: decode now, not after min_step_s
        self._last_step_s = 0.0
        self._segment_id = 0
        self._last_level_at = 0.0
        self._stop = threading.Event()
        self._abort = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None  # monotonic time the source started (audio time 0)
        self.failed: str | None = None
        self.committed: list[Committed] = []
        self.steps = 0
        self.step_times_s: list[float] = []
        self._recorder = None
        self._gate = None

    # --- public API ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the source (raises AudioDeviceError/AudioFileError here) and start the worker thread."""
        if self._thread is not None:
            raise RuntimeError("a LiveSession runs once; create a new one to start again")
        gate = None
        if self.options.vad:
            from engine.vad import SileroVad, VadGate

            vad = self._vad or SileroVad(threshold=self.options.vad_threshold)
            gate = VadGate(vad)
        self._gate = gate
        target = self.options.translate_to
        if target and target != "en" and self._text_translator is None:
            self._text_translator = _installed_text_translator(target, self.model.device, self.model.threads)
        self._recorder = None
        if self.options.record_path:
            path = Path(self.options.record_path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._recorder = sf.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16")
            except (OSError, RuntimeError) as e:
                raise ParleyError(f"cannot record the session to {path}: {e}") from e
        try:
            self.source.start()
        except BaseException:
            self._close_recorder()
            raise
        if target:
            from engine.live_translation import LiveTranslator

            drafts = self.options.draft_interval_s
            on_gpu = getattr(self.model, "provider", "") == "CUDAExecutionProvider"
            if target == "en" and not on_gpu and not self.options.speech_drafts_on_cpu:
                drafts = None
            self.translator = LiveTranslator(self.model, target, self._emit, lambda: self.language,
                                             self._text_translator, draft_interval_s=drafts)
        self.started_at = getattr(self.source, "started_at", None) or time.monotonic()
        name = getattr(getattr(self.source, "device", None), "name", None) or getattr(self.source, "name", None)
        self._emit(Status(f"listening to {name}" if name else "listening", provider=self.model.provider,
                          model=self.model.pack.name, device=name, emitted_at=time.monotonic()))
        self._thread = threading.Thread(target=self._run, name="parley-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop capturing. Audio already captured is still transcribed (``finish`` waits for it)."""
        self._stop.set()
        try:
            self.source.stop()
        except Exception as e:  # noqa: BLE001 - a device that vanished cannot be stopped twice
            log.debug("stopping the source: %s", e)

    def finish(self, timeout: float | None = None) -> list[Committed]:
        """Stop, drain everything captured, commit the tentative tail; return all committed segments."""
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        return list(self.committed)

    def abort(self) -> None:
        """Stop at once, without transcribing what is still buffered."""
        self._abort.set()
        self.stop()
        if self._thread is not None:
            self._thread.join()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the source to run out (a file) or the session to be stopped; True once it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def text(self) -> str:
        return "".join(" " + c.text for c in self.committed).strip()

    # --- the worker thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self._abort.is_set():
                try:
                    chunk = self.source.read(0.1)
                except AudioDeviceError as e:
                    self.failed = str(e)
                    self._emit(Error(str(e), cause=repr(e), emitted_at=time.monotonic()))
                    break
                if chunk.size:
                    self._ingest(chunk)
                elif getattr(self.source, "exhausted", False):
                    break
                self._emit_level()
                if self._step_due():
                    self._step()
            if not self._abort.is_set():
                self._drain()
        except Exception as e:  # noqa: BLE001 - the thread must report, never die silently
            log.exception("live session failed")
            message = str(e) if isinstance(e, ParleyError) else f"live transcription stopped: {e}"
            self.failed = message
            self._emit(Error(message, cause=repr(e), emitted_at=time.monotonic()))
        finally:
            try:
                self.source.stop()
            except Exception:  # noqa: BLE001
                pass
            self._close_recorder()
            if self.translator is not None:  # translates what is queued, unless aborted
                self.translator.close(timeout=0 if self._abort.is_set() else None)
            self._emit(Status("stopped" if not self.failed else "stopped after an error",
                              emitted_at=time.monotonic()))

    def _drain(self) -> None:
        try:
            rest = self.source.drain()
        except Exception as e:  # noqa: BLE001 - what was read already still gets transcribed
            log.warning("could not drain the audio source: %s", e)
            rest = np.zeros(0, np.float32)
        if rest.size:
            self._ingest(rest)
        if self._since_decode and self.policy.has_speech:
            self._step()
        self._publish(self.policy.finish(), [])

    def _close_recorder(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            try:
                recorder.close()
            except Exception as e:  # noqa: BLE001 - the transcript matters more than the recording
                log.warning("closing the recording: %s", e)

    def _record(self, chunk: np.ndarray) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder.write(np.clip(chunk, -1.0, 1.0))
        except Exception as e:  # noqa: BLE001 - a full disk ends the recording, not the transcription
            log.warning("recording stopped: %s", e)
            self._close_recorder()

    def _ingest(self, chunk: np.ndarray) -> None:
        self._record(chunk)
        piece = max(1, round(_INGEST_S * SAMPLE_RATE))
        for start in range(0, chunk.size, piece):
            part = chunk[start:start + piece]
            if self._gate is not None:
                speech = self._gate.update(part)
            else:
                speech = (self.options.silence_threshold_db is None
                          or float(np.max(np.abs(part))) >= 10 ** (self.options.silence_threshold_db / 20))
            self._audio = np.concatenate([self._audio, part]) if self._audio.size else part.copy()
            self._received += part.size
            self._since_decode += part.size
            if self._was_speech and not speech:
                self._speech_ended = True
            self._was_speech = speech
            if self.translator is not None:
                self.translator.history.append(part)
            result = self.policy.insert_audio(part.size, speech)
            if result.committed or result.trim_to_s is not None:
                self._apply(result)
                if self.translator is not None:
                    self.translator.pause()

    def _step_due(self) -> bool:
        if not self.policy.has_speech:
            self._since_decode = 0  # silence is never decoded
            return False
        new_s = self._since_decode / SAMPLE_RATE
        if self._speech_ended and new_s > 0:
            # The speaker paused: one decode over the whole utterance settles its last words at once.
            return True
        # A step slower than min_step_s waits for as much audio as it took: the decoder never falls behind.
        # A source that is not real time (a file fast-forwarded) has no behind: its steps stay min_step_s,
        # so its result does not depend on how busy the machine is.
        if not getattr(self.source, "realtime", True):
            return new_s >= self.options.min_step_s
        return new_s >= max(self.options.min_step_s, self._last_step_s)

    def _step(self) -> None:
        opts = self.options
        started = time.perf_counter()
        audio = self._audio
        frames = audio.size // HOP_LENGTH
        if frames == 0:
            return
        pad_to = N_FRAMES if opts.encoder_frames == "full" else frames + round(opts.encoder_pad_s * 100)
        # Zero log-mel frames after the audio, as faster-whisper pads a short window (padding with the
        # log-mel of silent samples instead, as openai-whisper does, measured no better: WER 5.1 % vs 4.8 %
        # on the 2.3 min English stream, fast-forward).
        mel = log_mel_spectrogram(np.concatenate([audio, np.zeros(HOP_LENGTH, np.float32)]),
                                  self.model.pack.dims.n_mels)[:, :frames]
        mel = np.pad(mel, ((0, 0), (0, pad_to - frames)))
        states = self.model.encode(mel)
        prompt_text = " ".join(filter(None, [opts.initial_prompt, self.policy.prompt()]))
        decode = DecodeOptions(task=opts.task, language=self.language, beam_size=opts.beam_size,
                               max_fallbacks=opts.max_fallbacks, word_timestamps=True,
                               no_speech_threshold=opts.no_speech_threshold,
                               log_prob_threshold=opts.log_prob_threshold,
                               compression_ratio_threshold=opts.compression_ratio_threshold,
                               # Real speech is < 8 tokens/s; a short buffer that starts to loop stops here.
                               sample_len=min(224, 16 + int(frames * _TOKENS_PER_FRAME)))
        result = self.model.decode_window(states, decode, self.model.encode_text(prompt_text), num_frames=frames)
        words: list[Word] = []
        if not result.skipped:
            words = [w for seg in result.segments for w in seg.words]
            if self.language is None and words and self.policy.buffered_s >= 2.0:
                self.language = result.language
                self._emit(Status(f"detected language: {self.language}", emitted_at=time.monotonic()))
        step = self.policy.process(words, buffer_offset_s=self.policy.buffer_start_s,
                                   segment_ends_s=[s.end_s for s in result.segments])
        covered_s = self._since_decode / SAMPLE_RATE
        self._since_decode = 0
        self._speech_ended = False
        self._last_step_s = time.perf_counter() - started
        self.steps += 1
        self.step_times_s.append(self._last_step_s)
        self._apply(step)
        newest = self.committed[-1].end_s if self.committed else None
        self._emit(Stats(rtf=self._last_step_s / max(covered_s, 1e-3), step_s=self._last_step_s,
                         dropped_blocks=int(getattr(self.source, "dropped_blocks", 0)),
                         lag_s=(self._now_s() - newest) if newest is not None else 0.0,
                         buffered_s=self.policy.buffered_s, emitted_at=time.monotonic()))

    def _apply(self, step: StepResult) -> None:
        self._publish(step.committed, step.tentative)
        if step.trim_to_s is not None:
            start_s = self.policy.buffer_start_s  # the policy has moved its start to trim_to_s already
            keep = round((self._received / SAMPLE_RATE - start_s) * SAMPLE_RATE)
            self._audio = self._audio[max(0, self._audio.size - keep):] if keep > 0 else self._audio[:0]

    def _publish(self, committed: list[Word], tentative: list[Word]) -> None:
        now = time.monotonic()
        for piece in _split_at_sentence_ends(committed):
            # One event per sentence at most: a commit that spans two sentences (after a pause, or a
            # forced commit at the buffer cap) still lands as sentence rows and sentence cues.
            event = Committed(segment_id=self._segment_id, text=join_words(piece),
                              start_s=piece[0].start_s, end_s=piece[-1].end_s, words=tuple(piece),
                              emitted_at=now, language=self.language)
            self._segment_id += 1
            self.committed.append(event)
            if self.translator is not None:  # first, so a draft for this segment can no longer go out
                self.translator.add(event.segment_id, piece)
            self._emit(event)
        if tentative or committed:
            text = join_words(tentative)
            start = tentative[0].start_s if tentative else (committed[-1].end_s if committed else 0.0)
            end = tentative[-1].end_s if tentative else start
            self._emit(Partial(segment_id=self._segment_id, text=text, start_s=start, end_s=end, emitted_at=now))
            if self.translator is not None:
                self.translator.draft(self._segment_id, tentative)

    def _now_s(self) -> float:
        """Audio time now: the wall clock for a real-time source, the audio received for a fast one."""
        if getattr(self.source, "realtime", True) and self.started_at is not None:
            return (time.monotonic() - self.started_at) * getattr(self.source, "speed", 1.0)
        return self._received / SAMPLE_RATE

    def _emit_level(self) -> None:
        level = getattr(self.source, "last_level", None)
        now = time.monotonic()
        if isinstance(level, Level) and now - self._last_level_at >= self.options.level_interval_s:
            self._last_level_at = now
            self._emit(level)

    def _emit(self, event) -> None:
        try:
            self.on_event(event)
        except Exception:  # noqa: BLE001 - a listener's bug must not stop transcription
            log.exception("event listener failed on %s", type(event).__name__)


def _installed_text_translator(target: str, device: str, threads: int | None):
    """(text, source, target) -> text through the installed translation packs (engine.translate),
    pivoting through English where no pack serves the pair; MissingPairError (naming the installed
    pairs and how to add one) when no pack translates into ``target`` at all."""
    from engine.translate.registry import MissingPairError, PairRegistry
    from engine.translate.router import RouteTranslator

    from engine.translate.languages import canonical

    registry = PairRegistry.scan()
    if not any(t == canonical(target) for _, t in registry.pairs()):
        registry.route("en", target)  # raises MissingPairError with the installed pairs
        raise MissingPairError(f"no installed translation pack translates into {target!r}")
    router = RouteTranslator(registry, device, threads)

    def translate(text: str, source: str | None, to: str) -> str:
        routed = router.translate([text], source or "en", to)
        if routed.route.pivoted:
            log.info("%s", routed.note)
        return routed.texts[0]

    return translate


def _split_at_sentence_ends(words: list[Word]) -> list[list[Word]]:
    pieces: list[list[Word]] = [[]]
    for word in words:
        pieces[-1].append(word)
        if is_sentence_end(word):
            pieces.append([])
    return [p for p in pieces if p]
