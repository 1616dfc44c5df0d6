"""Repetition in decoded text: the form words are compared in, and collapsing phrases repeated back to back.

Whisper's decoder can loop ("the best food and the best food and ..."); the live policy refuses to commit
a loop and speech translation drops one. Both compare words in ``normalise``d form.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from engine.events import Word


def normalise(text: str) -> str:
    """The form two hypotheses' words are compared in: case, punctuation and spacing ignored."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


def repeats_at_end(tokens: Sequence[str], min_words: int, max_words: int, short_limit: int) -> int:
    """Length n of an n-gram whose repetition at the end of ``tokens`` is not allowed, else 0."""
    size = len(tokens)
    for n in range(min_words, min(max_words, size // 2) + 1):
        if tokens[size - n:] == tokens[size - 2 * n:size - n]:
            return n
    for n in range(1, min(min_words - 1, size // (short_limit + 1)) + 1):
        tail = tokens[size - n:]
        if all(tokens[size - (k + 1) * n:size - k * n] == tail for k in range(1, short_limit + 1)):
            return n
    return 0


def deloop(words: Sequence[Word], max_words: int = 40) -> list[Word]:
    """Collapse any n-gram repeated back to back into one copy ("a b a b a b c" -> "a b c")."""
    out: list[Word] = []
    tokens: list[str] = []
    for word in words:
        out.append(word)
        tokens.append(normalise(word.text))
        n = repeats_at_end(tokens, 1, max_words, 1)
        if n:
            del out[-n:], tokens[-n:]
    return out


def deloop_text(text: str) -> str:
    """One copy of a phrase the decoder repeated back to back ("the best food and the best food"), and no
    trailing sentence that only starts the translation over ("I like to eat. I like to")."""
    words = [Word(0.0, 0.0, " " + w) for w in text.split()]
    text = "".join(w.text for w in deloop(words)).strip()
    sentences = re.findall(r"[^.!?。！？]+[.!?。！？]*\s*", text)
    key = [re.sub(r"\W+", " ", x).strip().lower() for x in sentences]
    kept = [x for i, x in enumerate(sentences)
            if not (i and key[i] and any(k.startswith(key[i]) for k in key[:i]))]
    return "".join(kept).strip()
