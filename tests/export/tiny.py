"""A tiny random Whisper and the files a source folder holds, for the export tests (no real model needed)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from export.importers import write_safetensors
from export.whisper_model import ModelDims, Whisper

TINY = ModelDims(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4, n_audio_layer=2, n_vocab=140,
                 n_text_ctx=448, n_text_state=64, n_text_head=4, n_text_layer=3)
LANGS = ("en", "de", "fr")
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{c}|>" for c in LANGS), "<|translate|>",
            "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>", "<|0.00|>"]
FIRST_SPECIAL = 100  # ids below are words
ALIGNMENT_HEADS = [[1, 0], [2, 3]]


def tiny_tokenizer(path: Path) -> Path:
    vocab = {f"w{i}": i for i in range(FIRST_SPECIAL)}
    vocab.update({tok: FIRST_SPECIAL + i for i, tok in enumerate(SPECIALS)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(path))
    return path


def token(text: str) -> int:
    return FIRST_SPECIAL + SPECIALS.index(text)


# --- OpenAI .pt ---

def save_openai(model: Whisper, path: Path) -> Path:
    mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
    for layer, head in ALIGNMENT_HEADS:
        mask[layer, head] = True
    torch.save({"dims": model.dims.as_dict(), "model_state_dict": model.state_dict(), "alignment_heads": mask}, path)
    return path


# --- Hugging Face (names written out here, independently of the importer's table) ---

def hf_state(model: Whisper) -> dict[str, torch.Tensor]:
    sd = model.state_dict()
    out = {
        "model.encoder.conv1.weight": sd["encoder.conv1.weight"], "model.encoder.conv1.bias": sd["encoder.conv1.bias"],
        "model.encoder.conv2.weight": sd["encoder.conv2.weight"], "model.encoder.conv2.bias": sd["encoder.conv2.bias"],
        "model.encoder.embed_positions.weight": sd["encoder.positional_embedding"],
        "model.encoder.layer_norm.weight": sd["encoder.ln_post.weight"],
        "model.encoder.layer_norm.bias": sd["encoder.ln_post.bias"],
        "model.decoder.embed_tokens.weight": sd["decoder.token_embedding.weight"],
        "model.decoder.embed_positions.weight": sd["decoder.positional_embedding"],
        "model.decoder.layer_norm.weight": sd["decoder.ln.weight"], "model.decoder.layer_norm.bias": sd["decoder.ln.bias"],
        "proj_out.weight": sd["decoder.token_embedding.weight"],
    }
    pairs = [("self_attn.q_proj", "attn.query"), ("self_attn.k_proj", "attn.key"), ("self_attn.v_proj", "attn.value"),
             ("self_attn.out_proj", "attn.out"), ("self_attn_layer_norm", "attn_ln"), ("fc1", "mlp.0"),
             ("fc2", "mlp.2"), ("final_layer_norm", "mlp_ln")]
    cross = [("encoder_attn.q_proj", "cross_attn.query"), ("encoder_attn.k_proj", "cross_attn.key"),
             ("encoder_attn.v_proj", "cross_attn.value"), ("encoder_attn.out_proj", "cross_attn.out"),
             ("encoder_attn_layer_norm", "cross_attn_ln")]
    for side, n, names in (("encoder", model.dims.n_audio_layer, pairs), ("decoder", model.dims.n_text_layer, pairs + cross)):
        for i in range(n):
            for hf, ours in names:
                for kind in ("weight", "bias"):
                    key = f"{side}.blocks.{i}.{ours}.{kind}"
                    if key in sd:
                        out[f"model.{side}.layers.{i}.{hf}.{kind}"] = sd[key]
    return out


def save_hf(model: Whisper, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    d = model.dims
    write_safetensors(hf_state(model), folder / "model.safetensors")
    config = {"model_type": "whisper", "d_model": d.n_audio_state, "encoder_layers": d.n_audio_layer,
              "decoder_layers": d.n_text_layer, "encoder_attention_heads": d.n_audio_head,
              "decoder_attention_heads": d.n_text_head, "num_mel_bins": d.n_mels, "vocab_size": d.n_vocab,
              "max_source_positions": d.n_audio_ctx, "max_target_positions": d.n_text_ctx,
              "suppress_tokens": [3, 4, 5], "begin_suppress_tokens": [7, token("<|endoftext|>")]}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "generation_config.json").write_text(json.dumps({"alignment_heads": ALIGNMENT_HEADS}))
    tiny_tokenizer(folder / "tokenizer.json")
    return folder


# --- CTranslate2 model.bin (format 6, fused attention as CTranslate2 writes it) ---

def _ct2_vars(model: Whisper) -> dict[str, np.ndarray]:
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    v: dict[str, np.ndarray] = {}

    def lin(dst: str, src: str) -> None:
        v[f"{dst}/weight"], v[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def norm(dst: str, src: str) -> None:
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def self_attn(dst: str, src: str) -> None:
        norm(f"{dst}/layer_norm", f"{src}.attn_ln")
        q, k, val = (sd[f"{src}.attn.{n}.weight"] for n in ("query", "key", "value"))
        v[f"{dst}/linear_0/weight"] = np.concatenate([q, k, val])
        v[f"{dst}/linear_0/bias"] = np.concatenate([sd[f"{src}.attn.query.bias"], np.zeros_like(sd[f"{src}.attn.query.bias"]),
                                                    sd[f"{src}.attn.value.bias"]])
        lin(f"{dst}/linear_1", f"{src}.attn.out")

    def ffn(dst: str, src: str) -> None:
        norm(f"{dst}/layer_norm", f"{src}.mlp_ln")
        lin(f"{dst}/linear_0", f"{src}.mlp.0")
        lin(f"{dst}/linear_1", f"{src}.mlp.2")

    lin("encoder/conv1", "encoder.conv1")
    lin("encoder/conv2", "encoder.conv2")
    v["encoder/position_encodings/encodings"] = sd["encoder.positional_embedding"]
    for i in range(model.dims.n_audio_layer):
        self_attn(f"encoder/layer_{i}/self_attention", f"encoder.blocks.{i}")
        ffn(f"encoder/layer_{i}/ffn", f"encoder.blocks.{i}")
    norm("encoder/layer_norm", "encoder.ln_post")
    v["decoder/embeddings/weight"] = sd["decoder.token_embedding.weight"]
    v["decoder/position_encodings/encodings"] = sd["decoder.positional_embedding"]
    for i in range(model.dims.n_text_layer):
        src, dst = f"decoder.blocks.{i}", f"decoder/layer_{i}"
        self_attn(f"{dst}/self_attention", src)
        norm(f"{dst}/attention/layer_norm", f"{src}.cross_attn_ln")
        lin(f"{dst}/attention/linear_0", f"{src}.cross_attn.query")
        v[f"{dst}/attention/linear_1/weight"] = np.concatenate([sd[f"{src}.cross_attn.key.weight"], sd[f"{src}.cross_attn.value.weight"]])
        v[f"{dst}/attention/linear_1/bias"] = np.concatenate([np.zeros_like(sd[f"{src}.cross_attn.value.bias"]), sd[f"{src}.cross_attn.value.bias"]])
        lin(f"{dst}/attention/linear_2", f"{src}.cross_attn.out")
        ffn(f"{dst}/ffn", src)
    norm("decoder/layer_norm", "decoder.ln")
    v = {k: a.astype(np.float16) for k, a in v.items()}
    v.update({"encoder/num_heads": np.array(model.dims.n_audio_head, np.int16),
              "decoder/num_heads": np.array(model.dims.n_text_head, np.int16),
              "decoder/pre_norm": np.array(1, np.int8), "decoder/activation": np.array(3, np.int8),
              "decoder/scale_embeddings": np.array(0, np.int8)})
    return v


def save_ct2(model: Whisper, folder: Path, drop: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}

    def name(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    variables = {k: a for k, a in sorted(_ct2_vars(model).items()) if k != drop}
    out = [struct.pack("<I", 6), name("WhisperSpec"), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for key, arr in variables.items():
        out += [name(key), struct.pack("<B", arr.ndim), struct.pack(f"<{arr.ndim}I", *arr.shape),
                struct.pack("<B", codes[arr.dtype]), struct.pack("<I", arr.nbytes), arr.tobytes()]
    out += [struct.pack("<I", 1), name("decoder/projection/weight"), name("decoder/embeddings/weight")]
    (folder / "model.bin").write_bytes(b"".join(out))
    (folder / "config.json").write_text(json.dumps({
        "alignment_heads": ALIGNMENT_HEADS, "lang_ids": [token(f"<|{c}|>") for c in LANGS],
        "suppress_ids": [3, 4], "suppress_ids_begin": [7, token("<|endoftext|>")]}))
    tiny_tokenizer(folder / "tokenizer.json")
    return folder
