"""Shared fixtures: the real model packs and the Whisper source, found where setup.sh builds them.

In CI (PARLEY_REQUIRE_MODELS=1) a missing pack fails the test instead of skipping it, so a broken
setup can never pass as "skipped".
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from needs import require_or_skip

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _installed_vad() -> None:
    """Tests that give Parley an empty home (PARLEY_HOME=tmp) still use the VAD setup.sh installed,
    instead of downloading it again for every test."""
    from engine.audio.vad import MODEL_FILENAME
    from engine.packs.paths import packs_root

    path = packs_root() / MODEL_FILENAME
    if path.is_file():
        os.environ.setdefault("PARLEY_VAD_MODEL", str(path))


_installed_vad()


def _need(path: Path | None, what: str) -> Path:
    if path is not None and path.exists():
        return path
    require_or_skip(f"{what} not found at {path}; run ./setup.sh (or `parley models build whisper-base`)")


def _pack(precision: str) -> Path:
    from engine.packs.paths import pack_dir

    env = os.environ.get(f"PARLEY_PACK_{precision.upper()}")
    return Path(env) if env else pack_dir("whisper-base", precision)


@pytest.fixture(scope="session")
def pack_int8() -> Path:
    return _need(_pack("int8"), "whisper-base int8 pack")


@pytest.fixture(scope="session")
def pack_fp32() -> Path:
    return _need(_pack("fp32"), "whisper-base fp32 pack")


@pytest.fixture(scope="session")
def ct2_source() -> Path:
    from engine.packs.paths import sources_root

    env = os.environ.get("PARLEY_CT2_DIR")
    path = Path(env) if env else sources_root() / "whisper-base-ct2"
    return _need(path if (path / "model.bin").exists() else None, "CTranslate2 whisper-base source")


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """espeak-ng clips are cached across tests of one run."""
    return tmp_path_factory.mktemp("clips")
