"""Bergamot packs (Marian transformer encoder + SSRU decoder, lexical shortlist) on onnxruntime.

The pack (export.bergamot) has an encoder graph that also returns each decoder layer's attention
keys/values, and one decoder graph per step whose recurrent state is the SSRU cell of each layer. As
Bergamot does, the output layer scores only the sentence's shortlist (engine.translate.shortlist): the
batch's union of candidates goes into the graph once, and each row is then held to its own sentence's
candidates, so a sentence translates the same alone or in a batch. Scores are scattered back into a
full-vocabulary row so the shared greedy/beam search (engine.translate.decoding) runs unchanged.
Text is split into sentences first (Bergamot translates sentence by sentence); decoding is greedy and
at most ``max_length_factor`` × the source length, as the model's Bergamot config says.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
from tokenizers import Tokenizer

from engine.runtime import create_session
from engine.translate.decoding import SearchOptions
from engine.translate.pack import TranslationPack
from engine.translate.shortlist import Shortlist
from engine.translate.translator import TranslateOptions, Translator

log = logging.getLogger(__name__)

# A sentence ends at . ! ? … followed by space and something that starts a sentence; not after the
# abbreviations that most often precede a capitalised word in English and Portuguese.
_ABBREVIATIONS = r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSr)(?<!\bSra)(?<!\bSt)(?<!\bProf)(?<!\bvs)(?<!\bNo)"
_SENTENCE = re.compile(_ABBREVIATIONS + r"(?<=[.!?…])[\"'”’)]*\s+(?=[\"'“‘(¿¡]*[A-ZÀ-ÖØ-Þ0-9])")


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` (whitespace-trimmed, empty ones dropped)."""
    out, start = [], 0
    for m in _SENTENCE.finditer(text):
        out.append(text[start:m.start()].strip() + text[m.start():m.end()].strip())
        start = m.end()
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


@dataclasses.dataclass
class BergamotState:
    """Per decoder row: SSRU cells, the attention keys/values of its sentence, its shortlist columns."""

    cells: list[np.ndarray]  # n_layers × [rows, d_model]
    cross: list[np.ndarray]  # 2·n_layers × [rows, heads, src, head_dim]
    encoder_mask: np.ndarray  # [rows, src] int64
    allowed: np.ndarray  # [rows, k] bool: which of the batch's shortlist ids this row's sentence may use
    step: int  # decoder position of the next input

    def select(self, rows: np.ndarray) -> BergamotState:
        return BergamotState([c[rows] for c in self.cells], [kv[rows] for kv in self.cross], self.encoder_mask[rows],
                             self.allowed[rows], self.step)


class _BatchDecoder:
    """``start``/``step`` (engine.translate.decoding's Decoder) for one encoded batch.

    The search passes "encoder output" through to ``start`` only to pick rows; here it is each row's
    index into the batch ([rows, 1]), so beam search can repeat rows without copying keys/values twice."""

    def __init__(self, model: BergamotModel, cross: list[np.ndarray], shortlist: np.ndarray, allowed: np.ndarray):
        self.model, self.cross, self.shortlist, self.allowed = model, cross, shortlist, allowed

    def start(self, tokens: np.ndarray, encoder_out: np.ndarray, encoder_mask: np.ndarray
              ) -> tuple[np.ndarray, BergamotState]:
        rows = encoder_out[:, 0]
        n = tokens.shape[0]
        cells = [np.zeros((n, self.model.d_model), np.float32) for _ in range(self.model.n_layers)]
        state = BergamotState(cells, [kv[rows] for kv in self.cross], encoder_mask, self.allowed[rows], 0)
        return self.step(tokens, state)

    def step(self, tokens: np.ndarray, state: BergamotState) -> tuple[np.ndarray, BergamotState]:
        m = self.model
        feed = {"input_ids": tokens.astype(np.int64), "step": np.array([state.step], np.int64),
                "encoder_attention_mask": state.encoder_mask, "shortlist": self.shortlist}
        feed.update(zip(m.cell_inputs, state.cells))
        feed.update(zip(m.cross_names, state.cross))
        out = m.decoder.run(None, feed)
        scores = np.where(state.allowed, out[0], -np.inf).astype(np.float32)
        logits = np.full((tokens.shape[0], m.vocab_size), -np.inf, np.float32)
        logits[:, self.shortlist] = scores
        return logits, BergamotState(list(out[1:]), state.cross, state.encoder_mask, state.allowed, state.step + 1)


class BergamotModel:
    def __init__(self, pack: TranslationPack, device: str = "auto", threads: int | None = None):
        self.pack = pack
        self.encoder = create_session(pack.files["encoder"], device, threads)
        self.decoder = create_session(pack.files["decoder_merged"], device, threads)
        self.provider = self.encoder.get_providers()[0]
        self.n_layers, self.vocab_size = pack.n_layers, pack.vocab_size
        self.d_model = pack.n_heads * pack.head_dim
        self.cell_inputs = [f"past_cell.{i}" for i in range(self.n_layers)]
        self.cross_names = [f"cross_key_values.{i}.{k}" for i in range(self.n_layers) for k in ("key", "value")]
        shortlist = pack.files.get("shortlist")
        self.shortlist = Shortlist.load(shortlist, pack.vocab_size, pack.vocab_size) if shortlist else None

    def decoder_for(self, batch: list[list[int]], input_ids: np.ndarray, mask: np.ndarray) -> _BatchDecoder:
        """Encode a padded batch and bind the decoder to it (and to its sentences' shortlists)."""
        out = self.encoder.run(None, {"input_ids": input_ids, "attention_mask": mask})
        cross = out[1:]
        if self.shortlist is None:
            ids = np.arange(self.vocab_size, dtype=np.int64)
            return _BatchDecoder(self, cross, ids, np.ones((len(batch), self.vocab_size), bool))
        own = [self.shortlist.candidates(ids) for ids in batch]
        union = np.unique(np.concatenate(own))
        allowed = np.stack([np.isin(union, o, assume_unique=True) for o in own])
        return _BatchDecoder(self, cross, union, allowed)


class BergamotTranslator(Translator):
    """Translator (tokenise, split, batch, detokenise) over a Bergamot pack."""

    def __init__(self, pack: TranslationPack, model: BergamotModel, tokenizer: Tokenizer):
        super().__init__(pack, model, tokenizer)  # type: ignore[arg-type]
        self.length_factor = float(pack.generation.get("max_length_factor") or 2.5)
        self.split = bool(pack.generation.get("split_sentences", True))

    @classmethod
    def from_pack(cls, pack: TranslationPack, tokenizer: Tokenizer, device: str = "auto",
                  threads: int | None = None) -> BergamotTranslator:
        model = BergamotModel(pack, device, threads)
        log.info("translation pack %s (bergamot, %s) on %s", pack.name, pack.precision, model.provider)
        return cls(pack, model, tokenizer)

    def _segments(self, text: str, limit: int) -> list[str]:
        sentences = split_sentences(text) if self.split else [text]
        out: list[str] = []
        for sentence in sentences:
            out += super()._segments(sentence, limit)
        return out

    def search_options(self, target: str, options: TranslateOptions = TranslateOptions(), source_len: int = 0
                       ) -> SearchOptions:
        cap = int(self.length_factor * source_len) + 1 if source_len else self.pack.max_positions
        if options.max_length:
            cap = min(cap, options.max_length)
        return SearchOptions(beam_size=options.beam_size or 1, max_length=max(2, min(cap, self.pack.max_positions)),
                             length_penalty=float(options.length_penalty or 1.0))

    def generate_ids(self, batch: list[list[int]], search: SearchOptions) -> list[list[int]]:
        from engine.translate.decoding import beam_search, greedy

        width = max(len(ids) for ids in batch)
        input_ids = np.full((len(batch), width), self.pack.pad, np.int64)
        mask = np.zeros((len(batch), width), np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)], mask[row, : len(ids)] = ids, 1
        decoder = self.model.decoder_for(batch, input_ids, mask)  # type: ignore[attr-defined]
        rows = np.arange(len(batch))[:, None]
        if search.beam_size == 1:
            return greedy(decoder, rows, mask, self.pack.decoder_start, self.pack.eos, search)
        return beam_search(decoder, rows, mask, self.pack.decoder_start, self.pack.eos, self.pack.pad, search)
