"""The live recogniser's Whisper adapter (engine/live/recognise.py): a second decode of the same encoder output —
the finalising decode searched again with the beam — is bounded by what the first decode said and never falls
back; where it fails, the first decode stands (an empty hypothesis: nothing better)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # after the root: tests/engine must not shadow engine
from whisper_fixtures import tiny_whisper_pack  # noqa: E402

from engine.live.options import LiveOptions  # noqa: E402
from engine.live.recognise import WhisperRecognise  # noqa: E402
from engine.whisper import WhisperModel  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> WhisperModel:
    return WhisperModel.load(tiny_whisper_pack(tmp_path_factory), device="cpu", threads=1)


def test_a_search_of_a_decode_is_bounded_by_it_and_does_not_fall_back(model, monkeypatch):
    seen = []
    real = model.decode_window

    def spy(states, options, *args, **kwargs):
        result = real(states, options, *args, **kwargs)
        seen.append((options, result))
        return result

    monkeypatch.setattr(model, "decode_window", spy)
    recognise = WhisperRecognise(model, LiveOptions(language="en"))
    t = np.arange(16000 * 4) / 16000
    audio = (0.3 * np.sin(2 * np.pi * (200 + 30 * t) * t)).astype(np.float32)
    first = recognise(audio, "", "en")
    searched = recognise(audio, "", "en", beam_size=5, encoded=first.encoded)
    (greedy_options, greedy), (search_options, search) = seen
    assert greedy_options.max_fallbacks == LiveOptions().max_fallbacks and greedy_options.beam_size == 1
    assert search_options.beam_size == 5 and search_options.max_fallbacks == 0
    assert search_options.sample_len == min(greedy_options.sample_len, 2 * len(greedy.tokens) + 8)
    # the tiny random model's beam runs to its token limit (it never writes end-of-text): a loop, not taken
    if len(search.tokens) >= search_options.sample_len:
        assert searched.words == () and searched.encoded is first.encoded
    # a new buffer (encoded anew) is a first decode again: the options' own limits
    recognise(audio[: 16000 * 2], "", "en")
    assert seen[-1][0].max_fallbacks == LiveOptions().max_fallbacks


def test_a_search_that_fails_the_guards_leaves_the_first_decode(model, monkeypatch):
    real = model.decode_window
    recognise = WhisperRecognise(model, LiveOptions(language="en"))
    t = np.arange(16000 * 3) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    first = recognise(audio, "", "en")

    def looping(states, options, *args, **kwargs):  # what a beam that loops returns: highly compressible text
        result = real(states, options, *args, **kwargs)
        return dataclasses.replace(result, tokens=result.tokens[:1], compression_ratio=9.0)

    monkeypatch.setattr(model, "decode_window", looping)
    searched = recognise(audio, "", "en", beam_size=5, encoded=first.encoded)
    assert searched.words == ()


def test_terms_the_pack_learned_are_neither_prompted_nor_biased_live(model, monkeypatch):
    from engine.glossary import parse_glossary

    glossary = parse_glossary("Okonkwo\nBrennivox\n")
    seen = []
    real = model.decode_window

    def spy(states, options, prompt_tokens=(), *args, **kwargs):
        seen.append((options.bias_terms, list(prompt_tokens)))
        return real(states, options, prompt_tokens, *args, **kwargs)

    monkeypatch.setattr(model, "decode_window", spy)
    audio = np.zeros(16000, np.float32) + 0.01
    WhisperRecognise(model, LiveOptions(language="en", glossary=glossary))(audio, "", "en")
    monkeypatch.setattr(model, "pack", dataclasses.replace(model.pack, learned_terms=("Okonkwo",)))
    WhisperRecognise(model, LiveOptions(language="en", glossary=glossary))(audio, "", "en")
    (stock_bias, stock_prompt), (learned_bias, learned_prompt) = seen
    assert stock_bias == ("Okonkwo", "Brennivox") and learned_bias == ("Brennivox",)
    assert model.encode_text(" Okonkwo")[0] in stock_prompt and len(learned_prompt) < len(stock_prompt)
