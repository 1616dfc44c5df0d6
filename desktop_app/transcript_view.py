"""The two panes: transcript | translation, a timestamp margin, word-wrapped rows that grow with text.

Auto-scroll follows new text only while the view is at the bottom; once the user scrolls up it stays
where they put it, and scrolling back to the bottom turns following on again.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from desktop_app.transcript_model import TEXT_COL, TIME_COL, TRANSLATION_COL, TranscriptModel


class TranscriptView(QTableView):
    def __init__(self, model: TranscriptModel, parent=None):
        super().__init__(parent)
        self.setModel(model)
        self.setObjectName("transcriptView")
        self.setWordWrap(True)
        self.setShowGrid(False)
        self.setAlternatingRowColors(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Committed transcript cells can be corrected (the model decides which cells are editable).
        self.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.verticalHeader().hide()
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header = self.horizontalHeader()
        header.setSectionResizeMode(TIME_COL, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(TEXT_COL, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(TRANSLATION_COL, QHeaderView.ResizeMode.Stretch)
        header.setHighlightSections(False)
        self.setStyleSheet("QTableView::item { padding: 4px 6px; }")

        self._follow = True
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)
        model.rowsInserted.connect(self._on_rows_inserted)
        model.dataChanged.connect(self._on_data_changed)
        model.modelReset.connect(self._schedule_full_resize)
        header.sectionResized.connect(self._on_section_resized)

        # Re-measuring every row is O(rows); do it once after a burst of resizes, not per pixel.
        self._full_resize = QTimer(self, singleShot=True, interval=60)
        self._full_resize.timeout.connect(self._resize_all_rows)

    @property
    def following(self) -> bool:
        return self._follow

    def set_translation_visible(self, visible: bool) -> None:
        self.setColumnHidden(TRANSLATION_COL, not visible)
        self._schedule_full_resize()

    def _at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 4

    def _on_scrolled(self, _value: int) -> None:
        self._follow = self._at_bottom()

    def _on_range_changed(self, _lo: int, _hi: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())

    def _on_rows_inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        for row in range(first, last + 1):
            self.resizeRowToContents(row)
        if self._follow:
            self.scrollToBottom()

    def _on_data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, _roles=()) -> None:
        for row in range(top_left.row(), bottom_right.row() + 1):
            self.resizeRowToContents(row)

    def _on_section_resized(self, index: int, _old: int, _new: int) -> None:
        if index != TIME_COL:
            self._schedule_full_resize()

    def _schedule_full_resize(self) -> None:
        self._full_resize.start()

    def _resize_all_rows(self) -> None:
        follow = self._follow
        self.resizeRowsToContents()
        if follow:
            self.scrollToBottom()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        self._schedule_full_resize()
