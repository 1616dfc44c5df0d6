"""Downloading a translation pack from a local server laid out and answering as the Hugging Face hub
does (file listing API with LFS sha256 and sizes, ``resolve/<revision>/<path>`` URLs). No network."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from needs import require_module  # noqa: E402

require_module("transformers")

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from hub_fixtures import _Hub, hub  # noqa: E402,F401 - the fixture
from translate_fixtures import SENTENCES, built  # noqa: E402

from engine.errors import PackError  # noqa: E402
from engine.translate import Translator, download_pack  # noqa: E402

OPTIONS = dict(beam_size=2)


def _publish_optimum(pack: Path, repo: Path) -> None:
    """As Xenova/opus-mt-* repos are laid out: json files at the top, graphs (and an int8 variant) in onnx/."""
    (repo / "onnx").mkdir(parents=True)
    for f in pack.iterdir():
        if f.suffix == ".onnx":
            shutil.copy(f, repo / "onnx" / f.name)
            shutil.copy(f, repo / "onnx" / f.name.replace(".onnx", "_quantized.onnx"))
        elif f.name in ("config.json", "generation_config.json", "tokenizer.json"):
            shutil.copy(f, repo / f.name)
    shutil.copy(pack / "decoder_model.onnx", repo / "onnx" / "decoder_model_merged.onnx")  # skipped: the pair is there
    (repo / "README.md").write_text("a model card the download skips")


def test_download_of_an_optimum_repo_loads_and_translates(tmp_path_factory, tmp_path, hub):
    root, url = hub
    pack = built(tmp_path_factory, "marian")[1]
    _publish_optimum(pack, root / "Xenova" / "opus-mt-en-de")
    seen: dict[str, tuple[int, int | None]] = {}
    dest = download_pack("Xenova/opus-mt-en-de", tmp_path / "opus-mt-en-de", base_url=url,
                         progress=lambda name, done, total: seen.__setitem__(name, (done, total)))
    assert not (dest / "README.md").exists() and not list(dest.rglob("*.part"))
    assert not (dest / "onnx" / "decoder_model_merged.onnx").exists()
    assert (dest / "onnx" / "encoder_model.onnx").read_bytes() == (pack / "encoder_model.onnx").read_bytes()
    assert all(done == total for done, total in seen.values() if total) and "onnx/encoder_model.onnx" in seen
    expected = Translator.load(pack, "cpu", 1).translate(SENTENCES, "en", "de", **OPTIONS)
    assert Translator.load(dest, "cpu", 1).translate(SENTENCES, "en", "de", **OPTIONS) == expected
    variant = download_pack("Xenova/opus-mt-en-de", tmp_path / "q", base_url=url, variant="quantized")
    assert (variant / "onnx" / "decoder_model.onnx").is_file()  # the variant is stored under the plain name


def test_download_of_our_pack_checks_parley_json_hashes(tmp_path_factory, tmp_path, hub):
    root, url = hub
    pack = built(tmp_path_factory, "nllb")[1]
    repo = shutil.copytree(pack, root / "parley" / "tiny-nllb")
    dest = download_pack("parley/tiny-nllb", tmp_path / "ok", base_url=url)
    assert json.loads((dest / "parley.json").read_text())["kind"] == "translation"
    assert Translator.load(dest, "cpu", 1).translate(["Where is the station?"], "en", "fr")

    # a file whose bytes changed but whose listing still matches: only parley.json's sha256 can tell
    data = bytearray((repo / "tokenizer.json").read_bytes())
    data[0:1] = b" "
    (repo / "tokenizer.json").write_bytes(bytes(data))
    with pytest.raises(PackError, match=r"tokenizer\.json: sha256 .* differs"):
        download_pack("parley/tiny-nllb", tmp_path / "bad", base_url=url)
    assert not (tmp_path / "bad" / "tokenizer.json").exists() and not list((tmp_path / "bad").rglob("*.part"))


def test_download_rejects_a_file_whose_hash_differs_from_the_listing(tmp_path_factory, tmp_path, hub):
    root, url = hub
    _publish_optimum(built(tmp_path_factory, "marian")[1], root / "Xenova" / "opus-mt-en-de")
    _Hub.lie = {"onnx/decoder_model.onnx": "0" * 64}
    with pytest.raises(PackError, match="decoder_model.onnx: sha256 .* differs from the hub's 000000000000"):
        download_pack("Xenova/opus-mt-en-de", tmp_path / "p", base_url=url)
    assert not (tmp_path / "p" / "onnx" / "decoder_model.onnx").exists()


def test_download_of_a_missing_repo_says_so(tmp_path, hub):
    _, url = hub
    with pytest.raises(PackError, match="404"):
        download_pack("nobody/nothing", tmp_path / "x", base_url=url)


def test_the_cli_download_installs_through_a_stage_and_keeps_an_installed_pack(tmp_path_factory, tmp_path, hub,
                                                                                capsys):
    from engine import cli

    root, url = hub
    _publish_optimum(built(tmp_path_factory, "marian")[1], root / "Xenova" / "opus-mt-en-de")
    packs = tmp_path / "translation"
    argv = ["translate", "--download", "Xenova/opus-mt-en-de", "--hub-url", url, "--packs-root", str(packs)]
    assert cli.main(argv) == 0
    dest = packs / "opus-mt-en-de"
    assert capsys.readouterr().out.strip() == str(dest)
    assert sorted(p.name for p in packs.iterdir()) == ["opus-mt-en-de"]  # no stage left behind
    installed = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("parley: error: ") and "already installed" in err and "--force" in err
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == installed
    assert cli.main([*argv, "--force"]) == 0
    assert sorted(p.name for p in packs.iterdir()) == ["opus-mt-en-de"]
    assert Translator.load(dest, "cpu", 1).translate(SENTENCES[:1], "en", "de", **OPTIONS)
