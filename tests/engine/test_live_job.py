"""engine.jobs' live job driven without either front-end (what `parley live` and the app's worker both run): the
whisper-base pack opened by open_model, a real wav fed through engine.audio.file_source, the words that must
come out; the translation stage it opens, a sentence whose translation failed kept out of the bilingual cues;
stop (what was heard is still transcribed) and cancel."""

from __future__ import annotations

import threading
import time

import pytest

from engine.audio.file_source import FileSource
from engine.errors import ParleyError
from engine.events import Committed, Error, SessionEnded, Translated
from engine.jobs import open_model, plan_live_job, run_live_job, start_live_job
from engine.translate.registry import MissingPairError

pytestmark = pytest.mark.model

WORDS = ("quick", "brown", "fox", "lazy", "dog", "shore")


@pytest.fixture(scope="module")
def model(pack_int8):
    return open_model(str(pack_int8), threads=2)


def test_the_live_rules_are_the_file_jobs_and_options_are_checked_once():
    assert plan_live_job("auto").language is None and plan_live_job("").language is None
    assert plan_live_job("de", translate_to="").translate_to is None
    assert plan_live_job("de", translate_to="en", beam_size=2).beam_size == 2
    with pytest.raises(ParleyError, match="not both"):
        plan_live_job(None, task="translate", translate_to="de")
    with pytest.raises(ParleyError, match="beam_size"):
        plan_live_job("en", beam_size=0)


def test_a_file_through_the_live_job_gives_its_words_and_ends_with_session_ended(model, fox_wav):
    events = []
    result = run_live_job(model, plan_live_job("en"), events.append, source=FileSource(fox_wav, realtime=False))
    low = result.text.lower()
    assert [w for w in WORDS if w not in low] == [], low
    assert result.failed is None and result.steps > 0 and not [e for e in events if isinstance(e, Error)]
    assert result.committed == [e for e in events if isinstance(e, Committed)]
    assert isinstance(events[-1], SessionEnded) and events[-1].error is None
    cues = result.cues()
    assert cues[0].text.lower().startswith("the quick brown") and len(cues) >= 2
    assert all(c.translation is None for c in cues)


def test_a_sentence_whose_translation_failed_has_no_translation_in_the_bilingual_cues(model, fox_wav):
    calls = []

    def first_fails(text: str, source: str | None, target: str) -> str:
        calls.append(text)
        if len(calls) == 1:
            raise RuntimeError("the pack went away")
        return "DE: " + text

    events = []
    options = plan_live_job("en", translate_to="de", draft_interval_s=None)
    result = run_live_job(model, options, events.append, source=FileSource(fox_wav, realtime=False),
                          text_translator=first_fails)
    failed = [e for e in events if isinstance(e, Translated) and e.error is not None]
    assert len(failed) == 1 and "the pack went away" in failed[0].error
    assert result.translated and all(t.text.startswith("DE: ") and t.error is None for t in result.translated)
    assert failed[0].segment_id not in {t.segment_id for t in result.translated}
    cues = result.cues(bilingual=True)
    assert cues[0].translation is None  # the first sentence's translation failed: nothing stands in for it
    assert any(c.translation and c.translation.startswith("DE: ") and "shore" in c.translation.lower()
               for c in cues[1:])


def test_a_pair_no_installed_pack_serves_is_refused_before_the_source_starts(model, fox_wav, tmp_path, monkeypatch):
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))  # no translation pack installed
    source = FileSource(fox_wav, realtime=False)
    with pytest.raises(MissingPairError, match="pt"):
        start_live_job(model, plan_live_job("en", translate_to="pt"), source=source)
    assert source.started_at is None  # refused before anything was opened


def test_stop_ends_the_capture_and_what_was_heard_is_still_transcribed(model, fox_wav):
    stop = threading.Event()
    job = start_live_job(model, plan_live_job("en"), source=FileSource(fox_wav, realtime=True))
    threading.Timer(2.0, stop.set).start()
    result = job.run(stop)
    assert "quick" in result.text.lower()
    # released at 1x: nothing past about two seconds of the clip was captured ("sea shore" is at ~5 s)
    assert result.committed and max(c.end_s for c in result.committed) < 3.0, result.committed
    assert "shore" not in result.text.lower()


def test_cancel_returns_without_transcribing_what_is_buffered(model, fox_wav):
    events = []
    job = start_live_job(model, plan_live_job("en"), events.append, source=FileSource(fox_wav, realtime=True))
    time.sleep(1.0)
    started = time.monotonic()
    job.cancel()
    assert time.monotonic() - started < 10 and job.wait(0)
    assert isinstance(events[-1], SessionEnded)
