"""`--glossary FILE` on the command line: a bad file is one line naming it (and the line) before any model loads;
a good one makes whisper-base write a term it otherwise mishears — in a file job (beam 5) and in the live
recogniser (LiveOptions.glossary, greedy)."""

from __future__ import annotations

import pytest

from engine.logfile import detach_log_file
from cli_fixtures import run_main
from needs import require_command


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    detach_log_file()


@pytest.mark.parametrize("command", [["transcribe", "{wav}"], ["live", "--input", "{wav}"]])
@pytest.mark.parametrize("content, where", [
    ("Kubernetes\nZyrtec =\n", ":2: an empty 'sounds like'"),
    ("Okonkwo\n    The meeting is on Tuesday.\n", ":2: the example"),
    ("# nothing but a comment\n", ": the glossary has no terms"),
])
def test_a_bad_glossary_is_one_line_naming_the_file_and_line(command, content, where, tmp_path, capsys):
    wav = tmp_path / "talk.wav"
    wav.write_bytes(b"")  # never read: the glossary is refused first
    bad = tmp_path / "my words.txt"
    bad.write_text(content)
    argv = [a.format(wav=wav) for a in command] + ["--glossary", str(bad)]
    code, out, err = run_main(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("parley: error: argument --glossary: "), err
    assert f"{bad}{where}" in lines[0], err


def test_a_missing_glossary_is_named(tmp_path, capsys):
    code, _, err = run_main(["transcribe", str(tmp_path / "talk.wav"), "--glossary", str(tmp_path / "gone.txt")],
                            capsys)
    assert code == 2 and err.strip().endswith("gone.txt: no such glossary file (see `parley transcribe --help`)")


@pytest.mark.model
def test_a_glossary_term_is_written_that_is_misheard_without_it(pack_int8, tmp_path, capsys):
    from bench import clips

    require_command("espeak-ng", "espeak-ng")
    said = "Our Kubernetes cluster restarts every night at two."
    talk = clips.synthesize(clips.Clip("kubernetes", "en", said, said), tmp_path / "cache")
    words = tmp_path / "words.txt"
    words.write_text("Zyrtec = zeer tech\nKubernetes\nOkonkwo\n")
    common = ["transcribe", str(talk), "--model", str(pack_int8), "--language", "en", "-q"]
    code, without, _ = run_main(common, capsys)
    assert code == 0 and "cluster" in without and "Kubernetes" not in without, without  # "cuber needs"
    code, with_glossary, err = run_main([*common, "--glossary", str(words)], capsys)
    assert code == 0, err
    assert "Kubernetes" in with_glossary and clips.wer(said, with_glossary) < clips.wer(said, without), with_glossary


@pytest.mark.model
def test_the_live_recogniser_writes_the_term_with_the_glossary(pack_int8, tmp_path):
    from bench import clips
    from engine.audio.decode import load_audio
    from engine.glossary import parse_glossary
    from engine.live.options import LiveOptions
    from engine.live.recognise import WhisperRecognise
    from engine.whisper.model import WhisperModel

    require_command("espeak-ng", "espeak-ng")
    said = "We moved the billing service to Kubernetes last spring."
    audio = load_audio(clips.synthesize(clips.Clip("kubernetes-live", "en", said, said), tmp_path / "cache"))
    model = WhisperModel.load(pack_int8, device="cpu", threads=2)
    glossary = parse_glossary("Zyrtec = zeer tech\nKubernetes\nOkonkwo\n")

    def heard(options: LiveOptions) -> str:
        return " ".join(w.text.strip() for w in WhisperRecognise(model, options)(audio, "", "en").words)

    assert "Kubernetes" not in heard(LiveOptions())  # "Cubernite's"
    assert "Kubernetes" in heard(LiveOptions(glossary=glossary))
