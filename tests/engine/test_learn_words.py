"""Learn these words, the torch-free half: the sentences Parley writes from a glossary, the voices it speaks them
with, and the gate a learned model must pass."""

from __future__ import annotations

from collections import Counter

import pytest

from bench import clips as clipkit
from bench.glossary import TERM_SENTENCES
from engine import learn_words as lw
from engine.audio.decode import load_audio
from engine.glossary import parse_glossary
from engine.metrics import normalize_text

GLOSSARY = parse_glossary("""\
Okonkwo = oh konk woe; oh conk whoa
    Doctor Okonkwo chairs the meeting.
Kubernetes
Zyrtec = zeer tech
""")


def test_every_term_is_in_training_and_validation_sentences_spoken_as_it_sounds():
    corpus = lw.write_sentences(GLOSSARY, per_term=6, validation_per_term=2)
    for term in GLOSSARY.terms:
        train = [u for u in corpus.train if u.term == term.text]
        assert len(train) == 6 + len(term.examples)
        assert all(lw.term_hits(u.text, u.text, term.text)[0] == 1 for u in train)  # written as the transcript must
        assert len([u for u in corpus.validation if u.term == term.text]) == 2
        for u in train:
            if term.sounds_like:  # said from its "sounds like", in turn
                assert term.text not in u.spoken and any(s in u.spoken for s in term.sounds_like)
            else:
                assert u.spoken == u.text
    okonkwo = [u.spoken for u in corpus.train if u.term == "Okonkwo"]
    assert any("oh konk woe" in s for s in okonkwo) and any("oh conk whoa" in s for s in okonkwo)
    assert [u.text for u in corpus.train if u.kind == "example"] == ["Doctor Okonkwo chairs the meeting."]


def test_voices_speeds_and_pitches_vary_and_validation_is_held_out():
    corpus = lw.write_sentences(GLOSSARY)
    for term in GLOSSARY.words:
        heard = [u for u in corpus.train if u.term == term]
        assert len({u.voice for u in heard}) >= 4  # one term, several voices
        assert len({u.speed for u in heard}) >= 2 and len({u.pitch for u in heard}) >= 2
    assert set(Counter(u.voice for u in corpus.train)) == set(lw.TRAIN_VOICES)
    # validation: voices and sentences training never had
    assert not {u.voice for u in corpus.validation + corpus.gate} & {u.voice for u in corpus.train + corpus.fisher}
    assert not {u.text for u in corpus.validation} & {u.text for u in corpus.train}
    assert not {u.text for u in corpus.gate} & {u.text for u in corpus.fisher}
    # the voices and sentences bench/glossary.py tests with are never heard in training or validation
    assert not {"en-us", "en-gb-x-rp"} & {u.voice.split("+")[0] for u in corpus.train + corpus.validation}
    used = {normalize_text(u.text) for u in corpus.train + corpus.validation + corpus.fisher + corpus.gate}
    tests = {normalize_text(s) for s in TERM_SENTENCES} | {normalize_text(c.text) for c in clipkit.clips("en")}
    assert not used & tests


def test_the_same_glossary_always_gives_the_same_sentences():
    assert lw.write_sentences(GLOSSARY) == lw.write_sentences(parse_glossary(
        "Okonkwo = oh konk woe; oh conk whoa\n    Doctor Okonkwo chairs the meeting.\nKubernetes\nZyrtec = zeer tech\n"))
    keys = [u.key for c in (lw.write_sentences(GLOSSARY),) for u in c.train + c.validation + c.fisher + c.gate]
    assert len(keys) == len(set(keys))


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="no terms"):
        lw.write_sentences(parse_glossary(""))
    with pytest.raises(ValueError, match="both a training and a validation voice"):
        lw.write_sentences(GLOSSARY, train_voices=("en-gb",), validation_voices=("en-gb",))


def test_a_sentence_is_spoken_with_its_voice_speed_and_pitch(tmp_path):
    u = lw.write_sentences(GLOSSARY).train[0]
    wav = lw.speak(u, tmp_path)
    assert wav.with_suffix(".txt").read_text(encoding="utf-8").strip() == u.text
    audio = load_audio(wav)
    assert 1.0 < audio.size / 16000 < 10 and abs(audio).max() > 0.05
    slower = lw.speak(lw.Utterance(u.text, u.spoken, u.voice, 100, u.pitch, u.kind, u.term), tmp_path)
    assert load_audio(slower).size > audio.size * 1.2  # the speed is espeak-ng's
    with pytest.raises(RuntimeError, match="could not speak with voice 'no-such-voice'"):
        lw.speak(lw.Utterance("Hello.", "Hello.", "no-such-voice", 150, 50, "general"), tmp_path)


def test_term_error_rate_counts_the_terms_occurrences():
    rows = [("Doctor Okonkwo chairs the meeting.", "Doctor Okonkwo chairs the meeting"),
            ("We use Kubernetes and Zyrtec.", "We use Cubernetes and Zyrtec."),
            ("Nothing here.", "Nothing here.")]
    assert lw.term_error_rate(rows, GLOSSARY.words) == (pytest.approx(1 / 3), 3)


def test_the_gate_keeps_the_current_model_unless_terms_improve_and_english_holds():
    current = lw.Scores(0.90, "term errors", 0.100)
    ok, line = lw.gate(current, lw.Scores(0.20, "term errors", 0.104))
    assert ok and line.startswith("installed: term errors on held-out voices 90.0% → 20.0%")
    ok, line = lw.gate(current, lw.Scores(0.20, "term errors", 0.110))
    assert not ok and line == ("not installed: general WER rose 1.0 points, more than 0.5 (term errors on held-out "
                               "voices 90.0% → 20.0%, general WER 10.0% → 11.0% (+1.0 points)); the current model "
                               "is kept")
    ok, line = lw.gate(current, lw.Scores(0.90, "term errors", 0.090))
    assert not ok and line.startswith("not installed: the term errors did not fall") and "\n" not in line
