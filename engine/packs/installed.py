"""What is installed in the packs folder: list and describe the packs (and, on request, check their files), name
the folders that are not packs, and resolve a model argument (a folder, a known name with or without a
precision suffix, or an imported pack's folder name) to a pack folder."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from engine.errors import PackError
from engine.packs.catalogue import KNOWN_MODELS, PRECISIONS, default_precision, split_model_name
from engine.packs.files import ORIGIN_FILE
from engine.packs.paths import _STAGING_SUFFIXES, RESERVED, pack_dir, packs_root

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InstalledPack:
    name: str
    precision: str
    path: Path
    size_bytes: int
    source: str
    kind: str
    problem: str | None = None  # why the pack cannot be used (a missing, truncated or altered file), when checked




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


def check_pack(pack: InstalledPack) -> str | None:
    """Why an installed pack cannot be used (its first missing, wrongly sized or altered file, named), or None.
    Hashes each file once per version (the pack's ``.verified`` stamp), as loading it would."""
    from engine.packs.files import check_files, graph_files, verify_checksums
    from engine.packs.whisper_pack import WhisperPack

    try:
        if pack.kind == "whisper":
            WhisperPack.load(pack.path, verify=True)
        else:  # a text pack in the packs root: its files, as parley.json lists them
            meta = json.loads((pack.path / "parley.json").read_text(encoding="utf-8"))
            sums = {str(k): (v.get("sha256"), v.get("bytes")) for k, v in meta.get("files", {}).items()}
            hint = "install it again"
            check_files(pack.path, graph_files(pack.path), sums, f"{pack.kind} pack", hint)
            verify_checksums(pack.path, sums, f"{pack.kind} pack", hint)
    except PackError as e:
        return str(e)
    except (OSError, ValueError, AttributeError) as e:
        return f"{pack.path / 'parley.json'}: unreadable pack description ({e})"
    return None


def installed_packs(check: bool = False) -> list[InstalledPack]:
    """The packs in the packs folder; with check=True each carries its ``problem`` (see :func:`check_pack`)."""
    root = packs_root()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if is_pack_dir(child) and not child.name.startswith(".") and not child.name.endswith(".building"):
            try:
                pack = describe_pack(child)
            except PackError as e:
                if check:
                    found.append(InstalledPack(child.name, "?", child, _dir_size(child), "?", "?", problem=str(e)))
                else:
                    log.warning("%s", e)
                continue
            found.append(dataclasses.replace(pack, problem=check_pack(pack)) if check else pack)
    return found


_FOREIGN = (  # (file pattern, what a folder holding it is, what to do)
    ("model.bin", "a CTranslate2 (faster-whisper) model", "convert it with `parley models import {path}`"),
    ("*.pt", "a PyTorch checkpoint", "convert an OpenAI Whisper one with `parley models import {path}/<file>.pt`"),
    ("*.safetensors", "a Hugging Face checkpoint", "convert it with `parley models import {path}`"),
    ("pytorch_model.bin", "a Hugging Face checkpoint", "convert it with `parley models import {path}`"),
    ("ggml*.bin", "a whisper.cpp model", "Parley does not run it; download an ONNX pack (`parley models download`)"),
    ("*.gguf", "a GGUF model", "Parley does not run it; download an ONNX pack (`parley models download`)"),
)


def foreign_reason(folder: Path) -> str:
    """What a folder in the packs folder that is not a pack seems to hold, and what to do with it."""
    for pattern, what, todo in _FOREIGN:
        if next(folder.glob(pattern), None) is not None:
            return f"{folder}: not a Parley model pack: it holds {what}; {todo.format(path=folder)}"
    return (f"{folder}: not a Parley model pack (no encoder_model.onnx, at the top or in onnx/); remove it, or "
            "install a pack with `parley models build|import|download`")


def foreign_folders() -> list[tuple[Path, str]]:
    """Folders in the packs folder that are neither packs nor Parley's own (translation/, stages, hidden)."""
    root = packs_root()
    if not root.is_dir():
        return []
    return [(child, foreign_reason(child)) for child in sorted(root.iterdir())
            if child.is_dir() and not is_pack_dir(child) and child.name not in RESERVED
            and not child.name.startswith(".") and not child.name.endswith(_STAGING_SUFFIXES)]


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
    if Path(model).name == model and (packs_root() / model).is_dir() and model not in KNOWN_MODELS \
            and model not in RESERVED:
        raise PackError(foreign_reason(packs_root() / model))
    if name not in KNOWN_MODELS:
        have = ", ".join(p.path.name for p in installed_packs()) or "none"
        raise PackError(
            f"no model pack {model!r}: not a folder and not a known model "
            f"(known: {', '.join(KNOWN_MODELS)}; installed: {have})"
        )
    raise PackError(
        f"model pack {name}-{prec} is not installed at {path}; build it with `parley models build {name} --precision {prec}`"
    )
