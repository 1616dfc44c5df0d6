"""Text translation with one pack: tokenise, split long inputs at sentence ends, batch, search, detokenise.

Source ids follow each family's convention: Marian ``tokens </s>`` (a multi-target model puts
``>>xx<<`` first), NLLB-200 and M2M100 ``<src_lang> tokens </s>`` with the target language forced as
the first generated token (``forced_bos``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from engine.errors import LanguageError
from engine.packs.files import load_tokenizer
from engine.translate.decoding import SearchOptions, beam_search, greedy
from engine.translate.languages import canonical, joiner
from engine.translate.model import Seq2SeqModel
from engine.translate.pack import TranslationPack

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|(?<=[。！？])")


@dataclasses.dataclass(frozen=True)
class TranslateOptions:
    beam_size: int | None = None  # None: the pack's num_beams (generation_config), 1 = greedy
    max_length: int | None = None  # decoder length cap with the start token; None: the pack's max_length
    length_ratio: float | None = 2.0  # guard: at most ratio × source tokens + 10 target tokens (None: off)
    length_penalty: float | None = None  # None: the pack's (1.0)
    batch_size: int = 16  # segments per encoder/decoder batch
    max_source_tokens: int = 200  # longer inputs are split at sentence ends (then at words)

    def __post_init__(self) -> None:
        if self.beam_size is not None and self.beam_size < 1:
            raise ValueError(f"beam_size must be ≥ 1, got {self.beam_size}")
        if self.batch_size < 1 or self.max_source_tokens < 4:
            raise ValueError("batch_size must be ≥ 1 and max_source_tokens ≥ 4")


@dataclasses.dataclass(frozen=True)
class BatchStats:
    segments: int
    source_tokens: int
    target_tokens: int
    seconds: float


class Translator:
    def __init__(self, pack: TranslationPack, model: Seq2SeqModel, tokenizer: Tokenizer):
        self.pack, self.model, self.tokenizer = pack, model, tokenizer
        self.last_stats: BatchStats | None = None

    @classmethod
    def load(cls, pack_dir: str | Path | TranslationPack, device: str = "auto", threads: int | None = None
             ) -> Translator:
        pack = pack_dir if isinstance(pack_dir, TranslationPack) else TranslationPack.load(pack_dir)
        pack.verify()
        tokenizer = load_tokenizer(pack.files["tokenizer"], "rebuild or download the pack again")
        if pack.architecture == "bergamot":  # SSRU decoder + lexical shortlist: its own model runner
            from engine.translate.bergamot import BergamotTranslator

            return BergamotTranslator.from_pack(pack, tokenizer, device, threads)
        model = Seq2SeqModel(pack, device, threads)
        log.info("translation pack %s (%s, %s) on %s", pack.name, pack.architecture, pack.precision, model.provider)
        return cls(pack, model, tokenizer)

    # -- languages --------------------------------------------------------------------------------

    def _check(self, source: str, target: str) -> tuple[str, str]:
        src, tgt = canonical(source), canonical(target)
        if src not in self.pack.sources or tgt not in self.pack.targets:
            raise LanguageError(f"{self.pack.path}: pack {self.pack.name} translates "
                                f"{', '.join(self.pack.sources)} → {', '.join(self.pack.targets)}, not {src} → {tgt}")
        return src, tgt

    def _language_token(self, code: str) -> int:
        try:
            return self.pack.language_tokens[code]
        except KeyError as e:
            raise LanguageError(f"{self.pack.path}: no language token for {code!r} in pack {self.pack.name}") from e

    # -- ids --------------------------------------------------------------------------------------

    def _pieces(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def source_ids(self, text: str, source: str, target: str) -> list[int]:
        """The encoder input for one segment, with the family's special tokens."""
        src, tgt = self._check(source, target)
        ids = self._pieces(text) + [self.pack.eos]
        if self.pack.source_prefix:
            ids = [self._language_token(src)] + ids
        if self.pack.target_forcing == "source_prefix":
            ids = [self._language_token(tgt)] + ids
        return ids

    def search_options(self, target: str, options: TranslateOptions = TranslateOptions(), source_len: int = 0
                       ) -> SearchOptions:
        g = self.pack.generation
        max_length = options.max_length or int(g.get("max_length") or 256)
        max_length = min(max_length, self.pack.max_positions)
        if options.length_ratio is not None and source_len:
            max_length = min(max_length, int(options.length_ratio * source_len) + 11)
        banned = tuple(w[0] for w in g.get("bad_words_ids") or () if len(w) == 1)
        forced_bos = self._language_token(canonical(target)) if self.pack.target_forcing == "forced_bos" else None
        beam = options.beam_size or int(g.get("num_beams") or 1)
        return SearchOptions(beam_size=beam, max_length=max(2, max_length),
                             length_penalty=float(options.length_penalty or g.get("length_penalty") or 1.0),
                             early_stopping=g.get("early_stopping", False) or False,
                             min_length=int(g.get("min_length") or 0), banned_tokens=banned, forced_bos=forced_bos,
                             forced_eos=g.get("forced_eos_token_id"))

    def padded(self, batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Encoder inputs of different lengths as one batch: ids [rows, longest] padded with the pack's pad
        token, and the attention mask (1 on real tokens)."""
        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self.pack.pad, np.int64)
        mask = np.zeros((len(batch), width), np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)], mask[row, : len(ids)] = ids, 1
        return input_ids, mask

    def generate_ids(self, batch: list[list[int]], search: SearchOptions) -> list[list[int]]:
        """Token search for a batch of encoder inputs: each result without the start token, with eos."""
        input_ids, mask = self.padded(batch)
        encoded = self.model.encode(input_ids, mask)
        if search.beam_size == 1:
            return greedy(self.model, encoded, mask, self.pack.decoder_start, self.pack.eos, search)
        return beam_search(self.model, encoded, mask, self.pack.decoder_start, self.pack.eos, self.pack.pad, search)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode([t for t in ids if t not in (self.pack.eos, self.pack.pad)],
                                     skip_special_tokens=True).strip()

    # -- text -------------------------------------------------------------------------------------

    def _segments(self, text: str, limit: int) -> list[str]:
        """The text cut at sentence ends into pieces of at most `limit` tokens (words, if a sentence is longer)."""
        if len(self._pieces(text)) <= limit:
            return [text.strip()] if text.strip() else []
        out: list[str] = []
        current = ""
        for sentence in (s for s in _SENTENCE_END.split(text) if s.strip()):
            if len(self._pieces(sentence)) > limit:
                out += [current] if current else []
                current = ""
                words: list[str] = []
                for word in sentence.split():
                    if words and len(self._pieces(" ".join(words + [word]))) > limit:
                        out.append(" ".join(words))
                        words = []
                    words.append(word)
                current = " ".join(words)
            elif current and len(self._pieces(current + " " + sentence)) > limit:
                out.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}".strip()
        return out + ([current] if current else [])

    def translate(self, texts: list[str], source: str, target: str, beam_size: int | None = None,
                  options: TranslateOptions = TranslateOptions()) -> list[str]:
        """One translation per text (empty text → empty string)."""
        if beam_size is not None:
            options = dataclasses.replace(options, beam_size=beam_size)
        started = time.perf_counter()
        self._check(source, target)
        limit = min(options.max_source_tokens, self.pack.max_positions - 3)
        pieces = [(i, seg) for i, text in enumerate(texts) for seg in self._segments(text, limit)]
        ids = [self.source_ids(seg, source, target) for _, seg in pieces]
        order = sorted(range(len(ids)), key=lambda j: len(ids[j]))  # similar lengths share a batch: less padding
        outputs: list[list[int]] = [[] for _ in ids]
        for first in range(0, len(order), options.batch_size):
            chunk = order[first:first + options.batch_size]
            batch = [ids[j] for j in chunk]
            search = self.search_options(target, options, max(len(x) for x in batch))
            for j, out in zip(chunk, self.generate_ids(batch, search)):
                outputs[j] = out
        parts: list[list[str]] = [[] for _ in texts]
        for (i, _), out in zip(pieces, outputs):
            parts[i].append(self._decode(out))
        self.last_stats = BatchStats(len(pieces), sum(map(len, ids)), sum(map(len, outputs)),
                                     time.perf_counter() - started)
        return [joiner(target).join(p for p in part if p) for part in parts]
