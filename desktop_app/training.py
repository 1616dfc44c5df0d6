"""The training side of the window: keep a transcript's audio, save corrected lines as training data (in the
background), and the fine-tune dialog that learns from them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from desktop_app.background import BackgroundJob
from desktop_app.errors import describe_error
from desktop_app.settings import AppSettings
from desktop_app.status_bar import StatusBar
from desktop_app.transcript_model import TranscriptModel

log = logging.getLogger(__name__)


class TrainingController(QObject):
    """Owns ``audio`` (the file the shown transcript was heard from; None when it was not kept), whether a save
    is running (``saving``) and the fine-tune dialog. The window gives it what it draws on and asks it."""

    def __init__(self, parent: QWidget, settings: AppSettings, transcript: TranscriptModel, status: StatusBar,
                 show_error: Callable[[str], None], live_idle: Callable[[], bool],
                 model_path: Callable[[], str | None], use_pack: Callable[[str], None]):
        super().__init__(parent)
        self._parent = parent
        self.settings = settings
        self.transcript = transcript
        self.status = status
        self.show_error = show_error
        self.live_idle = live_idle
        self.model_path = model_path
        self.use_pack = use_pack  # select and load an improved pack
        self.save_action: QAction | None = None  # Training → Save corrections; the window's menu sets it
        self.audio: str | None = None
        self.saving = False
        self._job: BackgroundJob | None = None  # saving corrections
        self.dialog = None  # desktop_app.improve.ImproveDialog, kept while it may run
        transcript.corrected.connect(self._on_corrected)

    def _enable_save(self, on: bool) -> None:
        if self.save_action is not None:
            self.save_action.setEnabled(on)

    def new_transcript(self, audio: str | None) -> None:
        """A new transcript is shown (a file, a live session): its corrections come from this audio."""
        self.audio = audio
        self._enable_save(False)

    def new_recording(self) -> str | None:
        """Where this live session's audio is kept (so its lines can be corrected into training data); None
        when recording is turned off (Training → Record live sessions)."""
        from engine.corrections import new_recording_path

        if not self.settings.record_live:
            return None
        try:
            return str(new_recording_path())
        except OSError as e:
            log.warning("live audio will not be recorded: %s", e)
            return None

    def _on_corrected(self, _row: int) -> None:
        n = len(self.transcript.corrections())
        self._enable_save(n > 0 and not self.saving)
        if self.audio is None:
            self.status.showMessage("Corrected. This transcript's audio was not kept, so it cannot become "
                                    "training data.", 6000)
        else:
            self.status.showMessage(f"{n} corrected line{'s' if n != 1 else ''} not yet saved: Training → Save "
                                    "corrections as training data (Ctrl+Shift+S).", 6000)

    def save_corrections(self, folder: Path | None = None, anchor_folder: Path | None = None) -> bool:
        """Save the corrected rows with their audio as clips for the fine-tune, in the background, and up to
        20 uncorrected rows (with the model's own text) as the anchors that keep what it knows."""
        from engine.corrections import Correction, pick_anchors

        rows = self.transcript.corrections()
        if not rows or self.saving:
            return False
        if not self.live_idle():
            self.show_error("Stop live transcription before saving corrections (the recording is still open).")
            return False
        if self.audio is None or not Path(self.audio).is_file():
            why = "" if self.settings.record_live else \
                " (recording live sessions is off: Training → Record live sessions)"
            self.show_error("The audio of this transcript was not kept, so its corrections cannot be saved as "
                            f"training data{why}. Open the file again or record a new live session.")
            return False
        audio = Path(self.audio)
        items = [Correction(audio, r.start_s, r.end_s, r.text, r.heard or "") for r in rows]
        # The lines left as they were keep what the model knows (the anchors of the Fisher-weighted L_reg).
        kept = pick_anchors([Correction(audio, r.start_s, r.end_s, r.text, r.text)
                             for r in self.transcript.committed_rows() if r.heard is None])
        self.saving = True
        self._enable_save(False)
        self.status.showMessage(f"Saving {len(items)} corrected line(s)…")

        def work(_progress, _cancel) -> tuple:
            from engine.corrections import SaveReport, anchors_root, save_corrections

            anchor_dir = anchor_folder or anchors_root()
            try:
                report = save_corrections(items, folder, drop_from=anchor_dir)
                anchors = save_corrections(kept, anchor_dir) if kept else SaveReport()
            except Exception as e:  # noqa: BLE001 - a sentence in the window, never a dead thread
                report, anchors = SaveReport(skipped=[describe_error(e, "saving corrections")]), SaveReport()
            return rows, report, anchors

        self._job = BackgroundJob(work, "saving corrections", self)
        self._job.done.connect(self._on_corrections_saved)
        self._job.failed.connect(self._on_save_failed)
        self._job.start()
        return True

    def _end_job(self) -> None:
        self.saving = False
        if self._job is not None:
            self._job.stop()
            self._job.deleteLater()
            self._job = None

    def _on_save_failed(self, message: str) -> None:  # only a bug gets here: work() reports its own errors
        self._end_job()
        self._enable_save(bool(self.transcript.corrections()))
        self.show_error(message)

    def _on_corrections_saved(self, payload) -> None:
        rows, report, anchors = payload
        self._end_job()
        self.transcript.mark_saved([rows[i] for i in report.saved_indices])
        self._enable_save(bool(self.transcript.corrections()))
        if report.skipped:
            self.show_error(report.summary())
        kept = f" (and {len(anchors.saved)} line(s) it got right, to keep what it knows)" if anchors.saved else ""
        self.status.showMessage(report.summary().rstrip(".") + kept + ". Training → Improve recognition… learns "
                                "from them.", 8000)

    def open_improve_dialog(self, glossary: bool = False):
        """The fine-tune runs in the background: the dialog is not modal, and the window stays usable. One at a
        time: while one runs (Improve recognition or Learn these words), opening either shows it."""
        from desktop_app.improve import ImproveDialog

        dialog = self.dialog
        if dialog is not None and dialog.running():
            dialog.show()
            dialog.raise_()
            return dialog
        if dialog is not None:
            dialog.deleteLater()
        dialog = ImproveDialog(self.model_path() or None, self._parent,
                               glossary=self.settings.glossary_path if glossary else None)
        dialog.installed.connect(self._on_improved_pack)
        self.dialog = dialog
        dialog.show()
        return dialog

    def open_learn_dialog(self):
        """Training → Learn these words…: the glossary's words, spoken and learned (engine.learn_words)."""
        return self.open_improve_dialog(glossary=True)

    def glossary(self):
        """The saved glossary (engine.glossary.Glossary) for the next job, or None: no file, no words, or a file
        edited by hand into one that does not read (said in the status bar; the job runs unbiased)."""
        from engine.glossary import GlossaryError, load_glossary

        path = self.settings.glossary_path
        if not path.exists():
            return None
        try:
            return load_glossary(path) or None
        except GlossaryError as e:
            self.status.showMessage(f"The glossary is not used: {e}. Fix it in Training → Glossary….", 8000)
            return None

    def open_glossary_dialog(self):
        from desktop_app.glossary_dialog import GlossaryDialog

        dialog = GlossaryDialog(self.settings.glossary_path, self._parent)
        dialog.accepted.connect(lambda: self.status.showMessage(
            f"Glossary saved: {len(dialog.glossary.terms)} words, used from the next file or live session.", 8000))
        dialog.open()
        return dialog

    def _on_improved_pack(self, path: str) -> None:
        self.use_pack(path)
        self.status.showMessage(f"Now using the improved model {Path(path).name}.", 8000)

    def shutdown(self) -> None:
        if self._job is not None:  # a save in progress finishes writing its clips first
            self._job.stop()
        if self.dialog is not None:  # a fine-tune still running is cancelled, not orphaned
            self.dialog.cancel()
