"""One run for bench/before_after.py, with the engine of another checkout: ``--root`` (a git worktree of some
commit) goes first on sys.path, so ``engine`` is that commit's. Works with the engine as it was before the
rooms (engine/file_source.py, no engine/jobs.py) and as it is now (engine.audio.file_source, the jobs).

    python bench/_before_after_run.py --root DIR --kind file|live --pack PACK --audio WAV [--option k=v ...]

Prints one JSON line: the text, the seconds the transcription took (wall and CPU, all threads; the model's
load is apart), the engine's folder (to show which code ran) and the live options it could not set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--kind", choices=("file", "live"), required=True)
    ap.add_argument("--pack", type=Path, required=True)
    ap.add_argument("--audio", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--option", action="append", default=[], help="a live option, name=JSON value")
    args = ap.parse_args()
    sys.path[0] = str(args.root.resolve())  # this script's own folder (HEAD's bench/) is not on the path
    import engine
    from engine.whisper import TranscribeOptions, WhisperModel

    t = time.perf_counter()
    model = WhisperModel.load(args.pack, device="cpu", threads=args.threads)
    load_s = time.perf_counter() - t
    skipped: list[str] = []
    wall, cpu = time.perf_counter(), time.process_time()
    if args.kind == "file":
        text = file_text(model, args.audio, TranscribeOptions)
    else:
        text, skipped = live_text(model, args.audio, dict(o.split("=", 1) for o in args.option))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"text": text, "wall_s": wall, "cpu_s": cpu, "load_s": load_s,
                      "engine": str(Path(engine.__file__).parent), "options_not_in_this_version": skipped}))
    return 0


def file_text(model, audio: Path, options_type) -> str:
    try:  # the file job, as parley transcribe and the app run it
        from engine.jobs import plan_file_job, run_file_job
    except ImportError:  # before: both front-ends called model.transcribe with these options
        return model.transcribe(audio, options_type(language="en")).text
    return run_file_job(model, audio, plan_file_job(language="en")).transcript.text


def live_text(model, audio: Path, settings: dict[str, str]) -> tuple[str, list[str]]:
    """The audio fed as fast as the recogniser takes it (no clock: deterministic), 1 s blocks as the soak."""
    from engine.events import Committed
    from engine.live.options import LiveOptions

    try:
        from engine.audio.file_source import FileSource
    except ImportError:
        from engine.file_source import FileSource
    fields = {f.name for f in dataclasses.fields(LiveOptions)}
    given = {k: json.loads(v) for k, v in settings.items() if k in fields}
    skipped = sorted(set(settings) - fields)
    words: list[str] = []

    def on_event(event) -> None:
        if isinstance(event, Committed):
            words.extend(w.text for w in event.words)

    source = FileSource(path=audio, realtime=False, block_s=1.0)
    try:  # the live job, as parley live and the app run it
        from engine.jobs import plan_live_job, start_live_job
    except ImportError:
        from engine.live.session import LiveSession

        session = LiveSession(model, LiveOptions(language="en", **given), on_event=on_event, source=source)
        session.start()
        session.wait()
        session.finish()
    else:
        job = start_live_job(model, plan_live_job(language="en", **given), on_event, source=source)
        job.wait()
        job.finish()
    return "".join(words), skipped


if __name__ == "__main__":
    sys.exit(main())
