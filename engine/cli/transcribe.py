"""`parley transcribe FILE...`: the file job (engine.jobs) over each file, its progress drawn, its result written
as TXT, SRT, VTT or JSON to stdout, a file, or a folder (one file per input and format)."""

from __future__ import annotations

import sys
from pathlib import Path

from engine.cli.args import BEAM_SIZE, add_language_args, add_model_args, glossary_file, output_path
from engine.cli.progress import ProgressBar
from engine.errors import OutputError, ParleyError

FORMATS = ("txt", "srt", "vtt", "json")


def add_parser(subparsers) -> None:
    t = subparsers.add_parser("transcribe", help="transcribe (or translate to English) audio/video files")
    t.add_argument("files", nargs="+", type=Path)
    add_model_args(t)
    add_language_args(t, "each segment")
    t.add_argument("--bilingual", action="store_true",
                   help="with --translate-to: each cue holds the transcript line and its translation")
    t.add_argument("--beam-size", type=BEAM_SIZE, default=5, help="1 = greedy (default: %(default)s)")
    t.add_argument("--word-timestamps", action="store_true")
    t.add_argument("--glossary", type=glossary_file, default=None, metavar="FILE",
                   help="your words (names, jargon), one per line: recognition is primed with them and biased "
                        "toward them (see docs/training.md)")
    t.add_argument("--format", choices=(*FORMATS, "all"), default=None,
                   help="output format (default: from the -o extension, else txt)")
    t.add_argument("-o", "--output", type=output_path, default=None,
                   help="output file, or a folder (one file per input and format); default: stdout")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def output_stems(files: list[Path]) -> list[str]:
    """The name each input's output files get in an output folder: its stem, or — when two inputs share
    one (talk.wav and talk.mp3, or a/talk.wav and b/talk.wav) — its whole name, then a number, so that no
    output overwrites another's."""
    shared = {stem for stem in (f.stem for f in files) if sum(f.stem == stem for f in files) > 1}
    taken: set[str] = set()
    out = []
    for path in files:
        candidates = [path.name] if path.stem in shared else [path.stem]
        candidates += [f"{candidates[0]}-{i}" for i in range(2, len(files) + 2)]
        name = next(c for c in candidates if c not in taken)
        taken.add(name)
        out.append(name)
    return out


def _format_for(args, out: Path | None) -> list[str]:
    if args.format == "all":
        return list(FORMATS)
    if args.format:
        return [args.format]
    if out is not None and out.suffix.lstrip(".").lower() in FORMATS:
        return [out.suffix.lstrip(".").lower()]
    return ["txt"]


def run(args) -> int:
    from engine import subtitles
    from engine.jobs import open_model, open_translator, plan_file_job, run_file_job

    job = plan_file_job(None if args.language in (None, "", "auto") else args.language, args.task,
                        args.translate_to, args.bilingual, beam_size=args.beam_size,
                        word_timestamps=args.word_timestamps, glossary=args.glossary)
    missing = [f for f in args.files if not f.exists()]
    if missing:  # said before the model loads, every one of them, and nothing is transcribed
        raise ParleyError(f"{', '.join(map(str, missing))}: no such file" + ("s" if len(missing) > 1 else "")
                          + ("; nothing was transcribed" if len(missing) < len(args.files) else ""))
    model = open_model(args.model, args.precision, args.device, args.threads,
                       ProgressBar("model", enabled=not args.quiet).stage)
    translate_text = open_translator(job, model)  # a missing pair fails here, early

    many = len(args.files) > 1
    out = args.output
    stems = output_stems(args.files)
    if many and out is not None and out.suffix and not out.is_dir():
        raise ParleyError(f"-o {out}: with several input files, -o must be a folder")
    failures = 0
    for path, stem in zip(args.files, stems):
        bars = {"transcribing": ProgressBar(path.name, enabled=not args.quiet)}

        def transcribed(transcript, path=path, bars=bars) -> None:
            if not args.quiet:
                lang = transcript.language or "?"
                prob = transcript.language_probability
                detected = f" (detected, p={prob:.2f})" if job.options.language is None and prob is not None else ""
                print(f"{path.name}: language {lang}{detected}, {transcript.duration_s:.1f} s, "
                      f"{len(transcript.segments)} segments", file=sys.stderr)
            bars["translating"] = ProgressBar(f"{path.name} → {job.translate_to}", enabled=not args.quiet)

        try:
            result = run_file_job(model, path, job, translate_text=translate_text, on_transcript=transcribed,
                                  progress=lambda stage, done, total, bars=bars: bars[stage](done, total))
        except ParleyError as e:
            print(f"parley: error: {e}", file=sys.stderr)
            failures += 1
            continue
        if result.translation_error is not None:  # the transcript is kept: written untranslated, and said so
            print(f"parley: error: {path}: {result.translation_error}; the transcript "
                  f"({result.transcript.language or '?'}) is written without a translation", file=sys.stderr)
            failures += 1
        segments = result.cues(args.bilingual)
        for fmt in _format_for(args, out):
            if out is None:
                subtitles.write(segments, sys.stdout, fmt, bilingual=args.bilingual)
            else:
                if out.is_dir() or many or args.format == "all" or not out.suffix:
                    try:
                        out.mkdir(parents=True, exist_ok=True)
                    except OSError as e:
                        raise OutputError(f"-o {out}: could not create the folder: {e.strerror or e}") from e
                    dest = out / f"{stem}.{fmt}"
                else:
                    dest = out
                subtitles.write(segments, dest, fmt, bilingual=args.bilingual)
                if not args.quiet:
                    print(f"wrote {dest}", file=sys.stderr)
    return 1 if failures else 0
