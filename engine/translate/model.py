"""The ONNX encoder and decoder of a translation pack, run with onnxruntime.

Encoder once per batch of segments; decoder first step (``decoder_model``) returns every layer's
self K/V and the cross K/V of the encoder output, later steps (``decoder_with_past_model``) grow the
self K/V. Hub packs with only ``decoder_model_merged`` run both through its ``use_cache_branch``.
Inputs are fed by the names each session declares, cast to the declared types (fp16 hub packs).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from engine.runtime import create_session
from engine.translate.pack import TranslationPack

log = logging.getLogger(__name__)

_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
          "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


@dataclasses.dataclass
class DecoderState:
    """Per row of the decoder batch: self K/V (growing) and cross K/V (fixed), one pair per layer."""

    self_kv: list[np.ndarray]  # 2 * n_layers arrays [rows, heads, past, head_dim]
    cross_kv: list[np.ndarray]  # 2 * n_layers arrays [rows, heads, src, head_dim]
    encoder_mask: np.ndarray  # [rows, src] int64

    def select(self, rows: np.ndarray) -> DecoderState:
        """Keep (and reorder, repeat) rows: beam reordering and dropping finished rows."""
        return DecoderState([kv[rows] for kv in self.self_kv], [kv[rows] for kv in self.cross_kv],
                            self.encoder_mask[rows])


class _Session:
    def __init__(self, path, device: str, threads: int | None):
        self.session = create_session(path, device, threads)
        self.inputs = {i.name: _TYPES.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        given = {k: np.ascontiguousarray(v, dtype=self.inputs[k]) for k, v in feed.items() if k in self.inputs}
        missing = set(self.inputs) - set(given)
        if missing:
            raise RuntimeError(f"{sorted(missing)[:3]}: inputs this graph needs and the runtime does not have")
        values = self.session.run(None, given)
        return {name: (v.astype(np.float32) if v.dtype == np.float16 else v) for name, v in zip(self.outputs, values)}


class Seq2SeqModel:
    def __init__(self, pack: TranslationPack, device: str = "auto", threads: int | None = None):
        self.pack = pack
        self.encoder = _Session(pack.files["encoder"], device, threads)
        self.merged = not (pack.files["decoder"].is_file() and pack.files["decoder_with_past"].is_file())
        if self.merged:
            self.decoder = self.decoder_with_past = _Session(pack.files["decoder_merged"], device, threads)
        else:
            self.decoder = _Session(pack.files["decoder"], device, threads)
            self.decoder_with_past = _Session(pack.files["decoder_with_past"], device, threads)
        self.provider = self.encoder.session.get_providers()[0]

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """[b, src] ids and mask → [b, src, d_model]."""
        return self.encoder({"input_ids": input_ids, "attention_mask": attention_mask})["last_hidden_state"]

    def _kv_names(self, prefix: str, kind: str) -> list[str]:
        return [f"{prefix}.{i}.{kind}.{t}" for i in range(self.pack.n_layers) for t in ("key", "value")]

    def start(self, tokens: np.ndarray, encoder_out: np.ndarray, encoder_mask: np.ndarray
              ) -> tuple[np.ndarray, DecoderState]:
        """First step: tokens [rows, t] → logits of the last position [rows, vocab] and the state."""
        feed = {"input_ids": tokens, "encoder_hidden_states": encoder_out, "encoder_attention_mask": encoder_mask}
        if self.merged:
            rows, p = tokens.shape[0], self.pack
            empty = np.zeros((rows, p.n_heads, 0, p.head_dim), np.float32)
            feed.update({n: empty for n in self._kv_names("past_key_values", "decoder")})
            feed.update({n: empty for n in self._kv_names("past_key_values", "encoder")})
            feed["use_cache_branch"] = np.array([False])
        out = self.decoder(feed)
        state = DecoderState([out[n] for n in self._kv_names("present", "decoder")],
                             [out[n] for n in self._kv_names("present", "encoder")], encoder_mask)
        return out["logits"][:, -1], state

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]:
        """Later steps: tokens [rows, 1] after the state → logits [rows, vocab], the grown state."""
        feed = {"input_ids": tokens, "encoder_attention_mask": state.encoder_mask}
        feed.update(zip(self._kv_names("past_key_values", "decoder"), state.self_kv))
        feed.update(zip(self._kv_names("past_key_values", "encoder"), state.cross_kv))
        if self.merged:
            feed["use_cache_branch"] = np.array([True])
            feed.setdefault("encoder_hidden_states", np.zeros((tokens.shape[0], state.encoder_mask.shape[1],
                                                               self.pack.n_heads * self.pack.head_dim), np.float32))
        out = self.decoder_with_past(feed)
        return out["logits"][:, -1], DecoderState([out[n] for n in self._kv_names("present", "decoder")],
                                                  state.cross_kv, state.encoder_mask)
