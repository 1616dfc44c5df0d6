"""`parley transcribe --translate-to LANG [--bilingual]`: file transcripts with their translation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from bench import clips
from engine.cli import main
from engine.file_translation import TranslatedSegment, segment_audio
from needs import require_module


def test_segment_audio_cuts_each_segment_out_of_a_file_read_in_chunks(tmp_path):
    audio = (np.arange(16000 * 70) % 16000 / 16000).astype(np.float32)  # a ramp each second: position readable
    path = tmp_path / "ramp.wav"
    sf.write(str(path), audio, 16000, subtype="FLOAT")
    segs = [TranslatedSegment(0, 1.0, 2.0, "a", ""), TranslatedSegment(1, 29.5, 31.25, "b", ""),
            TranslatedSegment(2, 65.0, 80.0, "c", "")]  # the last one runs past the end of the file
    got = list(segment_audio(path, segs, margin_s=0.0))
    assert [s for s, _ in got] == segs
    assert np.allclose(got[0][1], audio[16000:32000])
    assert np.allclose(got[1][1], audio[int(29.5 * 16000):int(31.25 * 16000)])
    assert np.allclose(got[2][1], audio[65 * 16000:])


def test_bilingual_needs_a_target(capsys, tmp_path):
    assert main(["transcribe", str(tmp_path / "x.wav"), "--bilingual"]) != 0
    assert "--translate-to" in capsys.readouterr().err


@pytest.mark.model
def test_spanish_speech_to_bilingual_english_subtitles(pack_int8, tmp_path, capsys):
    talk = clips.concat_clips([c for c in clips.clips("es") if c.id in ("es02", "es08")], tmp_path / "es.wav",
                              tmp_path / "cache", pause_s=1.5)
    out = tmp_path / "es.en.srt"
    assert main(["transcribe", str(talk.path), "--model", str(pack_int8), "--language", "es", "--translate-to",
                 "en", "--bilingual", "-q", "-o", str(out)]) == 0
    cues = [c.strip().split("\n") for c in out.read_text(encoding="utf-8").strip().split("\n\n")]
    assert len(cues) >= 2 and all(len(c) >= 4 and " --> " in c[1] for c in cues)
    text = " ".join(" ".join(c[2:]) for c in cues).lower()
    assert "paella" in text and "ventana" in text  # the Spanish lines
    assert "restaurant" in text and "cold" in text  # and their English translation, cue by cue


@pytest.mark.model
def test_text_pack_translation_of_a_file_and_a_missing_pair(pack_int8, tmp_path, tmp_path_factory, monkeypatch,
                                                            capsys):
    require_module("transformers")
    from translate_fixtures import built

    pack = built(tmp_path_factory, "marian")[1]  # tiny random-weight en→de Marian, exported by our exporter
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    shutil.copytree(pack, tmp_path / "home" / "packs" / "translation" / pack.name)
    talk = clips.synthesize(clips.clips("en")[0], tmp_path / "cache")
    out = tmp_path / "en.de.srt"
    assert main(["transcribe", str(talk), "--model", str(pack_int8), "--language", "en", "--translate-to", "de",
                 "-q", "-o", str(out)]) == 0
    cues = [c.strip().split("\n") for c in out.read_text(encoding="utf-8").strip().split("\n\n")]
    assert cues and all(" --> " in c[1] and len(c) >= 3 for c in cues)
    assert "train" not in " ".join(" ".join(c[2:]) for c in cues).lower()  # translated, not the English text
    assert main(["transcribe", str(talk), "--model", str(pack_int8), "--translate-to", "ja", "-q"]) == 1
    assert "ja" in capsys.readouterr().err


@pytest.mark.model
def test_speech_with_no_pack_from_its_language_goes_through_whisper_english(pack_int8, tmp_path, monkeypatch):
    """Spanish speech, only an en→pt pack: Whisper translates each segment into English, the pack into
    Portuguese (as live mode does), instead of failing for want of an es→pt pack."""
    from bergamot_fixtures import installed_pack

    en_pt = installed_pack("en", "pt")
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    shutil.copytree(en_pt, tmp_path / "home" / "packs" / "translation" / en_pt.name)
    talk = clips.concat_clips([c for c in clips.clips("es") if c.id in ("es02", "es08")], tmp_path / "es.wav",
                              tmp_path / "cache", pause_s=1.5)
    out = tmp_path / "es.pt.srt"
    assert main(["transcribe", str(talk.path), "--model", str(pack_int8), "--language", "es", "--translate-to",
                 "pt", "--bilingual", "-q", "-o", str(out)]) == 0
    cues = [c.strip().split("\n") for c in out.read_text(encoding="utf-8").strip().split("\n\n")]
    assert len(cues) >= 2 and all(len(c) >= 4 and " --> " in c[1] for c in cues)
    text = " ".join(" ".join(c[2:]) for c in cues).lower()
    assert "paella" in text and "ventana" in text  # the Spanish lines
    assert "restaurante" in text and "frio" in text  # Portuguese, through Whisper's English ("restaurant", "cold")
