"""Bergamot packs (Marian transformer encoder + SSRU decoder, lexical shortlist) on onnxruntime.

The pack (export.bergamot) has an encoder graph that also returns each decoder layer's attention
keys/values, and one decoder graph per step whose recurrent state is the SSRU cell of each layer. As
Bergamot does, the output layer scores only the sentence's shortlist (engine.translate.shortlist): the
batch's union of candidates goes into the graph once, and each row is then held to its own sentence's
candidates, so a sentence translates the same alone or in a batch. Greedy search (Bergamot's) runs over
the shortlist's columns; for beam search the scores are scattered back into full-vocabulary rows so the
shared beam search (engine.translate.decoding) runs unchanged.
Text is split into sentences first (Bergamot translates sentence by sentence); decoding is greedy and
at most ``max_length_factor`` × the source length, as the model's Bergamot config says.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from engine.errors import PackError
from engine.runtime import create_session
from engine.translate.decoding import SearchOptions, beam_search
from engine.translate.pack import TranslationPack
from engine.translate.shortlist import Shortlist
from engine.translate.translator import TranslateOptions, Translator

log = logging.getLogger(__name__)

# A sentence ends at . ! ? … followed by space and something that starts a sentence; not after the
# abbreviations that most often precede a capitalised word in English and Portuguese.
_ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "Dra", "Sr", "Sra", "St", "Prof", "Profa", "vs", "No", "Nº", "etc")
_SENTENCE = re.compile("".join(rf"(?<!\b{a}\.)" for a in _ABBREVIATIONS)
                       + r"(?<=[.!?…])[\"'”’)]*\s+(?=[\"'“‘(¿¡]*[A-ZÀ-ÖØ-Þ0-9])")


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


class BatchDecoder:
    """One encoded batch bound to the decoder and to its shortlist's output rows.

    ``scores`` is a step in shortlist space ([rows, k], the fast path greedy uses); ``start``/``step`` are
    engine.translate.decoding's Decoder (full-vocabulary logits) for beam search. The search passes
    "encoder output" to ``start`` only to pick rows; here it is each row's index into the batch ([rows, 1])."""

    def __init__(self, model: BergamotModel, cross: list[np.ndarray], mask: np.ndarray, shortlist: np.ndarray,
                 allowed: np.ndarray):
        self.model, self.cross, self.mask, self.shortlist, self.allowed = model, cross, mask, shortlist, allowed
        self.out_w, self.out_b = model.output_rows(shortlist)

    def initial(self, rows: np.ndarray | None = None) -> BergamotState:
        rows = np.arange(self.mask.shape[0]) if rows is None else rows
        cells = [np.zeros((len(rows), self.model.d_model), np.float32) for _ in range(self.model.n_layers)]
        return BergamotState(cells, [kv[rows] for kv in self.cross], self.mask[rows], self.allowed[rows], 0)

    def scores(self, tokens: np.ndarray | None, state: BergamotState) -> tuple[np.ndarray, BergamotState]:
        """tokens [rows] (None at the start) → scores over the shortlist [rows, k] (−inf where a row's own
        sentence does not allow the id) and the next state."""
        m = self.model
        feed = {"inputs_embeds": m.target_rows(tokens, len(state.encoder_mask)), "step": np.array([state.step]),
                "encoder_attention_mask": state.encoder_mask, "output_weight": self.out_w,
                "output_bias": self.out_b}
        feed.update(zip(m.cell_inputs, state.cells))
        feed.update(zip(m.cross_names, state.cross))
        out = m.decoder.run(None, feed)
        scores = np.where(state.allowed, out[0], np.float32(-np.inf))
        return scores, BergamotState(list(out[1:]), state.cross, state.encoder_mask, state.allowed, state.step + 1)

    def _full(self, scores: np.ndarray) -> np.ndarray:
        logits = np.full((scores.shape[0], self.model.vocab_size), -np.inf, np.float32)
        logits[:, self.shortlist] = scores
        return logits

    def start(self, tokens: np.ndarray, encoder_out: np.ndarray, encoder_mask: np.ndarray
              ) -> tuple[np.ndarray, BergamotState]:
        scores, state = self.scores(None, self.initial(encoder_out[:, 0]))
        return self._full(scores), state

    def step(self, tokens: np.ndarray, state: BergamotState) -> tuple[np.ndarray, BergamotState]:
        scores, state = self.scores(tokens[:, 0], state)
        return self._full(scores), state

    def greedy(self, max_length: int, eos: int) -> list[list[int]]:
        """The best token at each step, per row, until eos or max_length − 1 tokens (as decoding.greedy)."""
        rows = self.mask.shape[0]
        results: list[list[int]] = [[] for _ in range(rows)]
        active = np.arange(rows)
        scores, state = self.scores(None, self.initial())
        produced = 1
        while True:
            tokens = self.shortlist[scores.argmax(axis=-1)]
            for row, token in zip(active, tokens):
                results[row].append(int(token))
            produced += 1
            keep = (tokens != eos) & (produced < max_length)
            if not keep.any():
                return results
            if not keep.all():
                active, tokens, state = active[keep], tokens[keep], state.select(np.flatnonzero(keep))
            scores, state = self.scores(tokens, state)


class BergamotModel:
    def __init__(self, pack: TranslationPack, device: str = "auto", threads: int | None = None):
        self.pack = pack
        # One intra-op thread, whatever `threads` says: these graphs multiply a sentence's few rows by 256-wide
        # matrices, too little work to share, and waking a second thread for every operator costs more than
        # it saves — and leaves the other core to speech recognition. Measured (bench/bergamot_speed.py,
        # 2-core machine, fp32, en→pt): 2 threads 47 ms per sentence, 1 thread 14 ms (the native engine 15 ms).
        if threads not in (None, 1):
            log.info("%s: Bergamot packs run with one onnxruntime thread (asked for %s)", pack.name, threads)
        self.encoder = create_session(pack.files["encoder"], device, 1)
        self.decoder = create_session(pack.files["decoder_merged"], device, 1)
        self.provider = self.encoder.get_providers()[0]
        self.n_layers, self.vocab_size = pack.n_layers, pack.vocab_size
        self.d_model = pack.n_heads * pack.head_dim
        self.cell_inputs = [f"past_cell.{i}" for i in range(self.n_layers)]
        self.cross_names = [f"cross_key_values.{i}.{k}" for i in range(self.n_layers) for k in ("key", "value")]
        tables = _read_json(pack.path / "parley.json").get("bergamot") or {}
        self.table, self.scale = _table(pack, tables, "token_table", "token_scale")
        self.out_table, self.out_scale = (_table(pack, tables, "output_table", "output_scale")
                                          if tables.get("output_table") else (self.table, self.scale))
        self.out_bias = _load(pack.path / str(tables.get("output_bias", "output_bias.npy")), (self.vocab_size,))
        shortlist = pack.files.get("shortlist")
        self.shortlist = Shortlist.load(shortlist, pack.vocab_size, pack.vocab_size) if shortlist else None

    def target_rows(self, tokens: np.ndarray | None, rows: int) -> np.ndarray:
        """[rows, 1, d] token-table rows of the previous tokens (zeros at the start: Marian's first input)."""
        if tokens is None:
            return np.zeros((rows, 1, self.d_model), np.float32)
        return (self.table[tokens].astype(np.float32) * np.float32(self.scale))[:, None]

    def output_rows(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.out_table[ids].astype(np.float32) * np.float32(self.out_scale), self.out_bias[ids]

    def bind(self, batch: list[list[int]], input_ids: np.ndarray, mask: np.ndarray) -> BatchDecoder:
        """Encode a padded batch and bind the decoder to it (and to its sentences' shortlists)."""
        cross = self.encoder.run(None, {"input_ids": input_ids, "attention_mask": mask})[1:]
        if self.shortlist is None:
            ids = np.arange(self.vocab_size, dtype=np.int64)
            return BatchDecoder(self, cross, mask, ids, np.ones((len(batch), self.vocab_size), bool))
        own = [self.shortlist.candidates(ids) for ids in batch]
        union = own[0] if len(own) == 1 else np.unique(np.concatenate(own))
        allowed = np.stack([np.isin(union, o, assume_unique=True) for o in own])
        return BatchDecoder(self, cross, mask, union, allowed)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise PackError(f"{path}: unreadable ({e}); rebuild the pack with `parley translate --build <pair>` "
                        "or `--import <folder>`") from e


def _load(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PackError(f"{path}: unreadable table ({e}); rebuild the pack with `parley translate --build <pair>` "
                        "or `--import <folder>`") from e
    if value.shape[: len(shape)] != shape:
        raise PackError(f"{path}: shape {value.shape}, expected {shape}+; the pack is corrupt: rebuild it")
    return value


def _table(pack: TranslationPack, tables: dict, name: str, scale: str) -> tuple[np.ndarray, float]:
    table = _load(pack.path / str(tables.get(name, f"{name}.npy")), (pack.vocab_size,))
    return table, float(tables.get(scale) or 1.0)


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
        input_ids, mask = self.padded(batch)
        decoder = self.model.bind(batch, input_ids, mask)  # type: ignore[attr-defined]
        if search.beam_size == 1:
            return decoder.greedy(search.max_length, self.pack.eos)
        rows = np.arange(len(batch))[:, None]
        return beam_search(decoder, rows, mask, self.pack.decoder_start, self.pack.eos, self.pack.pad, search)
