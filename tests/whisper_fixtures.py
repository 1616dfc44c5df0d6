"""A tiny random-weight Whisper pack (exported by our exporter), built once per test run, and a hub
repository laid out like onnx-community/whisper-*: the json files at the top, the graphs in onnx/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from needs import require_module

_built: dict[str, Path] = {}


def tiny_whisper_pack(tmp_path_factory) -> Path:
    """Our pack of a tiny random Whisper (fp32, parley.json, merged decoder); a few seconds to export."""
    if "pack" not in _built or not _built["pack"].is_dir():
        require_module("torch")
        from tests.export.tiny import TINY, save_hf

        from export.pack import build_pack
        from export.whisper_model import new_model

        folder = tmp_path_factory.mktemp("tiny-whisper")
        source = save_hf(new_model(TINY, seed=7), folder / "source")
        _built["pack"] = build_pack(source, folder / "tiny-whisper", "fp32", "tiny-whisper")
    return _built["pack"]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "parley-home"))
    return tmp_path / "parley-home"


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory) -> Path:
    return tiny_whisper_pack(tmp_path_factory)


def publish_optimum(pack: Path, repo: Path, variants: tuple[str, ...] = ("quantized",)) -> Path:
    """The pack as a hub repository: no parley.json, graphs in onnx/ (plus `variants` of each), a model card."""
    (repo / "onnx").mkdir(parents=True)
    for f in pack.iterdir():
        if f.suffix == ".onnx":
            shutil.copy(f, repo / "onnx" / f.name)
            for v in variants:
                shutil.copy(f, repo / "onnx" / f.name.replace(".onnx", f"_{v}.onnx"))
        elif f.suffix == ".json" and f.name != "parley.json":
            shutil.copy(f, repo / f.name)
    (repo / "README.md").write_text("a model card the download skips")
    return repo


def chirp(seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t)).astype(np.float32)


def transcript_text(pack: Path) -> str:
    from engine.whisper import TranscribeOptions, WhisperModel

    model = WhisperModel.load(pack, device="cpu", threads=1)
    result = model.transcribe(chirp(), TranscribeOptions(language="en", beam_size=1, temperatures=(0.0,)))
    return " ".join(s.text for s in result.segments)
