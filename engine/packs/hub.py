"""Download a model pack (translation or Whisper) from the Hugging Face hub, or a mirror laid out like it, with urllib.

The hub serves a repository's file list at ``{base}/api/models/{repo}/tree/{revision}?recursive=true``
(each LFS file with its sha256 and size) and each file at ``{base}/{repo}/resolve/{revision}/{path}``.
A pack is the Optimum layout: json files and ``tokenizer.json`` at the top, the graphs at the top or
in ``onnx/``; ``variant`` picks e.g. ``encoder_model_quantized.onnx`` and stores it under the plain
name. Each file is written to ``<name>.part``, checked (size, sha256 where the listing or parley.json
gives one) and only then renamed, so an interrupted download never looks complete. Files already
present with the right size and hash are kept. A ``cancel`` event, checked between blocks, stops a
download (CancelledError) and removes the partial file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from engine.errors import CancelledError, PackError
from engine.packs.files import sha256_file

log = logging.getLogger(__name__)

HUB_URL = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
TOP_FILES = ("config.json", "generation_config.json", "tokenizer.json", "parley.json", "tokenizer_config.json",
             "preprocessor_config.json")
GRAPHS = ("encoder_model", "decoder_model", "decoder_with_past_model", "decoder_model_merged")
Progress = Callable[[str, int, int | None], None]  # (file, bytes done, bytes total or None)


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    path: str  # in the repository
    size: int | None
    sha256: str | None
    local: str  # where it goes in the pack folder


def _open(url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "parley"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) or file URLs by design
    except urllib.error.HTTPError as e:
        raise PackError(f"{url}: the hub answered {e.code} {e.reason}; check the repository name and "
                        "revision") from e
    except (urllib.error.URLError, OSError) as e:
        raise PackError(f"{url}: download failed ({getattr(e, 'reason', e)}); check the network connection") from e


def list_repo(repo: str, revision: str = "main", base_url: str = HUB_URL, timeout: float = 30.0) -> list[dict]:
    url = f"{base_url.rstrip('/')}/api/models/{repo}/tree/{urllib.parse.quote(revision)}?recursive=true"
    with _open(url, timeout) as response:
        try:
            entries = json.loads(response.read().decode("utf-8"))
        except ValueError as e:
            raise PackError(f"{url}: not a file listing ({e})") from e
    return [e for e in entries if e.get("type") == "file"]


def select_files(entries: list[dict], variant: str = "") -> list[RemoteFile]:
    """The pack's files among a repository listing: top-level json/tokenizer, graphs at the top or in onnx/."""
    by_path = {e["path"]: e for e in entries}
    suffix = f"_{variant}" if variant else ""
    chosen: list[RemoteFile] = []
    for name in TOP_FILES:
        if name in by_path:
            chosen.append(_remote(by_path[name], name))
    separate = all(any(f"{d}{g}{suffix}.onnx" in by_path for d in ("", "onnx/"))
                   for g in ("decoder_model", "decoder_with_past_model"))
    for graph in GRAPHS:
        if graph == "decoder_model_merged" and separate:
            continue  # the same weights again: the runtime uses the separate pair when it has it
        for folder in ("", "onnx/"):
            path = f"{folder}{graph}{suffix}.onnx"
            if path in by_path:
                chosen.append(_remote(by_path[path], f"{folder}{graph}.onnx"))
                data = f"{path}_data" if f"{path}_data" in by_path else f"{path}.data"
                if data in by_path:  # external weights of graphs over 2 GB
                    chosen.append(_remote(by_path[data], f"{folder}{graph}.onnx{data[len(path):]}"))
                break
    names = {Path(f.local).name for f in chosen}
    if "encoder_model.onnx" not in names or not ({"decoder_model.onnx", "decoder_with_past_model.onnx"} <= names
                                                 or "decoder_model_merged.onnx" in names):
        graphs = sorted(p for p in by_path if p.endswith(".onnx"))
        raise PackError(f"the repository has no complete encoder/decoder set{' for variant ' + variant if variant else ''}"
                        f" (graphs: {', '.join(graphs) or 'none'}); pick another variant or repository")
    if "tokenizer.json" not in names or "config.json" not in names:
        raise PackError("the repository lacks config.json or tokenizer.json; it is not a model pack in the "
                        "Optimum ONNX layout")
    return chosen


def _remote(entry: dict, local: str) -> RemoteFile:
    lfs = entry.get("lfs") or {}
    size = lfs.get("size", entry.get("size"))
    return RemoteFile(entry["path"], None if size is None else int(size), lfs.get("oid"), local)


def _fetch(url: str, dest: Path, file: RemoteFile, progress: Progress | None, timeout: float,
           cancel: threading.Event | None = None) -> None:
    part = dest.with_name(dest.name + ".part")
    digest, done = hashlib.sha256(), 0
    with _open(url, timeout) as response, open(part, "wb") as out:
        total = file.size or int(response.headers.get("Content-Length") or 0) or None
        while block := response.read(1 << 20):
            if cancel is not None and cancel.is_set():
                break
            out.write(block)
            digest.update(block)
            done += len(block)
            if progress:
                progress(file.local, done, total)
    if cancel is not None and cancel.is_set():
        part.unlink(missing_ok=True)
        raise CancelledError(f"download of {file.path} cancelled")
    if file.size is not None and done != file.size:
        part.unlink(missing_ok=True)
        raise PackError(f"{url}: got {done} bytes where the hub lists {file.size}; the download was cut off, try again")
    if file.sha256 and digest.hexdigest() != file.sha256:
        part.unlink(missing_ok=True)
        raise PackError(f"{url}: sha256 {digest.hexdigest()[:12]}… differs from the hub's {file.sha256[:12]}…; "
                        "the file is corrupt, try again")
    part.replace(dest)


def download_pack(repo: str, dest: str | Path, revision: str = "main", variant: str = "", base_url: str = HUB_URL,
                  progress: Progress | None = None, timeout: float = 60.0,
                  cancel: threading.Event | None = None, files: list[RemoteFile] | None = None) -> Path:
    """Download the pack in `repo` into `dest` (created) and return `dest`.

    Checks sizes and sha256 from the hub's listing, and from the pack's own parley.json when it has one.
    Raises PackError naming the URL that failed and what to do; CancelledError once `cancel` is set
    (the file being fetched is removed, finished ones stay in `dest`).
    """
    dest = Path(dest)
    if files is None:  # a caller that listed the repository already (to size its progress) passes them
        files = select_files(list_repo(repo, revision, base_url, timeout), variant)
    base = f"{base_url.rstrip('/')}/{repo}/resolve/{urllib.parse.quote(revision)}/"
    meta = [f for f in files if f.local == "parley.json" and not variant]
    for file in meta:  # first: its checksums then vouch for the files the listing gives no hash for
        _get(base, dest, file, progress, timeout, cancel)
        files = _with_pack_checksums(files, dest / file.local)
    for file in files:
        if file not in meta:
            _get(base, dest, file, progress, timeout, cancel)
    log.info("pack %s downloaded to %s", repo, dest)
    return dest


def _get(base: str, dest: Path, file: RemoteFile, progress: Progress | None, timeout: float,
         cancel: threading.Event | None = None) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError(f"download of {file.path} cancelled")
    target = dest / file.local
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file() and file.sha256 and target.stat().st_size == file.size and sha256_file(target) == file.sha256:
        log.info("%s: already downloaded", target)
        return
    log.info("downloading %s (%s bytes)", file.path, file.size if file.size is not None else "?")
    _fetch(base + urllib.parse.quote(file.path), target, file, progress, timeout, cancel)


def _with_pack_checksums(files: list[RemoteFile], meta_path: Path) -> list[RemoteFile]:
    try:
        listed = json.loads(meta_path.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError) as e:
        raise PackError(f"{meta_path}: unreadable ({e}); the repository's parley.json is corrupt") from e
    out = []
    for f in files:
        meta = listed.get(Path(f.local).name) or listed.get(f.local) or {}
        out.append(dataclasses.replace(f, sha256=f.sha256 or meta.get("sha256"),
                                       size=f.size if f.size is not None else meta.get("bytes")))
    return out
