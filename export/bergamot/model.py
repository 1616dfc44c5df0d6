"""The Marian transformer that Bergamot's students use, in PyTorch: its options from the model's own
``model.yml``, its weights from the binary file (export.bergamot.marian_file), checked name by name.

What the options mean here (Marian's ``models/transformer.h``):
- embeddings × √d_model plus Marian's sinusoidal signal: [sin | cos] halves, timescales
  10000^(i / (d/2 − 1)); the decoder's first input is a zero vector (no start token), at position 0;
- ``transformer-postprocess: dan``: each sub-layer's output is added to its input and layer-normalised
  (post-norm; no pre-norm, nothing after the embeddings or on top);
- encoder layer: self-attention (``encoder_lN_self_*``), then the feed-forward block (``..._ffn_*``);
- decoder layer with ``transformer-decoder-autoreg: rnn`` and ``dec-cell: ssru``: an SSRU cell
  (f = σ(x·Wf + bf); c = f⊙c₋₁ + (1−f)⊙(x·W); h = LN(x + ReLU(c))), then attention over the encoder
  output (``decoder_lN_context_*``), then the feed-forward block;
- ``tied-embeddings-all``: one table ``Wemb`` for source tokens, target tokens and the output layer
  (``tied-embeddings``: ``decoder_Wemb`` is the output layer; neither: ``decoder_ff_logit_out_W``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from export.bergamot.marian_file import MarianFileError, MarianModel

LN_EPS = 1e-6  # Marian's layer-norm epsilon on CPU
MASK = -1e8  # added to the scores of padded source positions (Marian: -99999999)


class UnsupportedModelError(MarianFileError):
    """The file describes an architecture this importer does not build."""


@dataclasses.dataclass(frozen=True)
class MarianConfig:
    d_model: int
    heads: int
    encoder_layers: int
    decoder_layers: int
    ffn_dim: int
    ffn_depth: int
    activation: str  # relu | swish
    src_vocab: int
    tgt_vocab: int
    tied: str  # all | target | none

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    @classmethod
    def from_model(cls, model: MarianModel) -> MarianConfig:
        """Read and check the embedded model.yml; raise UnsupportedModelError for what is not built here."""
        where = model.path
        if not model.config_text:
            raise UnsupportedModelError(f"{where}: no embedded model.yml; cannot tell the architecture")
        try:
            opts = yaml.safe_load(model.config_text) or {}
        except yaml.YAMLError as e:
            raise MarianFileError(f"{where}: the embedded model.yml does not parse ({e})") from e

        def need(key: str, allowed: tuple) -> None:
            if opts.get(key, allowed[0]) not in allowed:
                raise UnsupportedModelError(
                    f"{where}: {key}: {opts.get(key)!r} is an architecture this importer does not build "
                    f"(it builds Marian transformers with {key} in {allowed}; Bergamot/Firefox student models)")

        need("type", ("transformer",))
        need("transformer-decoder-autoreg", ("rnn",))
        need("dec-cell", ("ssru",))
        need("transformer-postprocess", ("dan",))
        need("transformer-preprocess", ("",))
        need("transformer-postprocess-emb", ("d", ""))
        need("transformer-postprocess-top", ("",))
        need("transformer-ffn-activation", ("relu", "swish"))
        need("transformer-train-position-embeddings", (False,))
        need("right-left", (False,))
        if opts.get("transformer-tied-layers"):
            raise UnsupportedModelError(f"{where}: transformer-tied-layers is not supported")
        vocabs = opts.get("dim-vocabs") or [0, 0]
        tied = "all" if opts.get("tied-embeddings-all") else "target" if opts.get("tied-embeddings") else "none"
        try:
            return cls(d_model=int(opts["dim-emb"]), heads=int(opts["transformer-heads"]),
                       encoder_layers=int(opts["enc-depth"]), decoder_layers=int(opts["dec-depth"]),
                       ffn_dim=int(opts["transformer-dim-ffn"]), ffn_depth=int(opts.get("transformer-ffn-depth", 2)),
                       activation=str(opts.get("transformer-ffn-activation", "relu")), src_vocab=int(vocabs[0]),
                       tgt_vocab=int(vocabs[-1]), tied=tied)
        except (KeyError, TypeError, ValueError) as e:
            raise UnsupportedModelError(f"{where}: model.yml lacks a dimension ({type(e).__name__}: {e})") from e


def sinusoid(positions: Tensor, dim: int) -> Tensor:
    """Marian's position signal: positions [n] (float) → [n, dim] as [sin | cos]."""
    half = dim // 2
    increment = math.log(10000.0) / (half - 1)
    inv = torch.exp(torch.arange(half, dtype=torch.float32) * -increment)  # [half]
    angles = positions.float()[:, None] * inv[None, :]  # [n, half]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class Linear(nn.Module):
    """x·W + b with Marian's [in, out] weight layout."""

    def __init__(self, w: Tensor, b: Tensor | None):
        super().__init__()
        self.weight = nn.Parameter(w, requires_grad=False)  # [in, out]
        self.bias = None if b is None else nn.Parameter(b.reshape(-1), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        y = x @ self.weight
        return y if self.bias is None else y + self.bias


class Norm(nn.Module):
    def __init__(self, scale: Tensor, bias: Tensor):
        super().__init__()
        self.scale = nn.Parameter(scale.reshape(-1), requires_grad=False)
        self.bias = nn.Parameter(bias.reshape(-1), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.scale.shape, self.scale, self.bias, LN_EPS)


class Weights:
    """Takes each named tensor exactly once, checking its shape; `left()` lists what was never taken."""

    def __init__(self, model: MarianModel):
        self.model = model
        self.unused = set(model.items)

    def __call__(self, name: str, shape: tuple[int, ...]) -> Tensor:
        item = self.model.items.get(name)
        if item is None:
            raise MarianFileError(f"{self.model.path}: item {name!r} is missing; the file does not hold the "
                                  "model its model.yml describes")
        value = item.value
        if tuple(value.shape) != shape:
            raise MarianFileError(f"{self.model.path}: item {name!r} has shape {tuple(value.shape)}, "
                                  f"expected {shape}")
        self.unused.discard(name)
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    def linear(self, prefix: str, w: str, b: str, d_in: int, d_out: int, bias: bool = True) -> Linear:
        return Linear(self(f"{prefix}_{w}", (d_in, d_out)), self(f"{prefix}_{b}", (1, d_out)) if bias else None)

    def norm(self, prefix: str, d: int) -> Norm:
        return Norm(self(f"{prefix}_ln_scale", (1, d)), self(f"{prefix}_ln_bias", (1, d)))


class Attention(nn.Module):
    def __init__(self, w: Weights, prefix: str, c: MarianConfig):
        super().__init__()
        d = c.d_model
        self.heads = c.heads
        self.q, self.k, self.v, self.o = (w.linear(prefix, f"W{x}", f"b{x}", d, d) for x in "qkvo")
        self.norm = w.norm(f"{prefix}_Wo", d)

    def split(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        return x.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)  # [b, heads, t, head_dim]

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        return self.split(self.k(memory)), self.split(self.v(memory))

    def forward(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
        """x [b, t, d]; k, v [b, heads, s, head_dim]; mask [b, 1, 1, s] additive."""
        q = self.split(self.q(x))
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1])) + mask  # [b, heads, t, s]
        out = torch.softmax(scores, dim=-1) @ v  # [b, heads, t, head_dim]
        b, h, t, hd = out.shape
        return self.norm(x + self.o(out.transpose(1, 2).reshape(b, t, h * hd)))


class FeedForward(nn.Module):
    def __init__(self, w: Weights, prefix: str, c: MarianConfig):
        super().__init__()
        dims = [c.d_model] + [c.ffn_dim] * (c.ffn_depth - 1) + [c.d_model]
        self.layers = nn.ModuleList(w.linear(f"{prefix}_ffn", f"W{i + 1}", f"b{i + 1}", dims[i], dims[i + 1])
                                    for i in range(c.ffn_depth))
        self.act = F.relu if c.activation == "relu" else F.silu
        self.norm = w.norm(f"{prefix}_ffn_ffn", c.d_model)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for i, layer in enumerate(self.layers):
            y = layer(y)
            if i + 1 < len(self.layers):
                y = self.act(y)
        return self.norm(x + y)


class SSRU(nn.Module):
    def __init__(self, w: Weights, prefix: str, d: int):
        super().__init__()
        self.w = Linear(w(f"{prefix}_rnn_W", (d, d)), None)
        self.wf = w.linear(f"{prefix}_rnn", "Wf", "bf", d, d)
        self.norm = w.norm(f"{prefix}_rnn_ffn", d)

    def forward(self, x: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
        """One step: x [b, 1, d], cell [b, d] → output [b, 1, d], new cell [b, d]."""
        f = torch.sigmoid(self.wf(x[:, 0]))
        cell = f * cell + (1.0 - f) * self.w(x[:, 0])
        return self.norm(x + torch.relu(cell)[:, None]), cell


class Bergamot(nn.Module):
    """Encoder, SSRU decoder and (shortlisted) output layer of a Bergamot student model."""

    def __init__(self, model: MarianModel):
        super().__init__()
        c = self.config = MarianConfig.from_model(model)
        w = Weights(model)
        d = c.d_model
        src_name = "Wemb" if c.tied == "all" else "encoder_Wemb"
        tgt_name = "Wemb" if c.tied == "all" else "decoder_Wemb"
        self.src_embed = nn.Parameter(w(src_name, (c.src_vocab, d)), requires_grad=False)
        target = self.src_embed.data if c.tied == "all" else w(tgt_name, (c.tgt_vocab, d))
        # One row more than the vocabulary: the zero vector the decoder starts from (id = tgt_vocab). The
        # output layer gathers its shortlist rows from the same table, so a graph stores it once.
        self.tgt_table = nn.Parameter(torch.cat([target, torch.zeros(1, d)]), requires_grad=False)
        if c.tied == "none":  # [d, vocab] as stored; kept as [vocab, d] rows so a shortlist gathers rows
            self.out_w = nn.Parameter(w("decoder_ff_logit_out_W", (d, c.tgt_vocab)).T.contiguous(),
                                      requires_grad=False)
        else:
            self.out_w = self.tgt_table
        self.out_b = nn.Parameter(w("decoder_ff_logit_out_b", (1, c.tgt_vocab)).reshape(-1), requires_grad=False)
        self.enc_attn = nn.ModuleList(Attention(w, f"encoder_l{i + 1}_self", c) for i in range(c.encoder_layers))
        self.enc_ffn = nn.ModuleList(FeedForward(w, f"encoder_l{i + 1}", c) for i in range(c.encoder_layers))
        self.dec_rnn = nn.ModuleList(SSRU(w, f"decoder_l{i + 1}", d) for i in range(c.decoder_layers))
        self.dec_attn = nn.ModuleList(Attention(w, f"decoder_l{i + 1}_context", c) for i in range(c.decoder_layers))
        self.dec_ffn = nn.ModuleList(FeedForward(w, f"decoder_l{i + 1}", c) for i in range(c.decoder_layers))
        if w.unused:
            raise UnsupportedModelError(f"{model.path}: items this architecture does not use: "
                                        f"{', '.join(sorted(w.unused)[:5])}; the file holds a different model "
                                        "than its model.yml describes")
        self.eval()

    @staticmethod
    def additive_mask(mask: Tensor) -> Tensor:
        """[b, s] 1/0 → [b, 1, 1, s] 0/MASK."""
        return (1.0 - mask.float())[:, None, None, :] * MASK

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        """[b, s] ids (ending with </s>) and mask → encoder output [b, s, d] and each decoder layer's
        attention keys/values over it ([b, heads, s, head_dim] each)."""
        d = self.config.d_model
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = F.embedding(input_ids, self.src_embed) * math.sqrt(d) + sinusoid(positions, d)[None]
        mask = self.additive_mask(attention_mask)
        for attn, ffn in zip(self.enc_attn, self.enc_ffn):
            k, v = attn.keys_values(x)
            x = ffn(attn(x, k, v, mask))
        return x, [attn.keys_values(x) for attn in self.dec_attn]

    def target_rows(self, input_ids: Tensor) -> Tensor:
        """[b, 1] previous tokens → their raw table rows [b, 1, d] (id = vocab size: the zero start vector).
        The runtime does this lookup itself from the pack's token table (see export.bergamot.graphs)."""
        return F.embedding(torch.clamp(input_ids, max=self.config.tgt_vocab), self.tgt_table)

    def output_rows(self, shortlist: Tensor) -> tuple[Tensor, Tensor]:
        """The output layer restricted to the `shortlist` ids: weight rows [k, d] and bias [k]."""
        return F.embedding(shortlist, self.out_w), self.out_b[shortlist]

    def decode_step(self, rows: Tensor, step: Tensor, attention_mask: Tensor, cells: list[Tensor],
                    cross: list[tuple[Tensor, Tensor]], out_w: Tensor, out_b: Tensor) -> tuple[Tensor, list[Tensor]]:
        """One decoder step from the previous tokens' table rows [b, 1, d] at position `step` [1] →
        logits over the shortlist whose output rows are `out_w` [k, d], `out_b` [k] → [b, k], new SSRU cells."""
        d = self.config.d_model
        x = rows * math.sqrt(d) + sinusoid(step, d)[None]
        mask = self.additive_mask(attention_mask)
        new_cells = []
        for rnn, attn, ffn, cell, (k, v) in zip(self.dec_rnn, self.dec_attn, self.dec_ffn, cells, cross):
            x, cell = rnn(x, cell)
            new_cells.append(cell)
            x = ffn(attn(x, k, v, mask))
        return x[:, 0] @ out_w.T + out_b, new_cells  # [b, k]
