"""The streaming recogniser: audio chunks in, live events out — synchronous, no thread, no clock of its own.

    recognizer = StreamingRecognizer(WhisperRecognise(model, options), options, gate=VadGate(SileroVad()))
    for chunk in chunks:                   # 16 kHz mono float32, any size
        for event in recognizer.feed(chunk):
            ...                            # Partial, Committed, SentenceEnd, FinalSentence, Stats, Status
    events = recognizer.flush()            # the end: everything heard is committed

Inside ``feed``: the gate (Silero VAD, or a level threshold) says speech or not for each 0.1 s piece;
the policy (engine.live.policy) counts the audio; then at most one decode of the buffered audio:

- the speaker paused ``finalize_pause_s``: decode once (with ``final_beam_size``) and commit everything up
  to the pause;
- else once ``min_step_s`` of new audio is in (``first_step_s`` for an utterance's first decode, and
  more after a slow step so no backlog builds): decode and let LocalAgreement commit what two
  hypotheses agree on — once the buffer holds ``hold_commits_s`` (shorter utterances wait for their pause);
- else, once per utterance after ``first_draft_s`` of speech (before its first step): a draft decode
  whose words are only shown (a ``Partial``), never committed.

Committed words become ``Committed`` fragments (one sentence at most each) and, once a sentence is
finished (its end, a pause of ``policy.pause_reset_s``, a gap, or its length), ``SentenceEnd`` for the
front-ends and ``FinalSentence`` for the translation stage. A ``FinalSentence`` carries the encoder
output of the decode that finalised it when that decode held this sentence and nothing else, so the
translation into English needs no second encoder pass.

The recogniser itself is any callable ``(audio, prompt, language, beam_size=None) -> Hypothesis``: ``WhisperRecognise``
for a real model, a scripted one in tests (both, with the gate without a VAD and ``FinalSentence``, in
engine.live.recognise).

(Over 400 lines: this is the one class ``StreamingRecognizer`` — the decode scheduling (pause, step, draft),
the final-beam search rule and the sentence assembly share one buffer and one utterance state; split apart,
each half would reach into the other's.)
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from engine.events import Committed, Partial, SentenceEnd, Stats, Status, Word
from engine.features import HOP_LENGTH, SAMPLE_RATE
from engine.live.options import LiveOptions
from engine.live.policy import StepResult, StreamingPolicy, deloop, is_sentence_end, join_words, trim_collapsed
from engine.live.recognise import AudioHistory, FinalSentence, Hypothesis, LevelGate, Recognise
from engine.whisper.encode import EncodedAudio

log = logging.getLogger(__name__)

_INGEST_S = 0.1  # the gate and the policy see the audio in pieces this long
# A pause finalises an utterance only after this much speech (as the gate counts it) since the last one: a
# VAD blip in a pause (a breath, a click) would otherwise have the buffer decoded, and a decode of near
# silence with the committed text as prompt echoes the prompt (seen: a whole sentence repeated).
_MIN_UTTERANCE_SPEECH_S = 0.2
# Once the silence reaches this share of finalize_pause_s, a regular step waits: if the pause goes on, the
# finalising decode comes within a few tenths of a second and would otherwise wait for that step to end.
_HOLD_FOR_PAUSE = 0.4
# Speech heard after a pause that a decode kept the recogniser from finalising at once: this much means the
# speaker went on (the pause is finalised up to where it was heard), less is a breath or a click.
_MIN_RESUME_S = 0.1
# A finalising decode searched again with the beam is taken only if it keeps at least this share of greedy's words
# (and has no more than greedy's words / this + 2).
_KEEP_WORDS = 0.8
# The cost of a search, as a multiple of the greedy decode (encoder included) it searches again, until searches have
# been measured; then the median of the last _SEARCH_COSTS_KEPT measured (the prior filling in up to
# _SEARCH_COSTS_TRUSTED). (Greedy and search slow down together when
# the CPU is shared, so the ratio holds where the times do not.)
_SEARCH_COST_PRIOR = 1.0
_SEARCH_COSTS_KEPT = 5
_SEARCH_COSTS_TRUSTED = 3
_ANCHOR_WINDOW_S = 10.0  # (realtime) how far back the stream's clock is matched to the timer's


@dataclasses.dataclass
class _Decoded:
    hypothesis: Hypothesis
    words_abs: list[Word]  # the hypothesis' words on the stream's clock, committed ones included
    offset_s: float = 0.0  # where the decoded buffer started
    end_s: float = 0.0  # ... and ended
    words: list[Word] = dataclasses.field(default_factory=list)  # as decoded, collapsed loops cut


class StreamingRecognizer:
    def __init__(self, recognise: Recognise | Callable[[np.ndarray, str, str | None], Hypothesis],
                 options: LiveOptions | None = None, gate=None, *, realtime: bool = True,
                 keep_history: bool = False, timer: Callable[[], float] = time.perf_counter,
                 clock: Callable[[], float] = time.monotonic):
        """``gate``: anything with ``update(chunk) -> bool`` (speech in it) and ``silence_s`` (silence up to
        now), e.g. engine.audio.vad.VadGate; None: a LevelGate at ``options.silence_threshold_db``. ``realtime``:
        the audio arrives as it is spoken (a slow step then waits for as much audio as it took); False for
        a file fast-forwarded, whose steps stay ``min_step_s`` whatever the machine's load. ``keep_history``:
        keep the last 28 s of audio for speech translation. ``timer`` measures steps; ``clock`` stamps events."""
        self.recognise = recognise
        self.options = options or LiveOptions()
        self.gate = gate if gate is not None else LevelGate(self.options.silence_threshold_db)
        self.realtime = realtime
        self.timer = timer
        self.clock = clock
        self.history = AudioHistory() if keep_history else None
        policy = self.options.policy
        if self.options.finalize_pause_s is not None and self.options.hold_commits_s > policy.commit_min_buffer_s:
            policy = dataclasses.replace(policy, commit_min_buffer_s=self.options.hold_commits_s)
        self.policy = StreamingPolicy(policy)
        self.language = self.options.language
        self.committed: list[Committed] = []
        self.steps = 0
        self.finalized = 0  # decodes that finalised an utterance at a pause
        self.final_searches = 0  # finalising decodes searched again with final_beam_size (final_beam_below_p)
        self.final_searches_skipped = 0  # ... that were unsure but not searched: the search would have been late
        self._search_costs: list[float] = []  # the last searches' times / their greedy decodes' times
        # (realtime) timer() − received_s as each feed got its audio, over the last _ANCHOR_WINDOW_S: its least is
        # the timer's reading when audio time 0 was spoken, and timer() − that − received_s how much audio has been
        # spoken and not yet handed to feed. (A window: a monitor of an idle output delivers no samples, and the
        # stream's clock then falls behind the timer's for good.)
        self._anchors: collections.deque[tuple[float, float]] = collections.deque()
        self.step_times_s: list[float] = []
        self._audio = np.zeros(0, np.float32)  # the rolling buffer: policy.buffer_start_s → buffer_end_s
        self._received = 0  # samples since the stream started
        self._since_decode = 0  # samples received since the last decode
        self._was_speech = False
        self._speech_ended = False  # (pause finalisation off) the gate closed: decode now
        self._unfinalized = False  # speech since the last finalisation
        # (received_s, speech end) when the gate last heard a pause of finalize_pause_s not finalised yet: kept
        # so that a pause heard while a decode ran still finalises after it, though the speaker went on.
        self._pause: tuple[float, float] | None = None
        self._speech_s_at_pause = 0.0  # the gate's speech_s then
        self._spoke_after_pause = False
        self._speech_s_at_final = 0.0  # the gate's speech_s at the last finalisation
        self._decoded_utterance = False  # the current utterance has been decoded at least once
        self._drafted_utterance = False  # ... or had its draft decode
        self.drafts = 0  # draft decodes (display only)
        self._last_step_s = 0.0
        self._last_decoded: _Decoded | None = None
        self._detected: Status | None = None  # a language detected by the last decode, not yet announced
        self._segment_id = 0
        self._open: list[Word] = []  # committed words of the sentence not finished yet
        self._open_id = -1

    # --- the two calls -----------------------------------------------------------------------------------
    def feed(self, chunk: np.ndarray) -> list:
        """Take 16 kHz mono samples; return the events they caused (at most one decode runs)."""
        out: list = []
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        if chunk.size:
            self._ingest(chunk, out)
            if self.realtime:
                now = self.timer()
                self._anchors.append((now, now - self.received_s))
                while self._anchors[0][0] < now - _ANCHOR_WINDOW_S:
                    self._anchors.popleft()
        if self._pause_due():
            if self._blip():  # nothing to finalise, and nothing worth a decode: the buffer starts again
                end_s = self._pause[0] if self._spoke_after_pause else None
                self._unfinalized = self._spoke_after_pause
                self._pause, self._spoke_after_pause = None, False
                self._decoded_utterance = self._drafted_utterance = False
                self._apply(self.policy.finalize((), end_s=end_s), out)
            else:
                self._decode_step(out, finalize=True)
        elif self._step_due():
            self._decode_step(out, finalize=False)
        elif self._draft_due():
            self._draft_step(out)
        return out

    def flush(self) -> list:
        """The stream ended: decode what is left, commit the tentative tail, finish the open sentence."""
        out: list = []
        for _ in range(2):  # (a second time for what follows a pause heard during the last decode)
            if self._since_decode and self.policy.has_speech:
                self._decode_step(out, finalize=self.options.finalize_pause_s is not None)
        self._publish(self.policy.finish(), [], out)
        self._close_sentence(out)
        return out

    # --- what callers read -------------------------------------------------------------------------------
    @property
    def received_s(self) -> float:
        return self._received / SAMPLE_RATE

    @property
    def buffered_s(self) -> float:
        return self.policy.buffered_s

    def draft_words(self) -> list[Word]:
        """The unfinished sentence: its committed words and the tentative tail (empty when there is no tail)."""
        tail = self.policy.tentative
        return self._open + tail if tail else []

    # --- audio in ----------------------------------------------------------------------------------------
    def _ingest(self, chunk: np.ndarray, out: list) -> None:
        piece = max(1, round(_INGEST_S * SAMPLE_RATE))
        for start in range(0, chunk.size, piece):
            part = chunk[start:start + piece]
            speech = bool(self.gate.update(part))
            self._audio = np.concatenate([self._audio, part]) if self._audio.size else part.copy()
            self._received += part.size
            self._since_decode += part.size
            if speech:
                self._unfinalized = True
                # (the gate stays open for its hangover after the speech: what counts is speech it heard)
                self._spoke_after_pause = self._spoke_after_pause or (
                    self._pause is not None and self._speech_s() - self._speech_s_at_pause >= _MIN_RESUME_S)
            elif self._was_speech:
                self._speech_ended = True
            self._was_speech = speech
            self._note_pause()
            if self.history is not None:
                self.history.append(part)
            result = self.policy.insert_audio(part.size, speech)
            if result.committed or result.trim_to_s is not None:  # a pause of policy.pause_reset_s
                self._decoded_utterance = self._drafted_utterance = False
                self._unfinalized = False
                self._pause, self._spoke_after_pause = None, False
                self._apply(result, out)
                self._close_sentence(out)

    def _note_pause(self) -> None:
        pause = self.options.finalize_pause_s
        if (self._pause is None and pause is not None and self._unfinalized and self.policy.has_speech
                and self.gate.silence_s >= pause):
            self._pause = (self.received_s, self.received_s - float(self.gate.silence_s))
            self._speech_s_at_pause = self._speech_s()

    def _pause_due(self) -> bool:
        """A pause was heard since the last finalisation: now, or while the last decode ran (on a busy CPU a
        decode takes longer than a short pause, which was otherwise missed, and the utterance ran on into the
        next one until the hold let agreement commit it)."""
        return self._pause is not None

    def _speech_s(self) -> float:
        return float(getattr(self.gate, "speech_s", float("inf")))

    def _speech_since_final(self) -> float:
        return self._speech_s() - self._speech_s_at_final

    def _blip(self) -> bool:
        """Was the speech since the last finalisation too short to be an utterance?"""
        blip = self._speech_since_final() < _MIN_UTTERANCE_SPEECH_S and not self.policy.tentative
        self._speech_s_at_final = float(getattr(self.gate, "speech_s", 0.0))
        return blip

    def _step_due(self) -> bool:
        if not self.policy.has_speech:
            self._since_decode = 0  # silence is never decoded
            return False
        new_s = self._since_decode / SAMPLE_RATE
        if self.options.finalize_pause_s is None and self._speech_ended and new_s > 0:
            return True  # the gate closed: one decode over the whole utterance settles its last words
        if self._pausing():
            return False  # a step now would only delay the finalising decode
        due = self.options.min_step_s if self._decoded_utterance else self.options.first_step_s
        if not self._decoded_utterance and self._speech_since_final() < _MIN_UTTERANCE_SPEECH_S:
            return False  # a blip so far: wait until it is speech (or a pause ends it without a decode)
        if not self.realtime or not self._decoded_utterance:
            return new_s >= due  # (an utterance's first step follows a pause: no backlog to wait out)
        # A step slower than min_step_s waits for as much audio as it took: the decoder never falls behind.
        return new_s >= max(due, self._last_step_s)

    def _pausing(self) -> bool:
        """The silence is long enough that the finalising decode is due within a few tenths of a second."""
        pause = self.options.finalize_pause_s
        return pause is not None and self.gate.silence_s >= _HOLD_FOR_PAUSE * pause

    def _draft_due(self) -> bool:
        draft = self.options.first_draft_s
        if draft is None or self._decoded_utterance or self._drafted_utterance or not self.policy.has_speech:
            return False
        if self._pausing():
            return False
        return (self._since_decode / SAMPLE_RATE >= draft
                and self._speech_since_final() >= _MIN_UTTERANCE_SPEECH_S)

    # --- one decode ----------------------------------------------------------------------------------------
    def _draft_step(self, out: list) -> None:
        """The utterance's first words, shown before its first regular decode: no prompt (a short stretch
        decoded with the committed text as prompt can echo the prompt), loops cut, and nothing here reaches
        the policy (the next Partial, from a regular decode, replaces it)."""
        self._drafted_utterance = True
        self.drafts += 1
        hypothesis = self.recognise(self._audio, "", self.language) if self._audio.size >= HOP_LENGTH else None
        if hypothesis is None or not hypothesis.words:
            return
        offset = self.policy.buffer_start_s
        words = [_shift(w, offset) for w in deloop(trim_collapsed(hypothesis.words), 4)]
        if words:
            out.append(Partial(segment_id=self._segment_id, text=join_words(words), start_s=words[0].start_s,
                               end_s=words[-1].end_s, emitted_at=self.clock()))

    def _decode_step(self, out: list, finalize: bool) -> None:
        started = self.timer()
        offset = self.policy.buffer_start_s
        end_s, speech_end = self.received_s, self.received_s - float(self.gate.silence_s)
        audio, late = self._audio, finalize and self._pause is not None and self._spoke_after_pause
        if late:  # the pause was heard during the last decode and the speaker has gone on: up to the pause
            end_s, speech_end = self._pause
            audio = self._audio[:max(0, round((end_s - offset) * SAMPLE_RATE))]
        hypothesis = (self._recognise(finalize, audio, speech_end, late) if audio.size >= HOP_LENGTH
                      else Hypothesis(()))
        words = trim_collapsed(hypothesis.words)
        decoded = _Decoded(hypothesis, [_shift(w, offset) for w in words], offset, end_s, words)
        if finalize:
            decoded = self._surer(decoded, speech_end)
            words = decoded.words
        self._last_decoded = decoded
        if finalize:
            step = self.policy.finalize(words, buffer_offset_s=offset, speech_end_s=speech_end + 0.2,
                                        end_s=end_s if late else None)
            self._unfinalized = self._spoke_after_pause
            self._pause, self._spoke_after_pause = None, False
            self._decoded_utterance = self._drafted_utterance = False
            self.finalized += 1
        else:
            step = self.policy.process(words, buffer_offset_s=offset,
                                       segment_ends_s=list(hypothesis.segment_ends_s))
            self._decoded_utterance = True
        covered_s = self._since_decode / SAMPLE_RATE
        # (after a late finalisation, the audio since the pause is the next utterance's, not decoded yet)
        self._since_decode = max(0, round((self.received_s - end_s) * SAMPLE_RATE))
        self._speech_ended = False
        self._last_step_s = self.timer() - started
        self.steps += 1
        self.step_times_s.append(self._last_step_s)
        self._apply(step, out)
        if finalize:
            self._close_sentence_at_pause(out)
        newest = self.committed[-1].end_s if self.committed else None
        out.append(Stats(rtf=self._last_step_s / max(covered_s, 1e-3), step_s=self._last_step_s, dropped_blocks=0,
                         lag_s=(self.received_s - newest) if newest is not None else 0.0,
                         buffered_s=self.policy.buffered_s, emitted_at=self.clock()))

    def _surer(self, final: _Decoded, speech_end_s: float) -> _Decoded:
        """The finalising decode, or the step before it if that one already heard the utterance to its end
        (same buffer start, ended in the pause) and its decoder was surer: two decodes of the same words
        differ now and then ("the nearest pharmacy" / "an irisd pharmacy"), and the surer one is right
        more often than not."""
        previous = self._last_decoded
        if (previous is None or previous.offset_s != final.offset_s or previous.end_s < speech_end_s + 0.1
                or previous.hypothesis.avg_logprob is None or final.hypothesis.avg_logprob is None):
            return final
        return previous if previous.hypothesis.avg_logprob > final.hypothesis.avg_logprob else final

    def _recognise(self, finalize: bool, audio: np.ndarray, speech_end_s: float = 0.0,
                   late: bool = False) -> Hypothesis:
        opts = self.options
        prompt = self.policy.prompt()
        beam = opts.final_beam_size if finalize and opts.final_beam_size != opts.beam_size else None
        below = opts.final_beam_below_p
        if beam is not None and (below is None or below >= 1):
            hypothesis = self.recognise(audio, prompt, self.language, beam_size=beam)
        else:
            started = self.timer()
            hypothesis = self.recognise(audio, prompt, self.language)
            greedy_s = self.timer() - started
            if beam is not None and hypothesis.words and min(w.probability for w in hypothesis.words) < below:
                if self._search_in_time(speech_end_s, greedy_s, late):
                    self.final_searches += 1
                    started = self.timer()
                    searched = self.recognise(audio, prompt, self.language, beam_size=beam,
                                              encoded=hypothesis.encoded)
                    if greedy_s > 0:
                        self._search_costs = (self._search_costs + [(self.timer() - started) / greedy_s])[
                            -_SEARCH_COSTS_KEPT:]
                    # The search is there to mend a misheard word, not to drop words (a beam can skip a repeated
                    # phrase greedy kept) nor to add them (a beam that loops).
                    n = len(hypothesis.words)
                    if _KEEP_WORDS * n <= len(searched.words) <= n / _KEEP_WORDS + 2:
                        hypothesis = searched
                else:
                    self.final_searches_skipped += 1
        if self.language is None and hypothesis.words and hypothesis.language and self.policy.buffered_s >= 2.0:
            self.language = hypothesis.language
            self._detected = Status(f"detected language: {self.language}", emitted_at=self.clock())
        return hypothesis

    def _search_in_time(self, speech_end_s: float, greedy_s: float, late: bool) -> bool:
        """Would a search of the finalising decode just made (greedy_s long) still finish the utterance within
        final_beam_within_s of the speaker stopping, as the last searches cost? A search delays everything
        after it — the next utterance's decodes, the translation — so none runs once the recogniser is behind
        (audio waiting since before the pause counts in the lag already) or the speaker has gone on."""
        within = self.options.final_beam_within_s
        if within is None or not self.realtime:
            return True  # a file fast-forwarded is never behind the speaker
        if late or not self._anchors:
            return False  # the next utterance has started: it must not wait for this one's search
        # The prior counts as a measurement until _SEARCH_COSTS_TRUSTED searches were measured: one slow search
        # (a beam that looped, the translation's thread busy) would otherwise stop every search after it, and
        # with none run no faster one is ever measured.
        measured = self._search_costs
        costs = sorted(measured + [_SEARCH_COST_PRIOR] * max(0, _SEARCH_COSTS_TRUSTED - len(measured)))
        ratio = costs[len(costs) // 2]
        anchor = min(a for _, a in self._anchors)
        lag_s = self.timer() - anchor - speech_end_s  # how long ago the speaker stopped, now
        return lag_s + ratio * greedy_s <= within

    def _apply(self, step: StepResult, out: list) -> None:
        if self._detected is not None:
            out.append(self._detected)
            self._detected = None
        self._publish(step.committed, step.tentative, out)
        if step.trim_to_s is not None:
            keep = round((self._received / SAMPLE_RATE - self.policy.buffer_start_s) * SAMPLE_RATE)
            self._audio = self._audio[max(0, self._audio.size - keep):] if keep > 0 else self._audio[:0]

    # --- words out: fragments and sentences ---------------------------------------------------------------
    def _publish(self, committed: list[Word], tentative: list[Word], out: list) -> None:
        now = self.clock()
        opts = self.options
        for piece in _split_at_sentence_ends(committed):
            part: list[Word] = []
            for word in piece:
                part.append(word)
                if len(join_words(self._open + part)) > opts.sentence_max_chars:  # too long to wait for its end
                    self._fragment(part, now, out)
                    self._close_sentence(out)
                    part = []
            if part:
                self._fragment(part, now, out)
                if is_sentence_end(part[-1]):
                    self._close_sentence(out)
        if tentative or committed:
            text = join_words(tentative)
            start = tentative[0].start_s if tentative else (committed[-1].end_s if committed else 0.0)
            end = tentative[-1].end_s if tentative else start
            out.append(Partial(segment_id=self._segment_id, text=text, start_s=start, end_s=end, emitted_at=now))

    def _fragment(self, words: list[Word], now: float, out: list) -> None:
        if self._open and words[0].start_s - self._open[-1].end_s > self.options.sentence_gap_s:
            self._close_sentence(out)
        event = Committed(segment_id=self._segment_id, text=join_words(words), start_s=words[0].start_s,
                          end_s=words[-1].end_s, words=tuple(words), emitted_at=now, language=self.language)
        self._segment_id += 1
        self.committed.append(event)
        out.append(event)
        self._open.extend(words)
        self._open_id = event.segment_id

    def _close_sentence_at_pause(self, out: list) -> None:
        """After a finalisation the open sentence has no end mark (the speaker paused mid-sentence, or
        Whisper wrote none). It stays open for what follows unless the decode held it whole, ending it."""
        if self._open and self._sole_encoding(self._open) is not None and self._open[-1].text.rstrip()[-1:] not in ",;:":
            self._close_sentence(out)

    def _close_sentence(self, out: list) -> None:
        if not self._open:
            return
        words, self._open = self._open, []
        encoded = self._sole_encoding(words)
        audio = None
        if encoded is None and self.history is not None:
            audio = self.history.slice(words[0].start_s - 0.1, words[-1].end_s + 0.3)
        out.append(SentenceEnd(segment_id=self._open_id, emitted_at=self.clock()))
        out.append(FinalSentence(segment_id=self._open_id, text=join_words(words), start_s=words[0].start_s,
                                 end_s=words[-1].end_s, language=self.language, encoded=encoded, audio=audio))

    def _sole_encoding(self, words: list[Word]) -> EncodedAudio | None:
        """The last decode's encoder output if that decode heard these words and nothing else."""
        last = self._last_decoded
        if last is None or last.hypothesis.encoded is None or not last.words_abs:
            return None
        # A word of another sentence ends before this one starts or starts after it ends. (Whisper's first word
        # often begins at the buffer's start, in the silence before it: its start says little.)
        first, last_end = words[0].start_s + 0.1, words[-1].end_s - 0.1
        if any(w.end_s <= first or w.start_s >= last_end for w in last.words_abs):
            return None
        return last.hypothesis.encoded if len(last.words_abs) >= len(words) - 1 else None


def _shift(word: Word, offset_s: float) -> Word:
    return dataclasses.replace(word, start_s=word.start_s + offset_s, end_s=word.end_s + offset_s)


def _split_at_sentence_ends(words: list[Word]) -> list[list[Word]]:
    pieces: list[list[Word]] = [[]]
    for word in words:
        pieces[-1].append(word)
        if is_sentence_end(word):
            pieces.append([])
    return [p for p in pieces if p]
