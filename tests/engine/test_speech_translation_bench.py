"""bench/speech_translation.py's scoring: per-language and overall BLEU/chrF, differences, same-text counts."""

from __future__ import annotations

import pytest

from needs import require_module  # noqa: E402

require_module("sacrebleu", "dev")

from bench.speech_translation import compare, format_table  # noqa: E402

CORPUS = [
    {"id": "de01", "language": "de", "ref": "The train to Berlin is half an hour late today."},
    {"id": "de02", "language": "de", "ref": "I would like to book a room for two nights."},
    {"id": "ja01", "language": "ja", "ref": "It is very hot today, isn't it?"},
]
OUTPUTS = {
    "parley": {"de01": "The train to Berlin is half an hour late today.",
               "de02": "I would like to book a room for two nights.",
               "ja01": "It's very hot today."},
    "faster-whisper": {"de01": "The train to Berlin is half an hour late today. ",
                       "de02": "I want a room for two nights.",
                       "ja01": "It's very hot today."},
}


def test_compare_scores_each_language_and_all():
    rows = compare(CORPUS, OUTPUTS)
    assert [(r["language"], r["clips"], r["same"]) for r in rows] == [("de", 2, 1), ("ja", 1, 1), ("all", 3, 2)]
    de, ja, everything = rows
    assert de["bleu", "parley"] == pytest.approx(100.0) and de["chrf", "parley"] == pytest.approx(100.0)
    assert de["bleu", "faster-whisper"] < 100.0 and de["chrf", "faster-whisper"] < 100.0
    assert ja["bleu", "parley"] == ja["bleu", "faster-whisper"] and ja["chrf", "parley"] == ja["chrf", "faster-whisper"]
    assert 0 < everything["bleu", "faster-whisper"] < everything["bleu", "parley"] < 100.0


def test_format_table_shows_differences():
    table = format_table(compare(CORPUS, OUTPUTS)).splitlines()
    assert table[0].startswith("| language | clips | BLEU Parley | BLEU FW | Δ BLEU |")
    assert len(table) == 2 + 3
    de = [c.strip() for c in table[2].strip("|").split("|")]
    assert de[0] == "de" and de[1] == "2" and de[2] == "100.0" and de[4].startswith("+") and de[-1] == "1/2"
    assert table[-1].startswith("| all | 3 |") and table[-1].endswith("| 2/3 |")
