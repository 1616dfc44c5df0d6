"""ONNX export of Whisper in the Optimum layout: encoder, decoder (first step), decoder with past.

Graphs are exported with the dynamo exporter (``torch.export`` + ``Dim``): the legacy TorchScript
exporter froze sequence lengths into the graph. Names and shapes are those of docs/packs.md.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

from export.graph_io import export_graph, kv_names, logits_and_present, split_past
from export.whisper_model import Whisper

ENCODER_FILE = "encoder_model.onnx"
DECODER_FILE = "decoder_model.onnx"
DECODER_WITH_PAST_FILE = "decoder_with_past_model.onnx"


class EncoderGraph(nn.Module):
    def __init__(self, model: Whisper):
        super().__init__()
        self.encoder = model.encoder

    def forward(self, input_features: Tensor) -> Tensor:
        return self.encoder(input_features)


class DecoderGraph(nn.Module):
    """First decoder step: tokens + encoder output -> logits, all present K/V and alignment-head attention."""

    def __init__(self, model: Whisper):
        super().__init__()
        self.decoder = model.decoder
        self.embedding_t = nn.Parameter(model.decoder.token_embedding.weight.detach().T.contiguous())
        self.alignment_heads = model.alignment_heads

    def forward(self, input_ids: Tensor, encoder_hidden_states: Tensor) -> tuple[Tensor, ...]:
        cross = self.decoder.cross_kv(encoder_hidden_states)
        logits, present, weights = self.decoder.step(input_ids, None, cross, self.embedding_t)
        outputs: list[Tensor] = [logits]
        for (k, v), (ck, cv) in zip(present, cross):
            outputs += [k, v, ck, cv]
        # [b, n_alignment_heads, seq, enc_seq]
        outputs.append(torch.stack([weights[layer][:, head] for layer, head in self.alignment_heads], dim=1))
        return tuple(outputs)


class DecoderWithPastGraph(nn.Module):
    """Later steps: new tokens + every layer's past self K/V and cross K/V -> logits, grown self K/V."""

    def __init__(self, model: Whisper):
        super().__init__()
        self.decoder = model.decoder
        self.embedding_t = nn.Parameter(model.decoder.token_embedding.weight.detach().T.contiguous())

    def forward(self, input_ids: Tensor, *past_key_values: Tensor) -> tuple[Tensor, ...]:
        past, cross = split_past(past_key_values, len(self.decoder.blocks))
        logits, present, _ = self.decoder.step(input_ids, past, cross, self.embedding_t)
        return logits_and_present(logits, present)


def export_encoder(model: Whisper, path: Path) -> None:
    d = model.dims
    batch = Dim("batch", min=1, max=64)
    half = Dim("frames_half", min=1, max=d.n_audio_ctx)
    mel = torch.randn(2, d.n_mels, 20)
    export_graph(EncoderGraph(model), (mel,), path, ["input_features"], ["last_hidden_state"],
            {"input_features": {0: batch, 2: 2 * half}})


def export_decoder(model: Whisper, path: Path) -> None:
    d = model.dims
    batch = Dim("batch", min=1, max=64)
    seq = Dim("seq", min=1, max=d.n_text_ctx)
    enc = Dim("enc_seq", min=1, max=d.n_audio_ctx)
    ids = torch.randint(0, d.n_vocab, (2, 3))
    xa = torch.randn(2, 7, d.n_audio_state)
    outputs = ["logits", *kv_names("present", d.n_text_layer), "cross_attentions"]
    export_graph(DecoderGraph(model), (ids, xa), path, ["input_ids", "encoder_hidden_states"], outputs,
            {"input_ids": {0: batch, 1: seq}, "encoder_hidden_states": {0: batch, 1: enc}})


def export_decoder_with_past(model: Whisper, path: Path) -> None:
    d = model.dims
    head_dim = d.n_text_state // d.n_text_head
    batch = Dim("batch", min=1, max=64)
    seq = Dim("seq", min=1, max=d.n_text_ctx)
    past = Dim("past_seq", min=1, max=d.n_text_ctx)
    enc = Dim("enc_seq", min=1, max=d.n_audio_ctx)
    ids = torch.randint(0, d.n_vocab, (2, 3))
    kv: list[Tensor] = []
    shapes: list[dict] = []
    for _ in range(d.n_text_layer):
        kv += [torch.randn(2, d.n_text_head, 5, head_dim) for _ in range(2)]
        kv += [torch.randn(2, d.n_text_head, 7, head_dim) for _ in range(2)]
        shapes += [{0: batch, 2: past}] * 2 + [{0: batch, 2: enc}] * 2
    inputs = ["input_ids", *kv_names("past_key_values", d.n_text_layer)]
    outputs = ["logits", *kv_names("present", d.n_text_layer, with_encoder=False)]
    export_graph(DecoderWithPastGraph(model), (ids, *kv), path, inputs, outputs, ({0: batch, 1: seq}, tuple(shapes)))


def export_all(model: Whisper, out_dir: Path) -> list[Path]:
    """Write the three graphs of a Whisper pack into out_dir (float32)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    paths = [out_dir / ENCODER_FILE, out_dir / DECODER_FILE, out_dir / DECODER_WITH_PAST_FILE]
    export_encoder(model, paths[0])
    export_decoder(model, paths[1])
    export_decoder_with_past(model, paths[2])
    return paths
