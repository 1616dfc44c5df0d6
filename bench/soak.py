"""Soak: a long stream through one live job (engine.jobs.start_live_job, as parley live runs it), released at
the clock's pace (``--speed`` × real time).

    .venv/bin/python bench/soak.py [--minutes 60] [--step 1] [--speed 1]

Reports resident memory (after the first 5 minutes, as a baseline, and at the end), committed words,
WER against the script, repeated-text loops (an 8-gram that appears twice in a row in the committed
text), the largest buffer, and the wall time. The speech is bench/clips.py's espeak-ng English with the
recorded human clips in between, repeated; ``--step`` is the new audio per decode. The audio goes through
the bounded ring a capture fills (engine.audio.file_source), so a session that falls behind loses audio there
and the soak fails (exit code 1) naming how many blocks were dropped. ``--speed 0`` fast-forwards instead
(the session decodes as fast as the CPU allows; with no clock nothing can be dropped, so that run checks
memory and loops only).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import clips  # noqa: E402
from engine.events import Committed, Stats  # noqa: E402
from engine.audio.file_source import FileSource  # noqa: E402
from engine.jobs import plan_live_job, start_live_job  # noqa: E402
from engine.live.options import LiveOptions  # noqa: E402
from stream_latency import build_audio  # noqa: E402  (bench/ is on sys.path when run as a script)

SR = 16000


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def repeated_ngrams(words: list[str], n: int = 8) -> list[str]:
    """n-grams immediately followed by themselves."""
    out = []
    for i in range(len(words) - 2 * n + 1):
        if words[i:i + n] == words[i + n:i + 2 * n]:
            out.append(" ".join(words[i:i + n]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", default=None)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--step", type=float, default=LiveOptions().min_step_s,
                    help="seconds of new audio between decodes (default: parley live's, %(default)s)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed", type=float, default=1.0,
                    help="release the audio at this many times real time (default 1: as live); 0 fast-forwards")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here (and .md beside it)")
    args = ap.parse_args()

    from engine.packs.installed import resolve_pack
    from engine.whisper import WhisperModel

    pack = Path(args.pack) if args.pack else resolve_pack("whisper-base", "int8")
    model = WhisperModel.load(pack, device="cpu", threads=args.threads)
    audio, script = build_audio(args.minutes, Path(tempfile.gettempdir()) / "parley-bench-clips")
    pace = f"{args.speed:g}x real time" if args.speed > 0 else "fast-forward"
    print(f"{audio.size / SR / 60:.1f} min of audio ({pace}), step {args.step} s, {pack.name}", flush=True)

    rss = {"start": rss_mb()}
    words: list[str] = []
    max_buffer = [0.0]
    received = [0.0]

    def on_event(e):
        if isinstance(e, Committed):
            words.extend(w.text for w in e.words)
            received[0] = e.end_s
            if "5min" not in rss and e.end_s >= 300:
                rss["5min"] = rss_mb()
            rss["peak_seen"] = max(rss.get("peak_seen", 0.0), rss_mb())
        elif isinstance(e, Stats):
            max_buffer[0] = max(max_buffer[0], e.buffered_s)

    source = FileSource(audio=audio, realtime=args.speed > 0, speed=args.speed or 1.0, block_s=args.step)
    t = time.perf_counter()
    job = start_live_job(model, plan_live_job(language="en", min_step_s=args.step), on_event, source=source)
    last_print = time.perf_counter()
    while not job.wait(5):
        if time.perf_counter() - last_print > 60:
            last_print = time.perf_counter()
            print(f"  {received[0] / 60:5.1f} min in, rss {rss_mb():.0f} MB, {len(words)} words", flush=True)
    dropped = job.finish().dropped_blocks
    wall = time.perf_counter() - t
    rss["end"] = rss_mb()
    text = "".join(words)
    tokens = [clips.normalize_text(w) for w in words]
    loops = repeated_ngrams([t for t in tokens if t])
    base = rss.get("5min", rss["start"])
    print(f"\nwall {wall:.0f} s for {audio.size / SR:.0f} s of audio ({audio.size / SR / wall:.1f}x real time)")
    print(f"RSS MB: start {rss['start']:.0f}, at 5 min {base:.0f}, end {rss['end']:.0f}, peak seen "
          f"{rss.get('peak_seen', 0):.0f}; growth after 5 min {rss['end'] - base:+.0f} MB")
    print(f"committed words {len(words)}, WER vs script {clips.wer(script, text):.3f}, max buffer {max_buffer[0]:.1f} s")
    print(f"8-grams repeated back to back: {len(loops)}" + (f" e.g. {loops[0]!r}" if loops else ""))
    if args.out is not None:
        write_report(args, {
            "audio_min": round(audio.size / SR / 60, 1), "pace": pace, "step_s": args.step, "pack": pack.name,
            "wall_s": round(wall), "rss_mb": {k: round(v) for k, v in rss.items()},
            "rss_growth_after_5min_mb": round(rss["end"] - base), "committed_words": len(words),
            "wer": round(clips.wer(script, text), 4), "max_buffer_s": round(max_buffer[0], 1),
            "repeated_8grams": len(loops), "repeated_example": loops[0] if loops else None,
            "dropped_blocks": dropped if args.speed > 0 else None})
    if args.speed <= 0:
        print("dropped blocks: not measured (fast-forward: no clock to fall behind)")
        return 0
    print(f"dropped blocks: {dropped} of {audio.size // round(0.05 * SR)} (50 ms blocks the ring had to drop "
          "because the session fell behind)")
    return 1 if dropped else 0


def write_report(args, figures: dict) -> None:
    import json

    from bench import record

    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": "bench/soak.py " + " ".join(sys.argv[1:]),
              "machine": record.machine(), "versions": record.versions(), "threads": args.threads, **figures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    rss = figures["rss_mb"]
    args.out.with_suffix(".md").write_text(
        f"Soak, {report['date']}, {report['machine']['cores']} cores, {figures['pack']}, {args.threads} threads. `{report['command']}`\n\n"
        f"| audio | pace | wall | RSS at 5 min → end (growth) | 8-grams repeated | WER | max buffer | dropped |\n"
        f"|---|---|---|---|---|---|---|---|\n"
        f"| {figures['audio_min']} min | {figures['pace']} | {figures['wall_s']} s | {rss.get('5min', rss['start'])} → "
        f"{rss['end']} MB ({figures['rss_growth_after_5min_mb']:+d} MB) | {figures['repeated_8grams']} | "
        f"{100 * figures['wer']:.2f} % | {figures['max_buffer_s']} s | "
        f"{'not measured (fast-forward)' if figures['dropped_blocks'] is None else figures['dropped_blocks']} |\n")


if __name__ == "__main__":
    sys.exit(main())
