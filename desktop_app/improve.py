"""Improve recognition and Learn these words: fine-tune the current model, in the background, on the user's saved
corrections (all of them) or on the glossary's words spoken by espeak-ng (with the corrections, when there are any).

The fine-tune is ``python -m export learn`` (docs/training.md) run as a child process (a QProcess), so torch
never loads into the app and a crash or a cancel cannot take the window with it. Its progress lines
("step 12/40 … loss 0.81") drive the bar; it writes a pack only if the result is better on voices and sentences
it did not train on (its last stdout line, which lands among the installed packs and is offered to the window:
``installed``); otherwise it exits with corrections.LEARN_REFUSED and its line 'not installed: …' is shown.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

from PySide6.QtCore import QProcess, Signal
from PySide6.QtWidgets import (QDialog, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit,
                               QProgressBar, QPushButton, QSpinBox, QVBoxLayout)

from engine import corrections as corr
from engine.packs.installed import is_pack_dir

log = logging.getLogger(__name__)


def explain_failure(lines: list[str], code: int) -> str:
    """One sentence for a fine-tune that ended badly, from the last lines it wrote."""
    text = "\n".join(lines)
    if "No module named 'torch'" in text or 'No module named "torch"' in text:
        return ("Fine-tuning needs PyTorch, which is not installed in Parley's environment: "
                "run `.venv/bin/pip install -e '.[export]'` (or ./setup.sh) and try again.")
    errors = [ln for ln in lines if ln.startswith("error:")]
    if errors:
        return "Fine-tuning failed: " + errors[-1][len("error:"):].strip()
    tail = next((ln for ln in reversed(lines) if ln.strip()), "")
    return f"Fine-tuning stopped (exit code {code})" + (f": {tail}" if tail else ".")


class ImproveDialog(QDialog):
    installed = Signal(str)  # the new pack's folder

    def __init__(self, base_pack: str | None, parent=None, data: Path | None = None, python: str | None = None,
                 anchors: Path | None = None, glossary: Path | None = None):
        super().__init__(parent)
        self.glossary = Path(glossary) if glossary is not None else None  # Learn these words: the glossary file
        self.setWindowTitle("Learn these words" if self.glossary is not None else "Improve recognition")
        self.setObjectName("improveDialog")
        self.base_pack = Path(base_pack) if base_pack else None
        self.data = Path(data) if data is not None else corr.training_root()
        self.anchors = Path(anchors) if anchors is not None else corr.anchors_root()
        self.terms = self._terms()
        self.python = python
        self.out: Path | None = None
        self.result_message = ""
        self._lines: deque[str] = deque(maxlen=200)
        self._stdout: list[str] = []
        self._process: QProcess | None = None
        self._cancelled = False

        self.clips = corr.collected_clips(self.data)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.alpha = QDoubleSpinBox(self, decimals=2, minimum=0.0, maximum=1.0, singleStep=0.05,
                                    value=corr.FISHER_ALPHA)
        self.alpha.setToolTip("α weighs learning your corrections against staying close to the model's "
                              "starting weights: L = α·L_recon + (1−α)·L_reg. 1.0 = no pull back "
                              "(general speech gets worse).")
        self.epochs = QSpinBox(self, minimum=1, maximum=50, value=corr.DEFAULT_EPOCHS)
        form = QFormLayout()
        form.addRow("α (corrections vs. keeping the model):", self.alpha)
        form.addRow("Passes over the clips:", self.epochs)
        self.bar = QProgressBar(self, minimum=0, maximum=100, value=0)
        self.bar.setFormat("%p%")
        self.state = QLabel("", self)
        self.state.setWordWrap(True)
        self.log_view = QPlainTextEdit(self, readOnly=True)
        self.log_view.setMaximumBlockCount(200)
        self.log_view.setMinimumHeight(120)
        self.start_button = QPushButton("Start", self)
        self.cancel_button = QPushButton("Close", self)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self._cancel_or_close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.bar)
        layout.addWidget(self.state)
        layout.addWidget(self.log_view, 1)
        layout.addLayout(buttons)
        self.resize(560, 420)
        self._describe()

    # -- state --------------------------------------------------------------------------------------
    def ready_problem(self) -> str | None:
        """Why the fine-tune cannot start, or None."""
        if self.base_pack is None:
            return "No model is selected: choose the model to improve first."
        if not is_pack_dir(self.base_pack):
            return f"{self.base_pack} is not a model pack: choose an installed model to improve."
        if self.glossary is not None:
            return None if self.terms else ("The glossary has no words yet: type them in Training → Glossary… first."
                                            if self.terms is not None else
                                            "The glossary does not read: fix it in Training → Glossary… first.")
        if self.clips < corr.MIN_CLIPS:
            return (f"{self.clips} corrected line{'s' if self.clips != 1 else ''} saved so far; at least "
                    f"{corr.MIN_CLIPS} are needed. Correct lines in the transcript (double-click a line), then "
                    "Training → Save corrections.")
        return None

    def _terms(self) -> int | None:
        """How many words the glossary holds (None: it does not read)."""
        if self.glossary is None or not self.glossary.exists():
            return 0
        from engine.glossary import GlossaryError, load_glossary

        try:
            return len(load_glossary(self.glossary).terms)
        except GlossaryError:
            return None

    def _describe(self) -> None:
        base = self.base_pack.name if self.base_pack else "no model"
        check = ("It is installed only if, on voices and sentences it did not train on, it makes fewer errors and "
                 "general English gets no worse than half a point; otherwise the current model stays.")
        if self.glossary is not None:
            extra = f" and your {self.clips} saved correction(s)" if self.clips else ""
            self.summary.setText(f"Teach <b>{base}</b> the <b>{self.terms or 0}</b> word(s) of your glossary: Parley "
                                 f"writes sentences with each of them, speaks them with several voices, speeds and "
                                 f"pitches, and fine-tunes on them{extra}. {check}")
        else:
            self.summary.setText(f"Fine-tune <b>{base}</b> on all <b>{self.clips}</b> corrected line(s) saved in "
                                 f"{self.data} (a fifth is first held out to check the result, then learned too). "
                                 f"{check}")
        problem = self.ready_problem()
        self.start_button.setEnabled(problem is None)
        if problem:
            self.state.setText(problem)

    def running(self) -> bool:
        return self._process is not None and self._process.state() != QProcess.ProcessState.NotRunning

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> bool:
        problem = self.ready_problem()
        if problem or self.running():
            if problem:
                self.state.setText(problem)
            return False
        self.out = corr.tuned_pack_path(self.base_pack)
        corrections = self.data if self.glossary is None or self.clips else None
        command = corr.learn_command(self.base_pack, self.out, self.glossary, corrections, self.anchors,
                                     alpha=self.alpha.value(), epochs=self.epochs.value(), python=self.python)
        self._lines.clear()
        self._stdout.clear()
        self.log_view.clear()
        self.log_view.appendPlainText(" ".join(command))
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.SeparateChannels)
        process.readyReadStandardError.connect(self._read_stderr)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._process_error)
        self._process = process
        self.bar.setValue(0)
        self.bar.setMaximum(0)  # busy until the first step: loading the base model and the clips
        self.state.setText("Loading the model and the clips…")
        self.start_button.setEnabled(False)
        self.alpha.setEnabled(False)
        self.epochs.setEnabled(False)
        self.cancel_button.setText("Cancel")
        process.start(command[0], command[1:])
        return True

    def _read_stderr(self) -> None:
        data = bytes(self._process.readAllStandardError()).decode("utf-8", "replace")
        for line in data.replace("\r", "\n").splitlines():
            if not line.strip():
                continue
            self._lines.append(line)
            self.log_view.appendPlainText(line)
            step = corr.parse_progress(line)
            if step is not None:
                done, total, loss = step
                self.bar.setMaximum(100)
                self.bar.setValue(int(100 * done / max(total, 1)))
                self.state.setText(f"Training: step {done} of {total}, loss {loss:.3f}")
            elif line.startswith(("speaking ", "encoding ", "measuring ", "training again", "installed:",
                                  "not installed:")):
                self.state.setText(line.strip()[0].upper() + line.strip()[1:])

    def _read_stdout(self) -> None:
        data = bytes(self._process.readAllStandardOutput()).decode("utf-8", "replace")
        self._stdout.extend(ln for ln in data.splitlines() if ln.strip())

    def _finished(self, code: int, status) -> None:
        self._read_stderr()
        self._read_stdout()
        self.bar.setMaximum(100)
        self.alpha.setEnabled(True)
        self.epochs.setEnabled(True)
        self.cancel_button.setText("Close")
        pack = Path(self._stdout[-1]) if self._stdout else None
        crashed = status == QProcess.ExitStatus.CrashExit
        ok = code == 0 and not crashed and pack is not None and is_pack_dir(pack)
        corr.finish_improvement(self.out, ok)
        verdict = next((ln.strip() for ln in reversed(self._lines) if ln.startswith(("installed:", "not installed:"))),
                       "")
        if ok:
            self.bar.setValue(100)
            self.result_message = (f"Installed the improved model {pack.name}"
                                   + (f" ({verdict.removeprefix('installed: ')})." if verdict else "."))
            self.state.setText(self.result_message)
            self.installed.emit(str(pack))
        elif code == corr.LEARN_REFUSED and not crashed and verdict.startswith("not installed:"):
            self.bar.setValue(100)
            self.result_message = "Not installed: " + verdict.removeprefix("not installed: ")
            self.state.setText(self.result_message)
        elif self._cancelled:
            self.result_message = "Cancelled; the current model is unchanged."
            self.state.setText(self.result_message)
        else:
            self.result_message = explain_failure(list(self._lines), code)
            self.state.setText(self.result_message)
        self._describe_after()

    def _describe_after(self) -> None:
        self.start_button.setEnabled(self.ready_problem() is None)
        self._cancelled = False

    def _process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.result_message = f"Could not start the fine-tune ({self._process.errorString()})."
            self.state.setText(self.result_message)
            self.bar.setMaximum(100)
            self.cancel_button.setText("Close")
            self._describe_after()

    def cancel(self) -> None:
        if self.running():
            self._cancelled = True
            self.state.setText("Cancelling…")
            self._process.terminate()
            if not self._process.waitForFinished(5000):
                self._process.kill()

    def _cancel_or_close(self) -> None:
        if self.running():
            self.cancel()
        else:
            self.reject()

    def reject(self) -> None:  # Escape or the window's close button: never leave a child running
        self.cancel()
        super().reject()
