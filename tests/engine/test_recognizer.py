"""The streaming recogniser driven by a scripted recogniser and a scripted gate (tests/engine/recognizer_fixtures.py):
pauses, sentences, drafts, steps and the hold. The search of the finalising decode: test_recognizer_final_beam.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.events import Committed, Partial, SentenceEnd, Word
from engine.live.options import LiveOptions
from engine.live.recognise import FinalSentence
from engine.live.recognizer import StreamingRecognizer
from tests.engine.recognizer_fixtures import (SR, ScriptedGate, ScriptedRecognise, TimedRecognise, committed_text,
                                              run, script)


def test_a_pause_finalises_the_sentence_at_once_with_its_encoder_output():
    words = script((0.5, "The quick brown fox jumps."), (4.0, "It ran away."))
    rec, out, recognise = run(words, 6.0)
    end = words[4].end_s  # "jumps." ends at 1.98 s
    first_end = next(t for t, e in out if isinstance(e, SentenceEnd))
    assert first_end <= end + 0.4 + 0.15, f"the sentence was final {first_end - end:.2f} s after it ended"
    assert first_end < 4.0  # before the next sentence starts
    finals = [e for _, e in out if isinstance(e, FinalSentence)]
    assert [f.text for f in finals] == ["The quick brown fox jumps.", "It ran away."]
    assert finals[0].encoded is not None and finals[0].audio is None  # one encoder pass serves the translation
    assert committed_text(out) == "The quick brown fox jumps. It ran away."
    assert rec.finalized >= 2


def test_without_pause_finalisation_the_sentence_waits_for_agreement_or_the_long_pause():
    words = script((0.5, "The quick brown fox jumps."), (4.0, "It ran away."))
    _, out, _ = run(words, 6.0, finalize_pause_s=None)
    first_end = next(t for t, e in out if isinstance(e, SentenceEnd))
    assert first_end > words[4].end_s + 0.6  # the edge guard and a second hypothesis at least
    assert committed_text(out) == "The quick brown fox jumps. It ran away."


def test_continuous_speech_commits_by_agreement_each_word_once():
    text = " ".join(f"word{i}" for i in range(40))  # 12 s without a pause or a sentence end
    words = script((0.2, text))
    rec, out, recognise = run(words, 13.5)
    assert committed_text(out).split() == text.split()
    commits = [(t, e) for t, e in out if isinstance(e, Committed)]
    during = [t for t, e in commits if t < 12.2]
    assert during, "nothing was committed while the speaker was speaking"
    assert rec.finalized == 1  # only once the speaker stopped
    assert max(e - s for s, e in recognise.calls) <= LiveOptions().policy.max_buffer_s + 0.11


def test_a_pause_inside_a_sentence_commits_its_first_half_and_finishes_the_sentence_at_its_end():
    words = script((0.5, "I went to the store,"), (2.5, "and bought some milk."))
    rec, out, recognise = run(words, 5.0)
    before = " ".join(e.text for t, e in out if isinstance(e, Committed) and t <= 2.5)
    assert before == "I went to the store,"  # finalised in the pause, before the second half was spoken
    finals = [e for _, e in out if isinstance(e, FinalSentence)]
    assert [f.text for f in finals] == ["I went to the store, and bought some milk."]
    # The last decode heard only the second half: the translation encodes the sentence's own audio.
    assert finals[0].encoded is None and finals[0].audio is not None
    assert finals[0].audio.size >= (words[-1].end_s - words[0].start_s) * SR


def test_a_very_long_sentence_is_cut_into_translatable_pieces_and_the_buffer_stays_bounded():
    text = " ".join(f"w{i}" for i in range(120))  # 36 s, no end mark, no pause
    words = script((0.0, text))
    rec, out, recognise = run(words, 37.5)
    assert committed_text(out).split() == text.split()
    finals = [e for _, e in out if isinstance(e, FinalSentence)]
    assert len(finals) >= 3 and all(len(f.text) <= LiveOptions().sentence_max_chars + 5 for f in finals)
    assert " ".join(f.text for f in finals).split() == text.split()
    assert max(e - s for s, e in recognise.calls) <= LiveOptions().policy.max_buffer_s + 0.11


def test_silence_is_never_decoded_and_gives_no_text():
    rec, out, recognise = run([], 20.0)
    assert recognise.calls == []
    assert not [e for _, e in out if isinstance(e, (Committed, Partial, FinalSentence))]


def test_noise_the_recogniser_hears_no_words_in_gives_no_text():
    """The gate lets a noise burst through (the VAD misjudged it) and the recogniser finds no words in it."""
    recognise = ScriptedRecognise([])
    gate = ScriptedGate([Word(1.0, 3.0, " (noise)")])
    rec = StreamingRecognizer(recognise, LiveOptions(language="en"), gate, realtime=False,
                              timer=lambda: 0.0, clock=lambda: 0.0)
    events = []
    for first in range(0, 6 * SR, 1600):
        events += rec.feed(np.arange(first, first + 1600, dtype=np.float32))
    events += rec.flush()
    assert recognise.calls, "the noise was decoded"
    assert not [e for e in events if isinstance(e, (Committed, FinalSentence, SentenceEnd))]


def test_the_first_words_of_an_utterance_are_decoded_after_first_step_s():
    words = script((1.0, "Hello there my friend."))
    _, out, recognise = run(words, 3.0, first_draft_s=None)
    first_decode_end = recognise.calls[0][1]
    assert first_decode_end <= 1.0 + LiveOptions().first_step_s + 0.1
    partial = next(t for t, e in out if isinstance(e, Partial) and e.text)
    assert partial - words[0].end_s <= 0.5


def test_a_draft_shows_each_utterances_first_words_sooner_and_changes_nothing_committed():
    words = script((1.0, "Hello there my friend."), (4.0, "See you soon."), (6.5, "Bye for now."), word_s=0.2)
    rec, out, recognise = run(words, 8.5)
    _, plain, plain_calls = run(words, 8.5, first_draft_s=None)
    assert committed_text(out) == committed_text(plain) == "Hello there my friend. See you soon. Bye for now."
    assert [e.text for _, e in out if isinstance(e, FinalSentence)] == \
        [e.text for _, e in plain if isinstance(e, FinalSentence)]
    assert rec.drafts == 3 and len(recognise.calls) == len(plain_calls.calls) + 3  # one per utterance
    for start, first_word in ((1.0, words[0]), (4.0, words[4]), (6.5, words[7])):
        shown = next(t for t, e in out if isinstance(e, Partial) and e.text and t > start)
        shown_plain = next(t for t, e in plain if isinstance(e, Partial) and e.text and t > start)
        assert shown <= start + LiveOptions().first_draft_s + 0.1 < shown_plain
        assert shown - first_word.end_s <= 0.2
    # The draft is decoded without the committed text as its prompt (a short stretch can echo a prompt).
    regular = set(plain_calls.calls)
    draft_prompts = [p for call, p in zip(recognise.calls, recognise.prompts) if call not in regular]
    assert draft_prompts == ["", "", ""]
    assert any(p for call, p in zip(recognise.calls, recognise.prompts) if call in regular)


def test_no_draft_for_a_blip_or_silence():
    words = script((0.5, "One two three."))
    gate = ScriptedGate(words + [Word(3.0, 3.05, " (click)")])
    recognise = ScriptedRecognise(words)
    rec = StreamingRecognizer(recognise, LiveOptions(language="en"), gate, realtime=False,
                              timer=lambda: 0.0, clock=lambda: 0.0)
    for first in range(0, 6 * SR, 1600):
        rec.feed(np.arange(first, first + 1600, dtype=np.float32))
    assert rec.drafts == 1 and all(end <= 2.0 for _, end in recognise.calls)


@pytest.mark.parametrize("chunk_s", [0.02, 0.5])
def test_the_text_does_not_depend_on_how_the_audio_is_chunked(chunk_s):
    words = script((0.5, "One two three."), (2.6, "Four five six seven eight."), (5.5, "Nine ten."))
    _, out, _ = run(words, 7.5, chunk_s=chunk_s)
    assert committed_text(out) == "One two three. Four five six seven eight. Nine ten."


def test_a_blip_in_a_pause_is_not_decoded():
    """A click or breath the VAD calls speech for 0.1 s: no decode (a decode of near silence echoes the prompt)."""
    words = script((0.5, "One two three."))
    recognise = ScriptedRecognise(words)
    gate = ScriptedGate(words + [Word(3.0, 3.05, " (click)")])
    rec = StreamingRecognizer(recognise, LiveOptions(language="en"), gate, realtime=False,
                              timer=lambda: 0.0, clock=lambda: 0.0)
    for first in range(0, 6 * SR, 1600):
        rec.feed(np.arange(first, first + 1600, dtype=np.float32))
    assert all(end <= 2.0 for _, end in recognise.calls), recognise.calls
    assert " ".join(c.text for c in rec.committed) == "One two three."


def test_a_slow_machine_waits_out_its_backlog_but_not_at_an_utterances_first_step():
    """Each decode 'takes' 1.5 s (the timer says so): steps then wait for 1.5 s of audio, except the first step
    of an utterance after a pause, which shows its first words after first_step_s."""
    words = script((0.5, "One two three four five six seven eight."), (6.0, "Nine ten eleven."))
    recognise = TimedRecognise(words, greedy_s=1.5)
    rec = StreamingRecognizer(recognise, LiveOptions(language="en", first_draft_s=None), ScriptedGate(words),
                              realtime=True, timer=recognise.now, clock=lambda: 0.0)
    for first in range(0, 9 * SR, 1600):
        rec.feed(np.arange(first, first + 1600, dtype=np.float32))
    ends = [end for _, end in recognise.calls]
    gaps = [b - a for a, b in zip(ends, ends[1:]) if a < 2.9 and b < 2.9]
    assert gaps and min(gaps) >= 1.5 - 1e-6  # the backlog rule while speech runs
    second = [end for end in ends if end > 6.0]
    assert second and second[0] <= 6.0 + LiveOptions().first_step_s + 0.15, ends


class ShortSightedRecognise(ScriptedRecognise):
    """Hears an utterance's first word wrong ("Price") until the decoded buffer holds 2.5 s of it, as
    whisper-base does with "Prices for" or "Thousands of" heard from a second of audio."""

    def __call__(self, audio, prompt, language, beam_size=None, encoded=None):
        hypothesis = super().__call__(audio, prompt, language, beam_size, encoded)
        start, end = self.calls[-1]
        if hypothesis.words and hypothesis.words[0].text == " Prices" and end - start < 2.5:
            first = dataclasses.replace(hypothesis.words[0], text=" Price")
            hypothesis = dataclasses.replace(hypothesis, words=(first,) + hypothesis.words[1:])
        return hypothesis


def test_a_short_utterance_is_committed_whole_at_its_pause_not_from_decodes_of_its_beginning():
    words = script((0.5, "Prices for fresh vegetables rose sharply."), (5.0, "It rained."))
    recognise = ShortSightedRecognise(words)

    def run_with(**options):
        rec = StreamingRecognizer(recognise, LiveOptions(language="en", **options), ScriptedGate(words),
                                  realtime=False, timer=lambda: 0.0, clock=lambda: 0.0)
        out = []
        for first in range(0, int(6.5 * SR), SR // 10):
            t = (first + SR // 10) / SR
            out += [(t, e) for e in rec.feed(np.arange(first, first + SR // 10, dtype=np.float32))]
        return out + [(6.5, e) for e in rec.flush()]

    held = run_with()
    assert committed_text(held) == "Prices for fresh vegetables rose sharply. It rained."
    end = words[5].end_s
    assert next(t for t, e in held if isinstance(e, Committed)) <= end + 0.4 + 0.15  # at the pause
    assert any(isinstance(e, Partial) and "fresh" in e.text for t, e in held if t <= 2.05)  # shown, tentative
    eager = run_with(hold_commits_s=0.0)  # what two decodes of its first second agreed on is committed
    assert committed_text(eager).startswith("Price for fresh")


def test_the_hold_needs_pause_finalisation_and_stays_below_the_trim():
    with pytest.raises(ValueError, match="hold_commits_s"):
        LiveOptions(hold_commits_s=LiveOptions().policy.trim_after_s)
    words = script((0.5, "Prices for fresh vegetables rose sharply."))
    rec = StreamingRecognizer(ScriptedRecognise(words), LiveOptions(language="en", finalize_pause_s=None),
                              ScriptedGate(words), realtime=False, timer=lambda: 0.0, clock=lambda: 0.0)
    assert rec.policy.options.commit_min_buffer_s == 0.0  # without pauses to finalise, agreement commits


def test_a_pause_heard_while_a_decode_ran_still_finalises_the_utterance_up_to_the_pause():
    # Audio arriving 1.5 s at a time is what a busy CPU does: the 0.6 s pause between the sentences is over
    # by the time the recogniser looks, and was missed (the utterance ran on until the hold let agreement in).
    words = script((0.5, "I went to the store."), (2.6, "Then I bought some milk and bread."))
    rec, out, recognise = run(words, 6.0, chunk_s=1.5, final_beam_size=5, final_beam_below_p=None)  # (beam 5 marks finals)
    finals = [(t, e) for t, e in out if isinstance(e, FinalSentence)]
    assert [e.text for _, e in finals] == ["I went to the store.", "Then I bought some milk and bread."]
    assert finals[0][0] <= 3.0 + 1e-6  # in the first chunk after the pause, not at the end
    assert rec.finalized == 2
    first_final_decode = next((s, e) for (s, e), beam in zip(recognise.calls, recognise.beams) if beam == 5)
    assert first_final_decode[1] <= words[4].end_s + 0.7  # it heard up to the pause, not into the next words


def test_speech_without_pauses_keeps_committing_once_past_the_hold():
    # 24 s of sentences with no pause between them: once the utterance is 6 s long, agreement commits, and
    # the buffer's trims at sentence ends do not start the hold again.
    text = " ".join(f"w{i}{'.' if i % 6 == 5 else ''}" for i in range(80))
    words = script((0.2, text))
    rec, out, _ = run(words, 25.0)
    assert committed_text(out).split() == text.split()
    times = [t for t, e in out if isinstance(e, Committed) and t < 24.0]
    assert times and times[0] <= 7.5
    assert max(b - a for a, b in zip(times, times[1:])) <= 2.5, times
