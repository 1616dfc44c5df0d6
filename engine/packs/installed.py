"""What is installed in the packs folder: list and describe the packs, and resolve a model argument (a folder,
a known name with or without a precision suffix, or an imported pack's folder name) to a pack folder."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from engine.errors import PackError
from engine.packs.catalogue import KNOWN_MODELS, PRECISIONS, default_precision, split_model_name
from engine.packs.paths import pack_dir, packs_root

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InstalledPack:
    name: str
    precision: str
    path: Path
    size_bytes: int
    source: str
    kind: str


ORIGIN_FILE = ".parley-origin.json"  # where a pack without parley.json came from (import, download)


def is_pack_dir(path: Path) -> bool:
    """A folder holding a Whisper or translation pack's encoder, at the top or in onnx/ (hub layout)."""
    return path.is_dir() and ((path / "encoder_model.onnx").is_file() or (path / "onnx" / "encoder_model.onnx").is_file())


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def describe_pack(path: Path) -> InstalledPack:
    meta_path = path / "parley.json"
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as e:
            raise PackError(f"{meta_path}: unreadable pack description ({e}); rebuild the pack") from e
        source = meta.get("source", {})
        return InstalledPack(
            name=meta.get("name", path.name),
            precision=meta.get("precision", "?"),
            path=path,
            size_bytes=_dir_size(path),
            source=source.get("origin") or source.get("kind", "?") if isinstance(source, dict) else str(source),
            kind=meta.get("kind", "whisper"),
        )
    # A hub pack in the Optimum layout, copied in as it is; the import or download noted its origin.
    try:
        origin = json.loads((path / ORIGIN_FILE).read_text())
    except (OSError, ValueError):
        origin = {}
    return InstalledPack(path.name, str(origin.get("precision", "?")), path, _dir_size(path),
                         str(origin.get("origin", "imported (no parley.json)")), "whisper")


def installed_packs() -> list[InstalledPack]:
    root = packs_root()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if is_pack_dir(child) and not child.name.startswith(".") and not child.name.endswith(".building"):
            try:
                found.append(describe_pack(child))
            except PackError as e:
                log.warning("%s", e)
    return found


def resolve_pack(model: str, precision: str | None = None, device: str = "cpu") -> Path:
    """A model argument is a pack folder, or a known name (optionally with a precision suffix)."""
    as_path = Path(model).expanduser()
    if as_path.is_dir():
        return as_path
    name, asked = split_model_name(model, precision)
    prec = asked or default_precision(device)
    if prec not in PRECISIONS:
        raise PackError(f"unknown precision {prec!r}; choose one of {', '.join(PRECISIONS)}")
    path = pack_dir(name, prec)
    if is_pack_dir(path):
        return path
    if asked is None and Path(model).name == model and is_pack_dir(packs_root() / model):
        return packs_root() / model  # an imported or downloaded pack, by its folder name
    if name not in KNOWN_MODELS:
        have = ", ".join(p.path.name for p in installed_packs()) or "none"
        raise PackError(
            f"no model pack {model!r}: not a folder and not a known model "
            f"(known: {', '.join(KNOWN_MODELS)}; installed: {have})"
        )
    raise PackError(
        f"model pack {name}-{prec} is not installed at {path}; build it with `parley models build {name} --precision {prec}`"
    )
