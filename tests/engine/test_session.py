"""The live session with the real model: words come out, stopping keeps everything, silence and noise
stay silent, a device lost mid-stream is an Error event and a new session starts cleanly, and a real
PulseAudio monitor source is transcribed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from conftest_pulse import pulse_server  # noqa: F401  (fixture)
from engine.audio.capture import Capture, DeviceInfo, list_devices
from engine.audio.file_source import FileSource
from engine.errors import AudioFileError
from engine.events import Committed, Error, Partial, Stats
from engine.live.cues import sentences
from engine.live.session import LiveOptions, LiveSession
from fake_audio import FakeInputStream
from needs import require_module

pytestmark = pytest.mark.model

WORDS = ("quick", "brown", "fox", "lazy", "dog", "shore")


@pytest.fixture(scope="module")
def model(pack_int8):
    from engine.whisper import WhisperModel

    return WhisperModel.load(pack_int8, threads=2)


def fake_device(rate: int, name: str = "Test Mic") -> DeviceInfo:
    return DeviceInfo(0, name, "test", 1, float(rate))


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def run_session(model, source, text_translator=None, **options) -> tuple[LiveSession, Recorder]:
    rec = Recorder()
    session = LiveSession(model, LiveOptions(language="en", **options), on_event=rec, source=source,
                          text_translator=text_translator)
    session.start()
    assert session.wait(120), "the session did not end at the end of its input"
    session.finish()
    return session, rec


def _has_words(text: str, words=WORDS, allow_missing: int = 0) -> None:
    low = text.lower()
    missing = [w for w in words if w not in low]
    assert len(missing) <= allow_missing, f"{missing} not in {text!r}"


def test_a_file_fed_fast_forward_gives_the_spoken_words_as_committed_segments(model, fox_wav):
    session, rec = run_session(model, FileSource(fox_wav, realtime=False))
    _has_words(session.text)
    committed = rec.of(Committed)
    assert committed and all(c.words and c.start_s <= c.end_s for c in committed)
    assert all(a.end_s <= b.start_s + 0.1 for a, b in zip(committed, committed[1:]))  # in order, no overlap
    # at most one sentence per event: only an event's last word may end a sentence (rows read as sentences)
    assert all(not w.text.rstrip().endswith((".", "?", "!")) for c in committed for w in c.words[:-1])
    assert sum(c.text.endswith(".") for c in committed) >= 2  # the fox clip has two sentences
    assert rec.of(Partial) and rec.of(Stats)
    assert not rec.of(Error)
    cues = sentences(committed)
    assert [c.text for c in cues][0].lower().startswith("the quick brown")
    assert all(a.end_s <= b.start_s for a, b in zip(cues, cues[1:]))


def test_a_device_replay_stopped_early_still_transcribes_everything_it_captured(model, fox_wav):
    clip, rate = sf.read(str(fox_wav), dtype="float32")
    # The whole clip arrives at once; stop() comes before the session has decoded most of it.
    capture = Capture(fake_device(rate), stream_factory=FakeInputStream.factory(clip, rate, speed=None))
    rec = Recorder()
    session = LiveSession(model, LiveOptions(language="en"), on_event=rec, source=capture)
    session.start()
    time.sleep(0.3)  # the fake device has delivered the clip; the session has decoded little of it
    session.stop()
    committed = session.finish()
    _has_words(" ".join(c.text for c in committed))
    assert not rec.of(Partial)[-1].text  # the tentative tail was committed, not dropped
    assert capture.dropped_blocks == 0


def test_silence_and_noise_produce_no_text(model):
    rng = np.random.default_rng(0)
    for name, audio in (("silence", np.zeros(16000 * 6, np.float32)),
                        ("noise", (0.03 * rng.standard_normal(16000 * 6)).astype(np.float32)),
                        ("hum", (0.1 * np.sin(2 * np.pi * 50 * np.arange(16000 * 6) / 16000)).astype(np.float32))):
        session, rec = run_session(model, FileSource(audio=audio, realtime=False, name=name))
        assert session.text == "", f"{name} gave {session.text!r}"
        assert session.steps == 0, f"{name} was decoded {session.steps} times; the VAD should gate it"


def test_without_the_vad_silence_still_gives_no_text(model):
    session, _ = run_session(model, FileSource(audio=np.zeros(16000 * 4, np.float32), realtime=False), vad=False)
    assert session.text == ""


def test_a_device_lost_mid_stream_is_an_error_event_and_a_new_session_starts_cleanly(model, fox_wav):
    clip, rate = sf.read(str(fox_wav), dtype="float32")
    lost = Capture(fake_device(rate, "USB Mic"),
                   stream_factory=FakeInputStream.factory(clip, rate, fail_at_s=2.5, speed=4.0))
    session, rec = run_session(model, lost)
    errors = rec.of(Error)
    assert len(errors) == 1 and "USB Mic" in errors[0].message and "stopped delivering audio" in errors[0].message
    assert session.failed
    assert "quick" in session.text.lower()  # what was heard before the failure is kept

    again = Capture(fake_device(rate, "USB Mic"), stall_timeout_s=None, stream_factory=FakeInputStream.factory(
        np.concatenate([clip, np.zeros(rate, np.float32)]), rate, speed=4.0))
    rec2 = Recorder()
    second = LiveSession(model, LiveOptions(language="en"), on_event=rec2, source=again)
    second.start()
    deadline = time.monotonic() + 60
    while "shore" not in second.text.lower() and time.monotonic() < deadline:
        time.sleep(0.1)
    second.finish()
    _has_words(second.text)
    assert not rec2.of(Error)


def test_a_missing_file_fails_at_start_naming_it(model, tmp_path):
    session = LiveSession(model, LiveOptions(), source=FileSource(tmp_path / "nope.wav"))
    with pytest.raises(AudioFileError, match="nope.wav"):
        session.start()


def test_options_are_checked():
    with pytest.raises(ValueError):
        LiveOptions(task="summarise")
    with pytest.raises(ValueError):
        LiveOptions(encoder_frames="half")


def test_the_cli_writes_a_subtitle_file_from_a_live_run(fox_wav, pack_int8, tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "fox.srt"
    assert main(["live", "--input", str(fox_wav), "--model", str(pack_int8), "--language", "en", "-q",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    _has_words(printed)
    srt = out.read_text(encoding="utf-8")
    assert srt.startswith("1\n00:00:0") and " --> " in srt
    _has_words(srt)
    assert main(["live", "--input", str(tmp_path / "missing.wav"), "--model", str(pack_int8)]) == 1
    assert "missing.wav" in capsys.readouterr().err


@pytest.mark.pulse
def test_what_the_computer_plays_is_transcribed_live(model, fox_wav, pulse_server):  # noqa: F811
    monitors = [d for d in list_devices() if d.pulse_source == pulse_server.monitor]
    assert monitors and monitors[0].is_monitor
    rec = Recorder()
    session = LiveSession(model, LiveOptions(language="en", device=monitors[0]), on_event=rec)
    session.start()
    try:
        time.sleep(1.0)  # a monitor stream delivers its first block after a moment
        subprocess.run(["paplay", f"--device={pulse_server.sink}", str(fox_wav)], check=True, timeout=60,
                       env={**os.environ, **pulse_server.env})
        deadline = time.monotonic() + 30
        while "shore" not in session.text.lower() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        session.finish()
    # Through the sound server (48 kHz, resampled) whisper-base sometimes hears "round fox"; one miss is allowed.
    _has_words(session.text, allow_missing=1)
    assert not rec.of(Error)
    assert session.source.dropped_blocks == 0


def test_live_translation_into_other_languages_goes_through_an_installed_text_pack(model, fox_wav, tmp_path,
                                                                                   tmp_path_factory, monkeypatch):
    require_module("transformers")
    from translate_fixtures import built

    from engine.events import Translated
    from engine.translate.registry import MissingPairError

    pack = built(tmp_path_factory, "marian")[1]  # a tiny random-weight en→de Marian, exported by our exporter
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    shutil.copytree(pack, tmp_path / "home" / "packs" / "translation" / pack.name)

    from engine.jobs import plan_live_job, run_live_job, start_live_job

    rec = Recorder()  # through the live job, which opens the installed packs' translator for the session
    run_live_job(model, plan_live_job("en", translate_to="de"), rec, source=FileSource(fox_wav, realtime=False))
    translated = [t for t in rec.of(Translated) if not t.draft]  # drafts of the tentative tail aside
    committed_ids = {c.segment_id for c in rec.of(Committed)}
    assert translated, "no translation came out"
    ids = [t.segment_id for t in translated]
    assert len(ids) == len(set(ids)), "a committed segment was translated twice"
    assert set(ids) <= committed_ids and all(not t.draft and t.language == "de" for t in translated)
    assert max(ids) == max(committed_ids)  # stopping translated the last sentence too

    with pytest.raises(MissingPairError, match="en→de"):
        start_live_job(model, plan_live_job("en", translate_to="fr"), source=FileSource(fox_wav, realtime=False))
    with pytest.raises(ValueError, match="needs a text_translator"):  # a session alone opens no pack
        LiveSession(model, LiveOptions(language="en", translate_to="de"), source=FileSource(fox_wav))


def test_a_speech_translation_that_starts_over_or_repeats_keeps_one_copy():
    from engine.whisper.loops import deloop_text as _deloop_text

    assert _deloop_text("I like to eat good food before sleeping. I like to eat good food") == \
        "I like to eat good food before sleeping."
    assert _deloop_text("We will go home, we will go home, we will go home.").rstrip(",.") == "We will go home"
    assert _deloop_text("Hello. How are you? Fine, thanks.") == "Hello. How are you? Fine, thanks."


def test_a_stuck_translator_does_not_hold_up_recognition(model, fox_wav, tmp_path):
    """Translation has its own thread: while it is stuck on the first sentence, the next one is committed."""
    from engine.audio.decode import load_audio
    from engine.events import Translated

    other = tmp_path / "other.wav"  # a different sentence: the same one again would be a repetition
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(other),
                    "The museum is closed on Monday but the park stays open."], check=True)
    audio = np.concatenate([load_audio(fox_wav), np.zeros(16000 * 3, np.float32), load_audio(other)])
    rec = Recorder()
    committed_while_stuck = threading.Event()
    stuck_since: list[float] = []
    released: list[bool] = []  # the stuck call's wait: True if a commit released it (not the timeout)

    def on_event(event):
        rec(event)
        if isinstance(event, Committed) and stuck_since and not committed_while_stuck.is_set():
            committed_while_stuck.set()

    def stuck(text, source, target):  # stands in for a (very) slow text-translation pack
        if not stuck_since:
            stuck_since.append(time.monotonic())
            released.append(committed_while_stuck.wait(60))  # by the next commit, or after a minute
        return "DE: " + text

    session = LiveSession(model, LiveOptions(language="en", translate_to="de", draft_interval_s=None),
                          on_event=on_event, source=FileSource(audio=audio, realtime=False), text_translator=stuck)
    session.start()
    assert session.wait(120), "the session did not end at the end of its input"
    session.finish()
    assert released == [True], "recognition waited for the translator"
    assert "museum" in session.text.lower()
    finals = rec.of(Translated)
    assert len(finals) >= 2 and all(not t.draft for t in finals)
    assert {t.segment_id for t in finals} <= {c.segment_id for c in rec.of(Committed)}


def test_drafts_are_throttled_and_never_follow_their_commit(model, fox_wav):
    from engine.events import Translated

    def fast(text, source, target):  # the scheduling under test, not the translation (tested with real packs)
        return "DE: " + text

    session, rec = run_session(model, FileSource(fox_wav, realtime=True, speed=1.5), translate_to="de",
                               draft_interval_s=0.6, text_translator=fast)
    events = rec.events
    drafts = [e for e in events if isinstance(e, Translated) and e.draft]
    finals = [e for e in events if isinstance(e, Translated) and not e.draft]
    assert drafts, "no draft translation of the tentative tail"
    assert all(b.emitted_at - a.emitted_at >= 0.6 - 0.02 for a, b in zip(drafts, drafts[1:]))
    ids = [t.segment_id for t in finals]
    assert ids and len(ids) == len(set(ids))  # a committed translation is sent once and never changes
    committed_at = {e.segment_id: i for i, e in enumerate(events) if isinstance(e, Committed)}
    for draft in drafts:  # a draft always precedes the commit of its segment (none arrives stale)
        assert events.index(draft) < committed_at.get(draft.segment_id, len(events))


def test_the_cli_translates_live_into_an_installed_pack_and_writes_bilingual_cues(fox_wav, pack_int8, tmp_path,
                                                                                   tmp_path_factory, monkeypatch,
                                                                                   capsys):
    require_module("transformers")
    from translate_fixtures import built

    from engine.cli import main

    pack = built(tmp_path_factory, "marian")[1]  # tiny random-weight en→de Marian: real runtime, arbitrary words
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    shutil.copytree(pack, tmp_path / "home" / "packs" / "translation" / pack.name)
    out = tmp_path / "fox.de.srt"
    assert main(["live", "--input", str(fox_wav), "--model", str(pack_int8), "--language", "en", "-q",
                 "--translate-to", "de", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "    → " in printed  # each finished sentence's translation under it
    cues = [c.strip().split("\n") for c in out.read_text(encoding="utf-8").strip().split("\n\n")]
    assert cues and all(len(c) >= 4 and " --> " in c[1] for c in cues)  # index, time, source, translation
    _has_words(" ".join(" ".join(c[2:]) for c in cues))
    assert main(["live", "--input", str(fox_wav), "--model", str(pack_int8), "--translate-to", "ja"]) == 1
    assert "ja" in capsys.readouterr().err  # no pack for en→ja: the error names the pair


def test_a_recorded_session_keeps_its_audio_on_the_segments_clock(model, fox_wav, tmp_path):
    """The recording is what the session heard, sample for sample, so a committed segment's times cut its own
    words out of it (how corrected live lines become training data)."""
    from engine.corrections import Correction, save_corrections

    record = tmp_path / "rec" / "live.wav"
    session, rec = run_session(model, FileSource(fox_wav, realtime=False), record_path=str(record))
    _has_words(session.text)
    heard, rate = sf.read(str(record), dtype="float32")
    from engine.audio.decode import load_audio

    original = load_audio(fox_wav)
    assert rate == 16000 and heard.shape == original.shape
    assert np.max(np.abs(heard - original)) <= 1.5 / 32768  # 16-bit PCM
    first = sentences(rec.of(Committed))[0]  # a row of the window: "The quick brown fox jumps over the lazy dog."
    report = save_corrections([Correction(record, first.start_s, first.end_s, first.text)], tmp_path / "clips")
    assert len(report.saved) == 1, report.summary()
    clip = model.transcribe(str(report.saved[0])).text.lower()
    assert all(w in clip for w in ("quick", "brown", "fox", "lazy", "dog")), clip
    assert "shore" not in clip  # the second sentence is not in the first one's clip


def test_a_recording_that_cannot_be_opened_fails_at_start_naming_it(model, fox_wav, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    session = LiveSession(model, LiveOptions(language="en", record_path=str(blocker / "live.wav")),
                          source=FileSource(fox_wav, realtime=False))
    with pytest.raises(Exception, match="live.wav"):
        session.start()
