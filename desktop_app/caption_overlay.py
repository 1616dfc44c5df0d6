"""The on-screen caption: a frameless, translucent, always-on-top window with the last lines.

It is a top-level window of its own (no parent), so it stays up while the main window is minimised.
Drag it anywhere, resize it from the corner grip, right-click for font size, background opacity,
what to show and click-through. Its geometry and style live in the app settings.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QLabel, QMenu, QSizeGrip, QVBoxLayout, QWidget

from desktop_app.settings import AppSettings
from desktop_app.transcript_model import SegmentRow

DEFAULT_RECT = (200, 200, 900, 140)


class CaptionOverlay(QWidget):
    visibility_changed = Signal(bool)

    def __init__(self, settings: AppSettings):
        super().__init__(None)
        self.settings = settings
        self.setObjectName("captionOverlay")
        self.setWindowTitle("Parley captions")
        self.setWindowFlags(Qt.WindowType.Window | Qt.WindowType.FramelessWindowHint
                            | Qt.WindowType.WindowStaysOnTopHint | Qt.WindowType.Tool)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setMinimumSize(240, 60)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 10, 18, 6)
        self.label = QLabel(self)
        self.label.setObjectName("captionText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
        layout.addWidget(self.label, 1)
        self.grip = QSizeGrip(self)
        layout.addWidget(self.grip, 0, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight)

        self._rows: list[SegmentRow] = []
        self._plain = ""
        self._drag_from: QPoint | None = None
        # Moves arrive per pixel while dragging; write the settings once the window comes to rest.
        self._save_timer = QTimer(self, singleShot=True, interval=300)
        self._save_timer.timeout.connect(self.save_geometry)

        x, y, w, h = settings.overlay_rect or DEFAULT_RECT
        self.setGeometry(QRect(x, y, w, h))
        self.set_click_through(settings.overlay_click_through)
        self._apply_style()

    # Content
    def show_rows(self, rows: list[SegmentRow]) -> None:
        self._rows = rows[-2:]
        self._render()

    def caption_text(self) -> str:
        """The caption as plain text, lines joined by newlines (what a user reads)."""
        return self._plain

    def _render(self) -> None:
        mode = self.settings.overlay_mode
        pt = self.settings.overlay_font_pt
        small = max(8, int(pt * 0.72))
        sized: list[tuple[str, str, int]] = []  # (text, colour, size)
        if mode == "both":
            # The newest finished sentence over its translation (large), and under them the next sentence's
            # tentative words in grey while they are spoken: a translation stays up until the next is final.
            finished = [r for r in self._rows if r.committed and r.text.strip()]
            tail = [r for r in self._rows if not r.committed and r.text.strip()]
            if tail and tail[-1].translation.strip():  # a draft translation of what is being said: that
                finished = []                           # is newer than any finished one (drafts on)
                sized.append((tail[-1].text.strip(), "#a8a8a8", small))
                sized.append((tail[-1].translation.strip(), "#bbbbbb", pt))
                tail = []
            if finished:
                last = finished[-1]
                sized.append((last.text.strip(), "#cfcfcf" if last.translation.strip() else "#d8d8d8",
                              small if last.translation.strip() else pt))
                if last.translation.strip():
                    sized.append((last.translation.strip(), "#ffffff" if not last.translation_draft else "#bbbbbb",
                                  pt))
            if tail:
                sized.append((tail[-1].text.strip(), "#a8a8a8", small if finished else pt))
        else:
            for row in self._rows:
                text = (row.translation if mode == "translation" else row.text).strip()
                if text:
                    sized.append((text, "#ffffff" if row.committed else "#b0b0b0", pt))
        sized = self._fit(sized)
        self._plain = "\n".join(t for t, _, _ in sized)
        parts = [f'<div style="color:{colour}; font-size:{size}pt;">{html.escape(text)}</div>'
                 for text, colour, size in sized]
        self.label.setText("".join(parts))

    def _fit(self, lines: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
        """Keep what fits the window, newest first: a long line loses its oldest words ("… rest"), and
        an older line that has no room left is not shown, so the newest words are never cut off."""
        layout = self.layout()
        margins = layout.contentsMargins()
        width = max(60, self.width() - margins.left() - margins.right())
        # The label's share of the window: all of it but the margins and the resize grip's row.
        room = max(20, self.height() - margins.top() - margins.bottom() - self.grip.sizeHint().height()
                   - layout.spacing())
        kept: list[tuple[str, str, int]] = []
        for text, colour, size in reversed(lines):
            font = QFont(self.label.font())
            font.setPointSizeF(size)
            font.setWeight(QFont.Weight.DemiBold)
            metrics = QFontMetrics(font)
            spaced = " " in text
            tokens = text.split(" ") if spaced else list(text)  # CJK: no spaces, cut between characters

            def shown(start: int) -> str:
                return ("… " if start else "") + (" " if spaced else "").join(tokens[start:])

            def height(start: int) -> int:  # rich text lays lines out a little looser than the metrics
                return int(1.12 * metrics.boundingRect(QRect(0, 0, width, 1 << 20), Qt.TextFlag.TextWordWrap,
                                                       shown(start)).height()) + 2

            lo, hi = 0, len(tokens) - 1  # the first start index that fits (binary search; hi always shows)
            while lo < hi:
                mid = (lo + hi) // 2
                if height(mid) <= room:
                    hi = mid
                else:
                    lo = mid + 1
            need = height(lo)
            if kept and need > room:
                break
            kept.insert(0, (shown(lo), colour, size))
            room -= need
            if room <= 0:
                break
        return kept

    # Style
    def _apply_style(self) -> None:
        self.label.setStyleSheet("QLabel { background: transparent; font-weight: 600; }")
        self._render()
        self.update()

    def set_font_size(self, pt: int) -> None:
        self.settings.overlay_font_pt = pt
        self._apply_style()

    def set_opacity(self, opacity: float) -> None:
        self.settings.overlay_opacity = opacity
        self.update()

    def set_mode(self, mode: str) -> None:
        self.settings.overlay_mode = mode
        self._render()

    def set_click_through(self, on: bool) -> None:
        """Clicks pass to the window underneath; turn it off again from the main window's View menu."""
        self.settings.overlay_click_through = on
        was_visible = self.isVisible()
        self.setWindowFlag(Qt.WindowType.WindowTransparentForInput, on)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, on)
        if was_visible:  # changing window flags hides a window; bring it back
            self.show()

    def click_through(self) -> bool:
        return self.settings.overlay_click_through

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(16, 16, 16, int(255 * self.settings.overlay_opacity)))
        p.drawRoundedRect(self.rect(), 12, 12)

    # Geometry and dragging
    def save_geometry(self) -> None:
        g = self.geometry()
        self.settings.overlay_rect = (g.x(), g.y(), g.width(), g.height())

    def moveEvent(self, event) -> None:  # noqa: N802
        super().moveEvent(event)
        self._save_timer.start()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._render()  # what fits depends on the size
        self._save_timer.start()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = event.globalPosition().toPoint() - self.frameGeometry().topLeft()
            event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._drag_from is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self.move(event.globalPosition().toPoint() - self._drag_from)
            event.accept()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._drag_from = None
        self.save_geometry()

    def contextMenuEvent(self, event) -> None:  # noqa: N802
        self.build_menu(self).exec(event.globalPos())

    def build_menu(self, parent) -> QMenu:
        menu = QMenu("Captions", parent)
        bigger = menu.addAction("Larger text")
        bigger.triggered.connect(lambda: self.set_font_size(self.settings.overlay_font_pt + 2))
        smaller = menu.addAction("Smaller text")
        smaller.triggered.connect(lambda: self.set_font_size(self.settings.overlay_font_pt - 2))
        opacity_menu = menu.addMenu("Background opacity")
        group = QActionGroup(opacity_menu)
        for pct in (0, 25, 50, 60, 75, 90, 100):
            act = QAction(f"{pct} %", opacity_menu, checkable=True)
            act.setChecked(abs(self.settings.overlay_opacity * 100 - pct) < 1)
            act.triggered.connect(lambda _c=False, v=pct: self.set_opacity(v / 100))
            group.addAction(act)
            opacity_menu.addAction(act)
        show_menu = menu.addMenu("Show")
        mode_group = QActionGroup(show_menu)
        for mode, label in (("translation", "Translation"), ("transcript", "Transcript"), ("both", "Both")):
            act = QAction(label, show_menu, checkable=True)
            act.setChecked(self.settings.overlay_mode == mode)
            act.triggered.connect(lambda _c=False, m=mode: self.set_mode(m))
            mode_group.addAction(act)
            show_menu.addAction(act)
        through = menu.addAction("Click-through")
        through.setCheckable(True)
        through.setChecked(self.click_through())
        through.toggled.connect(self.set_click_through)
        menu.addSeparator()
        menu.addAction("Hide captions").triggered.connect(lambda: self.set_shown(False))
        return menu

    def set_shown(self, on: bool) -> None:
        """The user's choice (remembered); closing the app hides the window without changing it."""
        self.settings.overlay_visible = on
        self.setVisible(on)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self.visibility_changed.emit(True)

    def hideEvent(self, event) -> None:  # noqa: N802
        super().hideEvent(event)
        self.save_geometry()
        self.visibility_changed.emit(False)
