"""Where Parley keeps its files (the cache root, the packs, the downloaded sources), and where a pack may be
installed, replaced or deleted: one folder directly inside a packs root, never the root itself, nothing
outside it, and none of the names Parley keeps for itself.

Every install (import, download, build of a translation pack) goes through :func:`install_staged`: the pack
is made in a hidden folder beside its destination, checked, and only then swapped in, so a failure or a
crash leaves the previous pack (or nothing) — never half a pack, and never a wiped packs folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.errors import PackError

log = logging.getLogger(__name__)


def parley_home() -> Path:
    """Root of Parley's cache: $PARLEY_HOME, else the platform's user cache directory."""
    env = os.environ.get("PARLEY_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("parley"))


def packs_root() -> Path:
    return parley_home() / "packs"


def sources_root() -> Path:
    return parley_home() / "sources"


def pack_dir(name: str, precision: str) -> Path:
    return packs_root() / f"{name}-{precision}"


# Names inside the packs root that are not packs: the translation packs' folder, the voice activity model,
# and the user-cache folders beside the packs (kept out so that a root set to the cache itself stays safe).
RESERVED = {
    "translation": "the folder of the translation packs",
    "silero_vad.onnx": "the voice activity model",
    "sources": "the downloaded model sources",
    "recordings": "the live sessions' recordings",
    "logs": "Parley's log files",
    "packs": "the packs folder",
}
_STAGING_SUFFIXES = (".building", ".part", ".tmp", ".old")
_NAME_RULE = "use letters, digits, '-', '_' and '.' (not first), at most 128 characters"


def check_pack_name(name: str) -> str:
    """``name`` (stripped) if it can name a pack folder; PackError saying why not otherwise."""
    name = name.strip()
    why = None
    if not name:
        why = "it is empty"
    elif name in (".", ".."):
        why = "it would leave the packs folder"
    elif any(sep in name for sep in ("/", "\\", os.sep, os.altsep or "/")) or ":" in name or "\0" in name:
        why = "it holds a path separator, ':' or NUL: a pack is named, not placed"
    elif name.startswith("."):
        why = "names starting with '.' are Parley's staging folders"
    elif name.lower().endswith(_STAGING_SUFFIXES):
        why = f"names ending in {', '.join(_STAGING_SUFFIXES)} are Parley's staging folders"
    elif name.lower() in RESERVED:
        why = f"{name} is {RESERVED[name.lower()]}"
    elif len(name) > 128:
        why = "it is too long"
    if why:
        raise PackError(f"{name!r} cannot name a pack: {why}; {_NAME_RULE}")
    return name


def pack_destination(root: Path, name: str) -> Path:
    """``root / name`` after checking the name, and that the result really is a folder directly in ``root``
    (not a link leading elsewhere)."""
    name = check_pack_name(name)
    dest = Path(root) / name
    if dest.is_symlink():
        raise PackError(f"{dest} is a link, not a pack folder; remove it yourself if it should go")
    if dest.resolve().parent != Path(root).resolve():
        raise PackError(f"{name!r} cannot name a pack: it would leave the packs folder {root}")
    return dest


def installed_pack_folder(path: Path, root: Path, is_pack: Callable[[Path], bool]) -> Path:
    """``path`` if it is an installed pack that may be deleted: a pack folder directly inside ``root`` with
    a valid name; PackError naming what it is otherwise (the root itself, something outside, a reserved
    or staging folder, a folder inside a pack)."""
    root_real = Path(root).resolve()
    real = Path(path).resolve()
    if real == root_real or root_real.is_relative_to(real):
        raise PackError(f"{path} is the packs folder itself (or holds it); name one pack to delete "
                        "(see `parley models list`)")
    if not real.is_relative_to(root_real):
        raise PackError(f"{path} is not in Parley's pack folder {root}; not deleting it")
    if real.parent != root_real:
        raise PackError(f"{path} is inside {real.relative_to(root_real).parts[0]}, not a pack folder of its own; "
                        "not deleting it")
    check_pack_name(real.name)
    if Path(path).is_symlink() or not is_pack(real):
        raise PackError(f"{path} is not an installed pack; not deleting it")
    return real


def install_staged(root: Path, name: str, make: Callable[[Path], Path | None], force: bool = False,
                   what: str = "pack") -> Path:
    """Make a pack with ``make(stage)`` in a hidden folder of ``root`` and swap it in as ``root/name``.

    ``make`` gets an empty hidden folder, builds and checks the pack in it (or in a folder under it, which it
    returns); if it raises, the stage is removed and nothing else changes. An existing pack of that name is
    kept unless ``force``; with ``force`` it is moved aside and deleted only once the new one is in place."""
    dest = pack_destination(root, name)
    if dest.exists() and not force:
        raise PackError(f"a {what} named {dest.name} is already installed at {dest}; delete it first, "
                        "choose another name or pass --force")
    Path(root).mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".install-{dest.name}-", dir=root))
    aside = None
    try:
        built = make(stage) or stage
        if dest.exists():
            aside = Path(tempfile.mkdtemp(prefix=f".old-{dest.name}-", dir=root))
            dest.replace(aside / "pack")
        Path(built).replace(dest)
    except BaseException:
        if aside is not None and (aside / "pack").exists() and not dest.exists():
            (aside / "pack").replace(dest)  # the previous pack goes back where it was
        if aside is not None and not (aside / "pack").exists():
            shutil.rmtree(aside, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # (gone already when the stage itself became the pack)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    log.info("installed %s", dest)
    return dest
