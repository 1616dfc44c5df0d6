"""Build a Whisper model pack: import, export to ONNX, set the precision, describe the pack.

The pack layout and every json file are specified in docs/packs.md.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import onnx
import torch

from engine.packs.files import sha256_file
from export import graph_io, onnx_export, quantize
from export.importers import load_any
from export.vocab import WhisperVocab, read_source_vocab
from export.whisper_model import CHUNK_LENGTH, HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, SAMPLE_RATE, Whisper

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8", "fp16")
PARLEY_VERSION = "0.1.0"
PACK_FORMAT = 1


def _hf_config(model: Whisper, vocab: WhisperVocab) -> dict:
    d = model.dims
    return {
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
        "d_model": d.n_audio_state, "encoder_layers": d.n_audio_layer, "decoder_layers": d.n_text_layer,
        "encoder_attention_heads": d.n_audio_head, "decoder_attention_heads": d.n_text_head,
        "encoder_ffn_dim": 4 * d.n_audio_state, "decoder_ffn_dim": 4 * d.n_text_state,
        "num_mel_bins": d.n_mels, "vocab_size": d.n_vocab, "max_source_positions": d.n_audio_ctx,
        "max_target_positions": d.n_text_ctx, "activation_function": "gelu", "scale_embedding": False,
        "bos_token_id": vocab.tokens["eot"], "eos_token_id": vocab.tokens["eot"], "pad_token_id": vocab.tokens["eot"],
        "decoder_start_token_id": vocab.tokens["sot"], "suppress_tokens": list(vocab.suppress_tokens),
        "begin_suppress_tokens": list(vocab.begin_suppress_tokens), "use_cache": True,
    }


def _generation_config(model: Whisper, vocab: WhisperVocab) -> dict:
    t = vocab.tokens
    return {
        "lang_to_id": {f"<|{code}|>": tid for code, tid in vocab.languages.items()},
        "task_to_id": {"transcribe": t["transcribe"], "translate": t["translate"]},
        "decoder_start_token_id": t["sot"], "bos_token_id": t["eot"], "eos_token_id": t["eot"],
        "pad_token_id": t["eot"], "no_timestamps_token_id": t["no_timestamps"], "prev_sot_token_id": t["sot_prev"],
        "suppress_tokens": list(vocab.suppress_tokens), "begin_suppress_tokens": list(vocab.begin_suppress_tokens),
        "alignment_heads": [list(h) for h in model.alignment_heads], "is_multilingual": vocab.is_multilingual,
        "max_initial_timestamp_index": 50, "max_length": model.dims.n_text_ctx,
        "return_timestamps": False,
    }


def _preprocessor_config(model: Whisper) -> dict:
    return {
        "feature_extractor_type": "WhisperFeatureExtractor", "processor_class": "WhisperProcessor",
        "feature_size": model.dims.n_mels, "sampling_rate": SAMPLE_RATE, "hop_length": HOP_LENGTH, "n_fft": N_FFT,
        "chunk_length": CHUNK_LENGTH, "n_samples": N_SAMPLES, "nb_max_frames": N_FRAMES, "padding_value": 0.0,
        "padding_side": "right", "return_attention_mask": False,
    }


def _source_info(source: Path, kind: str, origin: str | None) -> dict:
    weights = {"ctranslate2": source / "model.bin", "huggingface": source / "model.safetensors"}.get(kind, source)
    marker = source / ".sha256"  # written by engine.packs.sources after checking the reassembled download
    digest = marker.read_text().strip() if marker.is_file() else sha256_file(weights)
    return {"kind": kind, "origin": origin or str(source), "file": weights.name, "sha256": digest}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def build_pack(source: Path, out_dir: Path, precision: str = "fp32", name: str = "whisper",
               tokenizer: Path | None = None, origin: str | None = None,
               int8: quantize.Int8Options = quantize.Int8Options(), merged_decoder: bool = True) -> Path:
    """Import the checkpoint at `source`, write a complete pack of `precision` into `out_dir`, return it.

    merged_decoder: one ``decoder_model_merged.onnx`` for the prompt pass and the steps (the decoder's
    weights stored, and loaded by onnxruntime, once) instead of ``decoder_model.onnx`` +
    ``decoder_with_past_model.onnx`` (each holding all of them)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    started = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    log.info("importing %s", source)
    model, kind = load_any(source)
    vocab = read_source_vocab(source, tokenizer)
    if max(max(vocab.tokens.values()), *vocab.suppress_tokens) >= model.dims.n_vocab:
        raise ValueError(f"{vocab.tokenizer_path}: token ids exceed the model's vocabulary of {model.dims.n_vocab}")
    out_dir.mkdir(parents=True, exist_ok=True)
    graphs = [onnx_export.ENCODER_FILE, onnx_export.DECODER_FILE, onnx_export.DECODER_WITH_PAST_FILE]
    quantize.export_at_precision(lambda folder: onnx_export.export_all(model, folder), graphs, out_dir, precision,
                                 int8)
    if merged_decoder:
        from export.merge_decoders import MERGED_FILE, merge_decoders

        pair = [out_dir / onnx_export.DECODER_FILE, out_dir / onnx_export.DECODER_WITH_PAST_FILE]
        merge_decoders(*pair, out_dir / MERGED_FILE)
        for path in pair:
            path.unlink()
            path.with_name(f"{path.name}.data").unlink(missing_ok=True)
        graphs = [onnx_export.ENCODER_FILE, MERGED_FILE]
    shutil.copyfile(vocab.tokenizer_path, out_dir / "tokenizer.json")
    _write_json(out_dir / "config.json", _hf_config(model, vocab))
    _write_json(out_dir / "generation_config.json", _generation_config(model, vocab))
    _write_json(out_dir / "preprocessor_config.json", _preprocessor_config(model))
    files = graphs + ["config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json"]
    files += sorted(p.name for p in out_dir.glob("*.onnx.data"))  # external weights of graphs over 2 GB
    meta = {
        "format": PACK_FORMAT, "kind": "whisper", "name": name, "precision": precision, "dynamic_frames": True,
        "dims": model.dims.as_dict(), "tokens": vocab.tokens, "languages": vocab.languages,
        "suppress_tokens": list(vocab.suppress_tokens), "begin_suppress_tokens": list(vocab.begin_suppress_tokens),
        "alignment_heads": [list(h) for h in model.alignment_heads], "is_multilingual": vocab.is_multilingual,
        "source": _source_info(source, kind, origin),
        "files": {f: {"sha256": sha256_file(out_dir / f), "bytes": (out_dir / f).stat().st_size} for f in files},
        "export": {"parley": PARLEY_VERSION, "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                   "opset": graph_io.OPSET, "merged_decoder": merged_decoder},
    }
    if precision == "int8":
        meta["int8"] = {"per_channel": int8.per_channel, "weight_type": int8.weight_type,
                        "quantize_logits": int8.quantize_logits, "float_mlp_out": int8.float_mlp_out}
    _write_json(out_dir / "parley.json", meta)
    log.info("pack %s (%s) written to %s in %.1f s", name, precision, out_dir, time.perf_counter() - started)
    return out_dir
