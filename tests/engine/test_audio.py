"""engine.audio.decode: every common file type to 16 kHz mono float32, streaming resampler, clear errors."""

from __future__ import annotations

import tracemalloc

import av
import numpy as np
import pytest
import soundfile as sf

from engine.audio.decode import SAMPLE_RATE, AudioInfo, Resampler, iter_audio, load_audio, probe, resample, to_mono_float32
from engine.errors import AudioFileError, ParleyError


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spectrum) * rate / x.size)


def encode_with_ffmpeg(x: np.ndarray, rate: int, path, codec: str) -> None:
    """x: [frames, channels] float32 -> path, through PyAV's encoder (no ffmpeg binary needed)."""
    layout = "stereo" if x.shape[1] == 2 else "mono"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        cc = stream.codec_context
        resampler = av.AudioResampler(format=cc.format.name, layout=layout, rate=rate, frame_size=cc.frame_size or None)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp", layout=layout)
        frame.rate = rate
        for f in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(f):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def stereo_tone(seconds: float, rate: int) -> np.ndarray:
    """440 Hz at 0.6 on the left, 0.2 on the right: the mono mix is 0.4."""
    t = tone(440, seconds, rate, 1.0)
    return np.stack([0.6 * t, 0.2 * t], axis=1)


@pytest.mark.parametrize(
    "name,rate,subtype",
    [("a.wav", 44100, "PCM_16"), ("b.wav", 8000, "DOUBLE"), ("c.wav", 48000, "PCM_24"), ("d.flac", 48000, "PCM_16"),
     ("e.ogg", 22050, "VORBIS"), ("f.wav", 16000, "FLOAT")],
)
def test_soundfile_formats_become_16k_mono_float32(tmp_path, name, rate, subtype):
    path = tmp_path / name
    sf.write(str(path), stereo_tone(2.0, rate), rate, subtype=subtype)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.size == pytest.approx(2.0 * SAMPLE_RATE, abs=2)
    assert peak_hz(x) == pytest.approx(440, abs=2)
    middle = x[2000:-2000]
    assert np.abs(middle).max() == pytest.approx(0.4, abs=0.02)  # channels averaged, int scaled to [-1, 1]
    info = probe(path)
    assert info == AudioInfo(path, pytest.approx(2.0, abs=1e-3), rate, 2, subtype)


@pytest.mark.parametrize("ext,codec,rate", [("mp3", "mp3", 44100), ("m4a", "aac", 44100), ("webm", "libopus", 48000),
                                            ("mp4", "aac", 22050)])
def test_compressed_formats_decode_through_pyav(tmp_path, ext, codec, rate):
    path = tmp_path / f"talk.{ext}"
    encode_with_ffmpeg(stereo_tone(3.0, rate), rate, path, codec)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert x.size / SAMPLE_RATE == pytest.approx(3.0, abs=0.2)  # encoders add or trim a frame or two
    assert peak_hz(x) == pytest.approx(440, abs=2)
    assert np.sqrt(np.mean(x[4000:-4000] ** 2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.1)
    info = probe(path)
    assert (info.sample_rate, info.channels) == (rate, 2) and info.duration_s == pytest.approx(3.0, abs=0.2)


def test_espeak_speech_keeps_its_duration(tmp_path, clip_dir):
    from bench.clips import clips, synthesize

    path = synthesize(clips("en")[0], clip_dir)
    x = load_audio(path)
    assert x.size / SAMPLE_RATE == pytest.approx(sf.info(str(path)).duration, abs=1e-3)
    assert np.sqrt(np.mean(x**2)) > 0.01


def test_iter_audio_chunks_add_up_to_the_whole(tmp_path):
    path = tmp_path / "long.wav"
    rng = np.random.default_rng(1)
    sf.write(str(path), (0.1 * rng.standard_normal((75 * 44100, 2))).astype(np.float32), 44100, subtype="PCM_16")
    chunks = list(iter_audio(path, chunk_s=30.0))
    assert [c.size for c in chunks] == [480000, 480000, 240000]
    np.testing.assert_array_equal(np.concatenate(chunks), load_audio(path))


def test_a_long_file_is_never_held_whole(tmp_path):
    path = tmp_path / "ten_minutes.wav"
    seconds, rate = 600, 48000
    with sf.SoundFile(str(path), "w", rate, 1, "PCM_16") as f:
        block = tone(300, 60, rate, 0.3)
        for _ in range(seconds // 60):
            f.write(block)
    whole_mb = seconds * SAMPLE_RATE * 4 / 1e6  # 38 MB as 16 kHz float32
    tracemalloc.start()
    try:
        n = 0
        for chunk in iter_audio(path, chunk_s=30.0):
            n += chunk.size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == seconds * SAMPLE_RATE
    assert peak / 1e6 < whole_mb / 3, f"peak {peak / 1e6:.1f} MB decoding a file that is {whole_mb:.0f} MB whole"


# ---------------------------------------------------------------------------------------------
# Errors: each names the file and says what was seen


def test_missing_file(tmp_path):
    with pytest.raises(AudioFileError, match=r"nothere\.wav: no such file"):
        load_audio(tmp_path / "nothere.wav")


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp3").write_bytes(b"")
    with pytest.raises(AudioFileError, match=r"empty\.mp3: the file is empty \(0 bytes\)"):
        load_audio(tmp_path / "empty.mp3")


def test_text_renamed_wav(tmp_path):
    (tmp_path / "talk.wav").write_text("These are my meeting notes, not a recording.\n" * 20)
    with pytest.raises(AudioFileError, match=r"talk\.wav: not an audio file \(looks like text\)") as e:
        load_audio(tmp_path / "talk.wav")
    assert e.value.__cause__ is not None  # the decoder's own error is chained
    with pytest.raises(AudioFileError, match="looks like text"):
        probe(tmp_path / "talk.wav")


def test_random_bytes(tmp_path):
    (tmp_path / "blob.m4a").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioFileError, match=r"blob\.m4a: not an audio file"):
        load_audio(tmp_path / "blob.m4a")


def test_zero_second_wav_says_it_contains_no_audio(tmp_path):
    sf.write(str(tmp_path / "silent.wav"), np.zeros(0, dtype=np.float32), 16000)
    assert probe(tmp_path / "silent.wav").duration_s == 0.0
    with pytest.raises(AudioFileError, match=r"silent\.wav: contains no audio"):
        load_audio(tmp_path / "silent.wav")
    with pytest.raises(AudioFileError, match="contains no audio"):
        list(iter_audio(tmp_path / "silent.wav"))


def truncation_said(caplog, path) -> str:
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and str(path) in r.getMessage()]
    return said


def test_truncated_wav_gives_what_is_there_and_says_it_is_truncated(tmp_path, caplog):
    path = tmp_path / "cut.wav"
    sf.write(str(path), tone(440, 4.0, 22050), 22050, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + (len(data) - 44) // 2])
    x = load_audio(path)
    assert x.size / SAMPLE_RATE == pytest.approx(2.0, abs=0.01)
    assert "ends after 2.0 s of the 4.0 s its header declares: it is truncated" in truncation_said(caplog, path)


def test_truncated_mp3_gives_what_is_there_and_says_it_is_truncated(tmp_path, caplog):
    path = tmp_path / "cut.mp3"
    encode_with_ffmpeg(stereo_tone(4.0, 44100), 44100, path, "mp3")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    x = load_audio(path)
    assert x.size / SAMPLE_RATE == pytest.approx(2.0, abs=0.2)
    assert peak_hz(x) == pytest.approx(440, abs=2)
    assert "its header declares: it is truncated" in truncation_said(caplog, path)


def test_a_truncated_flac_keeps_what_lies_before_the_cut(tmp_path, caplog):
    """libsndfile fails the whole 1 s block that holds the cut ("flac decoder lost sync"): it is read again in
    small pieces, so 2.56 s of the 2.67 s left come out instead of 2.0 s."""
    path = tmp_path / "cut.flac"
    sf.write(str(path), tone(440, 4.0, 22050), 22050, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    x = load_audio(path)
    assert x.size / SAMPLE_RATE > 2.4
    assert peak_hz(x) == pytest.approx(440, abs=2)
    assert "the file is truncated or corrupt" in truncation_said(caplog, path)


@pytest.mark.parametrize("suffix,subtype,codec", [(".wav", "PCM_16", None), (".flac", "PCM_16", None),
                                                  (".mp3", None, "mp3"), (".wav", "FLOAT", None)])
def test_a_whole_file_is_not_said_to_be_truncated(tmp_path, caplog, suffix, subtype, codec):
    path = tmp_path / f"whole{suffix}"
    if codec:
        encode_with_ffmpeg(stereo_tone(3.0, 44100), 44100, path, codec)
    else:
        sf.write(str(path), tone(440, 3.0, 44100), 44100, subtype=subtype)
    load_audio(path)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


def test_wav_header_only(tmp_path):
    path = tmp_path / "header.wav"
    sf.write(str(path), tone(440, 1.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioFileError, match=r"header\.wav: .*(truncated or corrupt|no audio)"):
        load_audio(path)


def test_errors_are_parley_errors(tmp_path):
    with pytest.raises(ParleyError):
        load_audio(tmp_path)  # a folder


# ---------------------------------------------------------------------------------------------
# Resampling


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000, 16000])
def test_resample_keeps_tones_and_length(rate):
    x = tone(440, 2.0, rate) + tone(3000, 2.0, rate, 0.25)
    y = resample(x, rate, SAMPLE_RATE)
    assert y.dtype == np.float32 and y.size == -(-x.size * SAMPLE_RATE // rate)
    expected = tone(440, 2.0, SAMPLE_RATE) + tone(3000, 2.0, SAMPLE_RATE, 0.25)
    np.testing.assert_allclose(y[400:-400], expected[400 : y.size - 400], atol=1e-3)


def test_resample_removes_what_16k_cannot_hold():
    y = resample(tone(9000, 1.0, 48000), 48000, SAMPLE_RATE)
    assert np.sqrt(np.mean(y[500:-500] ** 2)) < 0.005  # a 9 kHz tone would alias to 7 kHz


@pytest.mark.parametrize("rate", [44100, 48000, 8000])
def test_streaming_resampler_equals_one_shot(rate):
    rng = np.random.default_rng(rate)
    x = (0.3 * rng.standard_normal(rate * 3)).astype(np.float32)
    r = Resampler(rate, SAMPLE_RATE)
    out, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 3000))  # capture callbacks deliver odd sizes, even one sample
        out.append(r.process(x[i : i + n]))
        i += n
    out.append(r.flush())
    np.testing.assert_allclose(np.concatenate(out), resample(x, rate, SAMPLE_RATE), atol=1e-6)


def test_resampler_latency_is_bounded():
    r = Resampler(48000, SAMPLE_RATE)
    got = sum(r.process(np.zeros(480, dtype=np.float32)).size for _ in range(100))  # 1 s in 10 ms blocks
    assert SAMPLE_RATE - got < 0.005 * SAMPLE_RATE  # holds back under 5 ms of output


def test_to_mono_float32():
    np.testing.assert_allclose(to_mono_float32(np.array([32767, -32768, 0], dtype=np.int16)), [1.0, -1.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(to_mono_float32(np.array([255, 0, 128], dtype=np.uint8)), [1.0, -1.0, 0.0], atol=1e-2)
    stereo = np.array([[0.5, -0.5], [1.0, 0.0]], dtype=np.float64)
    out = to_mono_float32(stereo)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.5])
