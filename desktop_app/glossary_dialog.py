"""Training → Glossary…: the user's words, edited as the same text a `--glossary` file holds and saved in the
settings folder; every file and live job after the save is primed with them and biased toward them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from engine.glossary import Glossary, GlossaryError, load_glossary, parse_glossary, save_glossary

HELP = ("One word or name per line, as it must be written. After <b>=</b>, how it sounds (optional). Indented "
        "lines under a word are example sentences that use it (optional). Lines starting with # are notes.<br>"
        "<code>Okonkwo = oh konk woe<br>&nbsp;&nbsp;&nbsp;&nbsp;Doctor Okonkwo chairs the meeting.<br>"
        "Kubernetes</code>")


class GlossaryDialog(QDialog):
    """Edits the glossary file at ``path``. Save is enabled only while the text reads as a glossary; the line
    that does not is named under the editor. ``glossary`` is what was saved (or the file's, on Cancel)."""

    def __init__(self, path: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Glossary — your words")
        self.path = Path(path)
        self.glossary = Glossary()
        text = ""
        problem = ""
        if self.path.exists():
            try:
                self.glossary = load_glossary(self.path)
                text = self.path.read_text(encoding="utf-8-sig")  # as written: its notes and layout kept
            except GlossaryError as e:  # shown as it is, so the user can fix the line
                text = self.path.read_text(encoding="utf-8", errors="replace")
                problem = str(e)
        help_label = QLabel(HELP)
        help_label.setWordWrap(True)
        self.editor = QPlainTextEdit(text)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setPlaceholderText("Kubernetes\nOkonkwo = oh konk woe")
        self.status = QLabel(problem)
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (help_label, self.editor, self.status, self.buttons):
            layout.addWidget(widget)
        self.resize(560, 420)
        self.editor.textChanged.connect(self._check)
        self._check()

    @property
    def save_button(self):
        return self.buttons.button(QDialogButtonBox.StandardButton.Save)

    def _parsed(self) -> Glossary | str:
        try:
            return parse_glossary(self.editor.toPlainText(), "line")
        except GlossaryError as e:
            return str(e).replace("line:", "Line ", 1)

    def _check(self) -> None:
        parsed = self._parsed()
        ok = isinstance(parsed, Glossary)
        self.save_button.setEnabled(ok)
        if ok:
            n = len(parsed.terms)
            self.status.setText(f"{n} word{'s' if n != 1 else ''}; used by the next file or live session."
                                if n else "No words: recognition is not biased.")
        else:
            self.status.setText(parsed)

    def save(self) -> None:
        parsed = self._parsed()
        if not isinstance(parsed, Glossary):
            return
        try:
            save_glossary(parsed, self.path, self.editor.toPlainText())
        except GlossaryError as e:
            self.status.setText(str(e))
            return
        self.glossary = parsed
        self.accept()
