"""Three hours of silence through the real `parley transcribe`: streamed, not loaded whole (3 h of 16 kHz
float32 samples alone are 659 MiB), its silent windows skipped before the model runs — an empty, valid
transcript in seconds, in the memory a one-minute file takes.

Peak memory is what `/usr/bin/time -v` would print for the `parley` process: the largest child's
ru_maxrss, read by a small launcher of its own. It is not read by the pytest process, nor inside a
process pytest spawned: on Linux a process's ru_maxrss keeps the peak of whatever it was before its
execve, and a child spawned by pytest starts from pytest's own pages (vfork shares them). That is how
this test once reported 2044 MB on a full CI run — the peak of the pytest process that had run the
export tests — against ~310 MB for `parley` itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from needs import require_or_skip

HOURS = 3
DECODED_MIB = HOURS * 3600 * 16000 * 4 / 2**20  # 659 MiB: the file as float32 samples
# Runs argv and prints its peak resident memory; small (~10 MB) so its own pages are below the child's.
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print("peak_kb", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _parley() -> str:
    path = Path(sys.executable).with_name("parley")
    if not path.exists():
        require_or_skip(f"the parley command is not installed beside {sys.executable} (pip install -e .)")
    return str(path)


def _silent_flac(path: Path, seconds: int) -> Path:
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as f:  # FLAC of zeros: 0.5 MB for 3 h
        block = np.zeros(16000 * 60, np.int16)
        for _ in range(seconds // 60):
            f.write(block)
    return path


def _transcribe(audio: Path, pack: Path, out: Path, home: Path | None) -> tuple[float, float, str]:
    """(peak resident MiB of `parley transcribe`, seconds it took, its stderr)."""
    env = dict(os.environ)
    if home is not None:
        env["PARLEY_HOME"] = str(home)
        env.pop("PARLEY_VAD_MODEL", None)  # (conftest points it at the installed home's)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, _parley(), "transcribe", str(audio), "--model",
                           str(pack), "--format", "all", "-o", str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    took_s = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    peak_mib = int(proc.stderr.rsplit("peak_kb", 1)[1].split()[0]) / 1024
    return peak_mib, took_s, proc.stderr


@pytest.mark.parametrize("home", ["fresh", "installed"])
def test_three_hours_of_silence_stream_to_an_empty_transcript_in_bounded_memory(pack_int8, tmp_path, home):
    # "fresh": an empty PARLEY_HOME, as on a machine where only the pack given with --model exists
    # (no VAD model, no translation packs, no log folder yet); "installed": the home setup.sh filled.
    parley_home = tmp_path / "home" if home == "fresh" else None
    if parley_home is not None:
        parley_home.mkdir()
    pack = pack_int8
    if parley_home is not None:  # the pack inside the fresh home too, as `models import` would put it
        pack = parley_home / "packs" / pack_int8.name
        shutil.copytree(pack_int8, pack)
    minute = _silent_flac(tmp_path / "minute.flac", 60)
    hours = _silent_flac(tmp_path / "silence.flac", HOURS * 3600)

    minute_mib, _, _ = _transcribe(minute, pack, tmp_path / "minute", parley_home)
    peak_mib, took_s, stderr = _transcribe(hours, pack, tmp_path / "out", parley_home)

    out = tmp_path / "out"
    assert (out / "silence.txt").read_text() == ""
    assert (out / "silence.srt").read_text().strip() == ""
    assert (out / "silence.vtt").read_text().strip() == "WEBVTT"
    assert json.loads((out / "silence.json").read_text()) == {"text": "", "segments": []}
    assert f"silence.flac: language ?, {HOURS * 3600:.1f} s, 0 segments" in stderr  # all of it was read
    assert peak_mib < 0.6 * DECODED_MIB, f"{peak_mib:.0f} MiB resident for {HOURS} h: the file was not streamed"
    assert peak_mib < minute_mib + 64, (f"{peak_mib:.0f} MiB resident for {HOURS} h against {minute_mib:.0f} MiB "
                                        "for one minute: memory grows with the file's length")
    assert took_s < 120, f"{took_s:.0f} s for {HOURS} h of silence"
