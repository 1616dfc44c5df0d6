"""The text encoder of the shared space: source-language text tokens -> states the Whisper decoder reads.

The founding document has one encoder per input modality mapping into one representation space, and one
decoder reading that space. In Parley the speech encoder is Whisper's; this module is the text one. Its
output, ``[batch, tokens, d_model]``, goes where the speech encoder's output goes: into the decoder's
cross-attention (``encoder_hidden_states`` of ``decoder_model.onnx``), so the same decoder and the same
task tokens turn either modality into text (``<|transcribe|>``: the text itself; ``<|translate|>``:
English).

It is trained (``export.train.text``) with the decoder's cross-entropy on its states plus an alignment
term that pulls its mean-pooled sentence vector toward the speech encoder's for the same sentence
spoken. Exported as ``text_encoder_model.onnx`` into a pack: ``input_ids`` int64 ``[batch, seq]`` ->
``last_hidden_state`` float32 ``[batch, seq, d_model]``; ``parley.json`` gains a ``text_encoder`` entry.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.export import Dim

from export.whisper_model import ResidualAttentionBlock, Whisper, sinusoids

log = logging.getLogger(__name__)

TEXT_ENCODER_FILE = "text_encoder_model.onnx"


@dataclasses.dataclass(frozen=True)
class TextEncoderDims:
    n_vocab: int  # the Whisper tokenizer's vocabulary
    n_ctx: int  # longest token sequence (the decoder's n_text_ctx)
    n_state: int  # must equal the decoder's width: its cross-attention reads these states
    n_head: int
    n_layer: int

    def __post_init__(self) -> None:
        if min(dataclasses.astuple(self)) <= 0 or self.n_state % self.n_head:
            raise ValueError(f"TextEncoderDims need positive sizes and n_state divisible by n_head: {self}")

    @classmethod
    def for_whisper(cls, model: Whisper, n_layer: int = 2) -> TextEncoderDims:
        d = model.dims
        return cls(d.n_vocab, d.n_text_ctx, d.n_text_state, d.n_text_head, n_layer)


class TextEncoder(nn.Module):
    def __init__(self, dims: TextEncoderDims):
        super().__init__()
        self.dims = dims
        self.token_embedding = nn.Embedding(dims.n_vocab, dims.n_state)
        self.register_buffer("positional_embedding", sinusoids(dims.n_ctx, dims.n_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(dims.n_state, dims.n_head) for _ in range(dims.n_layer))
        self.ln_post = nn.LayerNorm(dims.n_state)

    def forward(self, tokens: Tensor, padding: Tensor | None = None) -> Tensor:
        """tokens [b, t] -> [b, t, n_state]; padding [b, t] bool, True where a token is padding."""
        t = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:t].to(self.token_embedding.weight.dtype)
        mask = None if padding is None else padding[:, None, None, :]  # [b, 1, 1, t] over the keys
        for block in self.blocks:  # bidirectional self-attention: every token sees the whole sentence
            h = block.attn_ln(x)
            k, v = block.attn.project_kv(h)
            x = x + block.attn.attend(h, k, v, mask)[0]
            x = x + block.mlp(block.mlp_ln(x))
        return self.ln_post(x)


def new_text_encoder(model: Whisper, n_layer: int = 2, seed: int = 0) -> TextEncoder:
    """A text encoder for `model`, starting from the decoder's token embedding (already a map from tokens into
    the decoder's width) and small random blocks; the final LayerNorm starts as the speech encoder's, so the
    output begins at the scale the decoder's cross-attention expects."""
    torch.manual_seed(seed)
    enc = TextEncoder(TextEncoderDims.for_whisper(model, n_layer))
    with torch.no_grad():
        enc.token_embedding.weight.copy_(model.decoder.token_embedding.weight)
        enc.ln_post.load_state_dict(model.encoder.ln_post.state_dict())
        for block in enc.blocks:
            block.mlp[2].weight.mul_(0.1)
            block.attn.out.weight.mul_(0.1)
    return enc


def mean_pool(states: Tensor, lengths: Tensor) -> Tensor:
    """states [b, t, d], lengths [b] (valid positions from the start) -> [b, d]."""
    keep = (torch.arange(states.shape[1], device=states.device)[None, :] < lengths[:, None]).to(states.dtype)
    return (states * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp(min=1)


def alignment_loss(text_vec: Tensor, speech_vec: Tensor, temperature: float = 0.1) -> Tensor:
    """Pull each sentence's text vector toward its speech vector: (1 - cosine) of the pair, plus, with two or
    more sentences, an in-batch contrastive term (the pair must be closer than any other pairing)."""
    t, s = F.normalize(text_vec.float(), dim=-1), F.normalize(speech_vec.float(), dim=-1)
    loss = (1 - (t * s).sum(-1)).mean()
    if t.shape[0] > 1:
        logits = t @ s.T / temperature
        target = torch.arange(t.shape[0], device=t.device)
        loss = loss + 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return loss


# --- ONNX ----------------------------------------------------------------------------------------------

class _Graph(nn.Module):
    def __init__(self, encoder: TextEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.encoder(input_ids)


def export_text_encoder(encoder: TextEncoder, path: Path) -> Path:
    from export.graph_io import OPSET

    encoder = encoder.float().cpu().eval()
    batch = Dim("batch", min=1, max=64)
    seq = Dim("seq", min=1, max=encoder.dims.n_ctx)
    ids = torch.randint(0, encoder.dims.n_vocab, (2, 5))
    with torch.no_grad():
        program = torch.onnx.export(_Graph(encoder).eval(), (ids,), dynamo=True, input_names=["input_ids"],
                                    output_names=["last_hidden_state"], opset_version=OPSET, optimize=True,
                                    dynamic_shapes={"input_ids": {0: batch, 1: seq}}, verbose=False)
    assert program is not None
    program.save(str(path))
    log.info("wrote %s (%.1f MB)", path.name, path.stat().st_size / 1e6)
    return path


def add_to_pack(encoder: TextEncoder, pack: Path, trained_on: dict | None = None) -> Path:
    """Export the text encoder into a pack folder and record it (file, sha256, dims) in parley.json."""
    from export.pack import sha256_file

    pack = Path(pack)
    meta_path = pack / "parley.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found; add the text encoder to a pack written by `python -m export`")
    meta = json.loads(meta_path.read_text())
    if meta["dims"]["n_text_state"] != encoder.dims.n_state:
        raise ValueError(f"{pack}: decoder width {meta['dims']['n_text_state']} != text encoder width "
                         f"{encoder.dims.n_state}")
    path = export_text_encoder(encoder, pack / TEXT_ENCODER_FILE)
    meta["files"][TEXT_ENCODER_FILE] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    meta["text_encoder"] = {"file": TEXT_ENCODER_FILE, "dims": dataclasses.asdict(encoder.dims),
                            "input": "input_ids [batch, seq] (Whisper text tokens, no special tokens)",
                            "output": "last_hidden_state [batch, seq, d_model]: encoder_hidden_states for the decoder",
                            "trained_on": trained_on or {}}
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return path
