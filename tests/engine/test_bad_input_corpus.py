"""A corpus of bad and odd audio through `parley transcribe`: every bad file is one line naming it, every
file that holds audio is transcribed (a truncated one as far as it goes), and one bad file among good ones
costs nothing but itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import cli
from engine.audio.decode import resample
from engine.logfile import detach_log_file
from needs import require_command
from tests.engine.test_audio import encode_with_ffmpeg

pytestmark = pytest.mark.model

FOX = "The quick brown fox jumps over the lazy dog."
# file -> what the one error line must say about it (None: it holds audio and is transcribed)
EXPECTED = {
    "empty.wav": "empty",
    "text.wav": "not an audio file",
    "random.mp3": "not an audio file",
    "zero.wav": "no audio",
    "folder.wav": "is a folder, not an audio file",
    "truncated.wav": None,
    "truncated.mp3": None,
    "short50ms.wav": None,
    "yes.wav": None,
    "stereo8k.wav": None,
    "float48k.wav": None,
    "noise.wav": None,
    "silence.wav": None,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    require_command("espeak-ng", "espeak-ng")
    d = tmp_path_factory.mktemp("bad-input")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(d / "fox.wav"), FOX], check=True)
    speech, rate = sf.read(d / "fox.wav", dtype="float32")
    rng = np.random.default_rng(0)
    (d / "empty.wav").write_bytes(b"")
    (d / "folder.wav").mkdir()
    (d / "text.wav").write_text("this is not audio\n" * 20)
    (d / "random.mp3").write_bytes(rng.bytes(20000))
    sf.write(d / "whole.wav", speech, rate, subtype="PCM_16")
    whole = (d / "whole.wav").read_bytes()
    (d / "truncated.wav").write_bytes(whole[: len(whole) * 2 // 3])  # the header still claims all of it
    encode_with_ffmpeg(np.stack([speech, speech], 1), rate, d / "whole.mp3", "mp3")
    whole = (d / "whole.mp3").read_bytes()
    (d / "truncated.mp3").write_bytes(whole[: len(whole) * 2 // 3])
    sf.write(d / "zero.wav", np.zeros(0, np.float32), 16000)
    sf.write(d / "short50ms.wav", speech[: int(0.05 * rate)], rate)
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(d / "yes.wav"), "Yes."], check=True)  # 0.38 s of sound
    s8 = resample(speech, rate, 8000)
    sf.write(d / "stereo8k.wav", np.stack([s8, s8], 1), 8000)
    sf.write(d / "float48k.wav", resample(speech, rate, 48000), 48000, subtype="FLOAT")
    sf.write(d / "noise.wav", (0.3 * rng.standard_normal(16000 * 5)).astype(np.float32), 16000)
    sf.write(d / "silence.wav", np.zeros(16000 * 5, np.float32), 16000)
    for name in ("fox.wav", "whole.wav", "whole.mp3"):
        (d / name).rename(d.parent / f"{d.name}-{name}")  # kept out of the corpus folder
    return d


def test_each_bad_file_is_one_line_naming_it_and_the_others_are_transcribed(corpus, pack_int8, tmp_path, capsys,
                                                                             monkeypatch, caplog):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    files = [str(corpus / name) for name in EXPECTED]
    try:
        code = cli.main(["transcribe", *files, "--model", str(pack_int8), "--language", "en", "-q",
                         "--format", "txt", "-o", str(out)])
    finally:
        detach_log_file()
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    bad = {name: said for name, said in EXPECTED.items() if said}
    assert len(lines) == len(bad), err
    for name, said in bad.items():
        (line,) = [line for line in lines if f"{corpus / name}:" in line]
        assert line.startswith("parley: error: ") and said in line, line
    # truncated.wav and truncated.mp3 share a stem: each keeps its whole name, neither overwrites the other
    transcribed = [n for n, said in EXPECTED.items() if said is None]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}.txt" if n.startswith("truncated") else f"{Path(n).stem}.txt" for n in transcribed)
    for name in ("truncated.wav", "truncated.mp3"):  # what could be decoded is kept, and the cut is said
        assert (out / f"{name}.txt").read_text().lower().startswith("the quick brown")
        assert any(str(corpus / name) in r.getMessage() and "it is truncated" in r.getMessage()
                   for r in caplog.records if r.levelname == "WARNING"), name
    assert "lazy dog" in (out / "float48k.txt").read_text().lower()
    # nothing invented: no words in silence, noise, or 50 ms of speech ("I'm sorry." before windows with less
    # than 0.1 s of sound were skipped) — and the shortest word is still heard
    for name in ("silence", "noise", "short50ms"):
        assert (out / f"{name}.txt").read_text().strip() == "", name
    assert (out / "yes.txt").read_text().strip().lower().startswith("yes")


def test_missing_files_are_all_named_before_any_work(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    try:
        code = cli.main(["transcribe", str(corpus / "missing.wav"), str(corpus / "silence.wav"),
                         str(corpus / "gone.mp3"), "--model", "no-such-model", "-q", "-o", str(out)])
    finally:
        detach_log_file()
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("parley: error: ")
    assert f"{corpus / 'missing.wav'}, {corpus / 'gone.mp3'}: no such files; nothing was transcribed" in err
    assert not out.exists()
