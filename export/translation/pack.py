"""Build a text-translation pack (Marian / NLLB-200 / M2M100) from a Hugging Face model folder.

Layout and every field of ``parley.json`` are described in docs/translation.md.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from pathlib import Path

import onnx
import torch

from export import graph_io, quantize
from export.pack import PACK_FORMAT, PARLEY_VERSION, PRECISIONS, sha256_file
from export.translation import graphs
from export.translation.tokenizer import build_tokenizer, language_tokens

log = logging.getLogger(__name__)

_OPUS_NAME = re.compile(r"opus-mt-(?:tc-[a-z]+-)?([a-z]{2,3}(?:_[a-z]+)*)-([a-z]{2,3}(?:_[a-z]+)*)$", re.I)
_GENERATION_KEYS = ("num_beams", "max_length", "length_penalty", "early_stopping", "bad_words_ids",
                    "forced_eos_token_id", "no_repeat_ngram_size", "repetition_penalty", "min_length")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_model(folder: Path):
    """The Hugging Face model in `folder` (config.json + weights), float32, eval mode."""
    from transformers import AutoConfig, M2M100ForConditionalGeneration, MarianMTModel

    config = AutoConfig.from_pretrained(folder)
    classes = {"marian": MarianMTModel, "m2m_100": M2M100ForConditionalGeneration}
    if config.model_type not in classes:
        raise ValueError(f"{folder / 'config.json'}: model_type {config.model_type!r} is not a translation model "
                         "this exporter knows (marian, m2m_100 — which NLLB-200 uses)")
    model = classes[config.model_type].from_pretrained(folder, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


def _m2m100_languages(folder: Path) -> list[str]:
    """M2M100's ``__xx__`` codes in id order, from special_tokens_map.json or tokenizer_config.json."""
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        extra = _read_json(folder / name).get("additional_special_tokens") or []
        codes = [str(t["content"] if isinstance(t, dict) else t) for t in extra]
        codes = [c[2:-2] for c in codes if c.startswith("__") and c.endswith("__")]
        if codes:
            return codes
    return []


def _flavour(folder: Path, model) -> str:
    """marian, nllb or m2m100 (NLLB-200 is an M2M100 model with its own tokenizer and codes)."""
    if graphs.architecture_of(model) == "marian":
        return "marian"
    tokenizer_class = str(_read_json(folder / "tokenizer_config.json").get("tokenizer_class", ""))
    if tokenizer_class.startswith("Nllb"):
        return "nllb"
    if tokenizer_class.startswith("M2M100"):
        return "m2m100"
    tok_json = _read_json(folder / "tokenizer.json")
    added = [t.get("content", "") for t in tok_json.get("added_tokens", [])]
    return "nllb" if any("_" in a and a[:3].isalpha() and a[4:5].isupper() for a in added) else "m2m100"


def _marian_pair(folder: Path, name: str, source_langs: list[str] | None, target_langs: list[str] | None,
                 codes: dict[str, int]) -> tuple[list[str], list[str]]:
    if source_langs and target_langs:
        return source_langs, target_langs
    for candidate in (name, folder.name, str(_read_json(folder / "config.json").get("_name_or_path", ""))):
        m = _OPUS_NAME.search(candidate)
        if m:
            src = source_langs or m.group(1).split("_")
            tgt = target_langs or (sorted(codes) if codes else m.group(2).split("_"))
            return src, tgt
    raise ValueError(f"{folder}: cannot tell this Marian model's languages from its name; pass "
                     "--source-lang and --target-lang (e.g. --source-lang en --target-lang de)")


def describe(folder: Path, model, tokenizer, name: str, source_langs: list[str] | None,
             target_langs: list[str] | None) -> dict:
    """The model part of parley.json: architecture, dims, special tokens, languages, generation defaults."""
    config = model.config
    flavour = _flavour(folder, model)
    found = language_tokens(tokenizer)
    gen = _read_json(folder / "generation_config.json")
    generation = {k: gen.get(k, getattr(config, k, None)) for k in _GENERATION_KEYS}
    generation = {k: v for k, v in generation.items() if v is not None}
    meta = {
        "architecture": flavour,
        "dims": {"d_model": config.d_model, "encoder_layers": config.encoder_layers,
                 "decoder_layers": config.decoder_layers, "encoder_heads": config.encoder_attention_heads,
                 "decoder_heads": config.decoder_attention_heads,
                 "head_dim": config.d_model // config.decoder_attention_heads, "vocab_size": config.vocab_size,
                 "max_positions": config.max_position_embeddings},
        "tokens": {"pad": config.pad_token_id, "eos": config.eos_token_id,
                   "unk": tokenizer.token_to_id("<unk>"),
                   "decoder_start": gen.get("decoder_start_token_id", config.decoder_start_token_id)},
        "generation": generation,
    }
    if flavour == "marian":
        src, tgt = _marian_pair(folder, name, source_langs, target_langs, found["marian"])
        meta.update(languages={"source": src, "target": tgt}, language_tokens=found["marian"],
                    target_forcing="source_prefix" if found["marian"] else "none", source_prefix=False)
    else:
        codes = found[flavour]
        if not codes:
            raise ValueError(f"{folder}: the tokenizer holds no {flavour} language tokens")
        langs = sorted(codes) if source_langs is None else source_langs
        meta.update(languages={"source": langs, "target": target_langs or langs}, language_tokens=codes,
                    target_forcing="forced_bos", source_prefix=True)
    return meta


def _to_fp16(src: Path, dst: Path) -> None:
    """export.quantize.convert_fp16, then without repeated Casts: it puts a Cast after a float32-kept
    initialiser at every use, all named after the initialiser, and the exporter shares equal initialisers
    (e.g. LayerNorm weights still at their init values) between layers: onnxruntime rejects the
    repeated names. The repeats compute the same value; the first (before every use) is kept."""
    quantize.convert_fp16(src, dst)
    model = onnx.load(str(dst))
    seen: set[tuple] = set()
    repeats = []
    for node in model.graph.node:
        key = (node.op_type, tuple(node.input), tuple(node.output), node.attribute.__repr__())
        if key in seen:
            repeats.append(node)
        seen.add(key)
    for node in repeats:
        model.graph.node.remove(node)
    if repeats:
        onnx.save(model, str(dst))


def _file_table(out_dir: Path) -> dict:
    files = sorted(p.name for p in out_dir.iterdir() if p.is_file() and p.name not in ("parley.json", ".verified"))
    return {f: {"sha256": sha256_file(out_dir / f), "bytes": (out_dir / f).stat().st_size} for f in files}


def convert_pack(fp32_pack: Path, out_dir: Path, precision: str,
                 int8: quantize.Int8Options = quantize.Int8Options()) -> Path:
    """An int8 or fp16 copy of an fp32 pack of ours, without exporting again."""
    fp32_pack, out_dir = Path(fp32_pack), Path(out_dir)
    meta = json.loads((fp32_pack / "parley.json").read_text(encoding="utf-8"))
    if (fp32_pack / "decoder_model_merged.onnx").exists():
        raise ValueError(f"{fp32_pack}: a merged-decoder pack; convert the pack built without --merged")
    if meta.get("precision") != "fp32" or precision not in ("int8", "fp16"):
        raise ValueError(f"{fp32_pack}: convert an fp32 pack to int8 or fp16 (it is {meta.get('precision')}, "
                         f"asked for {precision})")
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in fp32_pack.iterdir():
        if f.suffix == ".onnx":
            quantize.to_precision(f, out_dir / f.name, precision, int8, _to_fp16)
        elif f.is_file() and f.name not in ("parley.json", ".verified"):
            shutil.copyfile(f, out_dir / f.name)
    meta.update(precision=precision, files=_file_table(out_dir))
    _write_json(out_dir / "parley.json", meta)
    return out_dir


def build_translation_pack(source: Path, out_dir: Path, precision: str = "fp32", name: str | None = None,
                           source_langs: list[str] | None = None, target_langs: list[str] | None = None,
                           origin: str | None = None,
                           int8: quantize.Int8Options = quantize.Int8Options(), merged: bool = False) -> Path:
    """Export the Hugging Face Marian/NLLB/M2M100 model in `source` into a pack of `precision` at `out_dir`.

    merged=True writes one ``decoder_model_merged.onnx`` (weights stored once) instead of the pair."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    started = time.perf_counter()
    source, out_dir = Path(source), Path(out_dir)
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source / 'config.json'}: not found; pass a Hugging Face model folder "
                                "(config.json, model.safetensors or pytorch_model.bin, tokenizer files)")
    name = name or source.name
    model = load_model(source)
    languages = _m2m100_languages(source) if model.config.model_type == "m2m_100" else []
    tokenizer = build_tokenizer(source, graphs.architecture_of(model), languages)
    meta = describe(source, model, tokenizer, name, source_langs, target_langs)
    if tokenizer.get_vocab_size(with_added_tokens=True) > model.config.vocab_size:
        raise ValueError(f"{source}: the tokenizer has {tokenizer.get_vocab_size(with_added_tokens=True)} tokens, "
                         f"more than the model's vocabulary of {model.config.vocab_size}")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [graphs.ENCODER_FILE, graphs.DECODER_FILE, graphs.DECODER_WITH_PAST_FILE]
    quantize.export_at_precision(lambda folder: graphs.export_all(model, folder), names, out_dir, precision, int8,
                                 _to_fp16)
    if merged:
        from export.merge_decoders import merge_decoders  # the one merger, Whisper's and these packs'

        merge_decoders(out_dir / graphs.DECODER_FILE, out_dir / graphs.DECODER_WITH_PAST_FILE,
                       out_dir / "decoder_model_merged.onnx")
        (out_dir / graphs.DECODER_FILE).unlink()
        (out_dir / graphs.DECODER_WITH_PAST_FILE).unlink()
    tokenizer.save(str(out_dir / "tokenizer.json"))
    config = json.loads(model.config.to_json_string())
    _write_json(out_dir / "config.json", config)
    gen = _read_json(source / "generation_config.json") or model.generation_config.to_dict()
    _write_json(out_dir / "generation_config.json", gen)
    for extra in ("tokenizer_config.json", "special_tokens_map.json", "source.spm", "target.spm", "vocab.json",
                  "sentencepiece.bpe.model"):
        if (source / extra).is_file():  # the originals, for tools that rebuild the slow tokenizer
            shutil.copyfile(source / extra, out_dir / extra)
    meta = {
        "format": PACK_FORMAT, "kind": "translation", "name": name, "precision": precision, **meta,
        "source": {"kind": "huggingface", "origin": origin or str(source)},
        "files": _file_table(out_dir),
        "export": {"parley": PARLEY_VERSION, "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                   "opset": graph_io.OPSET},
    }
    _write_json(out_dir / "parley.json", meta)
    log.info("translation pack %s (%s) written to %s in %.1f s", name, precision, out_dir,
             time.perf_counter() - started)
    return out_dir
