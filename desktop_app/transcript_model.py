"""The transcript as a Qt table model: one row per segment, transcript and translation side by side.

Both panes are columns of one model, so a segment's transcript and its translation always sit on the
same row, aligned, however long either is. Committed rows are final; the one tentative row at the
end (the live hypothesis not yet agreed on) and draft translations are drawn grey.

The user may correct a committed row's transcript (double-click or F2): the row keeps what was heard,
is drawn in italics, and its correction can be saved as training data (engine.corrections). Later
commits never overwrite a corrected row.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

TIME_COL, TEXT_COL, TRANSLATION_COL = 0, 1, 2
TENTATIVE_KEY = "__tentative__"


@dataclasses.dataclass
class SegmentRow:
    key: object  # the engine's segment_id (live) or the segment's index (files)
    start_s: float
    end_s: float
    text: str
    translation: str = ""
    translation_note: str = ""  # why there is no translation (no pack for the pair, a damaged pack): shown only
    committed: bool = True
    translation_draft: bool = False
    words: tuple = ()
    # Live rows grow from several commits: each engine segment's text and translation, in order.
    parts: dict = dataclasses.field(default_factory=dict)  # key -> raw committed text (leading space kept)
    translated: dict = dataclasses.field(default_factory=dict)  # key -> (translation, draft)
    heard: str | None = None  # what the recogniser wrote, once the user has corrected the text
    saved_text: str | None = None  # the correction last saved as training data
    finished: bool = False  # live: the engine ended this sentence (SentenceEnd); later commits start a new row

    @property
    def corrected(self) -> bool:
        return self.heard is not None and self.text != self.heard

    def keys(self) -> list:
        return list(self.parts) or [self.key]


SENTENCE_END = (".", "?", "!", "。", "？", "！", "…", "؟", "।")
MERGE_GAP_S = 1.5  # a longer pause starts a new row
MERGE_MAX_CHARS = 220  # ... and so does a row this long (a speaker who never ends a sentence)


@dataclasses.dataclass(frozen=True)
class ExportSegment:
    """What the subtitle writers need: times, text, optional words and translation."""

    start_s: float
    end_s: float
    text: str
    words: tuple = ()
    translation: str | None = None


def format_clock(seconds: float, millis: bool = False) -> str:
    seconds = max(0.0, seconds)
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    text = f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
    if millis:
        text += f".{int(round((seconds - int(seconds)) * 1000)) % 1000:03d}"
    return text


class TranscriptModel(QAbstractTableModel):
    HEADERS = ("Time", "Transcript", "Translation")
    corrected = Signal(int)  # a row's transcript was edited by the user

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[SegmentRow] = []
        self._by_key: dict[object, int] = {}
        self._tentative_source: object = None  # the engine's id of the segment shown as the tail

    # Qt model interface
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else 3

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == TIME_COL:
                return format_clock(row.start_s)
            return row.text if col == TEXT_COL else (row.translation or row.translation_note)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{format_clock(row.start_s, True)} → {format_clock(row.end_s, True)}" + (
                "" if row.committed else " (tentative)")
            if col == TEXT_COL and row.corrected:
                tip += f"\ncorrected; heard: {row.heard}"
            elif col == TEXT_COL and row.committed:
                tip += "\ndouble-click to correct"
            return tip
        if role == Qt.ItemDataRole.FontRole and col == TEXT_COL and row.corrected:
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole:
            grey = (col == TIME_COL or not row.committed
                    or (col == TRANSLATION_COL and (row.translation_draft or not row.translation)))
            if grey:
                return QApplication.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text) \
                    if col != TIME_COL else QColor(128, 128, 128)
        if role == Qt.ItemDataRole.TextAlignmentRole and col == TIME_COL:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid() and index.column() == TEXT_COL and self._rows[index.row()].committed:
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def setData(self, index: QModelIndex | QPersistentModelIndex, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        """The user's correction of a committed transcript row."""
        if role != Qt.ItemDataRole.EditRole or not index.isValid() or index.column() != TEXT_COL:
            return False
        row = self._rows[index.row()]
        text = " ".join(str(value).split())
        if not row.committed or not text or text == row.text:
            return False
        if row.heard is None:
            row.heard = row.text
        row.text = text
        self._changed(index.row())
        self.corrected.emit(index.row())
        return True

    # Reading
    def corrections(self) -> list[SegmentRow]:
        """Corrected rows not yet saved as training data."""
        return [r for r in self._rows if r.corrected and r.text != r.saved_text]

    def mark_saved(self, rows: list[SegmentRow]) -> None:
        for r in rows:
            r.saved_text = r.text

    def rows(self) -> list[SegmentRow]:
        return list(self._rows)

    def committed_rows(self) -> list[SegmentRow]:
        return [r for r in self._rows if r.committed and r.text.strip()]

    def has_translation(self) -> bool:
        return any(r.translation.strip() for r in self._rows if r.committed)

    def transcript_text(self) -> str:
        return " ".join(r.text.strip() for r in self.committed_rows()).strip()

    def translation_text(self) -> str:
        return " ".join(r.translation.strip() for r in self.committed_rows() if r.translation).strip()

    def export_segments(self) -> list[ExportSegment]:
        return [ExportSegment(r.start_s, r.end_s, r.text.strip(), r.words, r.translation.strip() or None)
                for r in self.committed_rows()]

    def last_lines(self, count: int = 2) -> list[SegmentRow]:
        """The newest rows with text, tentative tail included (what the overlay shows)."""
        return [r for r in self._rows if r.text.strip() or r.translation.strip()][-count:]

    # Writing
    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._by_key.clear()
        self.endResetModel()

    def set_rows(self, rows: list[SegmentRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._by_key = {r.key: i for i, r in enumerate(self._rows)}
        self.endResetModel()

    def _changed(self, i: int) -> None:
        self.dataChanged.emit(self.index(i, 0), self.index(i, 2))

    def _tentative_index(self) -> int | None:
        return self._by_key.get(TENTATIVE_KEY)

    def upsert_committed(self, key, start_s: float, end_s: float, text: str, words: tuple = (),
                         merge: bool = False) -> int:
        """A committed segment: update its row, or add it before the tentative tail.

        With `merge` (live), a commit of a few words joins the previous row until a sentence ends,
        a pause or a length limit, so rows read as sentences rather than fragments.
        """
        if key in self._by_key and key != TENTATIVE_KEY:
            i = self._by_key[key]
            row = self._rows[i]
            if row.heard is not None:  # the user's correction stands
                if row.parts:
                    row.parts[key] = text
                return i
            if row.parts:
                row.parts[key] = text
                row.text = "".join(row.parts.values()).strip()
            else:
                row.start_s, row.end_s, row.text, row.words = start_s, end_s, text.strip(), words
            row.committed = True
            self._changed(i)
            return i
        tail = self._tentative_index()
        i = tail if tail is not None else len(self._rows)
        prev = self._rows[i - 1] if i > 0 else None
        if merge and prev is not None and prev.parts and self._can_join(prev, start_s):
            prev.parts[key] = text
            prev.text = "".join(prev.parts.values()).strip()
            prev.end_s = max(prev.end_s, end_s)
            prev.words = prev.words + tuple(words)
            self._by_key[key] = i - 1
            self._changed(i - 1)
            i -= 1
        else:
            self.beginInsertRows(QModelIndex(), i, i)
            parts = {key: text} if merge else {}
            self._rows.insert(i, SegmentRow(key, start_s, end_s, text.strip(), words=tuple(words), parts=parts))
            self._reindex()
            self.endInsertRows()
        if tail is not None:  # the committed text came out of the tail; the next partial refills it
            self.set_tentative("", end_s, end_s)
        return i

    def finish_sentence(self, key) -> None:
        """The engine ended the sentence whose last segment is ``key``: its row takes no further commits."""
        if key in self._by_key:
            self._rows[self._by_key[key]].finished = True

    @staticmethod
    def _can_join(row: SegmentRow, start_s: float) -> bool:
        return (row.committed and not row.finished and row.heard is None and not row.text.endswith(SENTENCE_END) and start_s - row.end_s < MERGE_GAP_S
                and len(row.text) < MERGE_MAX_CHARS)

    def set_tentative(self, text: str, start_s: float, end_s: float, source_key=None) -> None:
        if source_key is not None:
            self._tentative_source = source_key
        i = self._tentative_index()
        if i is None:
            if not text.strip():
                return
            i = len(self._rows)
            self.beginInsertRows(QModelIndex(), i, i)
            self._rows.append(SegmentRow(TENTATIVE_KEY, start_s, end_s, text, committed=False))
            self._reindex()
            self.endInsertRows()
            return
        row = self._rows[i]
        if not text.strip():
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            self._reindex()
            self.endRemoveRows()
            return
        row.start_s, row.end_s, row.text = start_s, end_s, text
        self._changed(i)

    def set_translation_note(self, key, note: str) -> bool:
        """Say in the translation's place why segment ``key`` has none (kept out of exports)."""
        i = self._by_key.get(key)
        if i is None:
            return False
        self._rows[i].translation_note = note
        self._changed(i)
        return True

    def set_translation(self, key, text: str, draft: bool = False) -> bool:
        i = self._by_key.get(key)
        if i is None and key == self._tentative_source:
            i = self._tentative_index()
        if i is None:
            return False
        row = self._rows[i]
        if row.parts and key in row.parts:
            row.translated[key] = (text, draft)
            done = [row.translated[k] for k in row.parts if k in row.translated]
            row.translation = " ".join(t.strip() for t, _ in done if t.strip())
            row.translation_draft = any(d for _, d in done)
        else:
            row.translation, row.translation_draft = text, draft
        self._changed(i)
        return True

    def _reindex(self) -> None:
        self._by_key = {k: i for i, r in enumerate(self._rows) for k in r.keys()}
