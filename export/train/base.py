"""Where fine-tuning starts and where it ends: the base checkpoint, and the pack written from the result.

``--base`` is a checkpoint the importers read (CTranslate2 folder, OpenAI .pt, Hugging Face folder), a
known model name (``whisper-base``: its CTranslate2 source is fetched as ``parley models build`` does),
or a pack folder (its ``parley.json`` names the source it was built from). A pack written by training
records the ``trained.pt`` it was exported from, so training can continue from it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from export.importers import load_any
from export.pack import build_pack
from export.vocab import WhisperVocab, read_source_vocab
from export.whisper_model import Whisper

log = logging.getLogger(__name__)

TRAINED_CHECKPOINT = "trained.pt"


def resolve_base(base: str | Path) -> Path:
    """The checkpoint path behind a --base argument."""
    path = Path(base).expanduser()
    if path.exists():
        if path.is_dir() and (path / "parley.json").is_file() and not any(
                (path / f).is_file() for f in ("model.bin", "model.safetensors")):
            meta = json.loads((path / "parley.json").read_text())
            origin = Path(str(meta.get("source", {}).get("origin", "")))
            if origin.exists():
                log.info("pack %s was built from %s; training starts there", path, origin)
                return origin
            return resolve_base(meta.get("name", ""))
        return path
    from engine.packs.catalogue import KNOWN_MODELS
    from engine.packs.sources import fetch_ct2_source

    if str(base) in KNOWN_MODELS:
        return fetch_ct2_source(str(base))
    raise FileNotFoundError(f"--base {base}: not a checkpoint, pack folder or known model name "
                            f"(known: {', '.join(KNOWN_MODELS)}); pass a CTranslate2 folder, OpenAI .pt or "
                            "Hugging Face folder")


def load_base(base: str | Path) -> tuple[Whisper, WhisperVocab, Path]:
    source = resolve_base(base)
    model, _ = load_any(source)
    return model.float(), read_source_vocab(source), source


def export_trained(model: Whisper, vocab: WhisperVocab, work_dir: Path, out_dir: Path, precision: str = "int8",
                   name: str = "whisper-tuned", origin: str | None = None) -> Path:
    """Save the trained model as an OpenAI-layout checkpoint (with its tokenizer and token lists beside it)
    in `work_dir`, then build a pack from it with the ordinary exporter."""
    work_dir.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
    for layer, head in model.alignment_heads:
        mask[layer, head] = True
    pt = work_dir / TRAINED_CHECKPOINT
    torch.save({"dims": model.dims.as_dict(), "model_state_dict": model.state_dict(), "alignment_heads": mask}, pt)
    if vocab.tokenizer_path.resolve() != (work_dir / "tokenizer.json").resolve():
        shutil.copyfile(vocab.tokenizer_path, work_dir / "tokenizer.json")
    (work_dir / "config.json").write_text(json.dumps({
        "lang_ids": sorted(vocab.languages.values()), "suppress_ids": list(vocab.suppress_tokens),
        "suppress_ids_begin": list(vocab.begin_suppress_tokens)}, indent=2) + "\n")
    return build_pack(pt, out_dir, precision, name, origin=origin or str(pt))
