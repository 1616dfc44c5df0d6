"""The three ONNX graphs of a text-translation pack, in the Hugging Face Optimum layout.

Marian (OPUS-MT) and M2M100 (which NLLB-200 uses) are the same encoder-decoder with two differences:
Marian normalises after each residual block and has a final logits bias; M2M100 normalises before
each block, ends each stack with a LayerNorm, and numbers positions from ``pad_token_id + 1``.

The graphs are written here from the Hugging Face model's own submodules (projections, norms,
activations) rather than by tracing its ``forward``: that forward threads a Cache object and builds
masks with control flow that an export would freeze, while these wrappers take and return the K/V
tensors by the Optimum names, keep every sequence axis dynamic, and are checked against the Hugging
Face model itself (``export.translation.parity``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.export import Dim

from export.graph_io import export_graph, kv_names, logits_and_present, split_past

ENCODER_FILE = "encoder_model.onnx"
DECODER_FILE = "decoder_model.onnx"
DECODER_WITH_PAST_FILE = "decoder_with_past_model.onnx"
ARCHITECTURES = {"MarianMTModel": "marian", "M2M100ForConditionalGeneration": "m2m100"}
_MASKED = -1e9  # added to attention scores of padding; fp16 conversion clamps it to the half range


def architecture_of(model: nn.Module) -> str:
    name = type(model).__name__
    if name not in ARCHITECTURES:
        raise ValueError(f"{name}: not a translation model this exporter knows "
                         f"(supported: {', '.join(sorted(ARCHITECTURES))})")
    return ARCHITECTURES[name]


def _heads(attn: nn.Module, x: Tensor) -> Tensor:
    """[b, s, d] -> [b, heads, s, head_dim]"""
    b, s, _ = x.shape
    return x.view(b, s, attn.num_heads, attn.head_dim).transpose(1, 2)


def _attend(attn: nn.Module, x: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """Attention of x [b, t, d] over k, v [b, heads, s, head_dim] with an additive mask [b|1, 1, t|1, s]."""
    b, t, _ = x.shape
    q = _heads(attn, attn.q_proj(x))
    w = torch.softmax(q @ k.transpose(-1, -2) * attn.scaling + mask, dim=-1)  # [b, heads, t, s]
    return attn.out_proj((w @ v).transpose(1, 2).reshape(b, t, -1))


def _kv(attn: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    return _heads(attn, attn.k_proj(x)), _heads(attn, attn.v_proj(x))


def _padding_mask(attention_mask: Tensor) -> Tensor:
    """[b, s] of 1 (token) / 0 (padding) -> additive [b, 1, 1, s]."""
    return ((1 - attention_mask.to(torch.float32)) * _MASKED)[:, None, None, :]


class Seq2Seq(nn.Module):
    """The pieces of a Marian or M2M100 model that the graphs share."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.arch = architecture_of(model)
        config = model.config
        inner = model.model
        self.encoder, self.decoder = inner.encoder, inner.decoder
        self.pre_norm = self.arch == "m2m100"
        self.pad = int(config.pad_token_id)
        self.scale = float(torch.tensor(config.d_model, dtype=torch.float64).sqrt()) if config.scale_embedding else 1.0
        self.lm_head = model.lm_head
        bias = getattr(model, "final_logits_bias", None)
        self.register_buffer("logits_bias", bias.detach().clone().reshape(-1) if bias is not None else None)
        tied = model.lm_head.weight.data_ptr() == self.decoder.embed_tokens.weight.data_ptr()
        # One [d, vocab] constant serves the token lookup and the logits MatMul when they are tied
        # (the int8 quantiser then shares its int8 copy between both; see export.quantize).
        self.embedding_t = nn.Parameter(self.decoder.embed_tokens.weight.detach().T.contiguous()) if tied else None
        self.decoder_embedding = None if tied else self.decoder.embed_tokens.weight
        self.encoder_positions = self._position_table(self.encoder)
        self.decoder_positions = self._position_table(self.decoder)

    @staticmethod
    def _position_table(stack: nn.Module) -> Tensor:
        pos = stack.embed_positions
        table = pos.weights if hasattr(pos, "weights") else pos.weight
        return table.detach().clone()

    # -- encoder ------------------------------------------------------------------------------------

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        x = self.encoder.embed_tokens.weight[input_ids] * self.scale  # [b, s, d]
        if self.arch == "m2m100":  # positions count tokens only; padding keeps the zero row at pad
            keep = (input_ids != self.pad).to(torch.int64)
            positions = torch.cumsum(keep, dim=1) * keep + self.pad
        else:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        x = x + self.encoder_positions[positions]
        mask = _padding_mask(attention_mask)
        for layer in self.encoder.layers:
            x = self._block(layer.self_attn_layer_norm, x, lambda h, layer=layer: _attend(
                layer.self_attn, h, *_kv(layer.self_attn, h), mask))
            x = self._ffn(layer, x)
        if self.pre_norm:
            x = self.encoder.layer_norm(x)
        return x

    # -- decoder ------------------------------------------------------------------------------------

    def _block(self, norm: nn.Module, x: Tensor, fn) -> Tensor:
        if self.pre_norm:
            return x + fn(norm(x))
        return norm(x + fn(x))

    def _ffn(self, layer: nn.Module, x: Tensor) -> Tensor:
        return self._block(layer.final_layer_norm, x, lambda h: layer.fc2(layer.activation_fn(layer.fc1(h))))

    def cross_kv(self, encoder_hidden_states: Tensor) -> list[tuple[Tensor, Tensor]]:
        return [_kv(layer.encoder_attn, encoder_hidden_states) for layer in self.decoder.layers]

    def decode(self, input_ids: Tensor, encoder_attention_mask: Tensor, past: list[tuple[Tensor, Tensor]] | None,
               cross: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """input_ids [b, t] after `past` (per layer self K/V [b, heads, past, head_dim], or None).

        Returns logits [b, t, vocab] and each layer's self K/V including the new tokens.
        """
        b, t = input_ids.shape
        offset = past[0][0].shape[2] if past is not None else 0
        if self.embedding_t is not None:
            x = self.embedding_t.index_select(1, input_ids.reshape(-1)).T.reshape(b, t, -1)
        else:
            x = self.decoder_embedding[input_ids]
        x = x * self.scale
        steps = torch.arange(t, device=input_ids.device) + offset  # [t]
        if self.arch == "m2m100":  # as in the encoder, a pad token sits at the zero row `pad`
            positions = torch.where(input_ids == self.pad, self.pad, steps[None, :] + self.pad + 1)
            x = x + self.decoder_positions[positions]
        else:
            x = x + self.decoder_positions[steps][None]
        later = torch.arange(t + offset, device=input_ids.device)[None, :] > steps[:, None]  # [t, past + t]
        causal = (later.to(torch.float32) * _MASKED)[None, None]
        cross_mask = _padding_mask(encoder_attention_mask)
        present = []
        for i, layer in enumerate(self.decoder.layers):
            attn = layer.self_attn

            def self_attention(h: Tensor, i: int = i, attn: nn.Module = attn) -> Tensor:
                k, v = _kv(attn, h)
                if past is not None:
                    k, v = torch.cat([past[i][0], k], dim=2), torch.cat([past[i][1], v], dim=2)
                present.append((k, v))
                return _attend(attn, h, k, v, causal)

            x = self._block(layer.self_attn_layer_norm, x, self_attention)
            x = self._block(layer.encoder_attn_layer_norm, x, lambda h, layer=layer, i=i: _attend(
                layer.encoder_attn, h, cross[i][0], cross[i][1], cross_mask))
            x = self._ffn(layer, x)
        if self.pre_norm:
            x = self.decoder.layer_norm(x)
        logits = x @ self.embedding_t if self.embedding_t is not None else self.lm_head(x)
        if self.logits_bias is not None:
            logits = logits + self.logits_bias
        return logits, present


class EncoderGraph(nn.Module):
    def __init__(self, core: Seq2Seq):
        super().__init__()
        self.core = core

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.core.encode(input_ids, attention_mask)


class DecoderGraph(nn.Module):
    """First step: tokens + encoder output -> logits, self K/V and cross K/V of every layer."""

    def __init__(self, core: Seq2Seq):
        super().__init__()
        self.core = core

    def forward(self, input_ids: Tensor, encoder_attention_mask: Tensor, encoder_hidden_states: Tensor
                ) -> tuple[Tensor, ...]:
        cross = self.core.cross_kv(encoder_hidden_states)
        logits, present = self.core.decode(input_ids, encoder_attention_mask, None, cross)
        outputs: list[Tensor] = [logits]
        for (k, v), (ck, cv) in zip(present, cross):
            outputs += [k, v, ck, cv]
        return tuple(outputs)


class DecoderWithPastGraph(nn.Module):
    """Later steps: new tokens + past self K/V and cross K/V -> logits and the grown self K/V."""

    def __init__(self, core: Seq2Seq):
        super().__init__()
        self.core = core

    def forward(self, input_ids: Tensor, encoder_attention_mask: Tensor, *past_key_values: Tensor
                ) -> tuple[Tensor, ...]:
        past, cross = split_past(past_key_values, len(self.core.decoder.layers))
        logits, present = self.core.decode(input_ids, encoder_attention_mask, past, cross)
        return logits_and_present(logits, present)


def export_all(model: nn.Module, out_dir: Path) -> list[Path]:
    """Write encoder, decoder and decoder-with-past graphs (float32) of a Hugging Face Marian/M2M100 model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.float().eval()
    core = Seq2Seq(model).eval()
    config = model.config
    n_layer, heads = config.decoder_layers, config.decoder_attention_heads
    head_dim = config.d_model // heads
    max_pos = int(config.max_position_embeddings)
    batch = Dim("batch", min=1, max=1024)
    src = Dim("src_seq", min=2, max=max_pos)
    tgt = Dim("tgt_seq", min=1, max=max_pos)
    past = Dim("past_seq", min=1, max=max_pos)
    vocab = int(config.vocab_size)
    ids = torch.randint(4, vocab, (2, 5))
    mask = torch.ones(2, 5, dtype=torch.int64)
    mask[1, 3:] = 0
    paths = [out_dir / ENCODER_FILE, out_dir / DECODER_FILE, out_dir / DECODER_WITH_PAST_FILE]
    export_graph(EncoderGraph(core), (ids, mask), paths[0], ["input_ids", "attention_mask"], ["last_hidden_state"],
            {"input_ids": {0: batch, 1: src}, "attention_mask": {0: batch, 1: src}})
    enc = torch.randn(2, 5, config.d_model)
    dec_ids = torch.randint(4, vocab, (2, 3))
    export_graph(DecoderGraph(core), (dec_ids, mask, enc), paths[1],
            ["input_ids", "encoder_attention_mask", "encoder_hidden_states"], ["logits", *kv_names("present", n_layer)],
            {"input_ids": {0: batch, 1: tgt}, "encoder_attention_mask": {0: batch, 1: src},
             "encoder_hidden_states": {0: batch, 1: src}})
    kv: list[Tensor] = []
    kv_shapes: list[dict] = []
    for _ in range(n_layer):
        kv += [torch.randn(2, heads, 4, head_dim) for _ in range(2)] + [torch.randn(2, heads, 5, head_dim)
                                                                       for _ in range(2)]
        kv_shapes += [{0: batch, 2: past}] * 2 + [{0: batch, 2: src}] * 2
    export_graph(DecoderWithPastGraph(core), (dec_ids, mask, *kv), paths[2],
            ["input_ids", "encoder_attention_mask", *kv_names("past_key_values", n_layer)],
            ["logits", *kv_names("present", n_layer, with_encoder=False)],
            ({0: batch, 1: tgt}, {0: batch, 1: src}, tuple(kv_shapes)))
    return paths
