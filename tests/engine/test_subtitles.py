"""Subtitle files read back by a strict parser: numbering, time format, text, bilingual lines."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest

from engine import subtitles
from engine.events import Word
from engine.subtitles import CueLayout, format_for_path, write


@dataclasses.dataclass(frozen=True)
class Seg:
    start_s: float
    end_s: float
    text: str
    translation: str | None = None
    words: tuple = ()


SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"
VTT_TIME = r"(\d{2}):(\d{2}):(\d{2})\.(\d{3})"


def _seconds(h, m, s, ms) -> float:
    assert int(m) < 60 and int(s) < 60
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(content: str) -> list[tuple[float, float, list[str]]]:
    """Strict: blocks separated by exactly one blank line, 1-based consecutive indices,
    'HH:MM:SS,mmm --> HH:MM:SS,mmm', at least one non-empty text line, a final newline."""
    assert content.endswith("\n\n") and "\n\n\n" not in content and "\r" not in content
    out = []
    for i, block in enumerate(content[:-2].split("\n\n"), 1):
        lines = block.split("\n")
        assert lines[0] == str(i), f"cue {i} numbered {lines[0]!r}"
        m = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert m, f"bad timing line {lines[1]!r}"
        start, end = _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:])
        assert 0 <= start <= end
        text = lines[2:]
        assert text and all(line.strip() == line and line for line in text)
        out.append((start, end, text))
    return out


def parse_vtt(content: str) -> list[tuple[float, float, list[str]]]:
    assert content.startswith("WEBVTT\n\n") and content.endswith("\n\n") and "\n\n\n" not in content
    body = content[len("WEBVTT\n\n") : -2]
    out = []
    for block in body.split("\n\n") if body else []:
        lines = block.split("\n")
        m = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", lines[0])
        assert m, f"bad timing line {lines[0]!r}"
        text = lines[1:]
        assert text and all(line and "-->" not in line and "<" not in line for line in text)
        out.append((_seconds(*m.groups()[:4]), _seconds(*m.groups()[4:]), text))
    return out


SEGMENTS = [
    Seg(0.0, 2.5, " Hello there.", "Bonjour."),
    Seg(2.5, 61.0004, "How are you today?", "Comment allez-vous aujourd'hui ?"),
    Seg(3661.25, 3662.999, "An hour later.", None),
]


def test_srt_round_trip(tmp_path):
    path = tmp_path / "talk.srt"
    write(SEGMENTS, path)
    parsed = parse_srt(path.read_text(encoding="utf-8"))
    assert [(s, e) for s, e, _ in parsed] == [(0.0, 2.5), (2.5, 61.0), (3661.25, 3662.999)]
    assert [t for _, _, t in parsed] == [["Hello there."], ["How are you today?"], ["An hour later."]]
    assert "01:01:01,250 --> 01:01:02,999" in path.read_text()


def test_vtt_round_trip_and_escaping(tmp_path):
    path = tmp_path / "talk.vtt"
    write(SEGMENTS + [Seg(70, 71, "a <b> & c --> d")], path)
    parsed = parse_vtt(path.read_text(encoding="utf-8"))
    assert [(s, e) for s, e, _ in parsed] == [(0.0, 2.5), (2.5, 61.0), (3661.25, 3662.999), (70.0, 71.0)]
    assert parsed[3][2] == ["a &lt;b&gt; &amp; c --&gt; d"]


@pytest.mark.parametrize("fmt,parse", [("srt", parse_srt), ("vtt", parse_vtt)])
def test_bilingual_cue_is_source_then_translation(fmt, parse):
    buf = io.StringIO()
    write(SEGMENTS, buf, fmt, bilingual=True)
    parsed = parse(buf.getvalue())
    assert parsed[0][2] == ["Hello there.", "Bonjour."]
    assert parsed[1][2] == ["How are you today?", "Comment allez-vous aujourd'hui ?"]
    assert parsed[2][2] == ["An hour later."]  # no translation: no empty line


def test_long_segment_split_into_two_line_cues_timed_by_words():
    sentence = ("The government announced a plan to build more affordable housing in the capital "
                "and prices for fresh vegetables rose sharply after the long summer drought this year.")
    tokens = sentence.split()
    words = tuple(Word(10 + i * 0.4, 10 + i * 0.4 + 0.3, (" " if i else "") + t, 0.9) for i, t in enumerate(tokens))
    buf = io.StringIO()
    write([Seg(10.0, 10 + len(tokens) * 0.4, sentence, words=words)], buf, "srt")
    parsed = parse_srt(buf.getvalue())
    assert len(parsed) >= 2
    assert all(len(lines) <= 2 and all(len(line) <= 42 for line in lines) for _, _, lines in parsed)
    assert " ".join(" ".join(lines) for _, _, lines in parsed) == sentence  # nothing lost or reordered
    # each cue runs from its first word's start to its last word's end, in order, without overlap
    first_word = 0
    for start, end, lines in parsed:
        n = len(" ".join(lines).split())
        assert start == pytest.approx(words[first_word].start_s, abs=1e-3)
        assert end == pytest.approx(words[first_word + n - 1].end_s, abs=1e-3)
        first_word += n
    assert all(parsed[i][1] <= parsed[i + 1][0] for i in range(len(parsed) - 1))


def test_long_segment_without_words_is_split_across_its_time():
    text = " ".join(["word"] * 60)
    buf = io.StringIO()
    write([Seg(5.0, 35.0, text)], buf, "srt", bilingual=False)
    parsed = parse_srt(buf.getvalue())
    assert len(parsed) >= 2
    assert parsed[0][0] == 5.0 and parsed[-1][1] == pytest.approx(35.0, abs=1e-3)
    assert sum(len(" ".join(lines).split()) for _, _, lines in parsed) == 60


def test_cjk_lines_wrap_by_display_width():
    text = "今天天气很好，我们去公园散步吧。" * 3
    lines = subtitles.wrap(text, 20)
    assert "".join(lines) == text
    assert all(sum(2 for _ in line) <= 20 for line in lines)
    assert not any(line.startswith(("，", "。")) for line in lines)


def test_txt_and_json(tmp_path):
    txt = tmp_path / "talk.txt"
    write(SEGMENTS, txt, bilingual=True)
    assert txt.read_text(encoding="utf-8").split("\n\n")[0] == "Hello there.\nBonjour."
    write(SEGMENTS, txt)
    assert txt.read_text(encoding="utf-8").splitlines() == ["Hello there.", "How are you today?", "An hour later."]

    words = (Word(0.0, 0.4, " Hello", 0.91), Word(0.5, 0.9, " there.", 0.8))
    out = tmp_path / "talk.json"
    write([Seg(0.0, 1.0, " Hello there.", "Bonjour.", words)], out)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["text"] == "Hello there."
    seg = doc["segments"][0]
    assert seg["translation"] == "Bonjour." and seg["start_s"] == 0.0 and seg["end_s"] == 1.0
    assert "".join(w["text"] for w in seg["words"]).strip() == seg["text"]
    assert seg["words"][0] == {"start_s": 0.0, "end_s": 0.4, "text": " Hello", "probability": 0.91}


def test_empty_transcript_writes_valid_files(tmp_path):
    for name in ("a.srt", "a.vtt", "a.txt", "a.json"):
        write([], tmp_path / name)
    assert (tmp_path / "a.srt").read_text() == ""
    assert parse_vtt((tmp_path / "a.vtt").read_text()) == []
    assert json.loads((tmp_path / "a.json").read_text()) == {"text": "", "segments": []}


def test_format_for_path():
    assert format_for_path("x/talk.SRT") == "srt"
    assert format_for_path("talk.vtt") == "vtt"
    with pytest.raises(ValueError, match=r"talk\.docx.*\.srt"):
        format_for_path("talk.docx")
    with pytest.raises(ValueError, match="fmt"):
        write(SEGMENTS, io.StringIO())


def test_layout_is_validated():
    with pytest.raises(ValueError):
        CueLayout(max_line_chars=2)
