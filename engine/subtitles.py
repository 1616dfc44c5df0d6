"""Transcripts out: SRT, WebVTT, plain text and JSON, optionally bilingual.

A segment is anything with ``start_s``, ``end_s`` and ``text``, and optionally ``translation``
(str | None) and ``words`` (objects with ``start_s``, ``end_s``, ``text``, ``probability``; word
texts carry their leading space, so joining them gives the text). engine.events.Committed fits.

Long segments become several cues of at most ``max_lines`` lines of ``max_line_chars`` (CJK
characters count double), timed from their words when there are any and by length otherwise.
A bilingual cue is the source line(s), then the translation line(s); bilingual segments are
not split, since a translation cannot be cut at the source's word boundaries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import unicodedata
from pathlib import Path
from typing import Iterable, Protocol, Sequence, TextIO

from engine.errors import OutputError

FORMATS = ("srt", "vtt", "txt", "json")


class WordLike(Protocol):
    start_s: float
    end_s: float
    text: str
    probability: float


class SegmentLike(Protocol):
    start_s: float
    end_s: float
    text: str
    # optional: translation: str | None; words: Sequence[WordLike]


@dataclasses.dataclass(frozen=True)
class CueLayout:
    max_line_chars: int = 42  # the usual broadcast limit for a subtitle line
    max_lines: int = 2  # lines per cue (source lines only, when bilingual)

    def __post_init__(self):
        if self.max_line_chars < 8 or self.max_lines < 1:
            raise ValueError(f"cue layout too small: {self.max_line_chars} chars x {self.max_lines} lines")


@dataclasses.dataclass(frozen=True)
class Cue:
    start_s: float
    end_s: float
    lines: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# Layout


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _units(text: str) -> list[tuple[str, bool]]:
    """Break text into unbreakable pieces: (piece, a space precedes it). Wide (CJK) characters are
    pieces of their own, so lines can break between them."""
    units: list[tuple[str, bool]] = []
    space, word = False, ""
    for ch in text:
        if ch.isspace():
            if word:
                units.append((word, space))
                word = ""
            space = bool(units)
        elif unicodedata.east_asian_width(ch) in "WF":
            if word:
                units.append((word, space))
                word, space = "", False
            if unicodedata.category(ch).startswith("P") and units and not space:
                units[-1] = (units[-1][0] + ch, units[-1][1])  # never start a line with "。"
            else:
                units.append((ch, space))
            space = False
        else:
            word += ch
    if word:
        units.append((word, space))
    return units


def _join(units: Sequence[tuple[str, bool]]) -> str:
    return "".join((" " if space and i else "") + piece for i, (piece, space) in enumerate(units))


def wrap(text: str, max_line_chars: int = 42) -> list[str]:
    """Greedy word wrap by display width; a word longer than a line gets a line of its own.
    Two-line results are balanced (the break that makes the longer line shortest)."""
    units = _units(" ".join(text.split()))
    lines: list[list[tuple[str, bool]]] = [[]]
    for unit in units:
        candidate = lines[-1] + [unit]
        if lines[-1] and _width(_join(candidate)) > max_line_chars:
            lines.append([unit])
        else:
            lines[-1] = candidate
    if len(lines) == 2:
        both = lines[0] + lines[1]
        best = min(range(1, len(both)), key=lambda k: max(_width(_join(both[:k])), _width(_join(both[k:]))))
        lines = [both[:best], both[best:]]
    return [_join(line) for line in lines if line]


def _pieces(segment) -> list[tuple[str, float, float]]:
    """(text, start_s, end_s) of the segment's words, or of its units timed by length if it has none."""
    words = getattr(segment, "words", None) or ()
    words = [w for w in words if w.text.strip()]
    if words:
        return [(w.text, max(w.start_s, segment.start_s), min(max(w.end_s, w.start_s), segment.end_s)) for w in words]
    units = _units(" ".join(segment.text.split()))
    total = sum(_width(p) + 1 for p, _ in units) or 1
    span = max(segment.end_s - segment.start_s, 0.0)
    out, t = [], segment.start_s
    for piece, space in units:
        dt = span * (_width(piece) + 1) / total
        out.append(((" " if space else "") + piece, t, t + dt))
        t += dt
    return out


def cues(segments: Iterable[SegmentLike], bilingual: bool = False, layout: CueLayout = CueLayout()) -> list[Cue]:
    """Segments -> cues that fit the layout (empty segments are skipped)."""
    out: list[Cue] = []
    for seg in segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        start, end = max(seg.start_s, 0.0), max(seg.end_s, seg.start_s, 0.0)
        if bilingual:
            translation = " ".join((getattr(seg, "translation", None) or "").split())
            lines = wrap(text, layout.max_line_chars) + (wrap(translation, layout.max_line_chars) if translation else [])
            out.append(Cue(start, end, tuple(lines)))
            continue
        if len(wrap(text, layout.max_line_chars)) <= layout.max_lines:
            out.append(Cue(start, end, tuple(wrap(text, layout.max_line_chars))))
            continue
        group: list[tuple[str, float, float]] = []
        for piece in _pieces(seg):
            trial = "".join(p for p, _, _ in group + [piece])
            if group and len(wrap(trial, layout.max_line_chars)) > layout.max_lines:
                out.append(_cue(group, layout))
                group = []
            group.append(piece)
        if group:
            out.append(_cue(group, layout))
    return out


def _cue(group: list[tuple[str, float, float]], layout: CueLayout) -> Cue:
    text = "".join(p for p, _, _ in group)
    return Cue(group[0][1], max(group[-1][2], group[0][1]), tuple(wrap(text, layout.max_line_chars)))


# ---------------------------------------------------------------------------------------------
# Writers


def _timestamp(t: float, separator: str) -> str:
    ms = max(0, round(t * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def write_srt(segments: Iterable[SegmentLike], file: TextIO, bilingual: bool = False,
              layout: CueLayout = CueLayout()) -> None:
    for i, cue in enumerate(cues(segments, bilingual, layout), 1):
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        file.write(f"{i}\n{_timestamp(cue.start_s, ',')} --> {_timestamp(cue.end_s, ',')}\n{text}\n\n")


def write_vtt(segments: Iterable[SegmentLike], file: TextIO, bilingual: bool = False,
              layout: CueLayout = CueLayout()) -> None:
    file.write("WEBVTT\n\n")
    for cue in cues(segments, bilingual, layout):
        text = "\n".join(_vtt_escape(line) for line in cue.lines)
        file.write(f"{_timestamp(cue.start_s, '.')} --> {_timestamp(cue.end_s, '.')}\n{text}\n\n")


def _vtt_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_txt(segments: Iterable[SegmentLike], file: TextIO, bilingual: bool = False) -> None:
    """One line per segment; bilingual: the translation on the next line and a blank line after."""
    for seg in segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        if bilingual:
            translation = " ".join((getattr(seg, "translation", None) or "").split())
            file.write(f"{text}\n{translation}\n\n" if translation else f"{text}\n\n")
        else:
            file.write(text + "\n")


def write_json(segments: Iterable[SegmentLike], file: TextIO, bilingual: bool = False) -> None:
    """{"text": ..., "segments": [{"start_s", "end_s", "text", "translation"?, "words"?}]}; the
    translation is written whenever a segment has one (``bilingual`` is accepted for symmetry)."""
    items = []
    for seg in segments:
        item = {"start_s": round(seg.start_s, 3), "end_s": round(seg.end_s, 3), "text": seg.text.strip()}
        translation = getattr(seg, "translation", None)
        if translation is not None:
            item["translation"] = translation.strip()
        words = getattr(seg, "words", None)
        if words:
            item["words"] = [
                {"start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3), "text": w.text,
                 "probability": round(float(getattr(w, "probability", 1.0)), 4)}
                for w in words
            ]
        items.append(item)
    doc = {"text": " ".join(i["text"] for i in items if i["text"]), "segments": items}
    json.dump(doc, file, ensure_ascii=False, indent=2)
    file.write("\n")


_WRITERS = {"srt": write_srt, "vtt": write_vtt, "txt": write_txt, "json": write_json}


def format_for_path(path: str | os.PathLike) -> str:
    """"srt", "vtt", "txt" or "json" from the file's suffix."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt == "webvtt":
        fmt = "vtt"
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown subtitle format {fmt!r}; use one of .srt, .vtt, .txt, .json")
    return fmt


def write(segments: Iterable[SegmentLike], dest: str | os.PathLike | TextIO, fmt: str | None = None,
          bilingual: bool = False) -> None:
    """Write to a path (format from its suffix unless ``fmt`` is given; replaced atomically, UTF-8)
    or to an open text stream (``fmt`` required)."""
    segments = list(segments)
    if isinstance(dest, (str, os.PathLike)):
        fmt = fmt or format_for_path(dest)
        if fmt not in FORMATS:
            raise ValueError(f"unknown subtitle format {fmt!r}; use one of {', '.join(FORMATS)}")
        buf = io.StringIO()
        _WRITERS[fmt](segments, buf, bilingual=bilingual)
        write_text_atomic(Path(dest), buf.getvalue())
        return
    if fmt not in FORMATS:
        raise ValueError(f"writing to a stream needs fmt, one of {', '.join(FORMATS)}; got {fmt!r}")
    _WRITERS[fmt](segments, dest, bilingual=bilingual)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through ``path.part``: the file appears whole or not at all, an existing
    one is replaced only once the new one is complete, and a failed write leaves no ``.part`` behind."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        reason = e.strerror or str(e)
        if not path.parent.is_dir():
            reason = f"the folder {path.parent} does not exist"
        raise OutputError(f"{path}: could not write it: {reason}; check that the folder exists, is writable "
                          "and has free space, or write somewhere else") from e
