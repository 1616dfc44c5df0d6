"""Training → Glossary…: the user types their words, a bad line is named and cannot be saved, the saved glossary
sits in the settings folder and goes with the next file and live job."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop_app.glossary_dialog import GlossaryDialog
from engine.glossary import load_glossary



def open_dialog(window, qtbot) -> GlossaryDialog:
    window.glossary_action.trigger()
    qtbot.waitUntil(lambda: any(d.isVisible() for d in window.findChildren(GlossaryDialog)))
    return next(d for d in window.findChildren(GlossaryDialog) if d.isVisible())


def type_text(qtbot, dialog: GlossaryDialog, text: str) -> None:
    dialog.editor.clear()
    for i, line in enumerate(text.split("\n")):
        if i:
            qtbot.keyClick(dialog.editor, Qt.Key.Key_Return)
        qtbot.keyClicks(dialog.editor, line)


def test_typed_words_are_checked_saved_in_the_settings_folder_and_reopened(make_window, qtbot, settings_path):
    window = make_window(load_model=False)
    assert window.training.glossary() is None  # nothing saved yet: jobs are not biased
    dialog = open_dialog(window, qtbot)
    assert dialog.editor.toPlainText() == "" and "No words" in dialog.status.text()

    type_text(qtbot, dialog, "Okonkwo = oh konk woe\n    The meeting is on Tuesday.")
    assert not dialog.save_button.isEnabled()
    assert dialog.status.text().startswith("Line 2: ") and "does not use the term 'Okonkwo'" in dialog.status.text()

    type_text(qtbot, dialog, "Okonkwo = oh konk woe\n    Doctor Okonkwo chairs the meeting.\nKubernetes")
    assert dialog.save_button.isEnabled() and dialog.status.text().startswith("2 words")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible())

    saved = settings_path.parent / "glossary.txt"
    assert load_glossary(saved).words == ("Okonkwo", "Kubernetes")
    glossary = window.training.glossary()
    assert glossary.words == ("Okonkwo", "Kubernetes")
    assert glossary.terms[0].sounds_like == ("oh konk woe",)
    assert glossary.terms[0].examples == ("Doctor Okonkwo chairs the meeting.",)
    assert "2 words" in window.status.currentMessage()

    again = open_dialog(window, qtbot)
    assert again.editor.toPlainText() == saved.read_text(encoding="utf-8")
    type_text(qtbot, again, "Zyrtec")
    qtbot.mouseClick(again.buttons.button(again.buttons.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert load_glossary(saved).words == ("Okonkwo", "Kubernetes")  # Cancel keeps the file as it was


def test_a_glossary_broken_by_hand_is_shown_with_its_line_and_not_used(make_window, qtbot, settings_path):
    (settings_path.parent / "glossary.txt").write_text("Kubernetes\nZyrtec =\n", encoding="utf-8")
    window = make_window(load_model=False)
    assert window.training.glossary() is None
    assert "glossary.txt:2" in window.status.currentMessage() and "not used" in window.status.currentMessage()
    dialog = open_dialog(window, qtbot)
    assert dialog.editor.toPlainText() == "Kubernetes\nZyrtec =\n"
    assert not dialog.save_button.isEnabled() and dialog.status.text().startswith("Line 2: ")


def test_the_users_notes_and_layout_are_kept_when_the_glossary_is_saved(make_window, qtbot, settings_path):
    written = "# names from the Tuesday meeting\nOkonkwo = oh konk woe\n\n# products\nZyrtec\n"
    (settings_path.parent / "glossary.txt").write_text(written, encoding="utf-8")
    window = make_window(load_model=False)
    dialog = open_dialog(window, qtbot)
    assert dialog.editor.toPlainText() == written  # shown as written, notes and all
    qtbot.keyClick(dialog.editor, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(dialog.editor, "Kubernetes")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible())
    assert (settings_path.parent / "glossary.txt").read_text(encoding="utf-8") == written + "Kubernetes\n"
    assert window.training.glossary().words == ("Okonkwo", "Zyrtec", "Kubernetes")


KUBERNETES = "Our Kubernetes cluster restarts every night at two."  # whisper-base int8 without a glossary: "cuber needs"


@pytest.mark.model
def test_the_saved_glossary_goes_with_a_file_job_and_a_live_session(make_window, qtbot, pack_int8, speech_clip,
                                                                   settings_path):
    from tests.desktop_app.test_live import replaying

    (settings_path.parent / "glossary.txt").write_text("Zyrtec = zeer tech\nKubernetes\nOkonkwo\n", encoding="utf-8")
    clip = speech_clip("kubernetes", KUBERNETES, voice="en-us")
    window = make_window(pack=pack_int8, audio_source_factory=replaying(clip))
    qtbot.waitUntil(lambda: window._model_state in ("ready", "failed"), timeout=120_000)
    assert window._model_state == "ready", window.banner.message()

    assert window.open_file(clip)
    assert window._file_request.glossary.words == ("Zyrtec", "Kubernetes", "Okonkwo")
    qtbot.waitUntil(lambda: window._file_request is None, timeout=180_000)
    assert "Kubernetes" in window.transcript.transcript_text(), window.transcript.transcript_text()

    window.controls.start_button.click()  # (Start clears the transcript first)
    assert "Kubernetes" not in window.transcript.transcript_text()
    qtbot.waitUntil(lambda: window.live_state() == "running", timeout=30_000)
    qtbot.waitUntil(lambda: "Kubernetes" in window.transcript.transcript_text(), timeout=60_000)
    window.stop_live()
    qtbot.waitUntil(lambda: window.live_state() == "idle", timeout=60_000)
