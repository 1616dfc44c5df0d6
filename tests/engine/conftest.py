"""Fixtures of the engine's tests: the spoken clip the live tests feed (espeak-ng), made once a run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from needs import require_command

FOX = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."


@pytest.fixture(scope="session")
def fox_wav(tmp_path_factory) -> Path:
    """FOX read by espeak-ng (en-us, 150 words a minute): about 6 s, two sentences."""
    require_command("espeak-ng", "espeak-ng")
    out = tmp_path_factory.mktemp("fox") / "fox.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(out), FOX], check=True)
    return out
