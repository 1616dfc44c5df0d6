"""Translation of a file's transcript: ``parley transcribe FILE --translate-to LANG [--bilingual]``.

Into English each segment's own audio is translated by Whisper (speech → English, the cross-modal
path), so source and translation line up segment by segment; the audio is decoded again in chunks,
never the whole file at once. Into other languages the segments' text goes through the installed
text-translation packs (pivoting through English where no direct pack exists); where no pack at all
translates from the spoken language, each segment's audio is translated into English by Whisper first.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from engine.audio.decode import iter_audio
from engine.features import SAMPLE_RATE

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TranslatedSegment:
    id: int
    start_s: float
    end_s: float
    text: str
    translation: str
    words: tuple = ()


def segment_audio(path: str | Path, segments: Sequence, margin_s: float = 0.1) -> Iterator[tuple[object, np.ndarray]]:
    """(segment, its audio ± margin) for segments in time order, decoding the file once in chunks."""
    chunks = iter_audio(path, chunk_s=30.0)
    buf = np.zeros(0, np.float32)
    buf_start = 0  # sample index of buf[0]
    for seg in segments:
        a = max(0, int((seg.start_s - margin_s) * SAMPLE_RATE))
        b = max(a, int((seg.end_s + margin_s) * SAMPLE_RATE))
        while buf_start + buf.size < b:
            chunk = next(chunks, None)
            if chunk is None:
                break
            buf = np.concatenate([buf, chunk])
        if a > buf_start:  # what lies before this segment is not needed again
            drop = min(a - buf_start, buf.size)
            buf, buf_start = buf[drop:], buf_start + drop
        yield seg, buf[max(0, a - buf_start):max(0, b - buf_start)].copy()


def text_translator(target: str, device: str, threads: int | None, source: str | None = None
                    ) -> Callable[[str, str | None, str], str]:
    """The installed packs' translator into ``target`` (MissingPairError now, naming the pairs, if none, or
    if none serves the spoken language ``source`` when it is given)."""
    from engine.translate.installed import InstalledTextTranslator

    return InstalledTextTranslator.into(target, device, threads, source)


def translate_segments(segments: Iterable, target: str, source: str | None, *, model=None, path=None,
                       translate_text: Callable[[str, str | None, str], str] | None = None,
                       progress: Callable[[float], None] | None = None) -> list[TranslatedSegment]:
    """Each segment with its translation into ``target`` (the text itself where source == target)."""
    from engine.whisper.encode import speech_to_english

    segments = [s for s in segments if s.text.strip()]
    out: list[TranslatedSegment] = []
    total = max(len(segments), 1)

    def add(seg, translation: str) -> None:
        out.append(TranslatedSegment(len(out), seg.start_s, seg.end_s, seg.text.strip(), translation.strip(),
                                     tuple(getattr(seg, "words", ()) or ())))
        if progress is not None:
            progress(len(out) / total)

    if source == target:
        for seg in segments:
            add(seg, seg.text)
    elif target == "en":
        if model is None or path is None:
            raise ValueError("speech translation into English needs the model and the audio file")
        for seg, audio in segment_audio(path, segments):
            add(seg, speech_to_english(model, audio, source))
    else:
        if translate_text is None:
            raise ValueError(f"translation into {target!r} needs a text translator")
        route = getattr(translate_text, "route", None)
        if route is not None and source and route(source, target) is None and model is not None and path is not None:
            # No text pack from the spoken language (German speech, only an en→pt pack): Whisper translates
            # each segment's audio into English, the text pack takes it from there — as live mode does.
            log.info("translating %s → %s via English (Whisper, then the text pack)", source, target)
            for seg, audio in segment_audio(path, segments):
                add(seg, translate_text(speech_to_english(model, audio, source), "en", target))
            return out
        for seg in segments:
            add(seg, translate_text(seg.text.strip(), source, target))
    return out
