"""`parley live` and `parley devices`: the live session on the command line.

Committed text goes to stdout, one line per sentence as it is committed (with its time in the
stream); the tentative tail is redrawn in place on stderr when stderr is a terminal. Ctrl-C stops
listening and still transcribes what was captured; ``-o`` writes the committed text as TXT, SRT, VTT
or JSON when the session ends. With ``--translate-to LANG`` each finished sentence's translation is
printed under it ("  → ...") and ``-o`` writes bilingual cues.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from pathlib import Path

from engine.cli.args import (BEAM_SIZE, add_language_args, add_model_args, glossary_file, output_path, probability,
                             seconds_in)
from engine.errors import ParleyError
from engine.events import Committed, Error, Partial, SentenceEnd, Stats, Status, Translated
from engine.live.options import LiveOptions

log = logging.getLogger("parley")

FORMATS = ("txt", "srt", "vtt", "json")


def add_parsers(sub) -> None:
    sub.add_parser("devices", help="audio inputs (microphones, and monitors of what the computer plays)")

    p = sub.add_parser("live", help="transcribe (or translate) a microphone, the computer's audio, or a file, live")
    p.add_argument("--device", default=None, metavar="NAME|INDEX",
                   help="audio input (see `parley devices`; default: the system's default input)")
    p.add_argument("--input", type=Path, default=None, metavar="FILE",
                   help="feed a file through the live pipeline instead of a device")
    p.add_argument("--realtime", action="store_true", help="with --input: release the file at 1x speed")
    add_language_args(p, "each sentence")
    add_model_args(p, device_flag="--compute")
    p.add_argument("--beam-size", type=BEAM_SIZE, default=1)
    p.add_argument("--final-beam", type=BEAM_SIZE, default=LiveOptions.final_beam_size, metavar="N",
                   help="beam that searches again the decode finishing an utterance at a pause when it was unsure "
                        "of a word, if there is time (--final-beam-within) (default %(default)s; 1: never)")
    p.add_argument("--final-beam-below", type=probability, default=LiveOptions.final_beam_below_p, metavar="P",
                   help="with --final-beam: search again with that beam only when the greedy decode was unsure "
                        "of a word (its least probable word below P; 1: always decode with the beam, in place of greedy, "
                        "whatever it costs: --final-beam-within does not apply)")
    p.add_argument("--final-beam-within", type=seconds_in(0, 60), default=LiveOptions.final_beam_within_s,
                   metavar="S",
                   help="with --final-beam: search only if, at what the last searches cost, the sentence is still "
                        "final within S seconds of the speaker stopping — never once the recogniser is behind "
                        "(default %(default)s; 60: search whatever it costs)")
    p.add_argument("--step", type=seconds_in(0, 10), default=LiveOptions.min_step_s, metavar="S",
                   help="seconds of new audio per decode, at least (default %(default)s; 0.5: tentative text twice "
                        "as often, for twice the CPU and, with --agree-gap 1, a few more mistakes)")
    p.add_argument("--agree-gap", type=seconds_in(0, 10, low_open=False), default=LiveOptions.policy.agree_gap_s,
                   metavar="S",
                   help="commit what a hypothesis shares with one decoded at least S seconds earlier "
                        "(default %(default)s: the previous one); 1 with --step 0.5")
    p.add_argument("--pause", default=LiveOptions.finalize_pause_s, metavar="S",
                   type=seconds_in(0, LiveOptions.policy.pause_reset_s, high_open=True,
                                   why=" (a pause that long ends the utterance anyway)"),
                   help="a pause this long finishes what was said: one decode commits it and its translation "
                        "starts (default %(default)s)")
    p.add_argument("--no-pause-final", action="store_true",
                   help="commit only what two hypotheses agree on, even at pauses (the behaviour before 0.2)")
    p.add_argument("--hold", type=seconds_in(0, 7.5, low_open=False, why=" (the buffer is cut at 8 s)"),
                   default=LiveOptions.hold_commits_s, metavar="S",
                   help="with pause finalisation, an utterance shorter than S seconds stays tentative until its "
                        "pause commits it whole (default %(default)s; 0: commit what two decodes agree on at once)")
    p.add_argument("--first-step", type=seconds_in(0, 10), default=LiveOptions.first_step_s, metavar="S",
                   help="speech before an utterance's first decode (default %(default)s)")
    p.add_argument("--first-draft", type=seconds_in(0, 10), default=None, metavar="S",
                   help="speech before an utterance's draft decode, shown before its first decode and never "
                        f"committed (default {LiveOptions.first_draft_s}, when less than --first-step)")
    p.add_argument("--no-first-draft", action="store_true", help="no draft decode: first words at --first-step")
    p.add_argument("--partials", action="store_true",
                   help="print every tentative update to stderr as a line ('~ text'), also when it is not a terminal")
    p.add_argument("--encoder", choices=("audio", "full"), default="audio",
                   help="audio: encode only the buffered audio (fast); full: pad to 30 s as Whisper does")
    p.add_argument("--no-vad", action="store_true", help="decode without the voice-activity gate")
    p.add_argument("--glossary", type=glossary_file, default=None, metavar="FILE",
                   help="your words (names, jargon), one per line: recognition is primed with them and biased "
                        "toward them (see docs/training.md)")
    p.add_argument("--duration", type=seconds_in(0, 86400, why=" (24 h; leave it out to listen until Ctrl-C)"),
                   default=None, metavar="S", help="stop after this many seconds")
    p.add_argument("--format", choices=FORMATS, default=None, help="format of -o (default: from its extension)")
    p.add_argument("-o", "--output", type=output_path, default=None, help="also write the committed text here")
    p.add_argument("-q", "--quiet", action="store_true", help="no tentative text or status on stderr")


def cmd_devices(args) -> int:
    from engine.audio.capture import list_devices

    devices = list_devices()
    shown = [d for d in devices if d.max_input_channels > 0]
    if not shown:
        print("no audio inputs found (is a sound server running? on Linux: PulseAudio or PipeWire)")
        return 1
    print("choose one with `parley live --device ID`")
    print(f"{'ID':<40}  {'rate':>6}  {'ch':>2}  name")
    for d in shown:
        mark = "  [what the computer plays]" if d.is_monitor else ""
        ident = d.pulse_source or str(d.index)
        print(f"{ident:<40}  {d.default_samplerate:6.0f}  {d.max_input_channels:>2}  {d.name} ({d.hostapi}){mark}")
    return 0


def _joined(fragments: list[Committed]) -> str:
    """Fragments' words as written (Whisper's leading spaces: CJK text joins without them)."""
    words = "".join(w.text for c in fragments for w in c.words)
    return words.strip() if words.strip() else " ".join(c.text for c in fragments)


def _clock(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60)
    return f"{int(m):02d}:{s:04.1f}"


class _Printer:
    """Prints each sentence as the recogniser finishes it (SentenceEnd); the tentative tail redrawn on a
    terminal's stderr."""

    def __init__(self, quiet: bool, partial_lines: bool = False):
        self.quiet = quiet
        self.partial_lines = partial_lines
        self.tty = sys.stderr.isatty()
        self.open: list[Committed] = []  # fragments of the sentence not finished yet
        self._tail = ""
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self.dropped = 0  # audio blocks the capture ring dropped, as the last Stats said

    def __call__(self, event) -> None:
        with self._lock:
            if isinstance(event, Committed):
                self.open.append(event)
                if self.partial_lines:
                    print(f"+ [{_clock(event.start_s)} → {_clock(event.end_s)}] {event.text}", file=sys.stderr,
                          flush=True)
            elif isinstance(event, SentenceEnd):
                self._flush()
            elif isinstance(event, Partial):
                self._tail = event.text
                if self.partial_lines:
                    print(f"~ {event.text}", file=sys.stderr, flush=True)
                self._redraw()
            elif isinstance(event, Translated):
                if event.error is not None:  # the sentence stays; its line says why it has no translation
                    self._clear()
                    print(f"    → (not translated: {event.error})", flush=True)
                    return
                if event.draft:
                    if not self.quiet:
                        self._tail = f"{self._tail}  → {event.text}"
                        self._redraw()
                    return
                self._clear()
                print(f"    → {event.text}", flush=True)
            elif isinstance(event, Error):
                self._clear()
                print(f"parley: error: {event.message}", file=sys.stderr)
                self.errors.append(event.message)
            elif isinstance(event, Status) and not self.quiet:
                self._clear()
                print(f"[{event.message}]", file=sys.stderr)
            elif isinstance(event, Stats):
                if event.dropped_blocks > self.dropped and not self.quiet:
                    log.warning("dropped %d audio blocks: the machine is not keeping up", event.dropped_blocks)
                self.dropped = max(self.dropped, event.dropped_blocks)

    def _flush(self) -> None:
        if self.open:
            first, last = self.open[0], self.open[-1]
            self._clear()
            print(f"[{_clock(first.start_s)} → {_clock(last.end_s)}] {_joined(self.open)}",
                  flush=True)
            self.open = []

    def finish(self) -> None:
        with self._lock:
            self._tail = ""
            self._clear()
            self._flush()

    def _redraw(self) -> None:
        if self.tty and not self.quiet:
            tail = self._tail[-(100):]
            sys.stderr.write(f"\r\033[K\033[2m{tail}\033[0m")
            sys.stderr.flush()

    def _clear(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\r\033[K")


def live_options(args) -> LiveOptions:
    """The LiveOptions of what `parley live` was given (ParleyError for a combination that cannot be)."""
    from engine.jobs import plan_live_job

    if args.step <= 0 or args.agree_gap < 0 or args.first_step <= 0:
        raise ParleyError(f"--step and --first-step must be > 0 and --agree-gap >= 0 (got {args.step}, "
                          f"{args.first_step} and {args.agree_gap})")
    if args.first_draft is not None and args.first_draft >= args.first_step:
        raise ParleyError(f"--first-draft must be less than --first-step (got {args.first_draft} and "
                          f"{args.first_step}); --no-first-draft turns it off")
    first_draft = args.first_draft if args.first_draft is not None else LiveOptions.first_draft_s
    if args.no_first_draft or first_draft is None or first_draft >= args.first_step:
        first_draft = None  # (a first step at or before the draft's time shows the first words itself)
    return plan_live_job(args.language, args.task, args.translate_to, device=_device_arg(args.device),
                         beam_size=args.beam_size, min_step_s=args.step, first_step_s=args.first_step,
                         first_draft_s=first_draft, finalize_pause_s=None if args.no_pause_final else args.pause,
                         hold_commits_s=args.hold, final_beam_size=args.final_beam,
                         final_beam_below_p=args.final_beam_below, final_beam_within_s=args.final_beam_within,
                         encoder_frames=args.encoder,
                         vad=not args.no_vad, glossary=args.glossary,
                         policy=dataclasses.replace(LiveOptions.policy, agree_gap_s=args.agree_gap))


def cmd_live(args) -> int:
    from engine import subtitles
    from engine.jobs import open_model, start_live_job

    if args.realtime and args.input is None:
        raise ParleyError("--realtime applies to --input FILE")
    if args.input is not None and not args.input.exists():
        raise ParleyError(f"{args.input}: no such file")
    fmt = args.format or (args.output.suffix.lstrip(".").lower() if args.output else None)
    if args.output is not None and fmt not in FORMATS:
        raise ParleyError(f"-o {args.output}: give --format ({', '.join(FORMATS)}) or a file ending in one")
    options = live_options(args)

    model = open_model(args.model, args.precision, args.compute, args.threads)
    source = None
    if args.input is not None:
        from engine.audio.file_source import FileSource

        source = FileSource(args.input, realtime=args.realtime)
    printer = _Printer(args.quiet, args.partials)
    job = start_live_job(model, options, printer, source=source)
    if not args.quiet and args.input is None:
        print("[listening; Ctrl-C stops and finishes what was heard]", file=sys.stderr)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set()) if threading.current_thread() is threading.main_thread() else None
    try:
        result = job.run(stop, args.duration)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    printer.finish()
    if not args.quiet:
        searched, skipped = result.searches
        print(f"[stopped: {result.steps} decodes, {searched} searched at a pause ({skipped} left greedy: "
              f"late), {result.dropped_blocks} audio blocks dropped]", file=sys.stderr)
    if args.output is not None:
        subtitles.write(result.cues(bilingual=bool(options.translate_to)), args.output, fmt,
                        bilingual=bool(options.translate_to))
        if not args.quiet:
            print(f"wrote {args.output}", file=sys.stderr)
    return 1 if result.failed else 0


def _device_arg(device: str | None):
    if device is None:
        return None
    return int(device) if device.strip().isdigit() else device
