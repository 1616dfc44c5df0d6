"""Tiny Bergamot models written in Marian's own formats (binary model, shortlist), for the importer's and the
runtime's tests, and where the real packs are (built by setup.sh: `parley translate --build en-pt pt-en`)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from needs import require_or_skip

INTGEMM8, FLOAT32, INT8 = 0x4101, 0x404, 0x101
SHORTLIST_MAGIC = 0xF11A48D5013417F5

TINY_YML = """\
type: transformer
dec-cell: ssru
dec-depth: 1
dim-emb: 16
dim-vocabs:
  - 40
  - 40
enc-depth: 2
tied-embeddings-all: true
transformer-decoder-autoreg: rnn
transformer-dim-ffn: 32
transformer-ffn-activation: relu
transformer-ffn-depth: 2
transformer-heads: 2
transformer-postprocess: dan
transformer-postprocess-emb: d
transformer-postprocess-top: ""
transformer-preprocess: ""
version: tiny test model
"""
PIECES = ["</s>", "<unk>", "▁"] + [f"▁{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list("abcdefghijk")


def _pad(data: bytes) -> bytes:
    return data + b"\0" * ((-len(data)) % 256)


def write_marian(path: Path, items: dict[str, tuple[int, np.ndarray]], yml: str | None = TINY_YML) -> Path:
    """A Marian binary model: items are (type, array); intgemm8 arrays are the float weights, quantised here
    (per-tensor, 127 / max|w|) and, except the token table, stored transposed as intgemm expects."""
    entries = []
    for name, (kind, value) in items.items():
        if kind == INTGEMM8:
            mult = np.float32(127.0 / max(float(np.abs(value).max()), 1e-8))
            q = np.clip(np.rint(value * mult), -127, 127).astype(np.int8)
            stored = q if name == "Wemb" else np.ascontiguousarray(q.T)
            data = stored.tobytes() + struct.pack("<f", mult)
        else:
            data = value.astype(np.float32 if kind == FLOAT32 else np.int8).tobytes()
        entries.append((name, kind, value.shape, data))
    if yml is not None:
        text = yml.encode()
        entries.append(("special:model.yml", INT8, (len(text),), text))
    header = struct.pack("<2Q", 1, len(entries))
    header += b"".join(struct.pack("<4Q", len(n) + 1, k, len(s), len(_pad(d))) for n, k, s, d in entries)
    header += b"".join(n.encode() + b"\0" for n, *_ in entries)
    header += b"".join(struct.pack(f"<{len(s)}i", *s) for _, _, s, _ in entries)
    pad = (-(len(header) + 8)) % 256
    body = b"".join(_pad(d) for *_, d in entries)
    path.write_bytes(header + struct.pack("<Q", pad) + b"\0" * pad + body)
    return path


def tiny_items(seed: int = 0, d: int = 16, ffn: int = 32, vocab: int = 40, enc: int = 2, dec: int = 1
               ) -> dict[str, tuple[int, np.ndarray]]:
    """Random weights for TINY_YML's architecture, named as Marian names them."""
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> tuple[int, np.ndarray]:
        return INTGEMM8, rng.normal(0, 0.3, shape).astype(np.float32)

    def b(n: int) -> tuple[int, np.ndarray]:
        return FLOAT32, rng.normal(0, 0.1, (1, n)).astype(np.float32)

    def ln(prefix: str) -> dict:
        return {f"{prefix}_ln_scale": (FLOAT32, 1 + rng.normal(0, 0.1, (1, d)).astype(np.float32)),
                f"{prefix}_ln_bias": b(d)}

    def attn(prefix: str) -> dict:
        out = {}
        for x in "qkvo":
            out[f"{prefix}_W{x}"], out[f"{prefix}_b{x}"] = w(d, d), b(d)
        return {**out, **ln(f"{prefix}_Wo")}

    def ffn_block(prefix: str) -> dict:
        return {f"{prefix}_ffn_W1": w(d, ffn), f"{prefix}_ffn_b1": b(ffn), f"{prefix}_ffn_W2": w(ffn, d),
                f"{prefix}_ffn_b2": b(d), **ln(f"{prefix}_ffn_ffn")}

    items = {"Wemb": w(vocab, d), "decoder_ff_logit_out_b": b(vocab)}
    for i in range(1, enc + 1):
        items.update(attn(f"encoder_l{i}_self"))
        items.update(ffn_block(f"encoder_l{i}"))
    for i in range(1, dec + 1):
        items.update({f"decoder_l{i}_rnn_W": w(d, d), f"decoder_l{i}_rnn_Wf": w(d, d), f"decoder_l{i}_rnn_bf": b(d),
                      **ln(f"decoder_l{i}_rnn_ffn")})
        items.update(attn(f"decoder_l{i}_context"))
        items.update(ffn_block(f"decoder_l{i}"))
    items["decoder_l1_context_Wq_QuantMultA"] = (FLOAT32, np.array([[3.5]], np.float32))
    return items


def write_shortlist(path: Path, lists: list[list[int]], frequent: int = 4, best: int = 3) -> Path:
    """Marian's binary shortlist: source id s → lists[s] (target ids)."""
    offsets = np.cumsum([0] + [len(x) for x in lists]).astype(np.uint64)
    flat = np.array([t for x in lists for t in x], np.uint32)
    header = np.array([SHORTLIST_MAGIC, 0, frequent, best, len(offsets), len(flat)], np.uint64)
    path.write_bytes(header.tobytes() + offsets.tobytes() + flat.tobytes())
    return path


def write_tokenizer(path: Path) -> Path:
    """A Unigram tokenizer.json over PIECES, shaped like the ones Bergamot folders carry."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.Unigram([(p, -1.0 - i / 10) for i, p in enumerate(PIECES)], unk_id=1))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.save(str(path))
    return path


def tiny_bergamot_folder(folder: Path, seed: int = 0) -> Path:
    """model.enpt.intgemm.alphas.bin + tokenizer.json + lex.50.50.enpt.s2t.bin, as a Bergamot folder has."""
    folder.mkdir(parents=True, exist_ok=True)
    write_marian(folder / "model.enpt.intgemm.alphas.bin", tiny_items(seed))
    write_tokenizer(folder / "tokenizer.json")
    rng = np.random.default_rng(seed + 1)
    write_shortlist(folder / "lex.50.50.enpt.s2t.bin",
                    [sorted(rng.choice(np.arange(4, 40), 3, replace=False).tolist()) for _ in range(40)])
    return folder


def installed_pack(source: str, target: str, precision: str = "fp32") -> Path:
    """The real pack setup.sh builds; skips locally (fails under PARLEY_REQUIRE_MODELS=1) when missing."""
    from engine.translate.bergamot_packs import pack_name
    from engine.translate.registry import default_root

    path = default_root() / pack_name(source, target, precision)
    if not (path / "parley.json").is_file():
        require_or_skip(f"{path}: the {source}→{target} Bergamot pack is not installed "
                        f"(./setup.sh builds it: parley translate --build {source}-{target})")
    return path
