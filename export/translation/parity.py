"""Parity of a translation pack with the Hugging Face model it came from, at several lengths.

Feeds the same ids to torch and to the pack's onnxruntime sessions and reports the largest absolute
differences of the encoder output and of the decoder logits, first step and with past, for source
lengths from 2 to 40 tokens and a padded batch (the sequence axes must really be dynamic).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from export.translation.graphs import DECODER_FILE, DECODER_WITH_PAST_FILE, ENCODER_FILE


@dataclasses.dataclass(frozen=True)
class Parity:
    lengths: tuple[int, ...]
    encoder_max_abs: float
    logits_max_abs: float  # over the first step and every step with past

    def summary(self) -> str:
        return (f"parity over source lengths {list(self.lengths)}: encoder max |Δ| {self.encoder_max_abs:.2e}, "
                f"decoder logits max |Δ| {self.logits_max_abs:.2e}")


def _session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class _Merged:
    """decoder_model_merged.onnx fed as the separate pair would be (use_cache_branch, empty past first)."""

    def __init__(self, path: Path, cached: bool, config):
        self.session, self.cached, self.config = _session(path), cached, config

    def run(self, _, feed: dict) -> list[np.ndarray]:
        c = self.config
        rows, src = feed["encoder_attention_mask"].shape
        heads = c.decoder_attention_heads
        empty = np.zeros((rows, heads, 0, c.d_model // heads), np.float32)
        full = {"encoder_hidden_states": np.zeros((rows, src, c.d_model), np.float32),
                "use_cache_branch": np.array([self.cached])}
        for i in range(c.decoder_layers):
            for kind in ("decoder", "encoder"):
                for t in ("key", "value"):
                    full[f"past_key_values.{i}.{kind}.{t}"] = empty
        full.update(feed)
        out = self.session.run(None, full)
        return out if not self.cached else [out[0], *[o for j, o in enumerate(out[1:]) if j % 4 < 2]]


def parity_of_pack(pack: Path, model, lengths: tuple[int, ...] = (2, 5, 17, 40), steps: int = 4) -> Parity:
    config = model.config
    enc = _session(pack / ENCODER_FILE)
    if (pack / "decoder_model_merged.onnx").is_file():
        dec, past = (_Merged(pack / "decoder_model_merged.onnx", cached, config) for cached in (False, True))
    else:
        dec, past = _session(pack / DECODER_FILE), _session(pack / DECODER_WITH_PAST_FILE)
    n_layer = config.decoder_layers
    gen = torch.Generator().manual_seed(0)
    enc_err = logit_err = 0.0
    for length in lengths:
        ids = torch.randint(4, config.vocab_size - 4, (2, length), generator=gen)
        mask = torch.ones_like(ids)
        mask[1, max(1, length // 2):] = 0  # the second row is padded
        ids[1, max(1, length // 2):] = config.pad_token_id
        dec_ids = torch.cat([torch.full((2, 1), config.decoder_start_token_id),
                             torch.randint(4, config.vocab_size - 4, (2, steps), generator=gen)], dim=1)
        with torch.no_grad():
            ref = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec_ids)
            ref_enc = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        hidden = enc.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        keep = mask.numpy().astype(bool)
        enc_err = max(enc_err, float(np.abs(hidden - ref_enc.numpy())[keep].max()))
        out = dec.run(None, {"input_ids": dec_ids[:, :1].numpy(), "encoder_attention_mask": mask.numpy(),
                             "encoder_hidden_states": hidden})
        logits = [out[0][:, -1]]
        self_kv = [out[1 + 4 * i + j] for i in range(n_layer) for j in (0, 1)]
        cross_kv = [out[1 + 4 * i + j] for i in range(n_layer) for j in (2, 3)]
        for t in range(1, steps + 1):
            feed = {"input_ids": dec_ids[:, t:t + 1].numpy(), "encoder_attention_mask": mask.numpy()}
            for i in range(n_layer):
                feed[f"past_key_values.{i}.decoder.key"], feed[f"past_key_values.{i}.decoder.value"] = \
                    self_kv[2 * i], self_kv[2 * i + 1]
                feed[f"past_key_values.{i}.encoder.key"], feed[f"past_key_values.{i}.encoder.value"] = \
                    cross_kv[2 * i], cross_kv[2 * i + 1]
            out = past.run(None, feed)
            logits.append(out[0][:, -1])
            self_kv = out[1:]
        got = np.stack(logits, axis=1)
        logit_err = max(logit_err, float(np.abs(got - ref.logits.numpy()).max()))
    return Parity(tuple(lengths), enc_err, logit_err)
