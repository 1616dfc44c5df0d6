"""Checkpoint importers: CTranslate2 ``model.bin``, OpenAI ``.pt`` and Hugging Face safetensors.

Each importer builds ``ModelDims`` from the checkpoint's own shapes, maps every tensor onto the names
of ``export.whisper_model.Whisper``, asserts that the key counts match and every shape is right, and
loads with ``strict=True``. No weight is transposed in any of the three formats (all store Linear
weights as [out, in] and Conv1d weights as [out, in, k]); what differs is fusion:
- CTranslate2 fuses self-attention q/k/v into one ``linear_0`` [3*d, d] (its k bias is zeros) and the
  cross-attention k/v into ``linear_1`` [2*d, d]; both are split here.
- Hugging Face has ``k_proj`` without bias and a tied ``proj_out`` that is dropped.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from pathlib import Path

import numpy as np
import torch

from export.whisper_model import ModelDims, Whisper

log = logging.getLogger(__name__)


class ImportError_(RuntimeError):
    """A checkpoint could not be read or does not look like Whisper."""


def _load_into(dims: ModelDims, state: dict[str, torch.Tensor], source: Path) -> Whisper:
    model = Whisper(dims)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise ImportError_(f"{source}: checkpoint does not match Whisper {dims}: "
                           f"missing {missing[:5]} ({len(missing)}), unexpected {extra[:5]} ({len(extra)})")
    assert len(state) == len(expected), (len(state), len(expected))
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ImportError_(f"{source}: {name} has shape {tuple(state[name].shape)}, "
                               f"expected {tuple(tensor.shape)} for {dims}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def _count_layers(names, pattern: str) -> int:
    found = {int(m.group(1)) for n in names if (m := re.match(pattern, n))}
    if found != set(range(len(found))):
        raise ImportError_(f"layer indices are not contiguous: {sorted(found)}")
    return len(found)


# --- CTranslate2 -------------------------------------------------------------------------------------

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}  # 5 = bfloat16


def read_ct2_model_bin(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse a CTranslate2 ``model.bin`` (binary format version 6); returns (variables, aliases)."""
    data = memoryview(path.read_bytes())
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    def name() -> str:
        nonlocal pos
        (n,) = take("H")
        text = bytes(data[pos : pos + n]).rstrip(b"\0").decode()
        pos += n
        return text

    (version,) = take("I")
    if version != 6:
        raise ImportError_(f"{path}: CTranslate2 binary format version {version}; only version 6 is supported")
    spec = name()
    if spec != "WhisperSpec":
        raise ImportError_(f"{path}: model spec is {spec!r}, not WhisperSpec")
    take("I")  # spec revision
    (n_vars,) = take("I")
    variables: dict[str, torch.Tensor] = {}
    for _ in range(n_vars):
        var = name()
        (rank,) = take("B")
        shape = take("I" * rank)
        (dtype,) = take("B")
        (nbytes,) = take("I")
        raw = data[pos : pos + nbytes]
        pos += nbytes
        if dtype == 5:
            arr = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).float()
        elif dtype in _CT2_DTYPES:
            arr = torch.from_numpy(np.frombuffer(raw, dtype=_CT2_DTYPES[dtype]).copy())
        else:
            raise ImportError_(f"{path}: variable {var} has unknown dtype code {dtype}")
        variables[var] = arr.reshape(shape)
    (n_aliases,) = take("I")
    aliases = {}
    for _ in range(n_aliases):
        alias = name()
        aliases[alias] = name()
    if pos != len(data):
        raise ImportError_(f"{path}: {len(data) - pos} trailing bytes after the alias table; file is corrupt")
    return variables, aliases


def _ct2_state(v: dict[str, torch.Tensor], n_enc: int, n_dec: int, d: int) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}

    def linear(dst: str, src: str, bias: bool = True) -> None:
        state[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            state[f"{dst}.bias"] = v[f"{src}/bias"]

    def norm(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = v[f"{src}/gamma"]
        state[f"{dst}.bias"] = v[f"{src}/beta"]

    def self_attention(dst: str, src: str) -> None:
        norm(f"{dst}.attn_ln", f"{src}/layer_norm")
        w, b = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
        assert w.shape == (3 * d, d) and b.shape == (3 * d,), (src, w.shape, b.shape)
        wq, wk, wv = w.split(d)
        bq, bk, bv = b.split(d)
        if bk.abs().max() > 1e-6:
            raise ImportError_(f"{src}/linear_0/bias: the key part is not zero; this is not Whisper")
        state.update({f"{dst}.attn.query.weight": wq, f"{dst}.attn.query.bias": bq, f"{dst}.attn.key.weight": wk,
                      f"{dst}.attn.value.weight": wv, f"{dst}.attn.value.bias": bv})
        linear(f"{dst}.attn.out", f"{src}/linear_1")

    def ffn(dst: str, src: str) -> None:
        norm(f"{dst}.mlp_ln", f"{src}/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/linear_1")

    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    state["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(n_enc):
        self_attention(f"encoder.blocks.{i}", f"encoder/layer_{i}/self_attention")
        ffn(f"encoder.blocks.{i}", f"encoder/layer_{i}/ffn")
    norm("encoder.ln_post", "encoder/layer_norm")
    state["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    state["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(n_dec):
        src = f"decoder/layer_{i}"
        self_attention(f"decoder.blocks.{i}", f"{src}/self_attention")
        norm(f"decoder.blocks.{i}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"decoder.blocks.{i}.cross_attn.query", f"{src}/attention/linear_0")
        wk, wv = v[f"{src}/attention/linear_1/weight"].split(d)
        bk, bv = v[f"{src}/attention/linear_1/bias"].split(d)
        if bk.abs().max() > 1e-6:
            raise ImportError_(f"{src}/attention/linear_1/bias: the key part is not zero; this is not Whisper")
        state.update({f"decoder.blocks.{i}.cross_attn.key.weight": wk, f"decoder.blocks.{i}.cross_attn.value.weight": wv,
                      f"decoder.blocks.{i}.cross_attn.value.bias": bv})
        linear(f"decoder.blocks.{i}.cross_attn.out", f"{src}/attention/linear_2")
        ffn(f"decoder.blocks.{i}", f"{src}/ffn")
    norm("decoder.ln", "decoder/layer_norm")
    return state


# CTranslate2 scalars and flags that carry no weights; each is checked or ignored on purpose.
_CT2_SCALARS = {"encoder/num_heads", "decoder/num_heads", "decoder/activation", "decoder/alibi",
                "decoder/alignment_heads", "decoder/alignment_layer", "decoder/pre_norm",
                "decoder/scale_embeddings", "decoder/start_from_zero_embedding"}


def load_ct2(folder: Path) -> Whisper:
    """A CTranslate2 Whisper folder (model.bin + config.json) -> Whisper with its alignment heads set."""
    model_bin = folder / "model.bin"
    if not model_bin.is_file():
        raise ImportError_(f"{model_bin} not found; point --from at a CTranslate2 Whisper folder")
    v, aliases = read_ct2_model_bin(model_bin)
    for alias, target in aliases.items():
        if alias != "decoder/projection/weight" or target != "decoder/embeddings/weight":
            raise ImportError_(f"{model_bin}: unexpected alias {alias} -> {target} (untied output projection?)")
    n_enc = _count_layers(v, r"encoder/layer_(\d+)/")
    n_dec = _count_layers(v, r"decoder/layer_(\d+)/")
    # CT2: 12 tensors per encoder layer, 20 per decoder layer (fused q/k/v), 7 encoder and 4 decoder
    # globals; ours: 15 and 24 per layer (q, k, v split; no key bias).
    weights = {k for k in v if k not in _CT2_SCALARS}
    if len(weights) != 7 + 12 * n_enc + 4 + 20 * n_dec:
        raise ImportError_(f"{model_bin}: {len(weights)} weight tensors, expected {7 + 12 * n_enc + 4 + 20 * n_dec} "
                           f"for {n_enc} encoder and {n_dec} decoder layers; the file is incomplete or not Whisper")
    try:
        d_model, n_mels, _ = v["encoder/conv1/weight"].shape
        n_vocab, n_text_state = v["decoder/embeddings/weight"].shape
        dims = ModelDims(
            n_mels=n_mels, n_audio_ctx=v["encoder/position_encodings/encodings"].shape[0], n_audio_state=d_model,
            n_audio_head=int(v["encoder/num_heads"]), n_audio_layer=n_enc, n_vocab=n_vocab,
            n_text_ctx=v["decoder/position_encodings/encodings"].shape[0], n_text_state=n_text_state,
            n_text_head=int(v["decoder/num_heads"]), n_text_layer=n_dec,
        )
        state = _ct2_state(v, n_enc, n_dec, d_model)
    except KeyError as e:
        raise ImportError_(f"{model_bin}: variable {e.args[0]} is missing; the file is incomplete or not Whisper") from e
    for flag, want in (("decoder/pre_norm", 1), ("decoder/scale_embeddings", 0), ("decoder/alibi", 0)):
        if flag in v and int(v[flag]) != want:
            raise ImportError_(f"{model_bin}: {flag}={int(v[flag])}, Whisper has {want}")
    assert len(state) == 7 + 15 * n_enc + 4 + 24 * n_dec, len(state)
    model = _load_into(dims, state, model_bin)
    config_path = folder / "config.json"
    if config_path.is_file():
        heads = json.loads(config_path.read_text()).get("alignment_heads")
        if heads:
            model.set_alignment_heads(heads)
    log.info("imported CTranslate2 %s: %s", model_bin, dims)
    return model


# --- OpenAI .pt --------------------------------------------------------------------------------------

def load_openai(path: Path) -> Whisper:
    """An OpenAI Whisper checkpoint (``dims`` + ``model_state_dict``), loaded with weights_only=True."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ImportError_(f"{path}: not a loadable PyTorch checkpoint ({e})") from e
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise ImportError_(f"{path}: expected an OpenAI Whisper checkpoint with 'dims' and 'model_state_dict'")
    dims = ModelDims(**{f: int(ckpt["dims"][f]) for f in ModelDims.__dataclass_fields__})
    state = dict(ckpt["model_state_dict"])
    # OpenAI's encoder positions are a buffer that older checkpoints may omit; they are fixed sinusoids.
    if "encoder.positional_embedding" not in state:
        state["encoder.positional_embedding"] = Whisper(dims).encoder.positional_embedding
    model = _load_into(dims, state, path)
    if "alignment_heads" in ckpt:  # a dense [n_text_layer, n_text_head] bool mask when present
        mask = torch.as_tensor(ckpt["alignment_heads"]).reshape(dims.n_text_layer, dims.n_text_head)
        model.set_alignment_heads(mask.nonzero().tolist())
    log.info("imported OpenAI checkpoint %s: %s", path, dims)
    return model


# --- Hugging Face safetensors ------------------------------------------------------------------------

_ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Parse a .safetensors file: u64 header length, JSON header, then the raw little-endian tensors."""
    data = path.read_bytes()
    if len(data) < 8:
        raise ImportError_(f"{path}: too short to be a safetensors file")
    (header_len,) = struct.unpack_from("<Q", data, 0)
    try:
        header = json.loads(data[8 : 8 + header_len])
    except ValueError as e:
        raise ImportError_(f"{path}: unreadable safetensors header ({e})") from e
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ImportError_(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        raw = bytearray(data[base + start : base + end])
        out[name] = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"]) if raw else torch.zeros(info["shape"], dtype=dtype)
    return out


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """The inverse of read_safetensors (tests, and re-exports)."""
    names = {v: k for k, v in _ST_DTYPES.items()}
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().cpu().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"".join(chunks))


_HF_BLOCK = {"self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
             "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
             "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
             "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
             "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln"}
_HF_TOP = {"model.encoder.conv1": "encoder.conv1", "model.encoder.conv2": "encoder.conv2",
           "model.encoder.embed_positions": "encoder.positional_embedding", "model.encoder.layer_norm": "encoder.ln_post",
           "model.decoder.embed_tokens": "decoder.token_embedding", "model.decoder.embed_positions":
           "decoder.positional_embedding", "model.decoder.layer_norm": "decoder.ln"}


def hf_name(name: str) -> str | None:
    """Map one Hugging Face WhisperForConditionalGeneration key to ours; None for the tied proj_out."""
    if name == "proj_out.weight":
        return None
    if m := re.match(r"model\.(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)$", name):
        side, i, module, kind = m.groups()
        if module not in _HF_BLOCK:
            raise ImportError_(f"unknown Hugging Face Whisper tensor {name}")
        return f"{side}.blocks.{i}.{_HF_BLOCK[module]}.{kind}"
    module, _, kind = name.rpartition(".")
    if module not in _HF_TOP:
        raise ImportError_(f"unknown Hugging Face Whisper tensor {name}")
    ours = _HF_TOP[module]
    return ours if ours.endswith("positional_embedding") else f"{ours}.{kind}"


def load_hf(folder: Path) -> Whisper:
    """A Hugging Face Whisper folder (config.json + model.safetensors)."""
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    for p in (config_path, weights_path):
        if not p.is_file():
            raise ImportError_(f"{p} not found; a Hugging Face Whisper folder has config.json and model.safetensors")
    cfg = json.loads(config_path.read_text())
    dims = ModelDims(
        n_mels=cfg["num_mel_bins"], n_audio_ctx=cfg["max_source_positions"], n_audio_state=cfg["d_model"],
        n_audio_head=cfg["encoder_attention_heads"], n_audio_layer=cfg["encoder_layers"], n_vocab=cfg["vocab_size"],
        n_text_ctx=cfg["max_target_positions"], n_text_state=cfg["d_model"],
        n_text_head=cfg["decoder_attention_heads"], n_text_layer=cfg["decoder_layers"],
    )
    tensors = read_safetensors(weights_path)
    state = {}
    for name, t in tensors.items():
        ours = hf_name(name)
        if ours is None:
            if not torch.equal(t, tensors["model.decoder.embed_tokens.weight"]):
                raise ImportError_(f"{weights_path}: proj_out.weight differs from embed_tokens (untied); unsupported")
            continue
        state[ours] = t
    n_enc = _count_layers(state, r"encoder\.blocks\.(\d+)\.")
    n_dec = _count_layers(state, r"decoder\.blocks\.(\d+)\.")
    if (n_enc, n_dec) != (dims.n_audio_layer, dims.n_text_layer):
        raise ImportError_(f"{weights_path}: {n_enc}+{n_dec} layers, config.json says "
                           f"{dims.n_audio_layer}+{dims.n_text_layer}")
    model = _load_into(dims, state, weights_path)
    gen_path = folder / "generation_config.json"
    if gen_path.is_file() and (heads := json.loads(gen_path.read_text()).get("alignment_heads")):
        model.set_alignment_heads(heads)
    log.info("imported Hugging Face %s: %s", weights_path, dims)
    return model


def load_any(source: Path) -> tuple[Whisper, str]:
    """Pick the importer from what is at `source`; returns (model, source kind)."""
    source = Path(source)
    if source.is_file() and source.suffix in (".pt", ".pth"):
        return load_openai(source), "openai"
    if (source / "model.bin").is_file():
        return load_ct2(source), "ctranslate2"
    if (source / "model.safetensors").is_file():
        return load_hf(source), "huggingface"
    raise ImportError_(f"{source}: not a CTranslate2 folder (model.bin), an OpenAI .pt file or a Hugging Face "
                       "folder (model.safetensors + config.json)")
