"""The live streaming policy: LocalAgreement-2 over re-decoded hypotheses, finalisation at pauses, and
feedback-loop guards.

Pure logic: no model, no clock, no threads. The recogniser feeds it how much audio arrived
(``insert_audio``), the recogniser's hypothesis for the whole rolling buffer (``process``), the
hypothesis decoded once the speaker paused (``finalize``), and at the end ``finish``. The policy answers which words are now committed (never to change again), which are
tentative, where the caller should cut the front of its audio buffer, and the prompt for the next
decode. The algorithm follows ufal/whisper_streaming (Macháček et al. 2023): commit the longest prefix
two consecutive hypotheses agree on, prompt with committed text that has left the buffer, trim at the
end of a committed sentence or segment. On top of it, for what went wrong there in practice:

- a hard cap on the buffer, where the tentative words are committed and the buffer is cut;
- a repetition guard on the committed text itself: an n-gram of ``repeat_min_words`` or more words is
  never committed twice in a row, and shorter ones at most ``short_repeat_limit`` times in a row
  (a confirmed hallucination loop would otherwise be fed back as the prompt and confirmed again);
- the prompt is de-looped as well;
- after ``pause_reset_s`` of silence (as the VAD says) the buffer and the agreement state reset, so a
  pause never leaves an untrimmed, ever-growing buffer; hypotheses over a buffer that never held
  speech are ignored (silence never produces text).

Times: hypothesis words are relative to the start of the audio buffer that was decoded; everything
the policy returns is absolute (seconds since the stream started).

Finalisation at a pause: while speech runs, a word is committed only once two hypotheses agree on it
(and, live, 0.6 s of audio follows it), which puts a finished sentence 2–4 s behind the speaker. When
the VAD says the speaker stopped, the audio up to the pause is complete: one decode over it is as good
as any later one would be, so ``finalize`` commits all of it and the buffer starts again after it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Iterable, Sequence

from engine.events import Word
from engine.whisper.loops import deloop, normalise, repeats_at_end

log = logging.getLogger(__name__)

TimedWord = Word  # start_s, end_s, text (with Whisper's leading space), probability

SENTENCE_END = (".", "?", "!", "。", "？", "！", "…", "؟", "।")
_HISTORY_WORDS = 512  # committed words kept for the guards and the prompt; the policy's memory is bounded


@dataclasses.dataclass(frozen=True)
class PolicyOptions:
    sample_rate: int = 16000  # of the samples counted by insert_audio
    # Once the buffer is longer than this, cut it at the end of the last committed sentence/segment.
    trim_after_s: float = 8.0
    # With no sentence or segment end to cut at, cut at the last committed word once this long.
    word_trim_after_s: float = 12.0
    # Hard cap: past it the tentative words are committed (all but the last cap_keep_s) and the buffer cut.
    max_buffer_s: float = 15.0
    cap_keep_s: float = 1.0
    prompt_chars: int = 200  # the prompt is the last ~this many characters of committed text that left the buffer
    # Silence (insert_audio(..., speech=False)) this long flushes the tentative tail and resets the buffer.
    pause_reset_s: float = 2.0
    pause_keep_s: float = 0.5  # audio kept at the end of the buffer on a pause reset (speech onset pre-roll)
    flush_on_pause: bool = True  # commit the tentative tail at a pause instead of dropping it
    overlap_s: float = 0.1  # hypothesis words starting this long before the last committed end count as new
    # Agreed words ending this close to the buffer end wait a step: the audio may have cut them off, and two
    # hypotheses 0.5 s apart can agree on a clipped word ("strong" heard as "tron").
    edge_guard_s: float = 0.0
    # Compare each hypothesis not with the one just before it but with the newest one decoded at least this
    # much audio earlier (0: the previous one, plain LA-2). Tentative text still updates every step; only
    # agreement needs hypotheses whose contexts differ enough that a shared mistake is unlikely.
    agree_gap_s: float = 0.0
    # Agreed words stay tentative while the buffer is shorter than this (0: commit as soon as two hypotheses
    # agree). Where pauses finalise utterances (engine.live.recognizer), an utterance is then committed whole
    # by its finalising decode, which heard all of it, not word by word from decodes that heard its beginning.
    commit_min_buffer_s: float = 0.0
    boundary_ngram: int = 5  # longest n-gram checked where a new hypothesis meets the committed text
    boundary_tolerance_s: float = 1.0  # ... done when the hypothesis starts this close to the last commit
    repeat_min_words: int = 3  # n-grams this long or longer are never committed twice in a row
    repeat_max_words: int = 40  # longest n-gram the repetition guard compares
    short_repeat_limit: int = 3  # shorter n-grams ("no, no, no") at most this many times in a row

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if not 0 < self.trim_after_s <= self.word_trim_after_s <= self.max_buffer_s:
            raise ValueError("need 0 < trim_after_s <= word_trim_after_s <= max_buffer_s, got "
                             f"{self.trim_after_s}, {self.word_trim_after_s}, {self.max_buffer_s}")
        if not 0 <= self.commit_min_buffer_s < self.trim_after_s:
            raise ValueError(f"commit_min_buffer_s must be in [0, trim_after_s), got {self.commit_min_buffer_s}")
        if not 0 <= self.cap_keep_s < self.trim_after_s:
            raise ValueError(f"cap_keep_s must be in [0, trim_after_s), got {self.cap_keep_s}")
        if self.pause_reset_s <= 0 or not 0 <= self.pause_keep_s < self.pause_reset_s:
            raise ValueError("need pause_reset_s > 0 and 0 <= pause_keep_s < pause_reset_s")
        if (self.prompt_chars < 0 or self.boundary_ngram < 0 or self.overlap_s < 0 or self.edge_guard_s < 0
                or self.agree_gap_s < 0):
            raise ValueError("prompt_chars, boundary_ngram, overlap_s, edge_guard_s and agree_gap_s must not be negative")
        if not 1 <= self.repeat_min_words <= self.repeat_max_words or self.short_repeat_limit < 1:
            raise ValueError("need 1 <= repeat_min_words <= repeat_max_words and short_repeat_limit >= 1")


@dataclasses.dataclass(frozen=True)
class StepResult:
    committed: list[TimedWord]  # newly committed, absolute times, in order
    tentative: list[TimedWord]  # the current tentative tail, absolute times
    trim_to_s: float | None  # the caller drops its buffered audio before this absolute time; None: keep all
    prompt: str  # committed text that has left the buffer, for the next decode


def join_words(words: Iterable[TimedWord]) -> str:
    return "".join(w.text for w in words).strip()


def is_sentence_end(word: TimedWord) -> bool:
    return word.text.rstrip().rstrip("\"'”’»)]").endswith(SENTENCE_END)


def _shift(word: TimedWord, offset_s: float) -> TimedWord:
    return dataclasses.replace(word, start_s=word.start_s + offset_s, end_s=word.end_s + offset_s)


def trim_collapsed(words: Sequence[TimedWord], min_s: float = 0.02) -> list[TimedWord]:
    """The hypothesis up to where the decoder stopped listening: words squeezed into no audio (each ≤ ``min_s``
    long) that repeat the words before them ("Fail better. Fail@9.10-9.10 better.@9.10-9.10 ..."), three
    such words in a row whatever they say (the prompt echoed at the buffer's end), or a phrase of two or more
    words repeated at once in under a quarter of the time it first took ("Fail again.@6.50-7.50
    Fail@7.50-7.50 again.@7.50-7.64": seen committed twice at a pause) or in under 80 ms a word ("Fail
    again.@7.6-7.7 Fail again.@7.7-7.7 ...": committed three times). Real speech, repeated or not, takes
    time to say."""
    out = list(words)
    seen: set[str] = set()
    for i, word in enumerate(out):
        collapsed = word.end_s - word.start_s <= min_s
        run = collapsed and all(w.end_s - w.start_s <= min_s for w in out[i:i + 3]) and len(out[i:i + 3]) == 3
        pair = (collapsed and i + 1 < len(out) and out[i + 1].end_s - out[i + 1].start_s <= min_s
                and normalise(word.text) in seen)
        if run or pair or _squeezed_repeat(out, i):
            log.debug("dropping %d collapsed word(s): %r", len(out) - i, join_words(out[i:]))
            return out[:i]
        seen.add(normalise(word.text))
    return out


def _squeezed_repeat(words: Sequence[TimedWord], i: int, longest: int = 6) -> bool:
    """Do the words from ``i`` repeat the 2–``longest`` words just before them in under a quarter of their time,
    or faster than anyone speaks (under 80 ms a word: the first time was squeezed too)?"""
    for n in range(2, min(longest, i, len(words) - i) + 1):
        if [normalise(w.text) for w in words[i:i + n]] == [normalise(w.text) for w in words[i - n:i]]:
            first_s = words[i - 1].end_s - words[i - n].start_s
            if words[i + n - 1].end_s - words[i].start_s < max(0.25 * first_s, 0.08 * n):
                return True
    return False


class StreamingPolicy:
    def __init__(self, options: PolicyOptions | None = None):
        self.options = options or PolicyOptions()
        self._buffer_start_s = 0.0
        self._utterance_start_s = 0.0  # where the utterance being heard began (the hold counts from here)
        self._buffer_end_s = 0.0
        self._history: collections.deque[TimedWord] = collections.deque(maxlen=_HISTORY_WORDS)
        self._last_committed_end_s = float("-inf")
        self._previous: list[TimedWord] = []  # the uncommitted rest of the last hypothesis
        # With agree_gap_s: (buffer end, uncommitted rest) of recent hypotheses, oldest first.
        self._recent: collections.deque[tuple[float, list[TimedWord]]] = collections.deque(maxlen=32)
        self._silence_run_s = 0.0
        self._speech_since_reset = False

    # --- state the session reads -------------------------------------------------------------------
    @property
    def buffer_start_s(self) -> float:
        return self._buffer_start_s

    @property
    def buffer_end_s(self) -> float:
        return self._buffer_end_s

    @property
    def buffered_s(self) -> float:
        return self._buffer_end_s - self._buffer_start_s

    @property
    def has_speech(self) -> bool:
        """False while the buffer holds no speech since the last reset: decoding it is wasted work."""
        return self._speech_since_reset

    @property
    def tentative(self) -> list[TimedWord]:
        return list(self._previous)

    @property
    def last_committed_end_s(self) -> float | None:
        return None if self._last_committed_end_s == float("-inf") else self._last_committed_end_s

    def prompt(self) -> str:
        left = [w for w in self._history if w.end_s <= self._buffer_start_s + 1e-6]
        picked: list[TimedWord] = []
        chars = 0
        for word in reversed(deloop(left, self.options.repeat_max_words)):
            if chars + len(word.text) > self.options.prompt_chars:
                break
            picked.append(word)
            chars += len(word.text)
        return join_words(reversed(picked))

    # --- the three calls -----------------------------------------------------------------------------
    def insert_audio(self, n_samples: int, speech: bool = True) -> StepResult:
        """Account for ``n_samples`` more audio in the buffer; ``speech`` is the VAD's verdict on it.

        Usually returns an empty result; after a long enough pause it returns the flushed tentative
        tail and a ``trim_to_s`` that empties the buffer but for the last ``pause_keep_s``.
        """
        if n_samples < 0:
            raise ValueError(f"n_samples must not be negative, got {n_samples}")
        duration_s = n_samples / self.options.sample_rate
        self._buffer_end_s += duration_s
        if speech:
            self._silence_run_s = 0.0
            self._speech_since_reset = True
            return self._result([], None)
        self._silence_run_s += duration_s
        opts = self.options
        if self._silence_run_s < opts.pause_reset_s:
            return self._result([], None)
        committed = self._commit(self._previous) if opts.flush_on_pause else []
        if self._previous:
            log.debug("pause: %s the tentative tail %r", "committed" if opts.flush_on_pause else "dropped",
                      join_words(self._previous))
        self._previous = []
        self._recent.clear()
        self._speech_since_reset = False
        trim = self._trim(self._buffer_end_s - opts.pause_keep_s)
        self._utterance_start_s = self._buffer_start_s
        return self._result(committed, trim)

    def process(self, hypothesis: Sequence[TimedWord], buffer_offset_s: float | None = None,
                segment_ends_s: Sequence[float] = ()) -> StepResult:
        """Take the recogniser's words for the buffer (times relative to ``buffer_offset_s``, default the
        current buffer start) and the ends of its segments (same time base); commit what two
        consecutive hypotheses agree on."""
        offset = self._buffer_start_s if buffer_offset_s is None else buffer_offset_s
        if not self._speech_since_reset:
            return self._result([], None)
        new = [_shift(w, offset) for w in hypothesis]
        new = [w for w in new if w.start_s > self._last_committed_end_s - self.options.overlap_s]
        new = self._drop_boundary_overlap(new)

        reference = self._previous if self.options.agree_gap_s <= 0 else self._reference()
        agreed = 0
        while (agreed < min(len(new), len(reference))
               and normalise(new[agreed].text) == normalise(reference[agreed].text)):
            agreed += 1
        if self._buffer_end_s - self._utterance_start_s < self.options.commit_min_buffer_s:
            agreed = 0  # the utterance is still short: its pause will commit it
        if self.options.edge_guard_s > 0:
            edge = self._buffer_end_s - self.options.edge_guard_s
            while agreed and new[agreed - 1].end_s > edge:
                agreed -= 1
        committed = self._commit(new[:agreed])
        self._previous = new[agreed:]
        if self.options.agree_gap_s > 0:
            if agreed:
                self._drop_committed_from_recent()  # once per commit: the overlap check must not eat repeats
            self._recent.append((self._buffer_end_s, list(self._previous)))

        trim, forced = self._trim_or_cap([offset + e for e in segment_ends_s])
        return self._result(committed + forced, trim)

    def finalize(self, hypothesis: Sequence[TimedWord], buffer_offset_s: float | None = None,
                 speech_end_s: float | None = None, end_s: float | None = None) -> StepResult:
        """The speaker paused: commit every word of ``hypothesis`` (decoded over the buffer up to ``end_s``,
        absolute, default its end, which lies in the pause) that is not committed yet, forget the agreement
        state, and start the buffer again after the last word. Words starting after ``speech_end_s``
        (absolute; where the VAD heard the speech stop) are hallucinated from the pause and dropped. With an
        ``end_s`` before the buffer's end (the pause was noticed late and the speaker went on), what follows
        it stays in the buffer as the next utterance (give ``end_s`` only then)."""
        offset = self._buffer_start_s if buffer_offset_s is None else buffer_offset_s
        committed: list[TimedWord] = []
        if self._speech_since_reset:
            new = [_shift(w, offset) for w in hypothesis]
            new = [w for w in new if w.start_s > self._last_committed_end_s - self.options.overlap_s]
            if speech_end_s is not None:
                new = [w for w in new if w.start_s < speech_end_s]
            committed = self._commit(self._drop_boundary_overlap(new))
        self._previous = []
        self._recent.clear()
        end = self._buffer_end_s if end_s is None else min(end_s, self._buffer_end_s)
        self._speech_since_reset = end_s is not None  # (the speaker went on after end_s: the next utterance)
        # Cut after the last word (the pause stays as the next utterance's lead-in), and never keep more
        # of the pause than pause_keep_s: it holds nothing to decode again.
        cut = end - self.options.pause_keep_s
        if self.last_committed_end_s is not None:
            cut = max(cut, min(self._last_committed_end_s, end))
        trim = self._trim(cut)
        self._utterance_start_s = self._buffer_start_s
        return self._result(committed, trim)

    def finish(self) -> list[TimedWord]:
        """Commit the tentative tail (stopping never throws recognised speech away) and empty the buffer."""
        committed = self._commit(self._previous)
        self._previous = []
        self._recent.clear()
        self._speech_since_reset = False
        self._silence_run_s = 0.0
        self._trim(self._buffer_end_s)
        self._utterance_start_s = self._buffer_start_s
        return committed

    # --- internals -----------------------------------------------------------------------------------
    def _result(self, committed: list[TimedWord], trim_to_s: float | None) -> StepResult:
        return StepResult(committed=committed, tentative=list(self._previous), trim_to_s=trim_to_s,
                          prompt=self.prompt())

    def _reference(self) -> list[TimedWord]:
        """The newest recent hypothesis decoded at least agree_gap_s of audio before now (nothing if none is)."""
        due = self._buffer_end_s - self.options.agree_gap_s + 1e-6
        older = [words for end, words in self._recent if end <= due]
        while len(self._recent) > 1 and self._recent[1][0] <= due:
            self._recent.popleft()  # only the newest due one can ever be a reference again
        return older[-1] if older else []

    def _drop_committed_from_recent(self) -> None:
        """Remove committed words from the recent hypotheses (they are compared from the first uncommitted word)."""
        since = self._last_committed_end_s - self.options.overlap_s
        for i, (end, words) in enumerate(self._recent):
            self._recent[i] = (end, self._drop_boundary_overlap([w for w in words if w.start_s > since]))

    def _drop_boundary_overlap(self, new: list[TimedWord]) -> list[TimedWord]:
        """Skip words at the head of ``new`` that repeat the tail of the committed text."""
        opts = self.options
        if not new or not self._history:
            return new
        if abs(new[0].start_s - self._last_committed_end_s) >= opts.boundary_tolerance_s:
            return new
        tail = [normalise(w.text) for w in list(self._history)[-opts.boundary_ngram:]]
        head = [normalise(w.text) for w in new[:opts.boundary_ngram]]
        for n in range(min(len(tail), len(head)), 0, -1):
            if tail[-n:] == head[:n]:
                log.debug("skipping %d word(s) already committed: %r", n, join_words(new[:n]))
                return new[n:]
        return new

    def _commit(self, words: Sequence[TimedWord]) -> list[TimedWord]:
        """Append ``words`` to the committed text unless they would repeat it; return those kept."""
        opts = self.options
        if not words:
            return []
        keep_context = 2 * opts.repeat_max_words
        tokens = [normalise(w.text) for w in list(self._history)[-keep_context:]]
        accepted: list[TimedWord] = []
        for word in words:
            accepted.append(word)
            tokens.append(normalise(word.text))
            n = repeats_at_end(tokens, opts.repeat_min_words, opts.repeat_max_words, opts.short_repeat_limit)
            if n:
                drop = min(n, len(accepted))
                log.info("repetition guard: not committing %r again", join_words(accepted[-drop:]))
                del accepted[-drop:], tokens[-drop:]
        # Even rejected words count as consumed, so the same stretch of audio is not proposed again.
        self._last_committed_end_s = max(self._last_committed_end_s, max(w.end_s for w in words))
        self._history.extend(accepted)
        return accepted

    def _trim(self, time_s: float) -> float | None:
        time_s = min(time_s, self._buffer_end_s)
        if time_s <= self._buffer_start_s + 1e-9:
            return None
        self._buffer_start_s = time_s
        return time_s

    def _trim_or_cap(self, segment_ends_s: list[float]) -> tuple[float | None, list[TimedWord]]:
        opts = self.options
        start, end = self._buffer_start_s, self._buffer_end_s
        if end - start <= opts.trim_after_s:
            return None, []
        last = self._last_committed_end_s
        in_buffer = [w for w in self._history if w.end_s > start + 1e-9]
        cuts = [w.end_s for w in in_buffer if is_sentence_end(w)]
        cuts += [e for e in segment_ends_s if start < e <= last + 1e-6]
        cut = max(cuts, default=None)
        if cut is None and end - start > opts.word_trim_after_s and in_buffer:
            cut = in_buffer[-1].end_s
        forced: list[TimedWord] = []
        if end - (cut if cut is not None else start) > opts.max_buffer_s:
            due = 0
            while due < len(self._previous) and self._previous[due].end_s <= end - opts.cap_keep_s:
                due += 1
            if due:
                log.info("buffer reached %.1f s: committing %d tentative word(s)", end - start, due)
                forced = self._commit(self._previous[:due])
                self._previous = self._previous[due:]
                self._drop_committed_from_recent()
            # Audio with no words in it even after the forced commit is dropped down to trim_after_s.
            cut = max(self._last_committed_end_s, end - opts.trim_after_s)
        return (self._trim(cut) if cut is not None else None), forced
