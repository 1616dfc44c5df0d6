"""Live translation that cannot be done is said on the sentence's own line, and refused before the session
starts where the spoken language is given: a sentence whose pair has no pack, a damaged pack, a fixed
language that no installed pack (nor Whisper's English) can take into the target. Tiny random text packs
(tests/translate_fixtures.py) relabelled with the pairs each case needs; PARLEY_HOME is a temporary folder."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from needs import require_module  # noqa: E402

from engine import cli  # noqa: E402
from engine.cli.live import _Printer  # noqa: E402
from engine.errors import ParleyError  # noqa: E402
from engine.events import Status, Translated  # noqa: E402
from engine.live.recognise import FinalSentence  # noqa: E402
from engine.live.translation import LiveTranslator  # noqa: E402
from engine.logfile import detach_log_file  # noqa: E402
from engine.translate.installed import InstalledTextTranslator  # noqa: E402


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory) -> Path:
    require_module("transformers")
    from translate_fixtures import built

    return built(tmp_path_factory, "marian")[1]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "packs" / "translation").mkdir(parents=True)
    yield tmp_path / "home"
    detach_log_file()


def install(home: Path, pack: Path, source: str, target: str) -> Path:
    dest = home / "packs" / "translation" / f"opus-mt-{source}-{target}"
    shutil.copytree(pack, dest)
    meta = json.loads((dest / "parley.json").read_text())
    meta.update(name=dest.name, languages={"source": [source], "target": [target]})
    (dest / "parley.json").write_text(json.dumps(meta))
    return dest


def sentence(segment_id: int, text: str, language: str) -> FinalSentence:
    """A finished sentence without its audio (so no speech translation can stand in for a missing pack)."""
    return FinalSentence(segment_id, text, 0.0, 1.0, language)


def translate_live(target: str, sentences: list[FinalSentence]) -> list[object]:
    events: list[object] = []
    translator = LiveTranslator(None, target, events.append, InstalledTextTranslator.into(target, "cpu", 1))
    for s in sentences:
        translator.submit(s)
    translator.close(timeout=60)
    return events


def test_a_sentence_whose_pair_has_no_pack_says_why_on_its_own_row_and_the_others_translate(home, tiny_marian):
    install(home, tiny_marian, "en", "de")
    events = translate_live("de", [sentence(1, "Bonjour à tous.", "fr"), sentence(2, "The cat sat.", "en")])
    rows = {e.segment_id: e for e in events if isinstance(e, Translated)}
    assert rows[1].text == "" and rows[1].error == "no fr→de pack; installed: en→de"
    assert rows[2].error is None and rows[2].text.strip()
    assert [e.message for e in events if isinstance(e, Status)] == ["translation failed: no fr→de pack; installed: en→de"]


def test_every_sentence_through_a_damaged_pack_names_its_file(home, tiny_marian, monkeypatch):
    from engine.packs import files

    pack = install(home, tiny_marian, "en", "de")
    decoder = pack / "decoder_model.onnx"
    data = bytearray(decoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    decoder.write_bytes(bytes(data))
    hashed: list[Path] = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda path: hashed.append(Path(path)) or real(path))
    events = translate_live("de", [sentence(1, "The cat sat.", "en"), sentence(2, "Where is the station?", "en"),
                                   sentence(3, "It is late.", "en")])
    rows = [e for e in events if isinstance(e, Translated)]
    assert [r.segment_id for r in rows] == [1, 2, 3]
    for row in rows:
        assert row.text == "" and str(decoder) in row.error and "sha256" in row.error
    assert hashed.count(decoder) == 1  # the pack's failure is remembered, not re-read for every sentence


def test_the_command_line_prints_the_reason_under_the_sentence(capsys):
    # (kept out of the bilingual cues by the live job: tests/engine/test_live_job.py)
    printer = _Printer(quiet=True)
    printer(Translated(4, "", False, 0.0, "de", error="no fr→de pack; installed: en→de"))
    assert capsys.readouterr().out == "    → (not translated: no fr→de pack; installed: en→de)\n"


@pytest.mark.parametrize("language", ["fr", "de"])
def test_a_fixed_language_no_pack_serves_is_refused_before_the_session(home, tiny_marian, language):
    install(home, tiny_marian, "es", "pt")  # into Portuguese only from Spanish: not from French, nor from English
    with pytest.raises(ParleyError) as err:
        InstalledTextTranslator.into("pt", "cpu", 1, source=language)
    assert f"{language} → pt" in str(err.value) and "installed pairs: es→pt" in str(err.value)
    InstalledTextTranslator.into("pt", "cpu", 1, source="es")  # the served one starts
    InstalledTextTranslator.into("pt", "cpu", 1)  # and an unknown language is found out per sentence


def test_english_speech_translation_serves_any_fixed_language_into_a_target_english_has_a_pack_for(
        home, tiny_marian):
    install(home, tiny_marian, "en", "de")
    translator = InstalledTextTranslator.into("de", "cpu", 1, source="fr")  # French → English (Whisper) → de
    assert translator.route("fr", "de") is None and translator.route("en", "de") == "direct"


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> Path:
    from whisper_fixtures import tiny_whisper_pack

    return tiny_whisper_pack(tmp_path_factory)


def test_parley_live_and_transcribe_refuse_an_unservable_fixed_language_in_one_line(home, tiny_marian, tiny_whisper,
                                                                                    tmp_path, capsys):
    install(home, tiny_marian, "es", "pt")
    model = tiny_whisper
    wav = tmp_path / "talk.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    for argv in (["live", "--input", str(wav)], ["transcribe", str(wav), "-o", str(tmp_path)]):
        code = cli.main([*argv, "--model", str(model), "--language", "fr", "--translate-to", "pt"])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 1 and len(lines) == 1 and lines[0].startswith("parley: error: "), err
        assert "fr → pt" in lines[0] and "installed pairs: es→pt" in lines[0], err
    assert not list(tmp_path.glob("talk*.txt"))
