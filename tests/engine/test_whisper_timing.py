"""Word-timing pieces without a model: DTW, median filter, punctuation merging, word assignment."""

from __future__ import annotations

import numpy as np

from engine.whisper.timing import SegmentWords, WordTiming, assign_words, dtw, median_filter, merge_punctuations


def _dtw_reference(x: np.ndarray):
    """openai/whisper's dtw_cpu + backtrace, cell by cell."""
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf)
    trace = -np.ones((n + 1, m + 1))
    cost[0, 0] = 0
    for j in range(1, m + 1):
        for i in range(1, n + 1):
            c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = x[i - 1, j - 1] + c
            trace[i, j] = t
    i, j = n, m
    trace[0, :] = 2
    trace[:, 0] = 1
    out = []
    while i > 0 or j > 0:
        out.append((i - 1, j - 1))
        t = trace[i, j]
        i, j = (i - 1, j - 1) if t == 0 else (i - 1, j) if t == 1 else (i, j - 1)
    arr = np.array(out[::-1])
    return arr[:, 0], arr[:, 1]


def test_dtw_matches_whispers_reference_on_random_and_tied_costs():
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (3, 7), (12, 40), (25, 25)]:
        x = rng.standard_normal(shape).astype(np.float32)
        for a, b in zip(dtw(x), _dtw_reference(x)):
            np.testing.assert_array_equal(a, b)
    tied = np.zeros((4, 9), np.float32)
    for a, b in zip(dtw(tied), _dtw_reference(tied)):
        np.testing.assert_array_equal(a, b)


def test_dtw_follows_a_cheap_diagonal_and_is_monotonic():
    x = np.ones((5, 10), np.float32)
    for i in range(5):
        x[i, 2 * i: 2 * i + 2] = -1.0
    rows, cols = dtw(x)
    assert rows[0] == 0 and cols[0] == 0 and rows[-1] == 4 and cols[-1] == 9
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(cols) >= 0)
    first_col = [cols[rows == i].min() for i in range(5)]
    assert first_col == [0, 2, 4, 6, 8]


def test_median_filter_matches_a_sliding_median():
    x = np.random.default_rng(1).standard_normal((2, 3, 20))
    y = median_filter(x, 7)
    padded = np.pad(x, [(0, 0), (0, 0), (3, 3)], mode="reflect")
    want = np.stack([np.median(padded[..., i:i + 7], axis=-1) for i in range(20)], axis=-1)
    np.testing.assert_allclose(y, want)


def _w(word, start, end):
    return WordTiming(word, [len(word)], start, end, 0.9)


def test_punctuation_joins_its_word():
    words = [_w(" \"", 0, 0), _w("Hello", 0, 1), _w(",", 1, 1), _w(" world", 1, 2), _w(".", 2, 2)]
    merge_punctuations(words)
    assert [w.word for w in words if w.word] == [" \"Hello,", " world."]


def test_words_land_in_their_segments_with_absolute_times():
    alignment = [_w(" one", 0.0, 0.4), _w(" two", 0.4, 0.8), _w(" three", 2.0, 2.5)]
    alignment[0].tokens, alignment[1].tokens, alignment[2].tokens = [1], [2], [3]
    segs = [SegmentWords(10.0, 10.8, [1, 2]), SegmentWords(12.0, 12.5, [3])]
    assign_words(alignment, segs, time_offset=10.0, last_speech_s=10.0)
    assert [w.text for w in segs[0].words] == [" one", " two"] and [w.text for w in segs[1].words] == [" three"]
    for seg in segs:
        starts = [w.start_s for w in seg.words]
        assert starts == sorted(starts) and seg.start <= seg.words[0].start_s and seg.words[-1].end_s <= seg.end
    assert segs[1].words[0].start_s == 12.0
