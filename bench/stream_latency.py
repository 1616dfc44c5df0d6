"""Live latency: a file fed in real time (1x, wall clock) through Parley's live job (engine.jobs, as parley
live runs it).

    .venv/bin/python bench/stream_latency.py [--minutes 10] [--encoder audio full] [--peer]

For every committed word: lag = the wall time it was committed − the time it ended in the audio (word
times from an offline pass of the same model). Printed per run: median / p90 / max lag, lag in the
first and the last minute (a growing backlog shows there), tentative-update interval, WER of the
streamed and of the offline transcript against the script that was spoken, CPU real-time factor
(decode time / audio time), dropped audio blocks, the largest buffer.

The audio goes through the real capture path (Capture + an input stream that replays the file at 1x
from its own thread, as PortAudio does), so the ring and its drop counter are exercised too. The
speech is espeak-ng English (bench/clips.py, 30 sentences with 1 s pauses), repeated to --minutes.

``--peer`` also runs the whisper_streaming algorithm (LocalAgreement-2, min-chunk 1 s, buffer trimmed
at 15 s, 200-character prompt, faster-whisper with beam 5, word timestamps, its default temperature
fallback) over faster-whisper int8 with the same weights, in the reference environment
(bench/setup_reference.sh), on the same samples, after Parley's runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "tests"))  # the fake sound device

from bench import clips  # noqa: E402
from engine.audio.capture import Capture, DeviceInfo  # noqa: E402
from engine.audio.decode import load_audio  # noqa: E402
from engine.events import Committed, Partial, Stats  # noqa: E402
from engine.jobs import plan_live_job, start_live_job  # noqa: E402
from fake_audio import FakeInputStream  # noqa: E402

SR = 16000


@dataclasses.dataclass
class RunResult:
    name: str
    words: list[tuple[str, float, float]]  # (text, end_s in the audio as streamed, committed at s since start)
    partial_times: list[float]
    step_s: list[float]
    dropped: int
    max_buffer_s: float
    wall_s: float


def build_audio(minutes: float, cache: Path) -> tuple[np.ndarray, str]:
    long = clips.long_english(cache)
    one = load_audio(long.path)
    reps = max(1, int(np.ceil(minutes * 60 / long.duration_s)))
    audio = np.concatenate([one] * reps)[: int(minutes * 60 * SR)] if minutes * 60 < reps * long.duration_s else \
        np.concatenate([one] * reps)
    # the script for what was kept: whole sentences whose span ends inside the audio
    kept = [s.text for r in range(reps) for s in long.spans if r * long.duration_s + s.end_s <= audio.size / SR]
    return audio, " ".join(kept)


def run_parley(model, audio: np.ndarray, encoder: str, step_s: float | None, edge_guard_s: float | None = None,
               agree_gap_s: float | None = None) -> RunResult:
    device = DeviceInfo(None, "replay", "bench", 1, float(SR))
    source = Capture(device, stall_timeout_s=None,
                     stream_factory=FakeInputStream.factory(audio, SR, speed=1.0))
    words: list[tuple[str, float, float]] = []
    partials: list[float] = []
    max_buffer = [0.0]
    job = []  # the live job, for its start time (set before any word can be committed)

    def on_event(e) -> None:
        if isinstance(e, Committed):
            words.extend((w.text, w.end_s, e.emitted_at - job[0].session.started_at) for w in e.words)
        elif isinstance(e, Partial):
            partials.append(e.emitted_at)
        elif isinstance(e, Stats):
            max_buffer[0] = max(max_buffer[0], e.buffered_s)

    options = plan_live_job(language="en", encoder_frames=encoder,
                            **({} if step_s is None else {"min_step_s": step_s}))
    policy = {k: v for k, v in (("edge_guard_s", edge_guard_s), ("agree_gap_s", agree_gap_s)) if v is not None}
    if policy:
        options = dataclasses.replace(options, policy=dataclasses.replace(options.policy, **policy))
    t0 = time.monotonic()
    job.append(start_live_job(model, options, on_event, source=source))
    time.sleep(audio.size / SR + 0.5)
    result = job[0].finish()
    return RunResult(f"parley {encoder}", words, partials, job[0].session.step_times_s, result.dropped_blocks,
                     max_buffer[0], time.monotonic() - t0)


def run_peer(audio: np.ndarray, ct2: Path, python: str) -> RunResult:
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "audio.npy"
        np.save(npy, audio)
        out = Path(tmp) / "peer.json"
        subprocess.run([python, str(ROOT / "bench" / "_stream_peer.py"), str(ct2), str(npy), str(out)], check=True)
        data = json.loads(out.read_text())
    return RunResult("whisper_streaming (faster-whisper)", [tuple(w) for w in data["words"]], data["partials"],
                     data["step_s"], 0, data["max_buffer_s"], data["wall_s"])


def _norm(word: str) -> str:
    return clips.normalize_text(word).replace(" ", "")


def lags(run: RunResult, offline: list[tuple[str, float]], window_s: float = 1.5) -> list[tuple[float, float]]:
    """(offline end time, lag) for each streamed word matched to the same word of the offline pass that
    ends within ``window_s`` of it (by time, not by text alone: the long test audio repeats its script)."""
    ends = np.array([e for _, e in offline])
    texts = [_norm(w) for w, _ in offline]
    out = []
    for word, end_s, committed_at in run.words:
        lo, hi = np.searchsorted(ends, end_s - window_s), np.searchsorted(ends, end_s + window_s)
        best = min((k for k in range(lo, hi) if texts[k] == _norm(word)), key=lambda k: abs(ends[k] - end_s),
                   default=None)
        if best is not None:
            out.append((float(ends[best]), committed_at - float(ends[best])))
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def report(run: RunResult, offline_words, script: str, duration_s: float) -> dict:
    matched = lags(run, offline_words)
    lag = [x for _, x in matched]
    first = [x for t, x in matched if t < 60]
    last = [x for t, x in matched if t >= duration_s - 60]
    gaps = np.diff(run.partial_times) if len(run.partial_times) > 1 else np.array([])
    text = "".join(w for w, _, _ in run.words)
    return {
        "run": run.name, "words": len(run.words), "matched": len(matched),
        "median_lag_s": pct(lag, 50), "p90_lag_s": pct(lag, 90), "max_lag_s": max(lag, default=float("nan")),
        "first_min_median_s": pct(first, 50), "last_min_median_s": pct(last, 50),
        "tentative_interval_s": float(np.median(gaps)) if gaps.size else float("nan"),
        "wer": clips.wer(script, text), "cpu_rtf": sum(run.step_s) / duration_s,
        "steps": len(run.step_s), "max_step_s": max(run.step_s, default=0.0),
        "dropped_blocks": run.dropped, "max_buffer_s": run.max_buffer_s,
        "text": text,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", default=None, help="int8 pack folder (default: the installed whisper-base int8)")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--encoder", nargs="+", choices=("audio", "full"), default=["audio", "full"])
    ap.add_argument("--step", type=float, default=None, help="LiveOptions.min_step_s (default: LiveOptions')")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--edge-guard", type=float, default=None, help="PolicyOptions.edge_guard_s (default: LiveOptions')")
    ap.add_argument("--agree-gap", type=float, default=None, help="PolicyOptions.agree_gap_s (default: LiveOptions')")
    ap.add_argument("--peer", action="store_true", help="also run whisper_streaming's algorithm on faster-whisper")
    ap.add_argument("--ct2", default=os.environ.get("PARLEY_CT2_DIR"), help="CTranslate2 model folder for the peer")
    ap.add_argument("--ref-python", default=os.environ.get("PARLEY_REF_PYTHON", str(ROOT / ".refvenv/bin/python")))
    ap.add_argument("--json", type=Path, default=None, help="write the rows here too")
    args = ap.parse_args()

    from engine.packs.installed import resolve_pack
    from engine.whisper import TranscribeOptions, WhisperModel

    pack = Path(args.pack) if args.pack else resolve_pack("whisper-base", "int8")
    model = WhisperModel.load(pack, device="cpu", threads=args.threads)
    cache = Path(tempfile.gettempdir()) / "parley-bench-clips"
    audio, script = build_audio(args.minutes, cache)
    duration = audio.size / SR
    print(f"audio: {duration:.1f} s of espeak-ng English; model {pack.name}, {args.threads} threads", flush=True)

    t = time.perf_counter()
    offline = model.transcribe(audio, TranscribeOptions(language="en", beam_size=1, word_timestamps=True))
    offline_words = [(w.text, w.end_s) for s in offline.segments for w in s.words]
    print(f"offline pass: {time.perf_counter() - t:.1f} s, WER {clips.wer(script, offline.text):.3f}", flush=True)

    rows = []
    for encoder in args.encoder:
        run = run_parley(model, audio, encoder, args.step, args.edge_guard, args.agree_gap)
        rows.append(report(run, offline_words, script, duration))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "text"}), flush=True)
    if args.peer:
        if not args.ct2:
            ap.error("--peer needs --ct2 (or PARLEY_CT2_DIR) and the reference environment")
        run = run_peer(audio, Path(args.ct2), args.ref_python)
        rows.append(report(run, offline_words, script, duration))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "text"}), flush=True)

    cols = (("median_lag_s", "lag p50"), ("p90_lag_s", "lag p90"), ("max_lag_s", "lag max"),
            ("first_min_median_s", "p50 1st min"), ("last_min_median_s", "p50 last min"),
            ("tentative_interval_s", "tentative every"), ("wer", "WER"), ("cpu_rtf", "CPU RTF"),
            ("max_step_s", "max step"), ("dropped_blocks", "dropped"), ("max_buffer_s", "max buffer"))
    print(f"\noffline WER (same model, 30 s windows, greedy): {clips.wer(script, offline.text):.3f}; times in s")
    print(f"{'run':<36}" + "".join(f"{label:>16}" for _, label in cols))
    for r in rows:
        print(f"{r['run']:<36}" + "".join(f"{r[c]:>16.3f}" if isinstance(r[c], float) else f"{r[c]:>16}"
                                          for c, _ in cols))
    if args.json:
        args.json.write_text(json.dumps({"offline_wer": clips.wer(script, offline.text), "offline_text": offline.text,
                                         "script": script, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
