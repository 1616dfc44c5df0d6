"""One benchmark run in its own process, so peak RSS is that engine's alone.

Runs under .venv (Parley) or .refvenv (faster-whisper); imports only what its engine needs.
Reads a JSON job on argv[1], writes a JSON result to argv[2]:
  job = {"engine": "parley"|"faster-whisper", "model": path, "precision": "int8"|"fp32",
         "beam_size": int, "threads": int, "clips": [{"id": str, "npy": path, "language"?: str}],
         "language": str|None, "task": "transcribe"|"translate", "temperatures"?: [float]}
A clip's own "language" overrides the job's; "temperatures" (default: both engines' 0, 0.2 … 1.0) set
to [0.0] turns the fallback off.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from memory import peak_rss_mb  # bench/memory.py (this script's folder is on sys.path)


def _run_parley(job: dict) -> tuple[float, dict]:
    from engine.whisper import TranscribeOptions, WhisperModel

    t0 = time.perf_counter()
    model = WhisperModel.load(job["model"], device="cpu", threads=job["threads"])
    load_s = time.perf_counter() - t0
    extra = {"temperatures": tuple(job["temperatures"])} if job.get("temperatures") else {}
    out = {}
    for clip in job["clips"]:
        opts = TranscribeOptions(language=clip.get("language", job.get("language")),
                                 task=job.get("task", "transcribe"), beam_size=job["beam_size"], **extra)
        audio = np.load(clip["npy"])
        t, cpu = time.perf_counter(), time.process_time()
        tr = model.transcribe(audio, opts)
        out[clip["id"]] = {"text": " ".join(s.text.strip() for s in tr.segments).strip(),
                           "seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu,
                           "language": tr.language}
    return load_s, out


def _run_faster_whisper(job: dict) -> tuple[float, dict]:
    from faster_whisper import WhisperModel

    compute = {"int8": "int8", "fp32": "float32"}[job["precision"]]
    t0 = time.perf_counter()
    model = WhisperModel(job["model"], device="cpu", compute_type=compute, cpu_threads=job["threads"])
    load_s = time.perf_counter() - t0
    extra = {"temperature": list(job["temperatures"])} if job.get("temperatures") else {}
    out = {}
    for clip in job["clips"]:
        audio = np.load(clip["npy"])
        t, cpu = time.perf_counter(), time.process_time()
        segments, info = model.transcribe(audio, language=clip.get("language", job.get("language")),
                                          task=job.get("task", "transcribe"), beam_size=job["beam_size"],
                                          vad_filter=False, **extra)
        text = " ".join(s.text.strip() for s in segments).strip()  # the generator does the work
        out[clip["id"]] = {"text": text, "seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu,
                           "language": info.language}
    return load_s, out


def main() -> None:
    job = json.loads(open(sys.argv[1]).read())
    runner = {"parley": _run_parley, "faster-whisper": _run_faster_whisper}[job["engine"]]
    t0 = time.perf_counter()
    load_s, clips = runner(job)
    result = {
        "load_s": load_s,
        "total_s": time.perf_counter() - t0,
        "transcribe_s": sum(c["seconds"] for c in clips.values()),
        # CPU time of every thread of the process: what the work costs, whatever else loads the machine
        "transcribe_cpu_s": sum(c["cpu_s"] for c in clips.values()),
        "peak_rss_mb": peak_rss_mb(),
        "clips": clips,
    }
    with open(sys.argv[2], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
