"""Three hours of silence through `parley transcribe`: streamed, not loaded whole (3 h of 16 kHz float32 samples
alone is 691 MB), its silent windows skipped before the model runs — an empty transcript in seconds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
HOURS = 3
RUN = """
import resource, sys
from engine.cli.main import main
code = main(sys.argv[1:])
print("maxrss_kb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def test_three_hours_of_silence_stream_to_an_empty_transcript_in_bounded_memory(pack_int8, tmp_path):
    audio = tmp_path / "silence.flac"
    with sf.SoundFile(audio, "w", 16000, 1, "PCM_16") as f:  # 0.5 MB on disk: FLAC of zeros
        block = np.zeros(16000 * 600, np.int16)
        for _ in range(HOURS * 6):
            f.write(block)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", RUN, "transcribe", str(audio), "--model", str(pack_int8),
                           "-o", str(tmp_path), "-q"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    took_s = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "silence.txt").read_text().strip() == ""
    maxrss_mb = int(proc.stderr.split("maxrss_kb")[1].split()[0]) / 1024
    whole_mb = HOURS * 3600 * 16000 * 4 / 2**20
    assert maxrss_mb < 0.8 * whole_mb, f"{maxrss_mb:.0f} MB resident: the file was not streamed"
    assert took_s < 120, f"{took_s:.0f} s for silence"
