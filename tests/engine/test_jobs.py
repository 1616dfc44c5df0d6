"""engine.jobs driven without a front-end: the file job's rules, its results, progress, cancel, and the
transcript kept when the translation fails (what `parley transcribe` and the app's worker both run)."""

from __future__ import annotations

import threading

import pytest

from engine.errors import CancelledError, ParleyError
from engine.jobs import FileJobResult, open_translator, plan_file_job, plan_live_job, run_file_job, runs_on
from engine.translate.registry import MissingPairError
from engine.whisper.results import Segment, Transcript, Word

SEGMENTS = (Segment(0, 0.0, 2.0, " Guten Morgen.", (), (Word(0.0, 1.0, " Guten", 0.9),)),
            Segment(1, 2.0, 2.5, " ", ()),  # nothing said: no translation of its own
            Segment(2, 2.5, 4.0, " Es ist kalt.", ()))


class ScriptedModel:
    """What a job needs of a WhisperModel: transcribe(path, options, progress, cancel), device and threads."""

    device, threads = "cpu", 1

    def __init__(self):
        self.options = None

    def transcribe(self, path, options, progress=None, cancel=None) -> Transcript:
        self.options = options
        for done in (2.0, 4.0):
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled")
            if progress is not None:
                progress(done, 4.0)
        return Transcript(SEGMENTS, "de", 0.97, 4.0)


def shout(text: str, source: str | None, target: str) -> str:
    return f"[{source}→{target}] {text.upper()}"


def test_the_task_rules_are_one_set_for_every_front_end():
    assert plan_file_job("de").options.task == "transcribe" and plan_file_job("de").translate_to is None
    english = plan_file_job(None, translate_to="en")  # English only: Whisper translates the whole file
    assert (english.options.task, english.translate_to) == ("translate", None)
    both = plan_file_job(None, translate_to="en", bilingual=True)  # the app's rows, bilingual cues
    assert (both.options.task, both.translate_to) == ("transcribe", "en")
    assert plan_file_job("", beam_size=1, word_timestamps=True).options.language is None
    assert plan_file_job("fr", beam_size=1).options.beam_size == 1
    with pytest.raises(ParleyError, match="--bilingual needs --translate-to"):
        plan_file_job(None, bilingual=True)
    with pytest.raises(ParleyError, match="not both"):
        plan_file_job(None, task="translate", translate_to="de")
    assert runs_on("cpu") == "cpu"


@pytest.mark.parametrize("written", ["en", "EN", "eng", "English"[:2]])
def test_english_however_written_is_whispers_translation_for_files_and_live(written):
    # ("EN" once reached the file job as is: no translator opened, and after the whole file was transcribed
    # the segment translation failed, 'translation into 'EN' needs a text translator')
    assert plan_file_job(None, translate_to=written).options.task == "translate"
    assert plan_file_job(None, translate_to=written, bilingual=True).translate_to == "en"
    assert plan_live_job(None, translate_to=written).translate_to == "en"
    assert plan_live_job(None, translate_to="pt").translate_to == "pt"


def test_what_parley_live_is_given_reaches_the_live_options():
    """Every option of `parley live` the session reads, parsed and planned as the command does; its defaults
    are LiveOptions' own (a parser default of None once replaced the final beam's)."""
    from engine.cli.live import live_options
    from engine.cli.main import build_parser
    from engine.live.options import LiveOptions

    def planned(*argv):
        return live_options(build_parser().parse_args(["live", "--input", "in.wav", *argv]))

    default, stock = planned(), LiveOptions()
    for field in ("final_beam_size", "final_beam_below_p", "final_beam_within_s", "beam_size", "min_step_s", "first_step_s",
                  "first_draft_s", "finalize_pause_s", "hold_commits_s", "encoder_frames", "vad", "glossary"):
        assert getattr(default, field) == getattr(stock, field), field
    given = planned("--final-beam", "3", "--final-beam-below", "0.7", "--hold", "2", "--pause", "0.6",
                    "--step", "0.5", "--no-vad", "--encoder", "full", "--beam-size", "2", "--final-beam-within", "2.5")
    assert (given.final_beam_size, given.final_beam_below_p, given.hold_commits_s, given.finalize_pause_s,
            given.min_step_s, given.vad, given.encoder_frames, given.beam_size,
            given.final_beam_within_s) == (3, 0.7, 2.0, 0.6, 0.5, False, "full", 2, 2.5)


def test_a_file_is_transcribed_then_each_spoken_segment_translated_with_progress_in_order():
    model, seen, transcripts = ScriptedModel(), [], []
    job = plan_file_job(None, translate_to="pt", bilingual=True)
    result = run_file_job(model, "talk.wav", job, translate_text=shout,
                          progress=lambda stage, done, total: seen.append((stage, done, total)),
                          on_transcript=lambda t: transcripts.append((t, len(seen))))
    assert model.options is job.options
    assert seen[:2] == [("transcribing", 2.0, 4.0), ("transcribing", 4.0, 4.0)]
    assert [s for s, _, _ in seen[2:]] == ["translating"] * 2 and seen[-1][1:] == (1.0, 1.0)
    assert transcripts == [(result.transcript, 2)]  # seen before the translation started
    assert [t for _, t in result.with_translations()] == ["[de→pt] GUTEN MORGEN.", "", "[de→pt] ES IST KALT."]
    plain = result.cues(bilingual=False)
    assert [c.text for c in plain] == ["[de→pt] GUTEN MORGEN.", "[de→pt] ES IST KALT."]
    assert all(c.words == () for c in plain)  # the source's word timings do not apply to a translation
    both = result.cues(bilingual=True)
    assert [(c.text, c.translation) for c in both][0] == ("Guten Morgen.", "[de→pt] GUTEN MORGEN.")
    assert both[0].words == SEGMENTS[0].words


def test_a_translation_that_fails_after_detection_keeps_the_transcript():
    def no_pair(text, source, target):
        raise MissingPairError(f"no translation pack for {source} → {target}")

    result = run_file_job(ScriptedModel(), "talk.wav", plan_file_job(None, translate_to="pt", bilingual=True),
                          translate_text=no_pair)
    assert isinstance(result.translation_error, MissingPairError) and "de → pt" in str(result.translation_error)
    assert result.translated is None and list(result.cues()) == list(SEGMENTS)
    assert [t for _, t in result.with_translations()] == ["", "", ""]


def test_cancel_stops_the_transcription_and_the_translation():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        run_file_job(ScriptedModel(), "talk.wav", plan_file_job("de"), cancel=cancel)
    cancel = threading.Event()
    with pytest.raises(CancelledError):  # set while the transcript is being translated
        run_file_job(ScriptedModel(), "talk.wav", plan_file_job(None, translate_to="pt", bilingual=True),
                     translate_text=shout, on_transcript=lambda t: cancel.set(), cancel=cancel)


def test_no_translation_asked_is_the_transcript_alone():
    result = run_file_job(ScriptedModel(), "talk.wav", plan_file_job("de"))
    assert isinstance(result, FileJobResult) and result.translated is None and result.translation_error is None
    assert result.cues() == list(SEGMENTS)
    assert open_translator(plan_file_job("de"), ScriptedModel()) is None  # and no translator is opened
    assert open_translator(plan_file_job(None, translate_to="en", bilingual=True), ScriptedModel()) is None
