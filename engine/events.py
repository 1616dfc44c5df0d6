"""What the engine tells its listeners: plain frozen dataclasses with units in the field names.

``emitted_at`` is a monotonic-clock time in seconds (``time.monotonic()``) supplied by whoever emits
the event; the streaming policy itself never reads a clock. Audio times (``start_s``, ``end_s``) are
seconds from the start of the stream or file.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    # As the recogniser wrote it, leading space included (" Hello,"), so joining words with "" gives
    # the text in languages with and without spaces alike.
    text: str
    probability: float = 1.0


@dataclasses.dataclass(frozen=True)
class Partial:
    """The tentative tail: text after the last committed word that may still change."""

    segment_id: int
    text: str
    start_s: float
    end_s: float
    emitted_at: float


@dataclasses.dataclass(frozen=True)
class Committed:
    """Text that will never change again."""

    segment_id: int
    text: str
    start_s: float
    end_s: float
    words: tuple[Word, ...]
    emitted_at: float
    language: str | None = None


@dataclasses.dataclass(frozen=True)
class SentenceEnd:
    """The sentence whose last fragment is Committed segment ``segment_id`` is finished (its end mark, a
    pause, a gap or its length): front-ends can show it as a whole; its translation, if any, follows."""

    segment_id: int
    emitted_at: float


@dataclasses.dataclass(frozen=True)
class Translated:
    segment_id: int  # the Committed/Partial segment this translates
    text: str
    draft: bool  # True: translation of a tentative tail, replaced later
    emitted_at: float
    language: str | None = None  # target language code
    error: str | None = None  # why this sentence has no translation (text is then ""), shown in its place


@dataclasses.dataclass(frozen=True)
class Status:
    message: str
    provider: str | None = None  # onnxruntime execution provider actually running, e.g. "CPUExecutionProvider"
    model: str | None = None
    device: str | None = None  # audio input device name
    emitted_at: float | None = None


@dataclasses.dataclass(frozen=True)
class Error:
    message: str  # a sentence that says what happened and what to do
    cause: str | None = None  # repr of the underlying exception, for logs
    emitted_at: float | None = None


@dataclasses.dataclass(frozen=True)
class SessionEnded:
    """The live session's thread is done (stopped, its source ran out, or it failed): its last event."""

    error: str | None = None  # the failure's sentence (also sent as Error); None when it ended normally
    emitted_at: float | None = None


@dataclasses.dataclass(frozen=True)
class Stats:
    rtf: float  # processing time / audio time of the last step (< 1 keeps up with real time)
    step_s: float  # wall time of the last step
    dropped_blocks: int  # audio blocks the capture ring had to drop since the session started
    lag_s: float  # time from the end of the newest committed word to its commit
    buffered_s: float  # audio in the rolling buffer
    emitted_at: float | None = None


@dataclasses.dataclass(frozen=True)
class Level:
    rms_db: float  # dBFS, -inf for digital silence
    peak: float  # linear absolute peak, 0..1


Event = Partial | Committed | SentenceEnd | Translated | Status | Error | SessionEnded | Stats | Level
