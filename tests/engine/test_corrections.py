"""Corrected lines become training clips: the right audio, the corrected text, the fine-tune's layout;
a line that cannot be saved is named and skipped, never silently, and never takes the others with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import clips
from engine import corrections as corr
from engine.audio.decode import SAMPLE_RATE, load_audio

PAUSE_S = 1.0


@pytest.fixture(scope="module")
def talk(tmp_path_factory, clip_dir):
    """Three espeak-ng sentences with pauses between them, as FLAC (not only wav is read), and where each is."""
    parts, spans, t = [], [], 0.0
    for clip in clips.clips("en")[:3]:
        audio = load_audio(clips.synthesize(clip, clip_dir))
        spans.append((t, t + audio.size / SAMPLE_RATE, clip.text))
        parts += [audio, clips.silence(PAUSE_S)]
        t += audio.size / SAMPLE_RATE + PAUSE_S
    whole = np.concatenate(parts)
    path = tmp_path_factory.mktemp("talk") / "talk.flac"
    sf.write(path, whole, SAMPLE_RATE)
    return path, load_audio(path), spans


def test_each_corrected_line_is_saved_with_its_own_audio_and_text(talk, tmp_path):
    path, audio, spans = talk
    items = [corr.Correction(path, a, b, text.upper(), heard="whatever was heard") for a, b, text in spans[1:]]
    report = corr.save_corrections(items, tmp_path / "data")
    assert report.skipped == [] and report.saved_indices == [0, 1]
    for wav, (a, b, text) in zip(report.saved, spans[1:]):
        got, rate = sf.read(wav, dtype="float32")
        lo, hi = int((a - corr.PAD_S) * SAMPLE_RATE), int((b + corr.PAD_S) * SAMPLE_RATE)
        assert rate == SAMPLE_RATE and got.size == hi - lo
        assert np.max(np.abs(got - audio[lo:hi])) <= 1.5 / 32768  # the same samples, 16-bit
        assert wav.with_suffix(".txt").read_text(encoding="utf-8") == text.upper() + "\n"
    assert corr.collected_clips(tmp_path / "data") == 2
    assert "Saved 2 corrected lines" in report.summary()


def test_a_line_at_the_very_start_is_padded_only_after(talk, tmp_path):
    path, audio, spans = talk
    a, b, text = spans[0]
    report = corr.save_corrections([corr.Correction(path, a, b, text)], tmp_path)
    got, _ = sf.read(report.saved[0], dtype="float32")
    assert got.size == int((b + corr.PAD_S) * SAMPLE_RATE)


def test_lines_that_cannot_be_saved_are_named_and_the_rest_still_saved(talk, tmp_path):
    path, audio, spans = talk
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is a text file renamed to .wav\n")
    end = audio.size / SAMPLE_RATE
    items = [
        corr.Correction(path, *spans[0][:2], "   "),  # empty text
        corr.Correction(path, 0.0, 45.0, "far too long for one window"),
        corr.Correction(path, end + 5, end + 7, "after the end of the audio"),
        corr.Correction(bogus, 0.0, 2.0, "unreadable audio"),
        corr.Correction(tmp_path / "gone.wav", 0.0, 2.0, "missing audio"),
        corr.Correction(path, *spans[2][:2], spans[2][2]),  # fine
    ]
    report = corr.save_corrections(items, tmp_path / "data")
    assert report.saved_indices == [5] and len(report.skipped) == 5
    text = "\n".join(report.skipped)
    assert "empty text" in text and "45.0 s long" in text and "ends before it" in text
    assert "notes.wav" in text and "gone.wav" in text
    assert corr.collected_clips(tmp_path / "data") == 1


def test_live_recordings_keep_only_the_newest(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path))
    made = []
    for _ in range(5):
        p = corr.new_recording_path(keep=3)
        p.write_bytes(b"x")
        made.append(p)
    left = sorted(corr.recordings_root().glob("live-*.wav"))
    assert left == made[-3:]


def test_the_fine_tune_command_starts_from_the_pack_and_keeps_its_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    pack = tmp_path / "whisper-base-fp32"
    pack.mkdir()
    (pack / "encoder_model.onnx").write_bytes(b"")
    (pack / "parley.json").write_text('{"precision": "fp32", "name": "whisper-base"}')
    out = corr.tuned_pack_path(pack)
    assert out.parent == tmp_path / "home" / "packs" and out.name.startswith("whisper-base-tuned-")
    assert out.name.endswith("-fp32")
    cmd = corr.learn_command(pack, out, corrections=tmp_path / "data", alpha=0.8, epochs=2, python="py")
    assert cmd[:4] == ["py", "-m", "export", "learn"]
    args = dict(zip(cmd[4::2], cmd[5::2]))
    assert args["--base"] == str(pack) and args["--corrections"] == str(tmp_path / "data") and args["--out"] == str(out)
    assert args["--alpha"] == "0.8" and args["--epochs"] == "2" and args["--precision"] == "fp32"
    assert "--glossary" not in args and "--anchors" not in args  # no kept lines saved yet
    words = corr.learn_command(pack, out, glossary=tmp_path / "glossary.txt", python="py")
    assert words[words.index("--glossary") + 1] == str(tmp_path / "glossary.txt") and "--corrections" not in words
    assert words[words.index("--alpha") + 1] == "0.75"  # the measured recipe: Fisher-weighted, alpha 0.75
    with pytest.raises(FileNotFoundError, match="not a model pack"):
        corr.learn_command(tmp_path / "nothing", out, corrections=tmp_path / "data")
    with pytest.raises(ValueError, match="nothing to learn"):
        corr.learn_command(pack, out)


def test_a_failed_fine_tune_leaves_nothing_behind_and_a_good_one_drops_its_checkpoint(tmp_path):
    out = tmp_path / "tuned-int8"
    work = tmp_path / "tuned-int8.train"
    for ok in (True, False):
        out.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        (work / "checkpoint.pt").write_bytes(b"x")
        (work / "trained.pt").write_bytes(b"x")
        corr.finish_improvement(out, ok)
        if ok:
            assert out.is_dir() and (work / "trained.pt").exists() and not (work / "checkpoint.pt").exists()
        else:
            assert not out.exists() and not work.exists()


def test_the_lines_it_got_right_go_with_the_fine_tune(tmp_path, talk):
    pack = tmp_path / "whisper-base-int8"
    pack.mkdir()
    (pack / "encoder_model.onnx").write_bytes(b"")
    anchors = tmp_path / "anchors"
    path, _, spans = talk
    corr.save_corrections([corr.Correction(path, a, b, t) for a, b, t in spans], anchors)
    cmd = corr.learn_command(pack, tmp_path / "out", corrections=tmp_path / "data", anchors=anchors)
    assert cmd[cmd.index("--anchors") + 1] == str(anchors)


def test_anchors_are_spread_over_the_transcript_and_a_corrected_line_leaves_them(talk, tmp_path):
    lines = [corr.Correction(Path("a.wav"), i, i + 1.0, f"line {i}") for i in range(100)]
    picked = corr.pick_anchors(lines, 20)
    assert len(picked) == 20 and picked[0].start_s == 0 and picked[-1].start_s == 95
    assert corr.pick_anchors(lines[:5], 20) == lines[:5]
    path, _, spans = talk
    a, b, text = spans[1]
    corr.save_corrections([corr.Correction(path, a, b, text)], tmp_path / "anchors")  # as heard
    corr.save_corrections([corr.Correction(path, a, b, "Corrected " + text)], tmp_path / "data",
                          drop_from=tmp_path / "anchors")  # then corrected
    assert corr.collected_clips(tmp_path / "anchors") == 0 and corr.collected_clips(tmp_path / "data") == 1
    corr.save_corrections([corr.Correction(path, a, b, "Corrected again")], tmp_path / "data")
    assert [p.read_text() for p in (tmp_path / "data").glob("*.txt")] == ["Corrected again\n"]


def test_lines_of_two_files_with_the_same_name_do_not_overwrite_each_other(talk, tmp_path):
    path, audio, spans = talk
    other = tmp_path / "elsewhere" / path.name
    other.parent.mkdir()
    other.write_bytes(path.read_bytes())
    a, b, text = spans[0]
    report = corr.save_corrections([corr.Correction(path, a, b, text), corr.Correction(other, a, b, "Other " + text)],
                                   tmp_path / "data")
    assert len(report.saved) == 2 and corr.collected_clips(tmp_path / "data") == 2
