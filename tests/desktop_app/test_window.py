"""The window without a model: settings, overlay, panes driven by the engine's event dataclasses, errors."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt

from desktop_app.settings import AppSettings
from desktop_app.transcript_model import TEXT_COL, TRANSLATION_COL, SegmentRow
from desktop_app.states import LiveState
from engine.events import Committed, Level, Partial, SessionEnded, Stats, Status, Translated, Word


def _grey(window, row: int, col: int) -> bool:
    brush = window.transcript.data(window.transcript.index(row, col), Qt.ItemDataRole.ForegroundRole)
    return brush is not None


def test_window_opens_without_a_model_and_says_what_to_do(make_window, qtbot):
    window = make_window()
    qtbot.waitUntil(lambda: window.banner.isVisible())
    assert "Manage models" in window.banner.message()
    assert window.controls.start_button.isEnabled()
    # Opening a file with no model: a sentence, no traceback, and the window is usable afterwards.
    assert window.open_file("/nonexistent/talk.wav")
    qtbot.waitUntil(lambda: window.progress.isHidden())
    assert "no model is loaded" in window.banner.message()
    assert "Traceback" not in window.banner.message()
    assert window.open_action.isEnabled() and window.controls.start_button.isEnabled()


def test_a_session_that_ends_by_itself_returns_the_window_to_idle(make_window, qtbot):
    """SessionEnded (the file ran out, the device went away) finishes the session; a Status message does not."""
    window = make_window(load_model=False)
    window._set_live_state(LiveState.RUNNING)
    window._on_live_event(Status("stopped"))
    assert window.live_state() is LiveState.RUNNING and window.status.currentMessage() == "stopped"
    window._on_live_event(SessionEnded())
    qtbot.waitUntil(lambda: window.live_state() is LiveState.IDLE)
    assert window.controls.start_button.text().endswith("Start") and window.open_action.isEnabled()


def test_start_without_a_model_reports_and_returns_to_idle(make_window, qtbot):
    window = make_window(load_model=False)
    window.controls.start_button.click()
    qtbot.waitUntil(lambda: window.live_state() == "idle")
    assert "no model is loaded" in window.banner.message()
    assert window.controls.start_button.text().endswith("Start")


def test_live_events_fill_panes_aligned_committed_normal_tentative_grey(make_window, qtbot):
    window = make_window(load_model=False)
    window.controls.select_languages("", "en")
    word = Word(0.0, 0.4, " Bonjour")
    events = [
        Level(-20.0, 0.3),
        Partial(0, "Bonjour tout", 0.0, 1.0, 1.0),
        Committed(0, " Bonjour tout le monde.", 0.0, 1.5, (word,), 2.0, language="fr"),
        Translated(0, "Hello everyone.", False, 2.1),
        Partial(1, "Comment allez", 1.5, 2.5, 2.2),
        Translated(1, "How are", True, 2.3),
        Stats(rtf=0.4, step_s=0.3, dropped_blocks=2, lag_s=1.2, buffered_s=3.0),
    ]
    for event in events:
        window._on_live_event(event)
    rows = window.transcript.rows()
    assert [r.text for r in rows] == ["Bonjour tout le monde.", "Comment allez"]
    assert rows[0].translation == "Hello everyone." and rows[1].translation == "How are"
    assert not _grey(window, 0, TEXT_COL) and not _grey(window, 0, TRANSLATION_COL)
    assert _grey(window, 1, TEXT_COL) and _grey(window, 1, TRANSLATION_COL)
    assert "French" in window.controls.source_combo.itemText(0)
    assert window.status.dropped_label.text() == "dropped 2 audio blocks"
    assert "RTF 0.40" == window.status.rtf_label.text() and "lag 1.2 s" == window.status.lag_label.text()
    assert window.controls.level.rms_db == -20.0
    # The overlay shows the newest line: the tentative tail and its draft translation.
    assert window.overlay.caption_text() == "Comment allez\nHow are"
    assert window.view.isColumnHidden(TRANSLATION_COL) is False


def test_autoscroll_follows_until_the_user_scrolls_up(make_window, qtbot):
    window = make_window(load_model=False)
    window.resize(800, 400)
    for i in range(60):
        window.transcript.upsert_committed(i, i, i + 1, f"line {i} " * 8)
    bar = window.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    bar.setValue(0)
    assert not window.view.following
    window.transcript.upsert_committed(100, 100, 101, "a new line")
    qtbot.waitUntil(lambda: not window.view._full_resize.isActive())
    assert bar.value() == 0
    bar.setValue(bar.maximum())
    window.transcript.upsert_committed(101, 101, 102, "another line " * 10)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and bar.value() > 0)
    assert window.view.following


def test_settings_persist_across_window_recreation(make_window, qtbot, settings_path):
    window = make_window(load_model=False)
    window.controls.select_languages("de", "en")
    window.controls.select_compute_device("cuda")
    window.controls.devices.combo.setCurrentIndex(window.controls.devices.combo.findText("USB Headset"))
    window.resize(780, 560)
    window.close()
    qtbot.waitUntil(lambda: window._closed)

    again = make_window(load_model=False)
    assert again.controls.source_language() == "de"
    assert again.controls.target_language() == "en"
    assert again.controls.compute_device() == "cuda"
    assert again.controls.devices.current_name() == "USB Headset"
    assert (again.width(), again.height()) == (780, 560)
    stored = AppSettings(QSettings(str(settings_path), QSettings.Format.IniFormat))
    assert stored.source_language == "de"


def test_device_picker_lists_monitors_as_computer_audio(make_window):
    window = make_window(load_model=False)
    labels = [window.controls.devices.combo.itemText(i) for i in range(window.controls.devices.combo.count())]
    assert labels == ["Default input", "Built-in Microphone", "USB Headset", "Monitor of Speakers (computer audio)"]


def test_overlay_shows_latest_line_and_keeps_geometry_and_style(make_window, qtbot):
    window = make_window(load_model=False)
    window.captions_action.setChecked(True)
    qtbot.waitUntil(lambda: window.overlay.isVisible())
    window.transcript.set_rows([SegmentRow(0, 0, 1, "first line", "première ligne"),
                                SegmentRow(1, 1, 2, "second line", "deuxième ligne")])
    window._update_overlay()
    assert window.overlay.caption_text() == "second line\ndeuxième ligne"
    window.overlay.set_mode("translation")
    assert window.overlay.caption_text() == "première ligne\ndeuxième ligne"
    window.overlay.set_font_size(30)
    window.overlay.set_opacity(0.25)
    window.overlay.setGeometry(321, 234, 700, 150)
    geometry = window.overlay.geometry()
    window.showMinimized()
    assert window.overlay.isVisible()  # a window of its own: minimising the main window leaves it up
    window.close()
    qtbot.waitUntil(lambda: window._closed)

    again = make_window(load_model=False)
    qtbot.waitUntil(lambda: again.overlay.isVisible())
    assert again.overlay.geometry().size() == geometry.size()
    assert again.overlay.geometry().topLeft() == geometry.topLeft()
    assert again.settings.overlay_font_pt == 30 and again.settings.overlay_opacity == 0.25
    assert again.settings.overlay_mode == "translation"
    again.captions_action.trigger()  # the toggle (Ctrl+Shift+C) hides it, and that is remembered
    assert not again.overlay.isVisible() and again.settings.overlay_visible is False


def test_overlay_keeps_the_newest_words_of_a_long_line_in_view(make_window):
    window = make_window(load_model=False)
    window.overlay.set_mode("transcript")
    window.overlay.setGeometry(100, 100, 500, 90)
    long_text = " ".join(f"word{i}" for i in range(30)) + " the newest words."
    window.transcript.set_rows([SegmentRow(0, 0, 1, "an older line", ""), SegmentRow(1, 1, 9, long_text, "")])
    window._update_overlay()
    shown = window.overlay.caption_text()
    assert shown.endswith("the newest words.") and shown.startswith("… ")
    assert "an older line" not in shown and "word0 " not in shown  # no room: the oldest text goes first
    window.overlay.setGeometry(100, 100, 900, 400)  # a bigger window shows more, with the older line
    window._update_overlay()  # (a hidden widget gets no resize event; a shown one re-renders on resize)
    shown = window.overlay.caption_text()
    assert shown.startswith("an older line\n") and "word0 " in shown


def test_copy_to_clipboard_is_bilingual_with_a_translation(make_window, qtbot):
    from PySide6.QtWidgets import QApplication

    window = make_window(load_model=False)
    window.transcript.set_rows([SegmentRow(0, 0, 1, "Hallo Welt.", "Hello world.")])
    window.copy_to_clipboard()
    assert QApplication.clipboard().text() == "Hallo Welt.\nHello world."


def test_live_commits_of_a_few_words_read_as_sentences(make_window):
    window = make_window(load_model=False)
    chunks = [(0, " The train to", 0.0, 0.9), (1, " the city leaves", 0.9, 1.8), (2, " at seven.", 1.8, 2.5),
              (3, " Please water", 2.9, 3.6), (4, " the plants.", 3.6, 4.4), (5, " After a pause", 7.0, 8.0)]
    for key, text, start, end in chunks:
        window._on_live_event(Committed(key, text, start, end, (), end + 0.5))
    window._on_live_event(Translated(0, "Le train pour", False, 3.0))
    window._on_live_event(Translated(2, "à sept heures.", False, 3.1))
    window._on_live_event(Translated(1, "la ville part", True, 3.2))
    rows = window.transcript.rows()
    assert [r.text for r in rows] == ["The train to the city leaves at seven.", "Please water the plants.",
                                      "After a pause"]
    assert rows[0].translation == "Le train pour la ville part à sept heures."
    assert rows[0].translation_draft  # one part is still a draft
    window._on_live_event(Translated(1, "la ville part", False, 3.3))
    assert not window.transcript.rows()[0].translation_draft
    assert (rows[0].start_s, rows[0].end_s) == (0.0, 2.5)


def test_overlay_drags_with_the_mouse_and_click_through_is_remembered(make_window, qtbot):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    window = make_window(load_model=False)
    overlay = window.overlay
    overlay.set_shown(True)
    overlay.setGeometry(100, 100, 600, 120)
    start = overlay.geometry().topLeft()
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    mods = Qt.KeyboardModifier.NoModifier
    press_at = QPointF(start.x() + 20, start.y() + 20)
    for kind, pos, button, buttons in ((QEvent.Type.MouseButtonPress, press_at, left, left),
                                       (QEvent.Type.MouseMove, press_at + QPointF(50, 30), none, left),
                                       (QEvent.Type.MouseButtonRelease, press_at + QPointF(50, 30), left, none)):
        QApplication.sendEvent(overlay, QMouseEvent(kind, QPointF(20, 20), pos, button, buttons, mods))
    assert overlay.geometry().topLeft() == start + type(start)(50, 30)
    assert window.settings.overlay_rect[:2] == (start.x() + 50, start.y() + 30)
    window.click_through_action.setChecked(True)
    assert overlay.isVisible()
    assert overlay.testAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    assert window.settings.overlay_click_through is True
