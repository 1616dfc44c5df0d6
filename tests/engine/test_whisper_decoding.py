"""Decoding logic without a model: logit filters, greedy and beam bookkeeping, ranking, guards."""

from __future__ import annotations

import numpy as np
import pytest

from engine.whisper import decoding as dec
from engine.whisper.decoding import DecodeOptions
from engine.whisper.transcribe import TranscribeOptions
from engine.whisper.window import build_prompt, split_segments

# A toy vocabulary laid out like Whisper's: text tokens, then eot, control tokens, timestamps.
EOT, NO_TS, TS = 10, 11, 12
VOCAB = 20


def test_compression_ratio_flags_repetition_not_speech():
    assert dec.compression_ratio("the the the the the the the the the the the the the the the the") > 2.4
    assert dec.compression_ratio("The quick brown fox jumps over the lazy dog.") < 2.0
    assert dec.compression_ratio("") == 0.0


def test_suppress_blank_only_at_the_first_token():
    f = dec.SuppressBlank([3, EOT])
    logits = np.zeros((2, VOCAB), np.float32)
    f.apply(logits, [[], []])
    assert np.isneginf(logits[:, [3, EOT]]).all() and np.isfinite(logits[:, 4]).all()
    logits = np.zeros((1, VOCAB), np.float32)
    f.apply(logits, [[5]])
    assert np.isfinite(logits).all()


def _rules(max_initial=None):
    return dec.TimestampRules(EOT, NO_TS, TS, max_initial)


def test_first_token_is_a_timestamp_no_later_than_max_initial():
    logits = np.zeros((1, VOCAB), np.float32)
    _rules(max_initial=2).apply(logits, [[]])
    allowed = np.flatnonzero(np.isfinite(logits[0]))
    assert allowed.tolist() == [TS, TS + 1, TS + 2]


def test_open_timestamp_pair_must_close_before_text():
    logits = np.zeros((1, VOCAB), np.float32)
    logits[0, EOT] = 5.0
    _rules().apply(logits, [[TS, 4, TS + 3]])  # text then a timestamp: the pair must be closed
    allowed = np.flatnonzero(np.isfinite(logits[0]))
    assert EOT in allowed and TS + 3 in allowed and all(t >= EOT for t in allowed)
    assert not any(TS <= t < TS + 3 for t in allowed)  # never backwards


def test_closed_pair_is_followed_by_text_and_later_timestamps():
    logits = np.zeros((1, VOCAB), np.float32)
    logits[0, 4] = 5.0  # text is likely, so no forced timestamp
    _rules().apply(logits, [[TS, 4, TS + 3, TS + 3]])
    assert np.isneginf(logits[0, TS:]).all()
    assert np.isfinite(logits[0, 4])
    assert np.isneginf(logits[0, NO_TS])


def test_timestamp_forced_when_timestamps_outweigh_any_text_token():
    logits = np.full((1, VOCAB), -5.0, np.float32)
    logits[0, 4] = 0.0
    logits[0, TS:] = -1.0  # each below the text token, but 8 of them sum above it
    _rules().apply(logits, [[TS, 4]])
    assert np.isneginf(logits[0, :TS]).all()


class ScriptedLM:
    """A fake decoder whose next-token distribution depends on the sequence so far. Each row
    remembers its history so the test can check that reorder keeps rows and tokens in step."""

    def __init__(self, table: dict[tuple[int, ...], dict[int, float]], n: int):
        self.table = table
        self.rows = [[] for _ in range(n)]
        self.steps = 0

    def logits_for(self, history) -> np.ndarray:
        probs = self.table.get(tuple(history), {EOT: 1.0})
        out = np.full(VOCAB, -1e9, np.float32)
        for t, p in probs.items():
            out[t] = np.log(p)
        return out

    def step(self, tokens):
        self.steps += 1
        for row, t in zip(self.rows, tokens):
            row.append(int(t))
        return np.stack([self.logits_for(r) for r in self.rows])

    def reorder(self, source):
        self.rows = [list(self.rows[i]) for i in source]


# Greedy picks 1 (0.6) then is stuck with 0.5 · 0.6 = 0.30; beam finds 2 → 3 at 0.4 · 1.0 = 0.40.
TABLE = {(): {1: 0.6, 2: 0.4}, (1,): {4: 0.5, 5: 0.5}, (2,): {3: 1.0}, (1, 4): {EOT: 1.0}, (1, 5): {EOT: 1.0},
         (2, 3): {EOT: 1.0}}


def test_greedy_takes_the_locally_best_token():
    lm = ScriptedLM(TABLE, 1)
    cands, truncated = dec.greedy_or_sample(lm, lm.logits_for([]), 1, 0.0, [], EOT, sample_len=10)
    assert cands[0].tokens == [1, 4] and not truncated
    assert cands[0].sum_logprob == pytest.approx(np.log(0.6 * 0.5 * 1.0), abs=1e-5)


def test_beam_search_finds_the_likelier_sequence_and_reorders_rows():
    lm = ScriptedLM(TABLE, 3)
    cands, _ = dec.beam_search(lm, lm.logits_for([]), 3, 1.0, [], EOT, sample_len=10)
    best = cands[dec.rank(cands, None)]
    assert best.tokens == [2, 3]
    # every step fed each row the token its own history expects (reorder kept them aligned)
    for row in lm.rows:
        assert tuple(row[:-1]) in TABLE or row == []


def test_beam_search_stops_at_patience_times_beam_finished():
    lm = ScriptedLM(TABLE, 2)
    cands, _ = dec.beam_search(lm, lm.logits_for([]), 2, 1.0, [], EOT, sample_len=50)
    assert len(cands) >= 2 and lm.steps <= 3


def test_sampling_is_reproducible_and_stays_in_the_support():
    rng1, rng2 = np.random.default_rng(1), np.random.default_rng(1)
    a, _ = dec.greedy_or_sample(ScriptedLM(TABLE, 4), ScriptedLM(TABLE, 1).logits_for([]), 4, 1.0, [], EOT, 10, rng=rng1)
    b, _ = dec.greedy_or_sample(ScriptedLM(TABLE, 4), ScriptedLM(TABLE, 1).logits_for([]), 4, 1.0, [], EOT, 10, rng=rng2)
    assert [c.tokens for c in a] == [c.tokens for c in b]
    assert all(tuple(c.tokens) in {(1, 4), (1, 5), (2, 3)} for c in a)


def test_deadline_truncates_the_search():
    lm = ScriptedLM({(): {1: 1.0}, (1,): {1: 1.0}, (1, 1): {1: 1.0}}, 1)
    cands, truncated = dec.greedy_or_sample(lm, lm.logits_for([]), 1, 0.0, [], EOT, 100, deadline=0.0)
    assert truncated and cands[0].tokens == [1]


def test_rank_length_penalty():
    short = dec.Candidate([1], -1.0)
    long = dec.Candidate([1, 2, 3, 4], -2.0)
    assert dec.rank([short, long], None) == 1  # -0.5 per token beats -1.0
    assert dec.rank([short, long], 0.0) == 0  # alpha 0: plain sum logprob


@pytest.mark.parametrize("kwargs", [dict(task="summarize"), dict(beam_size=0), dict(best_of=0), dict(patience=0),
                                    dict(temperatures=()), dict(temperatures=(-0.1,)), dict(length_penalty=2.0),
                                    dict(max_fallbacks=-1), dict(time_budget_s=0)])
def test_options_are_validated(kwargs):
    with pytest.raises(ValueError):
        DecodeOptions(**kwargs)
    with pytest.raises(ValueError):
        TranscribeOptions(**{k: v for k, v in kwargs.items() if k not in ("time_budget_s",)} or dict(encoder_frames="x"))


def test_transcribe_defaults_are_faster_whispers():
    o = TranscribeOptions()
    assert (o.beam_size, o.best_of, o.patience, o.compression_ratio_threshold, o.log_prob_threshold,
            o.no_speech_threshold, o.condition_on_previous_text) == (5, 5, 1.0, 2.4, -1.0, 0.6, True)
    assert o.temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) and o.suppress_tokens == (-1,)
    with pytest.raises(ValueError):
        TranscribeOptions(encoder_frames="half")


def test_segments_split_at_timestamp_pairs():
    tb = 1000  # timestamp_begin
    tokens = [tb + 0, 5, 6, tb + 50, tb + 50, 7, tb + 120]  # two segments, the second ends on one timestamp
    segs, consumed, single = split_segments(tokens, tb, segment_frames=3000)
    assert [(s, e) for s, e, _ in segs] == [(0.0, 1.0), (1.0, 2.4)]
    assert single and consumed == 3000  # a single timestamp at the end: the whole window is done
    tokens = [tb + 0, 5, tb + 50, tb + 60, 7]  # the last segment is unfinished: redo it in the next window
    segs, consumed, single = split_segments(tokens, tb, segment_frames=3000)
    assert len(segs) == 1 and consumed == 50 * 2 and not single  # up to the last closed segment


def test_segment_without_timestamps_spans_the_window():
    segs, consumed, _ = split_segments([5, 6, 7], 1000, segment_frames=1234)
    assert segs == [(0.0, 12.34, [5, 6, 7])] and consumed == 1234
