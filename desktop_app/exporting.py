"""Export the committed transcript (and its translation) as TXT, SRT, WebVTT or JSON; copy as text."""

from __future__ import annotations

from pathlib import Path

from desktop_app.transcript_model import TranscriptModel

# (format, file-dialog filter) in the order the Export menu lists them
FORMATS: tuple[tuple[str, str], ...] = (
    ("txt", "Plain text (*.txt)"),
    ("srt", "SubRip subtitles (*.srt)"),
    ("vtt", "WebVTT subtitles (*.vtt)"),
    ("json", "JSON with times and words (*.json)"),
)


def export(model: TranscriptModel, path: str | Path, fmt: str, bilingual: bool | None = None) -> Path:
    """Write the committed segments; bilingual (transcript + translation) whenever a translation exists."""
    from engine.subtitles import write

    segments = model.export_segments()
    if not segments:
        raise ValueError("there is no transcript to export yet")
    if bilingual is None:
        bilingual = model.has_translation()
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(f".{fmt}")
    write(segments, path, fmt, bilingual=bilingual)
    return path


def clipboard_text(model: TranscriptModel) -> str:
    """The transcript as paragraphs; with a translation, each segment is followed by its translation."""
    rows = model.committed_rows()
    if not model.has_translation():
        return "\n".join(r.text.strip() for r in rows)
    return "\n\n".join(f"{r.text.strip()}\n{r.translation.strip()}".rstrip() for r in rows)
