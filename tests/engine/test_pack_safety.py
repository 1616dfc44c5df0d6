"""Deleting, importing and downloading with hostile names: each is refused with a message naming it, and
every other pack — Whisper packs, translation packs, the VAD model, a running install's stage — stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import cli
from engine.packs.install import delete_pack, download_pack, import_pack
from engine.packs.paths import packs_root
from engine.errors import PackError
from engine.packs.paths import install_staged
from engine.translate import bergamot_packs


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A packs folder as setup.sh and a user leave it (placeholder files: nothing here is loaded)."""
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    root = packs_root()
    for rel, text in {
        "whisper-base-int8/encoder_model.onnx": "int8 encoder",
        "whisper-base-int8/onnx/encoder_model.onnx": "a graph in a subfolder",
        "whisper-base-fp32/encoder_model.onnx": "fp32 encoder",
        "translation/opus-mt-en-de/encoder_model.onnx": "marian encoder",
        "silero_vad.onnx": "vad",
        ".install-other-1234/encoder_model.onnx": "another install, half done",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    outside = tmp_path / "documents"
    outside.mkdir()
    (outside / "thesis.txt").write_text("four years of work")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    return root


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): (p.read_text() if p.is_file() else "<dir>")
            for p in sorted(folder.rglob("*"))}


def everything(root: Path) -> dict[str, str]:
    """The packs, the home around them and the documents beside it (the log file may grow)."""
    return {k: v for k, v in snapshot(root.parent.parent).items() if not k.startswith("home/logs")}


HOSTILE_DELETES = [
    ("{root}", "packs folder itself"),
    ("{root}/", "packs folder itself"),
    ("{root}/../packs", "packs folder itself"),
    ("{home}", "packs folder itself"),
    ("{root}/whisper-base-int8/..", "packs folder itself"),
    ("translation", "no model pack"),
    ("{root}/translation", "translation"),
    ("{root}/translation/opus-mt-en-de", "inside translation"),
    ("{root}/whisper-base-int8/onnx", "inside whisper-base-int8"),
    ("silero_vad.onnx", "no model pack"),
    ("{root}/silero_vad.onnx", "voice activity model"),
    ("{root}/.install-other-1234", "staging"),
    ("{root}/linked", "not in Parley's pack folder"),
    ("{documents}", "not in Parley's pack folder"),
    ("no-such-pack", "no model pack"),
]


@pytest.mark.parametrize("target,reason", HOSTILE_DELETES, ids=[t for t, _ in HOSTILE_DELETES])
def test_delete_refuses_anything_but_one_installed_pack(root, target, reason):
    target = target.format(root=root, home=root.parent, documents=root.parent.parent / "documents")
    before = everything(root)
    with pytest.raises(PackError, match=reason):
        delete_pack(target)
    assert everything(root) == before


def test_delete_of_one_pack_takes_that_pack_only(root):
    before = everything(root)
    assert delete_pack("whisper-base-int8") == root / "whisper-base-int8"
    assert everything(root) == {k: v for k, v in before.items() if not k.startswith("home/packs/whisper-base-int8")}


def test_the_command_line_refuses_to_delete_the_packs_folder_in_one_line(root, capsys):
    before = everything(root)
    assert cli.main(["models", "delete", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("parley: error: ") and err.count("\n") == 1 and str(root) in err
    assert everything(root) == before


HOSTILE_NAMES = ["..", ".", "   ", "../evil", "/tmp/evil", "a/b", "..\\evil", "C:evil", "translation",
                 "Translation", "silero_vad.onnx", ".hidden", ".install-other-1234", "x.building", "x.part",
                 "packs", "sources", "a" * 200]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_import_refuses_a_hostile_name_even_with_force(root, tmp_path, name):
    src = tmp_path / "ready-pack"
    src.mkdir()
    (src / "encoder_model.onnx").write_text("a pack to import")
    before = everything(root)
    with pytest.raises(PackError, match="cannot name a pack|would leave|is a link"):
        import_pack(src, name=name, force=True)
    assert everything(root) == before


@pytest.mark.parametrize("repo,name", [("owner/..", None), ("owner/translation", None), ("owner/.x", None),
                                       ("onnx-community/whisper-base", "../evil"),
                                       ("onnx-community/whisper-base", "silero_vad.onnx")])
def test_download_refuses_a_hostile_name_before_any_network(root, repo, name):
    before = everything(root)
    with pytest.raises(PackError, match="cannot name a pack|not a hub repository"):
        download_pack(repo, name=name, force=True, base_url="http://127.0.0.1:9/never-called")
    assert everything(root) == before


@pytest.mark.parametrize("repo", ["owner/..", "owner/.", "owner/.hidden"])
def test_translation_download_refuses_a_name_that_leaves_its_folder(root, repo, capsys):
    before = everything(root)
    code = cli.main(["translate", "--download", repo, "--hub-url", "http://127.0.0.1:9/never-called"])
    err = capsys.readouterr().err
    assert code != 0 and "cannot name a pack" in err and "Traceback" not in err
    assert everything(root) == before


def test_bergamot_import_refuses_a_hostile_name_before_converting(root, tmp_path):
    before = everything(root)
    with pytest.raises(PackError, match="cannot name a pack"):
        bergamot_packs.install(tmp_path, root / "translation", name="..", force=True)
    assert everything(root) == before


def test_a_failed_install_leaves_the_installed_pack_and_no_stage(root):
    before = everything(root)

    def broken(stage: Path) -> None:
        (stage / "encoder_model.onnx").write_text("half a new pack")
        raise PackError("the new pack does not load")

    with pytest.raises(PackError, match="does not load"):
        install_staged(root, "whisper-base-fp32", broken, force=True)
    assert everything(root) == before


def test_a_forced_install_swaps_the_pack_whole_and_leaves_no_stage(root):
    before = everything(root)

    def good(stage: Path) -> None:
        (stage / "encoder_model.onnx").write_text("the new fp32 encoder")

    with pytest.raises(PackError, match="already installed"):
        install_staged(root, "whisper-base-fp32", good)
    assert install_staged(root, "whisper-base-fp32", good, force=True) == root / "whisper-base-fp32"
    after = everything(root)
    assert after.pop("home/packs/whisper-base-fp32/encoder_model.onnx") == "the new fp32 encoder"
    before.pop("home/packs/whisper-base-fp32/encoder_model.onnx")
    assert after == before
