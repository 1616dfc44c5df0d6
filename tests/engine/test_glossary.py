"""The glossary: its file format (what a user writes by hand, and the one-line error naming file and line on a
bad one) and the logit bias it drives (TermBias: the bonus lands on the token that continues a term after the
term's prefix, nowhere else, in greedy and beam search alike); a model that learned some of its terms is neither
primed nor biased with those (for_pack), a stock one with all of them."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from engine.glossary import (MAX_TERM_CHARS, Glossary, GlossaryError, Term, for_pack, format_glossary,
                             load_glossary, parse_glossary, save_glossary)
from engine.whisper.decoding import DecodeOptions, TermBias, beam_search, greedy_or_sample, rank

GOOD = """\
# my words
Kubernetes

Okonkwo = oh konk woe
    Doctor Okonkwo chairs the meeting.
\tWe asked okonkwo about the budget.
Zyrtec = zeer tech;  zir tek
"""


def test_a_hand_written_glossary_reads_as_its_terms_sounds_and_examples():
    g = parse_glossary(GOOD, "words.txt")
    assert g.words == ("Kubernetes", "Okonkwo", "Zyrtec")
    assert g.terms[0] == Term("Kubernetes")
    assert g.terms[1].sounds_like == ("oh konk woe",)
    assert g.terms[1].examples == ("Doctor Okonkwo chairs the meeting.", "We asked okonkwo about the budget.")
    assert g.terms[2].sounds_like == ("zeer tech", "zir tek") and g.terms[2].examples == ()
    assert g.prompt() == "Kubernetes, Okonkwo, Zyrtec."
    assert parse_glossary(format_glossary(g)) == g  # what the app saves reads back the same


def test_save_and_load_round_trip_and_a_bom_is_ignored(tmp_path):
    g = parse_glossary(GOOD)
    path = save_glossary(g, tmp_path / "settings" / "glossary.txt")
    assert load_glossary(path) == g
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # Notepad's UTF-8
    assert load_glossary(path) == g
    assert not list(path.parent.glob("*.tmp"))


@pytest.mark.parametrize("text, line, words", [
    ("    an example first\nKubernetes\n", 1, "indented"),
    ("Okonkwo\n    The meeting is on Tuesday.\n", 2, "does not use the term 'Okonkwo'"),
    ("Zyrtec =\n", 1, "empty 'sounds like'"),
    ("Zyrtec = zeer tech;\n", 1, "empty 'sounds like'"),
    ("= oh konk woe\n", 1, "no term"),
    ("Kubernetes\n\n# again\nkubernetes\n", 4, "already on line 1"),
    ("x" * (MAX_TERM_CHARS + 1) + "\n", 1, "characters long"),
    ("Grafana\n?!\n", 2, "no letters"),
])
def test_a_bad_line_is_one_error_naming_the_file_and_line(text, line, words):
    with pytest.raises(GlossaryError) as e:
        parse_glossary(text, "words.txt")
    message = str(e.value)
    assert message.startswith(f"words.txt:{line}: ") and words in message and "\n" not in message


def test_a_file_that_is_not_utf8_text_or_missing_is_named(tmp_path):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Kubernetes\nJosé\n".encode("latin-1"))
    with pytest.raises(GlossaryError, match=r"latin1\.txt:2: not UTF-8"):
        load_glossary(latin1)
    with pytest.raises(GlossaryError, match=r"missing\.txt: no such glossary file"):
        load_glossary(tmp_path / "missing.txt")
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"ab\x00cd")
    with pytest.raises(GlossaryError, match="not a text file"):
        load_glossary(binary)


# -- the logit bias ---------------------------------------------------------------------------------

TERM_A = [5, 6, 7]  # a term of three tokens
TERM_B = [5, 8]  # another that shares its first token


def biased(sampled: list[list[int]], bonus: float = 1.5, vocab: int = 10) -> np.ndarray:
    logits = np.zeros((len(sampled), vocab), np.float32)
    logits[:, 3] = -np.inf  # a token another filter vetoed
    TermBias([TERM_A, TERM_B], bonus).apply(logits, sampled)
    return logits


def boosted(row: np.ndarray) -> list[int]:
    return [int(t) for t in np.flatnonzero(row == 1.5)]


def test_the_bonus_goes_to_the_token_that_continues_a_term_after_its_prefix():
    rows = biased([[], [1, 2], [1, 5], [5, 6], [5, 6, 7], [1, 6], [6, 5, 8], [5, 7]])
    assert boosted(rows[0]) == [5]  # nothing yet: a term may start
    assert boosted(rows[1]) == [5]  # any word boundary: a term may start
    assert boosted(rows[2]) == [5, 6, 8]  # after its first token: both terms go on (and one may start anew)
    assert boosted(rows[3]) == [5, 7]  # deep in term A: its last token
    assert boosted(rows[4]) == [5]  # term A complete: nothing continues it
    assert boosted(rows[5]) == [5]  # 6 without the 5 before it is no prefix: 7 is not favoured
    assert boosted(rows[6]) == [5]  # term B complete
    assert boosted(rows[7]) == [5]  # 5 7 is no prefix of anything
    assert np.all(np.isneginf(rows[:, 3]))  # a vetoed token stays vetoed
    assert np.count_nonzero(rows[np.isfinite(rows)]) == 1 + 1 + 3 + 2 + 1 + 1 + 1 + 1  # nothing else moved


def test_a_token_continuing_two_terms_gets_one_bonus_and_no_terms_cost_nothing():
    logits = np.zeros((1, 10), np.float32)
    TermBias([[5, 6], [5, 6, 7], [2, 5]], 2.0).apply(logits, [[2, 5]])
    assert logits[0, 6] == 2.0 and logits[0, 5] == 2.0 and logits[0, 2] == 2.0
    untouched = np.zeros((2, 10), np.float32)
    TermBias([], 2.0).apply(untouched, [[1], [5, 6]])
    assert not untouched.any()


class Bigram:
    """A stateless decoder: the next logits depend on the last token only, so reorders need no state. Without
    a bias the likeliest sequence is [1] then end; the term 5 6 7 is each time the runner-up."""

    EOT, VOCAB = 9, 10
    TABLE = {None: {1: 2.0, 5: 1.5}, 5: {6: 1.0, 2: 1.5}, 6: {7: 1.0, 4: 1.2}}

    def __init__(self):
        self.reorders = 0

    def logits(self, last: int | None) -> np.ndarray:
        row = np.full(self.VOCAB, -5.0, np.float32)
        for token, value in self.TABLE.get(last, {self.EOT: 3.0}).items():
            row[token] = value
        return row

    def step(self, tokens: np.ndarray) -> np.ndarray:
        return np.stack([self.logits(int(t)) for t in tokens])

    def reorder(self, source: np.ndarray) -> None:
        self.reorders += 1


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_greedy_and_beam_search_write_the_term_with_the_bias_and_not_without(search):
    def decode(filters):
        inference = Bigram()
        first = inference.logits(None)
        if search == "greedy":
            candidates, _ = greedy_or_sample(inference, first, 1, 0.0, filters, Bigram.EOT, 10)
            return candidates[0].tokens
        candidates, _ = beam_search(inference, first, 3, 1.0, filters, Bigram.EOT, 10)
        return candidates[rank(candidates, None)].tokens

    assert decode([]) == [1]
    assert decode([TermBias([TERM_A], 1.0)]) == [5, 6, 7]
    assert decode([TermBias([[4, 4]], 1.0)]) == [1]  # a term that never comes close changes nothing


def test_decode_options_check_the_bias():
    assert DecodeOptions(bias_terms=("Kubernetes",), bias_logit=0.0).bias_logit == 0.0
    for bad in (dict(bias_logit=-1.0), dict(bias_logit=float("nan")), dict(bias_terms="Kubernetes"),
                dict(bias_terms=("",))):
        with pytest.raises(ValueError):
            DecodeOptions(**bad)


def test_an_empty_glossary_is_false_and_prompts_nothing():
    assert not Glossary() and Glossary().prompt() == "" and format_glossary(Glossary()) == ""


def test_a_first_token_bonus_of_its_own_goes_to_the_terms_first_tokens_only():
    logits = np.zeros((3, 10), np.float32)
    TermBias([TERM_A, TERM_B, [6, 2]], 2.0, first_bonus=0.5).apply(logits, [[], [1, 5], [5, 6]])
    assert logits[0].tolist() == [0, 0, 0, 0, 0, 0.5, 0.5, 0, 0, 0]  # only terms' first tokens, at 0.5
    assert logits[1].tolist() == [0, 0, 0, 0, 0, 0.5, 2.0, 0, 2.0, 0]  # 6 starts a term and continues one: 2
    assert logits[2].tolist() == [0, 0, 2.0, 0, 0, 0.5, 0.5, 2.0, 0, 0]  # 7 ends A, 2 ends [6, 2]
    same = np.zeros((1, 10), np.float32)
    TermBias([TERM_A], 2.0, first_bonus=2.0).apply(same, [[]])
    assert same[0, 5] == 2.0 and np.count_nonzero(same) == 1


def test_the_terms_a_pack_learned_are_dropped_and_the_others_kept_in_order():
    g = parse_glossary(GOOD)
    learned = SimpleNamespace(learned_terms=("Okonkwo", "Zorvanic"))  # Zorvanic: learned, not in this glossary
    assert for_pack(g, learned) == Glossary((g.terms[0], g.terms[2]))  # Kubernetes, Zyrtec: sounds-like kept
    assert for_pack(g, SimpleNamespace(learned_terms=())) is g  # a stock pack keeps every term
    assert for_pack(g, object()) is g  # so does a pack that records nothing
    assert for_pack(None, learned) is None
    assert not for_pack(parse_glossary("Okonkwo\n"), learned)  # all learned: nothing left to prompt
    # the user respelled a learned term: the model writes the old spelling, so the new one is prompted again
    assert for_pack(parse_glossary("OKonkwo\n"), learned).words == ("OKonkwo",)


@pytest.mark.model
def test_a_learned_pack_is_neither_primed_nor_biased_with_its_terms(pack_int8, tmp_path):
    """Through the file path, as a learned pack records them (``learned_terms`` in parley.json): the prompt and
    the bias list of every window leave those terms out and keep the others; the stock pack keeps them all."""
    from engine.whisper.model import WhisperModel
    from engine.whisper.transcribe import TranscribeOptions

    learned = tmp_path / "whisper-base-learned-int8"
    learned.mkdir()
    for f in pack_int8.iterdir():  # the same model files; only the description differs
        if f.name != "parley.json":
            (learned / f.name).symlink_to(f.resolve())
    meta = json.loads((pack_int8 / "parley.json").read_text(encoding="utf-8"))
    assert "learned_terms" not in meta
    (learned / "parley.json").write_text(json.dumps({**meta, "learned_terms": ["Kubernetes", "Okonkwo"]}),
                                         encoding="utf-8")
    glossary = parse_glossary(GOOD)
    audio = (0.1 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)  # 1 s: one window

    def windows(pack, **options) -> list[tuple[tuple[str, ...], str]]:
        model = WhisperModel.load(pack, device="cpu", threads=1)
        seen, decode = [], model.decode_window

        def spy(states, decode_options, prompt, **kw):
            seen.append((decode_options.bias_terms, model.tokenizer.decode(prompt)))
            return decode(states, decode_options, prompt, **kw)

        model.decode_window = spy
        model.transcribe(audio, TranscribeOptions(language="en", beam_size=1, glossary=glossary, **options))
        assert seen
        return seen

    for bias, prompt in windows(learned):
        assert bias == ("Zyrtec",) and "Zyrtec" in prompt
        assert "Kubernetes" not in prompt and "Okonkwo" not in prompt
    for bias, prompt in windows(pack_int8) + windows(learned, glossary_keep_learned=True):
        assert bias == ("Kubernetes", "Okonkwo", "Zyrtec") and "Kubernetes, Okonkwo, Zyrtec." in prompt
