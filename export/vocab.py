"""Token facts a pack records: special token ids, languages, suppressed tokens.

Everything is read from the source's own tokenizer.json (and its config when it has one), never from
constants, so multilingual, English-only and large-v3 vocabularies (which shift ids by one) all work.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from tokenizers import Tokenizer

_SPECIAL = {"eot": "<|endoftext|>", "sot": "<|startoftranscript|>", "translate": "<|translate|>",
            "transcribe": "<|transcribe|>", "sot_lm": "<|startoflm|>", "sot_prev": "<|startofprev|>",
            "no_timestamps": "<|notimestamps|>"}
_NO_SPEECH = ("<|nospeech|>", "<|nocaptions|>")  # renamed between releases


class VocabError(RuntimeError):
    """The tokenizer or token lists of a source are missing or inconsistent."""


@dataclasses.dataclass(frozen=True)
class WhisperVocab:
    tokens: dict[str, int]  # eot, sot, translate, transcribe, sot_lm, sot_prev, no_speech, no_timestamps, timestamp_begin
    languages: dict[str, int]  # "en" -> 50259; empty for English-only models
    suppress_tokens: tuple[int, ...]
    begin_suppress_tokens: tuple[int, ...]
    tokenizer_path: Path

    @property
    def is_multilingual(self) -> bool:
        return bool(self.languages)


def _non_speech_tokens(tok: Tokenizer) -> list[int]:
    """OpenAI's list of symbol tokens that are never speech (whisper/tokenizer.py, non_speech_tokens)."""
    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    misc = set("♩♪♫♬♭♮♯")

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False).ids

    result = {encode(" -")[0], encode(" '")[0]}
    for symbol in symbols + sorted(misc):
        for ids in (encode(symbol), encode(" " + symbol)):
            if len(ids) == 1 or symbol in misc:
                result.add(ids[0])
    return sorted(result)


def read_vocab(tokenizer_path: Path, config: dict | None = None) -> WhisperVocab:
    """Token facts from tokenizer.json, with CTranslate2's or Hugging Face's token lists when given."""
    if not tokenizer_path.is_file():
        raise VocabError(f"{tokenizer_path} not found; a pack needs the model's tokenizer.json (pass --tokenizer)")
    tok = Tokenizer.from_file(str(tokenizer_path))
    config = config or {}

    def token_id(text: str) -> int | None:
        return tok.token_to_id(text)

    tokens: dict[str, int] = {}
    for key, text in _SPECIAL.items():
        tid = token_id(text)
        if tid is None:
            raise VocabError(f"{tokenizer_path}: special token {text} is missing; this is not a Whisper tokenizer")
        tokens[key] = tid
    no_speech = next((t for t in map(token_id, _NO_SPEECH) if t is not None), None)
    if no_speech is None:
        raise VocabError(f"{tokenizer_path}: neither {' nor '.join(_NO_SPEECH)} is a token")
    tokens["no_speech"] = no_speech
    tokens["timestamp_begin"] = token_id("<|0.00|>") or tokens["no_timestamps"] + 1

    languages = {}
    for tid in range(tokens["sot"] + 1, tokens["translate"]):
        m = re.fullmatch(r"<\|([a-z_]{2,8})\|>", tok.id_to_token(tid) or "")
        if m:
            languages[m.group(1)] = tid
    if config.get("lang_ids") and sorted(config["lang_ids"]) != sorted(languages.values()):
        raise VocabError(f"{tokenizer_path}: the tokenizer's {len(languages)} language tokens differ from the "
                         f"config's {len(config['lang_ids'])} lang_ids")

    suppress = config.get("suppress_ids", config.get("suppress_tokens"))
    if suppress is None:  # what OpenAI's decoder suppresses by default ("-1" plus the task tokens)
        suppress = sorted(set(_non_speech_tokens(tok)) | {tokens[k] for k in
                          ("translate", "transcribe", "sot", "sot_prev", "sot_lm", "no_speech")})
    begin = config.get("suppress_ids_begin", config.get("begin_suppress_tokens"))
    if begin is None:
        begin = [tok.encode(" ", add_special_tokens=False).ids[0], tokens["eot"]]
    return WhisperVocab(tokens, languages, tuple(int(t) for t in suppress), tuple(int(t) for t in begin),
                        tokenizer_path)


def read_source_vocab(source: Path, tokenizer: Path | None = None) -> WhisperVocab:
    """The vocabulary beside a checkpoint: a CTranslate2 or HF folder, or the folder of an OpenAI .pt."""
    folder = source if source.is_dir() else source.parent
    tokenizer = tokenizer or folder / "tokenizer.json"
    config: dict = {}
    for name in ("config.json", "generation_config.json"):
        path = folder / name
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except ValueError as e:
                raise VocabError(f"{path}: not valid JSON ({e})") from e
            config.update({k: v for k, v in data.items() if k in ("lang_ids", "suppress_ids", "suppress_ids_begin",
                                                                  "suppress_tokens", "begin_suppress_tokens")})
    return read_vocab(tokenizer, config)
