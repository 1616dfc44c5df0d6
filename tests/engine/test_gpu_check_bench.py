"""bench/gpu_check.py, the script a GPU machine runs, works end to end: its CPU dry run measures what the GPU run
measures (providers, IO binding, transcripts, RTF, ms per decode step and per beam reorder), and asking for CUDA
where there is none fails the check with onnxruntime's reason instead of passing on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.model


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_the_dry_run_on_the_cpu_measures_every_check(pack_int8, pack_fp32, tmp_path):
    assert pack_int8.parent == pack_fp32.parent
    out = tmp_path / "gpu.json"
    proc = run("--device", "cpu", "--packs", str(pack_int8.parent), "--clips", "2", "--steps", "8", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert set(result["runs"]) == {"int8-cpu", "fp32-cpu"} and result["failures"] == []
    for r in result["runs"].values():
        assert r["provider"] == "CPUExecutionProvider" and r["rtf"] > 0 and r["wer"] < 0.3
        assert set(r["step_ms"]) == {"batch1", "batch5", "batch1-iobinding", "batch5-iobinding"}
        assert all(0 < ms < 1000 for ms in r["step_ms"].values())
        assert set(r["reorder_ms"]) == {"batch5", "batch5-iobinding"}
        assert all(0 < ms < 1000 for ms in r["reorder_ms"].values())
        assert "train" in r["texts"]["en01"].lower()
    assert "all checks passed" in proc.stdout


def test_asking_for_cuda_without_a_gpu_fails_with_the_reason(pack_int8, tmp_path):
    from engine import runtime

    if runtime.resolve_device("cuda")[0][0] == runtime.CUDA:
        pytest.skip("this machine has a usable CUDA GPU")
    proc = run("--packs", str(pack_int8.parent), "--precisions", "int8", "--clips", "1", "--steps", "3",
               "--out", str(tmp_path / "gpu.json"))
    assert proc.returncode == 1
    assert "FAILED: int8-cuda: asked for CUDA, runs on CPUExecutionProvider" in proc.stdout
