"""A live session's committed fragments regrouped into sentences, what subtitle and text files are made of
(the CLI's ``-o``; the app's rows are its own, one per engine sentence), with each final translation attached
to the sentence that holds the last word of the segment it carries."""

from __future__ import annotations

import dataclasses

from engine.events import Committed, Translated, Word
from engine.live.policy import SENTENCE_END


@dataclasses.dataclass
class Sentence:
    """Committed fragments joined into a sentence."""

    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...]
    translation: str | None = None


def sentences(committed: list[Committed], max_chars: int = 84, max_gap_s: float = 1.5) -> list[Sentence]:
    """Committed words regrouped into sentences: a new one after a sentence end, a pause longer than
    ``max_gap_s``, or ``max_chars``; cue times never overlap."""
    out: list[Sentence] = []
    current: list[Word] = []

    def close() -> None:
        if current:
            start = max(current[0].start_s, out[-1].end_s if out else 0.0)
            out.append(Sentence(start, max(current[-1].end_s, start), "".join(w.text for w in current).strip(),
                                tuple(current)))
            current.clear()

    for c in committed:
        words = c.words or (Word(c.start_s, c.end_s, " " + c.text.strip()),)
        for w in words:
            if current and (w.start_s - current[-1].end_s > max_gap_s
                            or sum(len(x.text) for x in current) + len(w.text) > max_chars):
                close()
            current.append(w)
            if w.text.rstrip().endswith(SENTENCE_END):
                close()
    close()
    return out


def with_translations(cues: list[Sentence], committed: list[Committed], translated: list[Translated]) -> list[Sentence]:
    """Attach each final translation to the sentence holding the last word of the segment it carries."""
    by_segment = {c.segment_id: c for c in committed}
    owner = {id(w): i for i, s in enumerate(cues) for w in s.words}
    texts: dict[int, list[str]] = {}
    for t in translated:
        c = by_segment.get(t.segment_id)
        if t.draft or c is None or not c.words or id(c.words[-1]) not in owner:
            continue
        texts.setdefault(owner[id(c.words[-1])], []).append(t.text.strip())
    return [dataclasses.replace(s, translation=" ".join(texts[i])) if i in texts else s for i, s in enumerate(cues)]
