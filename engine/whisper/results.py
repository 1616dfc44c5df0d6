"""What Whisper decoding returns: frozen dataclasses, times in seconds from the start of the audio."""

from __future__ import annotations

import dataclasses

from engine.events import Word

__all__ = ["Word", "Segment", "Transcript", "DecodingResult"]


@dataclasses.dataclass(frozen=True)
class Segment:
    id: int
    start_s: float
    end_s: float
    text: str  # as decoded, leading space included
    tokens: tuple[int, ...]  # text and timestamp tokens of this segment
    words: tuple[Word, ...] = ()  # filled when word timestamps were asked for
    avg_logprob: float = 0.0  # of the window the segment came from
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0


@dataclasses.dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]
    language: str | None
    language_probability: float | None  # None when the language was given, not detected
    duration_s: float

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


@dataclasses.dataclass(frozen=True)
class DecodingResult:
    """One 30 s (or shorter) window, decoded with temperature fallback."""

    tokens: tuple[int, ...]  # sampled tokens (text + timestamps), without the prompt and end-of-text
    text: str
    segments: tuple[Segment, ...]  # empty when the window was judged silent
    language: str | None
    language_probs: dict[str, float] | None  # when the language was detected in this window
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float  # of the attempt that was kept
    consumed_frames: int  # mel frames to advance the window by (Whisper's seek step)
    skipped: bool = False  # True: no speech (no_speech_prob and avg_logprob over their thresholds)
    truncated: bool = False  # True: stopped early by the time budget

    @property
    def is_silence(self) -> bool:
        return self.skipped
