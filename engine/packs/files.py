"""The files of an encoder–decoder pack in the Optimum ONNX layout, shared by Whisper and text packs: their
names, where the graphs sit (at the top or in ``onnx/``), one sha256 helper, the check run on every load
(graphs and tokenizer present, each listed file at its listed size), and the sha256 check run before a pack's
graphs are opened, remembered in a ``.verified`` stamp keyed by each file's mtime and size so that a pack is
hashed once, not on every start; and the one loader of a pack's tokenizer.json."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from tokenizers import Tokenizer

from engine.errors import PackError

ENCODER = "encoder_model.onnx"
DECODER = "decoder_model.onnx"
DECODER_WITH_PAST = "decoder_with_past_model.onnx"
DECODER_MERGED = "decoder_model_merged.onnx"
TOKENIZER = "tokenizer.json"
STAMP = ".verified"
ORIGIN_FILE = ".parley-origin.json"  # where a pack without parley.json came from (import, download), its files

log = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def load_tokenizer(path: Path, hint: str = "rebuild the pack with `parley models build <name>`") -> Tokenizer:
    """A pack's tokenizer.json in Hugging Face ``tokenizers``; PackError naming the file, then ``hint``, when it
    cannot be read (the Whisper tokenizer, the text packs' and a pack's install check all load it here)."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # tokenizers raises a bare Exception for unreadable json
        raise PackError(f"{path}: unreadable tokenizer ({e}); {hint}") from e


def onnx_folder(path: Path) -> Path:
    """Where a pack's graphs are: hub repos keep them in onnx/ (the json files at the top), ours at the top."""
    return path / "onnx" if not (path / ENCODER).exists() and (path / "onnx" / ENCODER).exists() else path


def graph_files(path: Path) -> dict[str, Path]:
    """Role (encoder, decoder, decoder_with_past, decoder_merged, tokenizer) → file of the pack at `path`."""
    onnx_dir = onnx_folder(path)
    return {"encoder": onnx_dir / ENCODER, "decoder": onnx_dir / DECODER,
            "decoder_with_past": onnx_dir / DECODER_WITH_PAST, "decoder_merged": onnx_dir / DECODER_MERGED,
            "tokenizer": path / TOKENIZER}


def check_files(path: Path, files: dict[str, Path], checksums: dict[str, tuple[str | None, int | None]],
                what: str, hint: str) -> None:
    """PackError naming the first missing or wrongly sized file of the `what` ("model pack", "translation pack")
    at `path`, ending with `hint` (how to rebuild it); an encoder, a tokenizer and either the merged decoder or
    both split decoders must be there."""
    for role in ("encoder", "tokenizer"):
        if not files[role].is_file():
            raise PackError(f"{files[role]}: missing from the {what}; {hint}")
    if not (files["decoder_merged"].is_file() or (files["decoder"].is_file() and files["decoder_with_past"].is_file())):
        missing = files["decoder"] if not files["decoder"].is_file() else files["decoder_with_past"]
        raise PackError(f"{missing}: missing from the {what} (and no {DECODER_MERGED}); {hint}")
    for name, (_, size) in checksums.items():
        file = path / name
        if not file.is_file():
            raise PackError(f"{file}: missing from the {what}; {hint}")
        if size is not None and file.stat().st_size != size:
            raise PackError(f"{file}: {file.stat().st_size} bytes where the pack lists {size}: the file is "
                            f"corrupt or incomplete; {hint}")


def write_origin(folder: Path, origin: str, precision: str) -> None:
    """For a pack without parley.json (a hub export, imported or downloaded): where it came from and each of its
    files' size and sha256 as installed, so a file damaged later is named on load as in Parley's own packs."""
    files = {str(f.relative_to(folder)): {"sha256": sha256_file(f), "bytes": f.stat().st_size}
             for f in sorted(folder.rglob("*")) if f.is_file() and f.suffix in (".onnx", ".onnx_data", ".json", ".data", ".spm")
             and f.name != ORIGIN_FILE}
    (folder / ORIGIN_FILE).write_text(json.dumps({"origin": origin, "precision": precision, "files": files},
                                                 indent=1) + "\n")


def origin_checksums(folder: Path) -> dict[str, tuple[str | None, int | None]]:
    """File name → (sha256, bytes) as :func:`write_origin` recorded them; empty when it did not."""
    try:
        listed = json.loads((folder / ORIGIN_FILE).read_text(encoding="utf-8")).get("files", {})
        return {str(k): (v.get("sha256"), v.get("bytes")) for k, v in listed.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def verify_checksums(path: Path, checksums: dict[str, tuple[str | None, int | None]], what: str, hint: str) -> None:
    """PackError naming the first file of the `what` at `path` whose sha256 differs from the pack's listed one
    (same size, other bytes: a damaged copy, a disk error, an edited file), ending with `hint`. Files already
    hashed at their current mtime and size are skipped (``.verified``)."""
    stamp_path = path / STAMP
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamp = {}
    changed = False
    for name, (sha, _) in checksums.items():
        if not sha:
            continue
        file = path / name
        st = file.stat()
        key = [st.st_mtime_ns, st.st_size, sha]
        if stamp.get(name) == key:
            continue
        digest = sha256_file(file)
        if digest != sha:
            raise PackError(f"{file}: sha256 {digest[:12]}… does not match the {what}'s {sha[:12]}…: the file is "
                            f"corrupt; {hint}")
        stamp[name] = key
        changed = True
    if changed:
        try:
            stamp_path.write_text(json.dumps(stamp))
        except OSError as e:  # a read-only pack folder is fine, it just gets hashed again next time
            log.debug("cannot write %s: %s", stamp_path, e)
