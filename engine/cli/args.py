"""Argument checking shared by every `parley` subcommand: a bad value is one line naming the option.

argparse calls these ``type=`` functions while it parses, so a value out of range never reaches a model
(``--beam-size 0`` used to end in a ValueError traceback from the decoder, ``-o /missing/dir/out.srt`` in a
FileNotFoundError after the whole file had been transcribed). :class:`ParleyArgumentParser` turns every
parse error into ``parley: error: argument --beam-size: …`` on one line, exit code 2.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

from engine.packs.catalogue import DEFAULT_MODEL, PRECISIONS


class ParleyArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), naming the option and where help is.

    Subparsers made with ``add_subparsers().add_parser`` inherit the class."""

    def error(self, message: str):
        self.exit(2, f"parley: error: {message} (see `{self.prog} --help`)\n")


def int_in(low: int, high: int, why: str = "") -> Callable[[str], int]:
    """A ``type=`` for a whole number in [low, high]; ``why`` explains the upper bound."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}{why}, got {value}")
        return value

    return parse


def seconds_in(low: float, high: float, low_open: bool = True, why: str = "",
               high_open: bool = False) -> Callable[[str], float]:
    """A ``type=`` for seconds in (low, high] (``low_open=False``: from low; ``high_open``: below high); no nan,
    no inf."""
    bound = f"{'more than' if low_open else 'at least'} {low:g} and {'less than' if high_open else 'at most'} {high:g}{why}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
        if (not math.isfinite(value) or value < low or (low_open and value == low) or value > high
                or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


def probability(text: str) -> float:
    """A ``type=`` for a probability in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a probability (more than 0, at most 1), got {text!r}") from None
    if not 0 < value <= 1:  # (nan fails this too)
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1, got {text}")
    return value


THREADS = int_in(1, 256)
BEAM_SIZE = int_in(1, 32, " (wider beams only cost time)")


def glossary_file(text: str):
    """A ``type=`` for ``--glossary``: the glossary file read and checked before any model loads; a bad line is
    one error naming the file and the line (engine.glossary)."""
    from engine.glossary import GlossaryError, load_glossary

    try:
        glossary = load_glossary(Path(text).expanduser())
    except GlossaryError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    if not glossary:
        raise argparse.ArgumentTypeError(f"{text}: the glossary has no terms; write one term per line")
    return glossary


def output_path(text: str) -> Path:
    """A ``type=`` for ``-o``: a file whose folder exists and is writable, or a folder that can be made.

    Checked before any audio is decoded, so a typo in the folder never costs a transcription."""
    path = Path(text).expanduser()
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a file (talk.srt) or a folder")
    if path.is_dir():
        folder = path
    elif path.suffix:  # a file: its folder must be there
        folder = path.parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{path}: the folder {folder} does not exist; create it first")
    else:  # a folder made on demand: the nearest existing parent must take it
        folder = next((p for p in path.parents if p.exists()), Path("."))
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{path}: the folder {folder} is not writable")
    if path.exists() and not path.is_dir() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{path}: the file exists and is read-only")
    return path


def add_model_args(p: argparse.ArgumentParser, device_flag: str = "--device") -> None:
    """The Whisper model a job opens (engine.jobs.open_model) and where it runs (``parley live`` calls the flag
    --compute: its --device is the audio input)."""
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="a model name (built on first use) or a pack folder (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="pack precision (default: int8 on CPU, fp16 on CUDA)")
    p.add_argument(device_flag, choices=("auto", "cpu", "cuda"), default="auto", help="where the model runs")
    p.add_argument("--threads", type=THREADS, default=None, help="CPU threads for onnxruntime (default: all cores)")


def add_language_args(p: argparse.ArgumentParser, translated: str) -> None:
    """What is spoken and what comes out, by the jobs' one task rule (engine.jobs): ``translated`` says what
    --translate-to translates ("each segment", "each sentence")."""
    p.add_argument("--language", default="auto", help="spoken language code (en, de, ...) or auto")
    p.add_argument("--task", choices=("transcribe", "translate"), default="transcribe",
                   help="translate = speech to English text")
    p.add_argument("--translate-to", default=None, metavar="LANG",
                   help=f"also translate {translated}: 'en' with Whisper's own speech translation, other languages "
                        "with an installed text-translation pack (see `parley translate`)")
