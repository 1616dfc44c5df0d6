"""Whisper's tokenizer over a pack's ``tokenizer.json`` (Hugging Face ``tokenizers``).

Special tokens come from the pack (``parley.json`` or the hub json files), not from constants here.
Timestamp tokens (``<|1.24|>``) are not in most tokenizer.json files; they are rendered here.
"""

from __future__ import annotations

import functools
import string
from pathlib import Path

from tokenizers import Tokenizer

from engine.packs.files import load_tokenizer
from engine.packs.whisper_pack import SpecialTokens, WhisperPack

# Languages written without spaces between words: words are split on unicode characters instead.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})
TIME_PRECISION_S = 0.02  # one timestamp token step


class WhisperTokenizer:
    def __init__(self, tokenizer: Tokenizer, tokens: SpecialTokens, languages: dict[str, int],
                 multilingual: bool = True):
        self._tok = tokenizer
        self.multilingual = multilingual
        self.special = tokens
        self.languages = dict(languages)
        self._code_of = {v: k for k, v in languages.items()}

    @classmethod
    def from_pack(cls, pack: WhisperPack) -> WhisperTokenizer:
        return cls.from_file(pack.files["tokenizer"], pack.tokens, pack.languages, pack.is_multilingual)

    @classmethod
    def from_file(cls, path: str | Path, tokens: SpecialTokens, languages: dict[str, int],
                  multilingual: bool = True) -> WhisperTokenizer:
        return cls(load_tokenizer(Path(path)), tokens, languages, multilingual)

    # -- text ↔ tokens ----------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, tokens: list[int]) -> str:
        """Text of the text tokens; special and timestamp tokens are dropped."""
        return self._tok.decode([t for t in tokens if t < self.special.eot], skip_special_tokens=False)

    def decode_with_timestamps(self, tokens: list[int]) -> str:
        """Text with timestamp tokens rendered as ``<|1.08|>`` (special tokens kept)."""
        out: list[str] = []
        run: list[int] = []
        for t in tokens:
            if t >= self.special.timestamp_begin:
                if run:
                    out.append(self._tok.decode(run, skip_special_tokens=False))
                    run = []
                out.append(f"<|{(t - self.special.timestamp_begin) * TIME_PRECISION_S:.2f}|>")
            else:
                run.append(t)
        if run:
            out.append(self._tok.decode(run, skip_special_tokens=False))
        return "".join(out)

    # -- languages and prompts --------------------------------------------------------------------

    def language_token(self, code: str) -> int:
        return self.languages[code]

    def language_code(self, token: int) -> str:
        return self._code_of[token]

    def sot_sequence(self, language: str | None, task: str) -> list[int]:
        """<|startoftranscript|> <|lang|> <|task|> (English-only packs: <|startoftranscript|> alone)."""
        seq = [self.special.sot]
        if self.multilingual:
            seq.append(self.languages[language or "en"])
            seq.append(self.special.translate if task == "translate" else self.special.transcribe)
        return seq

    @functools.cached_property
    def blank_tokens(self) -> tuple[int, ...]:
        """Suppressed as the first sampled token (suppress_blank): a space and end-of-text."""
        return (*self.encode(" "), self.special.eot)

    @functools.cached_property
    def non_speech_tokens(self) -> tuple[int, ...]:
        """Tokens of symbols that are not speech (what ``suppress_tokens=-1`` means), as Whisper
        computes them; used when a pack lists none."""
        symbols = list("\"#()*+/:;<=>@[\\]^_`{|}~「」『』")
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        miscellaneous = set("♩♪♫♬♭♮♯")
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + sorted(miscellaneous):
            for ids in (self.encode(symbol), self.encode(" " + symbol)):
                if len(ids) == 1 or symbol in miscellaneous:
                    result.add(ids[0])
        return tuple(sorted(result))

    # -- words ------------------------------------------------------------------------------------

    def split_to_word_tokens(self, tokens: list[int], language: str | None) -> tuple[list[str], list[list[int]]]:
        """Group tokens into words: on spaces, or on whole unicode characters for unspaced scripts."""
        if language in UNSPACED_LANGUAGES:
            return self.split_tokens_on_unicode(tokens)
        return self.split_tokens_on_spaces(tokens)

    def split_tokens_on_unicode(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        decoded_full = self.decode_with_timestamps(tokens)
        replacement = "\ufffd"
        words: list[str] = []
        word_tokens: list[list[int]] = []
        current: list[int] = []
        offset = 0
        for token in tokens:
            current.append(token)
            decoded = self.decode_with_timestamps(current)
            # A token that ends mid-character decodes to U+FFFD; wait for the rest of the character.
            if replacement not in decoded or decoded_full[offset + decoded.index(replacement)] == replacement:
                words.append(decoded)
                word_tokens.append(current)
                current = []
                offset += len(decoded)
        return words, word_tokens

    def split_tokens_on_spaces(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        subwords, subword_tokens = self.split_tokens_on_unicode(tokens)
        words: list[str] = []
        word_tokens: list[list[int]] = []
        for subword, ids in zip(subwords, subword_tokens):
            special = ids[0] >= self.special.eot
            with_space = subword.startswith(" ")
            punctuation = subword.strip() in string.punctuation
            if special or with_space or punctuation or not words:
                words.append(subword)
                word_tokens.append(list(ids))
            else:
                words[-1] += subword
                word_tokens[-1].extend(ids)
        return words, word_tokens
