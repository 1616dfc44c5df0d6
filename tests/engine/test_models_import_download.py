"""The model manager's import (a ready ONNX pack folder, or a checkpoint converted by export) and hub
download (`parley models import|download`), on a tiny random Whisper pack and a local server laid out
like the Hugging Face hub. No network; PARLEY_HOME is a temporary folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from hub_fixtures import _Hub, hub  # noqa: E402,F401 - the fixture
from whisper_fixtures import home, publish_optimum, tiny_pack, transcript_text  # noqa: E402,F401 - fixtures

from engine import cli  # noqa: E402
from engine.packs.install import download_name, download_pack, import_pack  # noqa: E402
from engine.packs.installed import installed_packs, resolve_pack  # noqa: E402
from engine.errors import CancelledError, PackError  # noqa: E402
from needs import require_module  # noqa: E402


def _nothing_left_in(root: Path, but: tuple[str, ...] = ()) -> bool:
    return not root.is_dir() or sorted(p.name for p in root.iterdir()) == sorted(but)


def test_import_of_a_ready_pack_installs_it_and_it_transcribes(home, tiny_pack, capsys):
    assert cli.main(["models", "import", str(tiny_pack), "--name", "mine"]) == 0
    dest = home / "packs" / "mine"
    assert capsys.readouterr().out.strip() == str(dest)
    assert json.loads((dest / "parley.json").read_text()) == json.loads((tiny_pack / "parley.json").read_text())
    (listed,) = installed_packs()
    assert (listed.path, listed.precision, listed.kind) == (dest, "fp32", "whisper")
    assert resolve_pack("mine") == dest
    assert transcript_text(dest) == transcript_text(tiny_pack)


def test_import_of_a_hub_layout_folder_notes_where_it_came_from(home, tiny_pack, tmp_path):
    repo = publish_optimum(tiny_pack, tmp_path / "whisper-tiny-onnx", variants=())
    seen = []
    dest = import_pack(repo, progress=lambda stage, frac: seen.append((stage, frac)))
    assert dest == home / "packs" / "whisper-tiny-onnx" and (dest / "onnx" / "encoder_model.onnx").is_file()
    (listed,) = installed_packs()
    assert listed.source == f"imported from {repo.resolve()}" and listed.precision == "unknown"
    assert seen[-1] == (f"installed {dest}", 1.0) and any(s.startswith("copying onnx/") for s, _ in seen)
    assert _nothing_left_in(home / "packs", but=("whisper-tiny-onnx",))


def test_import_of_a_folder_that_is_not_a_pack_names_it(home, tmp_path, capsys):
    folder = tmp_path / "holiday photos"
    folder.mkdir()
    (folder / "beach.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(PackError, match=r"holiday photos: not a model Parley can import; expected a ready ONNX"):
        import_pack(folder)
    assert cli.main(["models", "import", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("parley: error: ") and "missing: no such file or folder" in err and "\n" not in err
    assert _nothing_left_in(home / "packs")


def test_import_of_a_corrupt_pack_says_which_file_and_leaves_nothing(home, tiny_pack, tmp_path):
    broken = shutil.copytree(tiny_pack, tmp_path / "broken")
    graph = broken / "decoder_model_merged.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only parley.json's sha256 can tell
    graph.write_bytes(bytes(data))
    with pytest.raises(PackError, match=rf"{broken} is not a usable Whisper pack: {graph}: sha256 .* does not match"):
        import_pack(broken)
    assert _nothing_left_in(home / "packs")


def test_import_over_an_installed_name_refuses_unless_forced(home, tiny_pack, capsys):
    first = import_pack(tiny_pack, name="same")
    (first / "marker").write_text("the installed one")
    assert cli.main(["models", "import", str(tiny_pack), "--name", "same"]) == 1
    assert "a pack named same is already installed" in capsys.readouterr().err
    assert (first / "marker").read_text() == "the installed one"
    assert import_pack(tiny_pack, name="same", force=True) == first and not (first / "marker").exists()
    assert _nothing_left_in(home / "packs", but=("same",))


def test_import_of_a_checkpoint_runs_the_exporter_and_explains_missing_torch(home, tmp_path, monkeypatch):
    ct2 = tmp_path / "whisper-small-ct2"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"\0")
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "Traceback ...\nModuleNotFoundError: No module named 'torch'")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(PackError, match=r"needs PyTorch .*pip install 'parley\[export\]'"):
        import_pack(ct2, precision="fp16")
    (cmd,) = calls
    assert cmd[1:4] == ["-m", "export", "whisper"] and cmd[cmd.index("--from") + 1] == str(ct2.resolve())
    out = Path(cmd[cmd.index("--out") + 1])  # built in a hidden stage inside the packs folder
    assert out.parent.parent == home / "packs" and out.parent.name.startswith(".install-whisper-small-ct2-fp16-")
    assert (cmd[cmd.index("--precision") + 1], cmd[cmd.index("--name") + 1]) == ("fp16", "whisper-small-ct2")
    pt = tmp_path / "tiny.pt"
    pt.write_bytes(b"\0")
    with pytest.raises(PackError, match=r"tiny\.pt: an OpenAI checkpoint holds no tokenizer; put the model's tokenizer"):
        import_pack(pt)
    assert _nothing_left_in(home / "packs")


@pytest.mark.slow
def test_import_of_a_hugging_face_checkpoint_converts_it(home, tmp_path):
    require_module("torch")
    from tests.export.tiny import TINY, save_hf

    from export.whisper_model import new_model

    source = save_hf(new_model(TINY, seed=3), tmp_path / "my-whisper")
    dest = import_pack(source, precision="fp32")
    assert dest == home / "packs" / "my-whisper-fp32"
    meta = json.loads((dest / "parley.json").read_text())
    assert meta["name"] == "my-whisper" and meta["source"]["origin"] == f"huggingface:{source.resolve()}"
    assert resolve_pack("my-whisper", "fp32") == dest and transcript_text(dest) is not None


# -- hub download ---------------------------------------------------------------------------------------

def test_download_installs_a_hub_whisper_pack(home, tiny_pack, hub, capsys):
    root, url = hub
    publish_optimum(tiny_pack, root / "someone" / "whisper-tiny")
    assert cli.main(["models", "download", "someone/whisper-tiny", "--variant", "quantized", "--hub-url", url]) == 0
    dest = home / "packs" / "whisper-tiny-quantized"
    assert capsys.readouterr().out.strip() == str(dest)
    assert not (dest / "README.md").exists() and not list(dest.rglob("*.part"))
    assert (dest / "onnx" / "decoder_model_merged.onnx").read_bytes() == (tiny_pack / "decoder_model_merged.onnx").read_bytes()
    (listed,) = installed_packs()
    assert (listed.precision, listed.source) == ("int8", "hf:someone/whisper-tiny@main (quantized)")
    assert resolve_pack("whisper-tiny-quantized") == dest
    assert transcript_text(dest) == transcript_text(tiny_pack)
    assert _nothing_left_in(home / "packs", but=("whisper-tiny-quantized",))


def test_download_with_a_corrupt_file_fails_and_leaves_no_pack(home, tiny_pack, hub, capsys):
    root, url = hub
    publish_optimum(tiny_pack, root / "someone" / "whisper-tiny")
    _Hub.lie = {"onnx/encoder_model.onnx": "0" * 64}
    assert cli.main(["models", "download", "someone/whisper-tiny", "--hub-url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("parley: error: ") and "encoder_model.onnx: sha256" in err and "corrupt" in err
    assert _nothing_left_in(home / "packs")


def test_download_of_a_translation_repo_is_not_installed_as_a_whisper_pack(home, tiny_pack, hub):
    root, url = hub
    repo = publish_optimum(tiny_pack, root / "someone" / "not-whisper", variants=())
    (repo / "config.json").write_text(json.dumps({"model_type": "marian", "d_model": 32}))
    with pytest.raises(PackError, match=r"someone/not-whisper is not a usable Whisper pack: .*lack a Whisper field"):
        download_pack("someone/not-whisper", base_url=url)
    assert _nothing_left_in(home / "packs")


def test_cancelled_download_leaves_no_pack(home, tiny_pack, hub):
    root, url = hub
    publish_optimum(tiny_pack, root / "someone" / "whisper-tiny")
    cancel = threading.Event()
    seen = []

    def progress(stage: str, frac: float) -> None:
        seen.append(stage)
        if "onnx/" in stage:  # the first graph's first block: cancel mid-download
            cancel.set()

    with pytest.raises(CancelledError, match="cancelled"):
        download_pack("someone/whisper-tiny", progress=progress, cancel=cancel, base_url=url)
    assert seen and _nothing_left_in(home / "packs")


def test_download_names_and_refusals(home, tiny_pack, hub):
    root, url = hub
    assert download_name("onnx-community/whisper-base") == "onnx-community-whisper-base"  # not the built one
    assert download_name("onnx-community/whisper-tiny.en", "fp16") == "whisper-tiny.en-fp16"
    with pytest.raises(PackError, match="not a hub repository id"):
        download_pack("a/b/c", base_url=url)
    with pytest.raises(PackError, match="404"):
        download_pack("nobody/nothing", base_url=url)
    publish_optimum(tiny_pack, root / "someone" / "whisper-tiny")
    download_pack("someone/whisper-tiny", base_url=url)
    with pytest.raises(PackError, match="a pack named whisper-tiny is already installed"):
        download_pack("someone/whisper-tiny", base_url=url)
    assert _nothing_left_in(home / "packs", but=("whisper-tiny",))
