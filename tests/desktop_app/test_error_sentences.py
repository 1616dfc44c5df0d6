"""The sentence the window shows for an error nobody foresaw names the log file that holds its details."""

from __future__ import annotations

import logging

import pytest

from desktop_app.errors import describe_error
from engine.logfile import attach_log_file, detach_log_file, log_path


@pytest.fixture
def log_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    yield
    detach_log_file()


def test_an_unexpected_error_names_the_log_file_and_its_traceback_is_there(tmp_path, log_in_tmp):
    assert attach_log_file(logging.INFO) == tmp_path / "home" / "logs" / "parley.log"
    try:
        raise KeyError("segment 7")
    except KeyError as e:
        sentence = describe_error(e, "exporting subtitles")
    assert "exporting subtitles" in sentence and "KeyError" in sentence
    assert str(log_path()) in sentence
    logging.getLogger().handlers[-1].flush()
    logged = log_path().read_text()
    assert "exporting subtitles failed" in logged and "Traceback" in logged and "segment 7" in logged
