"""Word timestamps from cross-attention, as openai/whisper's ``timing.py`` computes them.

The decoder's alignment heads attend, for each text token, to the audio frames it was heard in.
Their attention (normalised per head, median-filtered, averaged) is a cost matrix; dynamic time
warping finds the monotonic path through it; a word starts where its first token's path starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from engine.events import Word

TOKENS_PER_SECOND = 50  # encoder positions per second (20 ms each)
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
_SENTENCE_END = ".。!！?？"


@dataclasses.dataclass
class WordTiming:
    word: str
    tokens: list[int]
    start: float  # seconds from the window start
    end: float
    probability: float


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median over a sliding window along the last axis, reflect-padded (as Whisper)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=-1)
    return np.median(windows, axis=-1)


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimal-cost monotonic path through cost [N, M] → (row indices, column indices).

    Vectorised over anti-diagonals (each cell needs only the two previous diagonals); ties break as
    Whisper's: diagonal, then up, then left."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf, dtype=np.float64)
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    acc[0, 0] = 0.0
    for d in range(2, n + m + 1):  # d = i + j over cells with i, j ≥ 1
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        c0 = acc[i - 1, j - 1]
        c1 = acc[i - 1, j]
        c2 = acc[i, j - 1]
        t = np.where((c0 < c1) & (c0 < c2), 0, np.where((c1 < c0) & (c1 < c2), 1, 2))
        best = np.where(t == 0, c0, np.where(t == 1, c1, c2))
        acc[i, j] = cost[i - 1, j - 1] + best
        trace[i, j] = t
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = n, m
    path: list[tuple[int, int]] = []
    while i > 0 or j > 0:
        path.append((i - 1, j - 1))
        t = trace[i, j]
        if t == 0:
            i, j = i - 1, j - 1
        elif t == 1:
            i -= 1
        else:
            j -= 1
    arr = np.array(path[::-1])
    return arr[:, 0], arr[:, 1]


def find_alignment(attention: np.ndarray, logits: np.ndarray, text_tokens: list[int], n_sot: int,
                   num_frames: int, eot: int, split: Callable[[list[int]], tuple[list[str], list[list[int]]]],
                   medfilt_width: int = 7) -> list[WordTiming]:
    """attention [heads, seq, enc_len] and logits [seq, n_vocab] of one pass over
    sot_sequence + <|notimestamps|> + text_tokens + <|endoftext|>; n_sot = len(sot_sequence) + 1."""
    if not text_tokens:
        return []
    sampled = logits[n_sot - 1: n_sot - 1 + len(text_tokens), :eot]
    sampled = sampled - sampled.max(axis=-1, keepdims=True)
    probs = np.exp(sampled)
    probs /= probs.sum(axis=-1, keepdims=True)
    token_probs = probs[np.arange(len(text_tokens)), text_tokens]

    weights = attention[:, :, : max(1, num_frames // 2)].astype(np.float64)
    weights = weights / np.maximum(weights.sum(axis=-1, keepdims=True), 1e-12)  # softmax over audio only
    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True)
    weights = (weights - mean) / np.maximum(std, 1e-12)
    weights = median_filter(weights, medfilt_width)
    matrix = weights.mean(axis=0)[n_sot - 1:-1]  # the positions that predict each text token and end-of-text
    text_idx, time_idx = dtw(-matrix)

    words, word_tokens = split([*text_tokens, eot])
    if len(word_tokens) <= 1:
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = time_idx[jumps] / TOKENS_PER_SECOND
    starts = jump_times[boundaries[:-1]]
    ends = jump_times[boundaries[1:]]
    probabilities = [float(np.mean(token_probs[i:j])) for i, j in zip(boundaries[:-1], boundaries[1:])]
    return [WordTiming(w, t, float(s), float(e), p)
            for w, t, s, e, p in zip(words, word_tokens, starts, ends, probabilities)]


def merge_punctuations(alignment: list[WordTiming], prepended: str = PREPEND_PUNCTUATIONS,
                       appended: str = APPEND_PUNCTUATIONS) -> None:
    """Attach opening punctuation to the next word and closing punctuation to the previous one."""
    i, j = len(alignment) - 2, len(alignment) - 1
    while i >= 0:
        previous, following = alignment[i], alignment[j]
        if previous.word.startswith(" ") and previous.word.strip() in prepended:
            following.word = previous.word + following.word
            following.tokens = previous.tokens + following.tokens
            previous.word, previous.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(alignment):
        previous, following = alignment[i], alignment[j]
        if not previous.word.endswith(" ") and following.word in appended:
            previous.word = previous.word + following.word
            previous.tokens = previous.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            i = j
        j += 1


@dataclasses.dataclass
class SegmentWords:
    """A segment's times (adjusted here) and the words found in it."""

    start: float
    end: float
    text_tokens: list[int]
    words: list[Word] = dataclasses.field(default_factory=list)


def assign_words(alignment: list[WordTiming], segments: Sequence[SegmentWords], time_offset: float,
                 last_speech_s: float) -> float:
    """Distribute aligned words over the window's segments, with Whisper's fixes for over-long
    words at pauses and segment edges. Times become absolute (time_offset added). Returns the new
    last-speech time."""
    durations = np.array([t.end - t.start for t in alignment])
    durations = durations[durations.nonzero()]
    median = min(0.7, float(np.median(durations))) if len(durations) else 0.0
    max_duration = median * 2
    if len(durations):
        for i in range(1, len(alignment)):  # a long word at a sentence boundary is mostly pause
            if alignment[i].end - alignment[i].start > max_duration:
                if alignment[i].word in _SENTENCE_END:
                    alignment[i].end = alignment[i].start + max_duration
                elif alignment[i - 1].word in _SENTENCE_END:
                    alignment[i].start = alignment[i].end - max_duration
    merge_punctuations(alignment)

    index = 0
    for seg in segments:
        saved = 0
        words: list[dict] = []
        while index < len(alignment) and saved < len(seg.text_tokens):
            timing = alignment[index]
            if timing.word:
                words.append({"word": timing.word, "start": round(time_offset + timing.start, 2),
                              "end": round(time_offset + timing.end, 2), "probability": timing.probability})
            saved += len(timing.tokens)
            index += 1
        if words:
            first, last = words[0], words[-1]
            # the first word after a pause must not swallow the pause
            if first["end"] - last_speech_s > median * 4 and (
                    first["end"] - first["start"] > max_duration
                    or len(words) > 1 and words[1]["end"] - first["start"] > max_duration * 2):
                if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
                    boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
                    first["end"] = words[1]["start"] = boundary
                first["start"] = max(0.0, first["end"] - max_duration)
            if seg.start < first["end"] and seg.start - 0.5 > first["start"]:
                first["start"] = max(0.0, min(first["end"] - median, seg.start))
            else:
                seg.start = first["start"]
            if seg.end > last["start"] and seg.end + 0.5 < last["end"]:
                last["end"] = max(last["start"] + median, seg.end)
            else:
                seg.end = last["end"]
            last_speech_s = seg.end
        seg.words = [Word(start_s=w["start"], end_s=w["end"], text=w["word"], probability=w["probability"])
                     for w in words]
    return last_speech_s
