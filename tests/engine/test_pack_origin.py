"""A pack imported or downloaded without parley.json (a Hugging Face Optimum export) gets its files' sizes and
sha256 recorded at install, so a file damaged later is named on load as in Parley's own packs — instead of
onnxruntime's protobuf error, or a same-size altered file that would run and transcribe nonsense."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from hub_fixtures import hub  # noqa: E402,F401 - the fixture
from needs import require_module  # noqa: E402
from whisper_fixtures import publish_optimum, tiny_whisper_pack  # noqa: E402

from engine import cli  # noqa: E402
from engine.logfile import detach_log_file  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    detach_log_file()


@pytest.fixture
def hub_pack(home, tmp_path_factory, tmp_path, capsys) -> Path:
    """The tiny Whisper pack as a hub repository holds it, installed with `parley models import`."""
    repo = publish_optimum(tiny_whisper_pack(tmp_path_factory), tmp_path / "whisper-tiny-hub", variants=())
    assert cli.main(["models", "import", str(repo)]) == 0
    capsys.readouterr()
    return home / "packs" / "whisper-tiny-hub"


def publish_translation(pack: Path, repo: Path) -> None:
    """As Xenova/opus-mt-* repositories hold a pack: the json files at the top, the graphs in onnx/."""
    (repo / "onnx").mkdir(parents=True)
    for f in pack.iterdir():
        if f.suffix == ".onnx":
            (repo / "onnx" / f.name).write_bytes(f.read_bytes())
        elif f.name in ("config.json", "generation_config.json", "tokenizer.json"):
            (repo / f.name).write_bytes(f.read_bytes())


def one_error(argv: list[str], capsys) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("parley: error: ") and "Traceback" not in err, err
    return lines[0]


def test_the_import_records_each_file_and_the_pack_still_transcribes(hub_pack, tmp_path, capsys):
    origin = json.loads((hub_pack / ".parley-origin.json").read_text())
    assert {"onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx", "tokenizer.json"} <= set(origin["files"])
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in origin["files"].values())
    wav = tmp_path / "talk.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    assert cli.main(["transcribe", str(wav), "--model", "whisper-tiny-hub", "--language", "en", "-q",
                     "-o", str(tmp_path)]) == 0, capsys.readouterr().err
    assert cli.main(["models", "list"]) == 0 and "DAMAGED" not in capsys.readouterr().out


@pytest.mark.parametrize("damage,words", [("truncate", "bytes where the pack lists"), ("alter", "sha256")])
def test_a_file_damaged_after_the_import_is_named_on_load_and_by_models_list(hub_pack, tmp_path, capsys,
                                                                             damage, words):
    graph = hub_pack / "onnx" / "encoder_model.onnx"
    data = bytearray(graph.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    wav = tmp_path / "talk.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    line = one_error(["transcribe", str(wav), "--model", "whisper-tiny-hub", "--language", "en",
                      "-o", str(tmp_path)], capsys)
    assert str(graph) in line and words in line and "--name whisper-tiny-hub --force" in line, line
    line = one_error(["models", "list"], capsys)
    assert f"whisper-tiny-hub: {graph}" in line and words in line, line


def test_a_downloaded_translation_pack_altered_after_install_is_named_instead_of_translating(home, tmp_path_factory,
                                                                                          hub, capsys):
    """`parley translate --download` of an Optimum repo (no parley.json): translates; then one byte of a graph
    changes (same size) and the next translation names the file and its sha256."""
    require_module("transformers")
    from translate_fixtures import built

    root, url = hub
    publish_translation(built(tmp_path_factory, "marian")[1], root / "Xenova" / "opus-mt-en-de")
    assert cli.main(["translate", "--download", "Xenova/opus-mt-en-de", "--hub-url", url]) == 0
    pack = home / "packs" / "translation" / "opus-mt-en-de"
    capsys.readouterr()
    argv = ["translate", "The cat sat on the mat.", "--from", "en", "--to", "de", "--beam", "1"]
    assert cli.main(argv) == 0 and capsys.readouterr().out.strip()
    graph = pack / "onnx" / "decoder_model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    line = one_error(argv, capsys)
    assert str(graph) in line and "sha256" in line and "corrupt" in line, line
