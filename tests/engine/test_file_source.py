"""FileSource: a file released at the clock's pace through the same bounded ring a capture fills."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine.audio.capture import AudioRing
from engine.audio.file_source import FileSource

SR = 16000


def ramp(seconds: float) -> np.ndarray:
    n = int(seconds * SR)
    return (np.arange(n, dtype=np.float32) + 1) / n  # position is readable from value


def read_all(source: FileSource, deadline_s: float = 10.0) -> np.ndarray:
    parts, end = [], time.monotonic() + deadline_s
    while not source.exhausted and time.monotonic() < end:
        parts.append(source.read(0.2))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def test_a_reader_that_keeps_up_gets_every_sample_in_order_and_nothing_is_dropped():
    audio = ramp(2.0)
    source = FileSource(audio=audio, realtime=True, speed=8.0)
    source.start()
    got = read_all(source)
    assert source.exhausted, "the file was not read to its end before the deadline"
    np.testing.assert_array_equal(got, audio)
    assert source.dropped_blocks == 0


def test_a_reader_that_falls_behind_loses_the_oldest_blocks_and_they_are_counted():
    audio = ramp(3.0)  # 60 blocks of 50 ms
    source = FileSource(audio=audio, realtime=True, speed=20.0, ring=AudioRing(capacity_blocks=10))
    source.start()
    time.sleep(3.0 / 20.0 + 0.2)  # the whole file is due; nobody has read
    got = source.read(0)
    assert source.dropped_blocks == 50 and source.ring.dropped_frames == 50 * 800
    np.testing.assert_array_equal(got, audio[-10 * 800:])  # the newest audio is what is left


def test_fast_forward_has_no_clock_to_fall_behind():
    audio = ramp(2.0)
    source = FileSource(audio=audio, realtime=False, block_s=0.5)
    source.start()
    time.sleep(0.1)
    got = read_all(source)
    np.testing.assert_array_equal(got, audio)
    assert source.dropped_blocks == 0


def test_stopping_keeps_what_the_clock_reached_and_nothing_after_it():
    audio = ramp(10.0)
    source = FileSource(audio=audio, realtime=True, speed=10.0)
    source.start()
    time.sleep(0.3)  # ~3 s of the file is due
    first = source.read(0)
    source.stop()
    rest = source.drain()
    got = np.concatenate([first, rest])
    assert 2.0 * SR <= got.size <= 6.0 * SR and not source.exhausted
    np.testing.assert_array_equal(got, audio[:got.size])
    assert source.read(0).size == 0 and source.dropped_blocks == 0


def test_options_are_checked():
    with pytest.raises(ValueError, match="ring_block_s"):
        FileSource(audio=ramp(1.0), ring_block_s=0)
