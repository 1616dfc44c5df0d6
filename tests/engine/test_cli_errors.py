"""Bad input on the command line: one line `parley: error: …` naming the option or file, a non-zero exit
code, no traceback, and no partial output file."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import subtitles
from engine.cli.transcribe import output_stems
from engine.errors import OutputError
from engine.logfile import detach_log_file
from cli_fixtures import assert_one_line_error, run_main
from needs import require_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def wav(tmp_path) -> Path:
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    return path


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    detach_log_file()  # main() opened the log file of this temporary home


NUMERIC = [
    # (subcommand and what it needs, option, values)
    (["transcribe", "{wav}"], "--beam-size", ["0", "-3", "33", "99999999999", "two"]),
    (["transcribe", "{wav}"], "--threads", ["0", "-1", "100000"]),
    (["live", "--input", "{wav}"], "--beam-size", ["0", "-3", "1000"]),
    (["live", "--input", "{wav}"], "--threads", ["0", "-2", "99999"]),
    (["live", "--input", "{wav}"], "--step", ["0", "-1", "1e9", "nan", "inf"]),
    (["live", "--input", "{wav}"], "--first-step", ["0", "-0.5", "1e9", "nan"]),
    (["live", "--input", "{wav}"], "--first-draft", ["0", "-0.1", "nan"]),
    (["live", "--input", "{wav}"], "--agree-gap", ["-1", "1e9", "nan"]),
    (["live", "--input", "{wav}"], "--hold", ["-1", "8", "nan"]),
    (["live", "--input", "{wav}"], "--duration", ["0", "-5", "1e300", "inf", "nan"]),
    (["live", "--input", "{wav}"], "--final-beam", ["0", "-1", "1000"]),
    (["live", "--input", "{wav}"], "--final-beam-below", ["0", "-0.1", "1.5", "nan", "most"]),
    (["live", "--input", "{wav}"], "--pause", ["0", "-1", "2", "1e9", "nan", "inf"]),
    (["translate", "hello", "--from", "en", "--to", "de"], "--beam", ["0", "-3", "1000"]),
    (["translate", "hello", "--from", "en", "--to", "de"], "--threads", ["0", "-1", "100000"]),
]


@pytest.mark.parametrize("command,option,value",
                         [(c, o, v) for c, o, values in NUMERIC for v in values],
                         ids=[f"{c[0]}{o}={v}" for c, o, values in NUMERIC for v in values])
def test_a_numeric_option_out_of_range_is_one_line_naming_it(command, option, value, wav, capsys):
    argv = [a.replace("{wav}", str(wav)) for a in command] + [f"{option}={value}"]
    code, _, err = run_main(argv, capsys)
    assert code == 2
    assert_one_line_error(code, err, f"argument {option}", value if value not in ("two", "most") else repr(value))


def test_a_draft_after_the_first_step_is_refused_naming_both(wav, capsys):
    code, _, err = run_main(["live", "--input", str(wav), "--first-step", "0.4", "--first-draft", "0.6"], capsys)
    assert_one_line_error(code, err, "--first-draft", "--first-step", "0.6", "0.4")


def test_output_into_a_missing_folder_fails_before_any_work_naming_it(wav, tmp_path, capsys):
    out = tmp_path / "missing" / "dir" / "out.srt"
    code, _, err = run_main(["transcribe", str(wav), "-o", str(out)], capsys)
    assert_one_line_error(code, err, "-o", str(out), "does not exist")
    assert not (tmp_path / "missing").exists()
    code, _, err = run_main(["live", "--input", str(wav), "-o", str(out)], capsys)
    assert_one_line_error(code, err, "-o", str(out))


def test_output_into_a_read_only_folder_is_refused(wav, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    # (a chmod would not stop root, who runs CI: the check asks os.access, so ask it to say no)
    monkeypatch.setattr("engine.cli.args.os.access", lambda path, mode: Path(path) != folder)
    code, _, err = run_main(["transcribe", str(wav), "-o", str(folder / "out.srt")], capsys)
    assert_one_line_error(code, err, str(folder), "not writable")
    assert list(folder.iterdir()) == []


def test_unknown_model_is_one_line_naming_it_and_the_known_ones(wav, capsys):
    code, _, err = run_main(["transcribe", str(wav), "--model", "no-such-model"], capsys)
    assert_one_line_error(code, err, "no-such-model", "whisper-base")


def test_an_unknown_subcommand_or_choice_is_one_line(wav, capsys):
    code, _, err = run_main(["transcibe", str(wav)], capsys)
    assert_one_line_error(code, err, "transcibe")
    code, _, err = run_main(["transcribe", str(wav), "--format", "doc"], capsys)
    assert_one_line_error(code, err, "--format", "doc")


def test_a_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "talk.srt"
    out.write_text("the subtitles of yesterday\n")

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(subtitles.os, "replace", disk_full)
    with pytest.raises(OutputError, match=r"talk\.srt: could not write it: No space left on device"):
        subtitles.write([], out, "srt")
    assert out.read_text() == "the subtitles of yesterday\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.srt"]


def test_a_write_into_a_folder_that_vanished_names_the_folder(tmp_path):
    with pytest.raises(OutputError, match="the folder .*gone does not exist"):
        subtitles.write([], tmp_path / "gone" / "talk.vtt")
    assert list(tmp_path.iterdir()) == []


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_the_log_file(home, monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("the list of packs is upside down")

    monkeypatch.setattr("engine.cli.models.run", broken)
    code, _, err = run_main(["models", "list"], capsys)
    log_file = home / "logs" / "parley.log"
    assert_one_line_error(code, err, "RuntimeError", "upside down", str(log_file))
    logged = log_file.read_text()
    assert "Traceback" in logged and "the list of packs is upside down" in logged


def test_help_names_the_log_file(home):
    proc = subprocess.run([sys.executable, "-m", "engine", "--help"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PARLEY_HOME": str(home)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert str(home / "logs" / "parley.log") in proc.stdout.splitlines()[-1]


@pytest.mark.model
def test_transcription_with_a_bad_language_or_a_failing_write_is_one_line_and_leaves_no_file(
        pack_int8, wav, tmp_path, monkeypatch, capsys):
    code, _, err = run_main(["transcribe", str(wav), "--model", str(pack_int8), "--language", "xx", "-q"], capsys)
    assert_one_line_error(code, err, "'xx'")

    out = tmp_path / "out.srt"

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(subtitles.os, "replace", disk_full)
    code, _, err = run_main(["transcribe", str(wav), "--model", str(pack_int8), "-o", str(out), "-q"], capsys)
    assert_one_line_error(code, err, str(out), "No space left on device")
    assert not out.exists() and not out.with_name("out.srt.part").exists()


def test_outputs_of_inputs_that_share_a_name_never_overwrite_each_other():
    files = [Path("a/talk.wav"), Path("talk.mp3"), Path("b/talk.wav"), Path("x.wav"), Path("x.wav")]
    stems = output_stems(files)
    assert stems == ["talk.wav", "talk.mp3", "talk.wav-2", "x.wav", "x.wav-2"]
    assert output_stems([Path("a.wav"), Path("b.mp3")]) == ["a", "b"]


@pytest.mark.model
def test_a_translation_that_fails_after_transcription_keeps_the_transcript(pack_int8, tmp_path, monkeypatch, capsys):
    from bench import clips
    from engine.errors import PackError

    def broken(*args, **kwargs):
        raise PackError("opus-mt-en-de/decoder_model.onnx: sha256 does not match; download the pack again")

    require_command("espeak-ng", "espeak-ng")
    monkeypatch.setattr("engine.file_translation.text_translator", lambda *a, **k: (lambda lines, s, t: lines))
    monkeypatch.setattr("engine.file_translation.translate_segments", broken)
    talk = clips.synthesize(clips.clips("en")[0], tmp_path / "cache")
    out = tmp_path / "talk.de.srt"
    code, _, err = run_main(["transcribe", str(talk), "--model", str(pack_int8), "--language", "en",
                          "--translate-to", "de", "-q", "-o", str(out)], capsys)
    assert_one_line_error(code, err, str(talk), "sha256 does not match", "written without a translation")
    said = " ".join(line for line in out.read_text().splitlines() if line and " --> " not in line
                    and not line.isdigit())
    assert clips.wer(clips.clips("en")[0].text, said) < 0.3  # the transcript, not lost
