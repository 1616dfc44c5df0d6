"""Damaged and foreign packs through the command line: a truncated graph, a file whose sha256 differs from the
pack's parley.json, a hub pack (no parley.json) with a truncated graph, and a folder of another format in the
packs folder. Each is one line `parley: error: …` naming the pack and the file, exit ≠ 0, no traceback, and
the other packs keep working. Tiny random packs (tests/whisper_fixtures.py, tests/translate_fixtures.py),
installed into a temporary PARLEY_HOME."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from cli_fixtures import assert_one_line_error, run_main  # noqa: E402
from needs import require_module  # noqa: E402
from whisper_fixtures import tiny_whisper_pack  # noqa: E402

from engine.logfile import detach_log_file  # noqa: E402


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory) -> Path:
    require_module("transformers")
    from translate_fixtures import built

    return built(tmp_path_factory, "marian")[1]


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> Path:
    return tiny_whisper_pack(tmp_path_factory)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "packs" / "translation").mkdir(parents=True)
    yield tmp_path / "home"
    detach_log_file()  # main() opened the log file of this temporary home


@pytest.fixture
def wav(tmp_path) -> Path:
    path = tmp_path / "talk.wav"
    t = np.arange(16000) / 16000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000)
    return path


def truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def flip_a_byte(file: Path) -> None:
    """Same size, one byte changed in the middle (inside the weights): only the sha256 can tell."""
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def install_whisper(home: Path, pack: Path, name: str, hub_layout: bool = False) -> Path:
    dest = home / "packs" / name
    shutil.copytree(pack, dest)
    if hub_layout:  # as a hub download leaves it: no parley.json, so no listed sizes or sha256
        (dest / "parley.json").unlink()
    return dest


def install_marian(home: Path, pack: Path, name: str, source: str, target: str) -> Path:
    """The tiny Marian pack under another name and pair (the registry reads the pair from parley.json)."""
    dest = home / "packs" / "translation" / name
    shutil.copytree(pack, dest)
    meta = json.loads((dest / "parley.json").read_text())
    meta.update(name=name, languages={"source": [source], "target": [target]})
    (dest / "parley.json").write_text(json.dumps(meta))
    return dest


def transcribe(wav: Path, model: str, out: Path, capsys) -> tuple[int, str, str]:
    return run_main(["transcribe", str(wav), "--model", model, "--language", "en", "--beam-size", "1",
                     "-o", str(out)], capsys)


def test_a_damaged_whisper_pack_is_one_line_naming_it_and_its_file_and_the_others_transcribe(
        home, tiny_whisper, tmp_path, wav, capsys):
    install_whisper(home, tiny_whisper, "good-whisper")
    truncated = install_whisper(home, tiny_whisper, "truncated-whisper")
    truncate(truncated / "encoder_model.onnx")
    altered = install_whisper(home, tiny_whisper, "altered-whisper")
    flip_a_byte(altered / "decoder_model_merged.onnx")
    out = tmp_path / "out"
    out.mkdir()
    for pack, file, words in ((truncated, "encoder_model.onnx", "bytes where the pack lists"),
                              (altered, "decoder_model_merged.onnx", "sha256")):
        code, _, err = transcribe(wav, pack.name, out, capsys)
        line = assert_one_line_error(code, err, str(pack / file), words, f"--name {pack.name} --force")
        assert "corrupt" in line
        assert list(out.iterdir()) == []  # no transcript from a damaged model
    code, _, err = transcribe(wav, "good-whisper", out, capsys)
    assert code == 0, err
    assert (out / "talk.txt").is_file()


def test_a_truncated_graph_in_a_hub_pack_without_sizes_is_named_by_onnxruntime(
        home, tiny_whisper, tmp_path, wav, capsys):
    broken = install_whisper(home, tiny_whisper, "hub-whisper", hub_layout=True)
    truncate(broken / "decoder_model_merged.onnx")
    code, _, err = transcribe(wav, "hub-whisper", tmp_path, capsys)
    assert_one_line_error(code, err, str(broken / "decoder_model_merged.onnx"), "cannot load", "corrupt")


def test_a_foreign_folder_in_the_packs_folder_says_what_it_holds_and_how_to_convert_it(home, tmp_path, wav, capsys):
    foreign = home / "packs" / "faster-whisper-small"
    foreign.mkdir(parents=True)
    (foreign / "model.bin").write_bytes(b"\0" * 100)
    (foreign / "config.json").write_text("{}")
    code, _, err = transcribe(wav, "faster-whisper-small", tmp_path, capsys)
    assert_one_line_error(code, err, str(foreign), "CTranslate2", "parley models import")


def test_models_list_marks_each_damaged_pack_with_its_file_and_lists_foreign_folders(home, tiny_whisper, capsys):
    install_whisper(home, tiny_whisper, "good-whisper")
    truncated = install_whisper(home, tiny_whisper, "truncated-whisper")
    truncate(truncated / "encoder_model.onnx")
    altered = install_whisper(home, tiny_whisper, "altered-whisper")
    flip_a_byte(altered / "decoder_model_merged.onnx")
    (home / "packs" / "whisper.cpp-base").mkdir()
    (home / "packs" / "whisper.cpp-base" / "ggml-base.bin").write_bytes(b"ggml")
    code, out, err = run_main(["models", "list"], capsys)
    assert_one_line_error(code, err, "2 damaged packs", f"truncated-whisper: {truncated / 'encoder_model.onnx'}",
                          f"altered-whisper: {altered / 'decoder_model_merged.onnx'}: sha256")
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "DAMAGED" not in rows["good-whisper"] and "fp32" in rows["good-whisper"]
    assert "DAMAGED: " in rows["truncated-whisper"] and "encoder_model.onnx" in rows["truncated-whisper"]
    assert "DAMAGED: " in rows["altered-whisper"] and "decoder_model_merged.onnx" in rows["altered-whisper"]
    assert any("whisper.cpp-base" in line and "whisper.cpp model" in line for line in out.splitlines())
    for pack in (truncated, altered):  # listing changed nothing
        shutil.rmtree(pack)
    code, out, err = run_main(["models", "list"], capsys)
    assert code == 0 and err == "" and "good-whisper" in out


@pytest.fixture
def text_packs(home, tiny_marian) -> dict[str, Path]:
    """en→de and en→it good; en→fr with a truncated encoder; en→es with an altered decoder (same size);
    a BERT model and an empty folder in the translation folder."""
    root = home / "packs" / "translation"
    packs = {pair: install_marian(home, tiny_marian, f"opus-mt-{pair}", *pair.split("-"))
             for pair in ("en-de", "en-it", "en-fr", "en-es")}
    truncate(packs["en-fr"] / "encoder_model.onnx")
    flip_a_byte(packs["en-es"] / "decoder_model.onnx")
    (root / "bert-base").mkdir()
    (root / "bert-base" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (root / "notes").mkdir()
    return packs


def translate(capsys, source: str, target: str) -> tuple[int, str, str]:
    return run_main(["translate", "The cat sat on the mat.", "--from", source, "--to", target, "--beam", "1"],
                    capsys)


def test_a_truncated_translation_pack_is_named_for_its_pair_and_for_a_pivot_through_it(text_packs, capsys):
    encoder = text_packs["en-fr"] / "encoder_model.onnx"
    code, out, err = translate(capsys, "en", "fr")
    assert_one_line_error(code, err, "opus-mt-en-fr", str(encoder), "corrupt or incomplete")
    assert out == ""
    code, out, err = translate(capsys, "de", "fr")  # de → en → fr would need it too
    assert_one_line_error(code, err, "de → fr", "opus-mt-en-fr", str(encoder))


def test_a_translation_pack_with_a_wrong_sha256_is_named_and_translates_nothing(text_packs, capsys):
    code, out, err = translate(capsys, "en", "es")
    assert_one_line_error(code, err, str(text_packs["en-es"] / "decoder_model.onnx"), "sha256", "corrupt")
    assert out == ""


@pytest.mark.parametrize("target", ["de", "it"])
def test_the_other_translation_packs_keep_working(text_packs, capsys, target):
    code, out, err = translate(capsys, "en", target)
    assert code == 0 and err == "", err
    assert len(out.splitlines()) == 1 and out.strip()


def test_translate_list_shows_the_usable_pairs_and_why_each_other_folder_cannot_be_used(text_packs, capsys):
    code, out, err = run_main(["translate", "--list"], capsys)
    assert code == 0 and err == "", err
    usable = {line.split()[0] for line in out.splitlines() if "cannot be used" not in line}
    assert usable == {"opus-mt-en-de", "opus-mt-en-it", "opus-mt-en-es"}  # en-es: its sha256 is checked on use
    why = {line.split(":")[0]: line for line in out.splitlines() if "cannot be used" in line}
    assert set(why) == {"opus-mt-en-fr", "bert-base", "notes"}
    assert "encoder_model.onnx" in why["opus-mt-en-fr"]
    assert "'bert' is not a text-translation model" in why["bert-base"]
    assert "not a translation pack" in why["notes"]
