"""Whisper in PyTorch, written for export: explicit attention, explicit KV cache, dynamic encoder length.

Parameter names follow OpenAI's ``whisper/model.py`` state dict, so an OpenAI checkpoint loads as it is
and the other importers map onto the same names. Every model size from tiny to large-v3 fits
``ModelDims`` (80 or 128 mel bins).

Differences from the reference that matter for ONNX:
- attention is written out (matmul, softmax), so the graph has no frozen sequence length and the
  cross-attention weights of the alignment heads can be returned;
- the encoder accepts any even frame count up to ``2 * n_audio_ctx``: the positional embedding is
  sliced to the conv output length;
- decoder positions come from the past length, so the same graph serves the first step and later ones.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30  # seconds
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames in a 30 s window


@dataclasses.dataclass(frozen=True)
class ModelDims:
    n_mels: int  # mel bins of the input features (80, or 128 for large-v3)
    n_audio_ctx: int  # encoder positions: 1500 for 30 s
    n_audio_state: int  # encoder width
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int  # decoder positions: 448
    n_text_state: int  # decoder width (equals n_audio_state in every released model)
    n_text_head: int
    n_text_layer: int

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"ModelDims.{f.name} must be positive, got {getattr(self, f.name)}")
        if self.n_audio_state % self.n_audio_head or self.n_text_state % self.n_text_head:
            raise ValueError(f"state width must be a multiple of the head count: {self}")

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def sinusoids(length: int, channels: int, max_timescale: float = 10_000) -> Tensor:
    """The encoder's fixed positional embedding, as in the reference."""
    assert channels % 2 == 0
    log_timescale_increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


class MultiHeadAttention(nn.Module):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def split_heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_head, -1).transpose(1, 2)  # [b, head, t, head_dim]

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.split_heads(self.key(x)), self.split_heads(self.value(x))

    def attend(self, x: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """Queries from x against keys/values already split into heads; returns (output, weights)."""
        q = self.split_heads(self.query(x))  # [b, head, t, head_dim]
        scale = q.shape[-1] ** -0.5
        qk = (q * scale) @ k.transpose(-1, -2)  # [b, head, t, kv_len]
        if mask is not None:
            qk = qk.masked_fill(mask, float("-inf"))
        w = qk.float().softmax(dim=-1).to(q.dtype)
        o = (w @ v).transpose(1, 2).flatten(2)  # [b, t, state]
        return self.out(o), w


class ResidualAttentionBlock(nn.Module):
    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.cross_attn = MultiHeadAttention(n_state, n_head) if cross_attention else None
        self.cross_attn_ln = nn.LayerNorm(n_state) if cross_attention else None
        self.mlp = nn.Sequential(nn.Linear(n_state, 4 * n_state), nn.GELU(), nn.Linear(4 * n_state, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def encode(self, x: Tensor) -> Tensor:
        h = self.attn_ln(x)
        k, v = self.attn.project_kv(h)
        x = x + self.attn.attend(h, k, v, None)[0]
        return x + self.mlp(self.mlp_ln(x))

    def decode(self, x: Tensor, past_k: Tensor | None, past_v: Tensor | None, mask: Tensor,
               cross_k: Tensor, cross_v: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One decoder block step; returns (x, self keys, self values, cross-attention weights)."""
        assert self.cross_attn is not None and self.cross_attn_ln is not None
        h = self.attn_ln(x)
        k, v = self.attn.project_kv(h)
        if past_k is not None and past_v is not None:
            k = torch.cat([past_k, k], dim=2)  # [b, head, past + t, head_dim]
            v = torch.cat([past_v, v], dim=2)
        x = x + self.attn.attend(h, k, v, mask)[0]
        out, w = self.cross_attn.attend(self.cross_attn_ln(x), cross_k, cross_v, None)
        x = x + out
        x = x + self.mlp(self.mlp_ln(x))
        return x, k, v, w


class AudioEncoder(nn.Module):
    def __init__(self, n_mels: int, n_ctx: int, n_state: int, n_head: int, n_layer: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer))
        self.ln_post = nn.LayerNorm(n_state)

    def forward(self, mel: Tensor) -> Tensor:
        """mel [b, n_mels, frames] (frames even, ≤ 2 * n_ctx) -> [b, frames / 2, n_state]."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).permute(0, 2, 1)  # [b, frames / 2, state]
        positions = torch.arange(x.shape[1], device=x.device)
        x = x + F.embedding(positions, self.positional_embedding).to(x.dtype)
        for block in self.blocks:
            x = block.encode(x)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    def __init__(self, n_vocab: int, n_ctx: int, n_state: int, n_head: int, n_layer: int):
        super().__init__()
        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = nn.Parameter(torch.empty(n_ctx, n_state))
        self.blocks = nn.ModuleList(ResidualAttentionBlock(n_state, n_head, True) for _ in range(n_layer))
        self.ln = nn.LayerNorm(n_state)

    def cross_kv(self, xa: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each block's cross-attention keys and values of the encoder output, [b, head, enc_len, head_dim]."""
        return [block.cross_attn.project_kv(xa) for block in self.blocks]  # type: ignore[union-attr]

    def step(self, tokens: Tensor, past: list[tuple[Tensor, Tensor]] | None, cross: list[tuple[Tensor, Tensor]],
             embedding_t: Tensor | None = None) -> tuple[Tensor, list[tuple[Tensor, Tensor]], list[Tensor]]:
        """tokens [b, t] after `past` (per block self K/V [b, head, past_len, head_dim], or None).

        Returns logits [b, t, n_vocab], each block's self K/V including the new tokens, and each block's
        cross-attention weights [b, head, t, enc_len]. `embedding_t`, the token embedding transposed to
        [state, vocab], lets an exported graph hold one constant that serves both the lookup and the
        logits MatMul (the exporter would otherwise transpose 26M weights at run time, and the int8
        quantiser can only quantise a constant right-hand side).
        """
        b, t = tokens.shape
        offset = 0 if past is None else past[0][0].shape[2]
        positions = torch.arange(t, device=tokens.device) + offset
        if embedding_t is None:
            x = self.token_embedding(tokens)
        else:
            x = embedding_t.index_select(1, tokens.reshape(-1)).T.reshape(b, t, -1)  # [b, t, state]
        x = x + F.embedding(positions, self.positional_embedding)
        kv_len = torch.arange(t + offset, device=tokens.device)
        mask = kv_len[None, :] > positions[:, None]  # [t, past + t]; True = hidden (a later token)
        present, weights = [], []
        for i, block in enumerate(self.blocks):
            pk, pv = past[i] if past is not None else (None, None)
            x, k, v, w = block.decode(x, pk, pv, mask, *cross[i])
            present.append((k, v))
            weights.append(w)
        x = self.ln(x)
        weight_t = self.token_embedding.weight.T if embedding_t is None else embedding_t
        logits = (x @ weight_t.to(x.dtype)).float()
        return logits, present, weights

    def forward(self, tokens: Tensor, xa: Tensor) -> Tensor:
        """Logits for a whole token sequence without cache (the reference's interface)."""
        return self.step(tokens, None, self.cross_kv(xa))[0]


class Whisper(nn.Module):
    def __init__(self, dims: ModelDims):
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head,
                                    dims.n_audio_layer)
        self.decoder = TextDecoder(dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head,
                                   dims.n_text_layer)
        # (layer, head) pairs whose cross-attention aligns tokens with audio; the reference defaults to
        # every head of the upper half of the decoder until a model's own list is set.
        self.alignment_heads: tuple[tuple[int, int], ...] = tuple(
            (layer, head) for layer in range(dims.n_text_layer // 2, dims.n_text_layer)
            for head in range(dims.n_text_head)
        )

    def set_alignment_heads(self, heads: list[list[int]] | tuple[tuple[int, int], ...]) -> None:
        pairs = tuple((int(layer), int(head)) for layer, head in heads)
        for layer, head in pairs:
            if not (0 <= layer < self.dims.n_text_layer and 0 <= head < self.dims.n_text_head):
                raise ValueError(f"alignment head ({layer}, {head}) is outside the decoder {self.dims}")
        self.alignment_heads = pairs

    def forward(self, mel: Tensor, tokens: Tensor) -> Tensor:
        return self.decoder(tokens, self.encoder(mel))


def new_model(dims: ModelDims, seed: int | None = None) -> Whisper:
    """A randomly initialised model (tests), with non-trivial LayerNorm and bias values."""
    gen = torch.Generator().manual_seed(seed if seed is not None else 0)
    model = Whisper(dims)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("key.weight") or p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * p.shape[-1] ** -0.5)
            elif "ln" in name.split(".")[-2] and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        model.decoder.positional_embedding.mul_(0.1)
    return model.eval()


# --- log-mel front end (the reference for engine/features.py) ---------------------------------------

def _hz_to_mel(f: Tensor) -> Tensor:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(f >= min_log_hz, min_log_mel + torch.log(f.clamp(min=1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: Tensor) -> Tensor:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(n_mels: int, sr: int = SAMPLE_RATE, n_fft: int = N_FFT) -> Tensor:
    """librosa.filters.mel(sr, n_fft, n_mels) with Slaney scale and norm, as Whisper ships it: [n_mels, 1 + n_fft/2]."""
    fft_freqs = torch.linspace(0, sr / 2, 1 + n_fft // 2, dtype=torch.float64)
    mel_pts = torch.linspace(float(_hz_to_mel(torch.tensor(0.0, dtype=torch.float64))),
                             float(_hz_to_mel(torch.tensor(sr / 2, dtype=torch.float64))), n_mels + 2,
                             dtype=torch.float64)
    hz_pts = _mel_to_hz(mel_pts)
    fdiff = torch.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0)
    enorm = 2.0 / (hz_pts[2 : n_mels + 2] - hz_pts[:n_mels])
    return (weights * enorm[:, None]).float()


def log_mel_spectrogram(audio: Tensor, n_mels: int = 80, padding: int = 0) -> Tensor:
    """16 kHz mono float audio [samples] -> log-mel [n_mels, samples // 160], Whisper's normalisation."""
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    window = torch.hann_window(N_FFT, device=audio.device)
    stft = torch.stft(audio.float(), N_FFT, HOP_LENGTH, window=window, return_complex=True)
    power = stft[..., :-1].abs() ** 2  # the reference drops the last frame
    mel = mel_filters(n_mels).to(audio.device) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0
