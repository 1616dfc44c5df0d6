"""The ONNX encoder and decoder of a translation pack, run with onnxruntime.

Encoder once per batch of segments; decoder first step (``decoder_model``) returns every layer's
self K/V and the cross K/V of the encoder output, later steps (``decoder_with_past_model``) grow the
self K/V. Hub packs with only ``decoder_model_merged`` run both through its ``use_cache_branch``.
Inputs are fed by the names each session declares, cast to the declared types (fp16 hub packs).
The decoder is the shared runtime's (engine.seq2seq.CachedDecoder): on CUDA the K/V stay on the device
between steps and beam reordering selects their rows there; the search is engine.translate.decoding's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from engine import runtime
from engine.seq2seq import CachedDecoder, DecoderSessions, declared_feed, input_dtypes
from engine.translate.pack import TranslationPack

log = logging.getLogger(__name__)


def _numpy_rows(values: list[Any], rows: np.ndarray) -> list[Any]:
    return [v[rows] for v in values]


@dataclasses.dataclass
class DecoderState:
    """Per row of the decoder batch: self K/V (growing) and cross K/V (fixed), one pair per layer."""

    self_kv: list[Any]  # 2 * n_layers arrays [rows, heads, past, head_dim] (device values when bound)
    cross_kv: list[Any]  # 2 * n_layers arrays [rows, heads, src, head_dim]
    encoder_mask: np.ndarray  # [rows, src] int64
    take: Callable[[list[Any], np.ndarray], list[Any]] = _numpy_rows  # rows of each K/V, where they are

    def select(self, rows: np.ndarray) -> DecoderState:
        """Keep (and reorder, repeat) rows: beam reordering and dropping finished rows."""
        return DecoderState(self.take(self.self_kv, rows), self.take(self.cross_kv, rows), self.encoder_mask[rows],
                            self.take)


def _float32(logits: np.ndarray) -> np.ndarray:
    return logits.astype(np.float32) if logits.dtype == np.float16 else logits


class Seq2SeqModel(CachedDecoder):
    def __init__(self, pack: TranslationPack, device: str = "auto", threads: int | None = None,
                 io_binding: bool | None = None):
        self.pack = pack
        self.encoder = runtime.create_session(pack.files["encoder"], device, threads)
        self.encoder_inputs = input_dtypes(self.encoder)
        self.provider = runtime.provider_of(self.encoder)
        on_cuda = self.provider == runtime.CUDA
        super().__init__(DecoderSessions.open(pack.files, device, threads),
                         io_binding=on_cuda if io_binding is None else io_binding,
                         device_type="cuda" if on_cuda else "cpu")
        self._self_in = self._kv_names("past_key_values", "decoder")
        self._cross_in = self._kv_names("past_key_values", "encoder")
        self._self_out = self._kv_names("present", "decoder")
        self._cross_out = self._kv_names("present", "encoder")

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """[b, src] ids and mask → [b, src, d_model]."""
        feed = declared_feed(self.encoder_inputs, {"input_ids": input_ids, "attention_mask": attention_mask})
        return _float32(self.encoder.run(["last_hidden_state"], feed)[0])

    def _kv_names(self, prefix: str, kind: str) -> list[str]:
        return [f"{prefix}.{i}.{kind}.{t}" for i in range(self.pack.n_layers) for t in ("key", "value")]

    def _rows(self, values: list[Any], rows: np.ndarray) -> list[Any]:
        return self.take(values, rows)

    def start(self, tokens: np.ndarray, encoder_out: np.ndarray, encoder_mask: np.ndarray
              ) -> tuple[np.ndarray, DecoderState]:
        """First step: tokens [rows, t] → logits of the last position [rows, vocab] and the state."""
        feed = {"input_ids": tokens, "encoder_hidden_states": encoder_out, "encoder_attention_mask": encoder_mask}
        if self.merged:
            rows, p = tokens.shape[0], self.pack
            empty = np.zeros((rows, p.n_heads, 0, p.head_dim), np.float32)
            feed.update({n: empty for n in (*self._self_in, *self._cross_in)})
            feed["use_cache_branch"] = np.array([False])
        n = len(self._self_out)
        out = self.run(self.first, declared_feed(self.first_inputs, feed),
                       ["logits", *self._self_out, *self._cross_out], host_outputs=1)
        state = DecoderState(out[1:1 + n], out[1 + n:], encoder_mask, self._rows)
        return _float32(out[0])[:, -1], state

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        """Later steps: tokens [rows, 1] after the state → logits [rows, vocab], the grown state."""
        feed = {"input_ids": tokens, "encoder_attention_mask": state.encoder_mask}
        feed.update(zip(self._self_in, state.self_kv))
        feed.update(zip(self._cross_in, state.cross_kv))
        if self.merged:
            feed["use_cache_branch"] = np.array([True])
            feed.setdefault("encoder_hidden_states", np.zeros((tokens.shape[0], state.encoder_mask.shape[1],
                                                               self.pack.n_heads * self.pack.head_dim), np.float32))
        out = self.run(self.with_past, declared_feed(self.past_inputs, feed), ["logits", *self._self_out],
                       host_outputs=1)
        return _float32(out[0])[:, -1], DecoderState(out[1:], state.cross_kv, state.encoder_mask, self._rows)
