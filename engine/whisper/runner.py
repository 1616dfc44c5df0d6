"""The ONNX graphs of one pack, run with a key/value cache.

``Encoder`` turns a log-mel window into audio states. ``Decoder`` runs the prompt once through
``decoder_model.onnx`` (which also yields the cross-attention K/V of every layer), then one token per
sequence per step through ``decoder_with_past_model.onnx`` (or one merged decoder for both, with
``use_cache_branch``: our packs since the weights-once export, and hub packs). All beams of a window
go through one call (batch = beams). With the merged decoder, steps ignore its ``present.*.encoder.*``
outputs (empty in our packs) and keep the cross K/V of the prompt pass.

On CUDA (or with ``io_binding=True``) the K/V tensors stay as onnxruntime values on the device between
steps: outputs are bound to the device and fed back, only the logits come to the host; beam reorder and
tiling select their rows on the device too. Sessions, binding and row selection are the shared runtime's
(engine.seq2seq.CachedDecoder); what is Whisper's here is the feed: its tensor names, the prompt pass,
the cross-attention broadcast probe and the alignment-heads pass.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import onnxruntime as ort

from engine import runtime
from engine.features import N_FRAMES
from engine.packs.whisper_pack import WhisperPack
from engine.seq2seq import DTYPES, CachedDecoder, DecoderSessions

log = logging.getLogger(__name__)


class Encoder:
    def __init__(self, session: ort.InferenceSession, pack: WhisperPack):
        self.session = session
        self.dynamic_frames = pack.dynamic_frames
        self.n_mels = pack.dims.n_mels
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.dtype = DTYPES.get(inp.type, np.float32)
        self.output_name = session.get_outputs()[0].name

    def frames_for(self, n_frames: int) -> int:
        """The frame count the encoder will be fed for n_frames of audio (even; 3000 if fixed)."""
        if not self.dynamic_frames:
            return N_FRAMES
        return min(N_FRAMES, max(2, n_frames + (n_frames % 2)))

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """mel [n_mels, frames] or [batch, n_mels, frames] → audio states [batch, frames/2, d_model].

        A fixed-size encoder (hub packs) gets the window zero-padded to 3000 frames; a dynamic one gets
        the frames as they are (padded by one to an even count)."""
        if mel.ndim == 2:
            mel = mel[None]
        if mel.shape[1] != self.n_mels:
            raise ValueError(f"the pack expects {self.n_mels} mel bins, got {mel.shape[1]}")
        want = self.frames_for(mel.shape[-1])
        if mel.shape[-1] != want:
            fitted = np.zeros((*mel.shape[:-1], want), dtype=np.float32)
            n = min(want, mel.shape[-1])
            fitted[..., :n] = mel[..., :n]
            mel = fitted
        feed = np.ascontiguousarray(mel, dtype=self.dtype)  # [batch, n_mels, frames]
        runtime.release_free_memory()  # the last window's freed K/V blocks, before the big transients
        return self.session.run([self.output_name], {self.input_name: feed})[0]


@dataclasses.dataclass
class KVCache:
    """Self-attention K/V per layer (grows by one position per step; reordered with the beams) and
    cross-attention K/V (fixed for a window). Entries are numpy arrays, or OrtValues when bound."""

    self_kv: list[Any]  # [batch, n_head, length, head_dim] each, in Decoder.self_names order
    cross_kv: list[Any]  # [batch, n_head, enc_len, head_dim] each, in Decoder.cross_names order
    batch: int
    length: int


class Decoder(CachedDecoder):
    def __init__(self, pack: WhisperPack, sessions: DecoderSessions, io_binding: bool, device_type: str = "cpu"):
        super().__init__(sessions, io_binding, device_type)
        n = pack.dims.n_text_layer
        self.self_names = [f"{i}.decoder.{kv}" for i in range(n) for kv in ("key", "value")]
        self.cross_names = [f"{i}.encoder.{kv}" for i in range(n) for kv in ("key", "value")]
        self.first_outputs = {o.name for o in self.first.get_outputs()}
        self.has_cross_attentions = "cross_attentions" in self.first_outputs
        self.kv_dtype = self.past_inputs.get("past_key_values.0.decoder.key", np.float32)
        self.n_head = pack.dims.n_text_head
        self.head_dim = pack.dims.n_text_state // pack.dims.n_text_head
        self._prefill_out = ["logits", *(f"present.{k}" for k in self.self_names),
                             *(f"present.{k}" for k in self.cross_names)]
        self._step_out = ["logits", *(f"present.{k}" for k in self.self_names)]
        self._empty_kv: np.ndarray | None = None
        self.cross_broadcast: bool | None = None  # unknown until the first beam/sample batch

    # -- feeds ------------------------------------------------------------------------------------

    def _ids(self, tokens: np.ndarray, declared: dict[str, Any]) -> np.ndarray:
        return np.ascontiguousarray(tokens, dtype=declared.get("input_ids", np.int64))

    def _empty_past(self, batch: int) -> np.ndarray:
        if self._empty_kv is None or self._empty_kv.shape[0] != batch:
            self._empty_kv = np.zeros((batch, self.n_head, 0, self.head_dim), dtype=self.kv_dtype)
        return self._empty_kv

    # -- running ----------------------------------------------------------------------------------

    def prefill(self, audio: np.ndarray, tokens: list[int]) -> tuple[np.ndarray, KVCache]:
        """Run the whole prompt for one window: audio [1, enc_len, d] → (logits [seq, n_vocab] float32
        for every prompt position, cache of batch 1)."""
        ids = self._ids(np.asarray(tokens)[None], self.first_inputs)  # [1, seq]
        feeds: dict[str, Any] = {"input_ids": ids,
                                 "encoder_hidden_states": audio.astype(self.first_inputs["encoder_hidden_states"],
                                                                       copy=False)}
        if self.merged:
            empty = self._empty_past(1)
            for k in (*self.self_names, *self.cross_names):
                feeds[f"past_key_values.{k}"] = empty
            feeds["use_cache_branch"] = np.array([False])
        out = self.run(self.first, feeds, self._prefill_out, host_outputs=1)
        n = len(self.self_names)
        cache = KVCache(self_kv=list(out[1:1 + n]), cross_kv=list(out[1 + n:]), batch=1, length=len(tokens))
        return out[0][0].astype(np.float32, copy=False), cache

    def step(self, cache: KVCache, tokens: np.ndarray) -> np.ndarray:
        """One new token per sequence: tokens [batch] → logits [batch, n_vocab] float32; the cache grows."""
        feeds: dict[str, Any] = {"input_ids": self._ids(tokens.reshape(-1, 1), self.past_inputs)}
        for k, v in zip(self.self_names, cache.self_kv):
            feeds[f"past_key_values.{k}"] = v
        for k, v in zip(self.cross_names, cache.cross_kv):
            feeds[f"past_key_values.{k}"] = v
        if self.merged:
            feeds["use_cache_branch"] = np.array([True])
        if "encoder_hidden_states" in self.past_inputs:  # some hub decoders declare it but ignore it
            feeds["encoder_hidden_states"] = np.zeros((cache.batch, 1, self.head_dim * self.n_head),
                                                      dtype=self.past_inputs["encoder_hidden_states"])
        out = self.run(self.with_past, feeds, self._step_out, host_outputs=1)
        cache.self_kv = list(out[1:])
        cache.length += 1
        return out[0][:, -1].astype(np.float32, copy=False)

    def tile(self, cache: KVCache, n: int) -> KVCache:
        """Repeat a batch-1 cache n times (every beam or sample starts from the same prompt). A new
        cache object: steps on it leave the original as it was (the next fallback starts from it).

        The cross-attention K/V stay batch 1 when the graph broadcasts them over the batch (checked
        once per model against the repeated form): no 5 × 37 MB copy per window for beam search."""
        if n == 1:
            return KVCache(list(cache.self_kv), list(cache.cross_kv), batch=1, length=cache.length)
        rows = np.repeat(np.arange(cache.batch), n)  # as np.repeat(kv, n, axis=0)
        self_kv = self.take(cache.self_kv, rows)
        if self.cross_broadcast is None:
            self.cross_broadcast = self._probe_broadcast(n)
            log.debug("cross-attention K/V broadcast over the batch: %s", self.cross_broadcast)
        if self.cross_broadcast:
            cross_kv = list(cache.cross_kv)
        else:
            cross_kv = self.take(cache.cross_kv, rows)
        return KVCache(self_kv, cross_kv, batch=n, length=cache.length)

    def _probe_broadcast(self, n: int) -> bool:
        """Whether the graph broadcasts batch-1 cross-attention K/V over n rows: one step on a tiny
        made-up cache (4 audio positions, 1 past token), with the cross K/V repeated and not. Tiny,
        so the probe itself costs no memory (the real cross K/V of a window is 37 MB per row)."""
        rng = np.random.default_rng(0)
        shape = (n, self.n_head, 1, self.head_dim)
        self_kv = [rng.standard_normal(shape).astype(self.kv_dtype) for _ in self.self_names]
        cross = [rng.standard_normal((1, self.n_head, 4, self.head_dim)).astype(self.kv_dtype)
                 for _ in self.cross_names]
        if self.io_binding:
            self_kv = [ort.OrtValue.ortvalue_from_numpy(a, self.device_type, 0) for a in self_kv]
            cross = [ort.OrtValue.ortvalue_from_numpy(a, self.device_type, 0) for a in cross]
        tokens = np.arange(n, dtype=np.int64) + 1000  # distinct rows, so a mixed-up batch shows
        repeated = self.take(cross, np.zeros(n, dtype=np.int64))
        try:
            want = self.step(KVCache(list(self_kv), repeated, n, 1), tokens)
            got = self.step(KVCache(list(self_kv), list(cross), n, 1), tokens)
        except Exception as e:  # noqa: BLE001 - a graph that reshapes by batch (or fixes the audio length)
            # rejects it: repeat instead
            log.debug("no cross-attention broadcast: %s", e)
            return False
        return got.shape == want.shape and bool(np.allclose(got, want, atol=1e-3, rtol=1e-3))

    def reorder(self, cache: KVCache, source: np.ndarray) -> None:
        """Row i of the self-attention cache becomes row source[i]. The cross-attention cache is the
        same for every row of a window, so it stays. With IO binding the rows are selected on the
        device (engine.seq2seq.device_gather): no K/V tensor comes to the host."""
        if np.array_equal(source, np.arange(cache.batch)):
            return
        cache.self_kv = self.take(cache.self_kv, source)  # on the device when bound: no host round trip

    def cross_attentions(self, audio: np.ndarray, tokens: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """One pass over a whole token sequence for word timing: (logits [seq, n_vocab],
        attention of the alignment heads [n_heads, seq, enc_len], softmaxed over the audio)."""
        if not self.has_cross_attentions:
            raise RuntimeError("this pack's decoder_model.onnx has no cross_attentions output")
        ids = self._ids(np.asarray(tokens)[None], self.first_inputs)
        feeds: dict[str, Any] = {"input_ids": ids, "encoder_hidden_states": audio.astype(
            self.first_inputs["encoder_hidden_states"], copy=False)}
        if self.merged:  # the first-step branch, as in prefill
            empty = self._empty_past(1)
            for k in (*self.self_names, *self.cross_names):
                feeds[f"past_key_values.{k}"] = empty
            feeds["use_cache_branch"] = np.array([False])
        logits, attn = self.first.run(["logits", "cross_attentions"], feeds)
        return logits[0].astype(np.float32, copy=False), attn[0].astype(np.float32, copy=False)
