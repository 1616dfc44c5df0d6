"""A user's corrections become training data, and training data becomes a better pack.

The desktop app lets the user fix a transcript line by line. Each corrected line, with the audio it
was heard from (the opened file, or the recording of a live session), is saved as a clip: a 16 kHz
wav and a same-named .txt, the layout ``python -m export train --data DIR`` reads. "Improve
recognition" then runs that fine-tune in its own process (torch stays out of the app) and the pack it
writes is installed beside the others.

No Qt and no torch here: the app, the CLI and the tests share it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import glob
import hashlib
import json
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.audio.decode import SAMPLE_RATE, iter_audio
from engine.packs.installed import is_pack_dir
from engine.packs.paths import packs_root, parley_home

PAD_S = 0.25  # audio kept before and after a corrected line (word edges are rarely exact)
MAX_CLIP_S = 30.0  # one Whisper window: longer lines are not saved as clips
MIN_CLIP_S = 0.3
# Measured with bench/adaptation.py (docs/training.md): decoder only, 5 epochs, lr 5e-5, and L_reg Fisher-weighted on
# general English (alpha 0.75) learned the new terms and left general English WER unchanged (+0.0 points, where
# the plain L2 cost +1.6 and no regulariser +8.7). `python -m export learn` runs that recipe.
DEFAULT_EPOCHS = 5
DEFAULT_LR = 5e-5
MIN_CLIPS = 4  # fewer, and there is nothing to hold out to check the result
FISHER_ALPHA = 0.75
ANCHORS_PER_SAVE = 20  # uncorrected lines saved with each batch of corrections, spread over the transcript


@dataclasses.dataclass(frozen=True)
class Correction:
    """One line as the user fixed it: `text` is right for audio[start_s:end_s] of `audio`."""

    audio: Path
    start_s: float
    end_s: float
    text: str
    heard: str = ""  # what the recogniser wrote


@dataclasses.dataclass
class SaveReport:
    saved: list[Path] = dataclasses.field(default_factory=list)  # the .wav files written
    saved_indices: list[int] = dataclasses.field(default_factory=list)  # which corrections they are
    skipped: list[str] = dataclasses.field(default_factory=list)  # one sentence per line not saved

    def summary(self) -> str:
        text = f"Saved {len(self.saved)} corrected line{'s' if len(self.saved) != 1 else ''} as training data"
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + "; ".join(self.skipped)
        return text + "."


def training_root() -> Path:
    """Where the app keeps corrections (one folder the fine-tune reads)."""
    return parley_home() / "training" / "corrections"


def anchors_root() -> Path:
    """Lines the recogniser got right (left uncorrected), with the model's own text: the Fisher anchors."""
    return parley_home() / "training" / "anchors"


def pick_anchors(lines: Sequence[Correction], n: int = ANCHORS_PER_SAVE) -> list[Correction]:
    """Up to n of the usable uncorrected lines, spread evenly over the transcript."""
    usable = [c for c in lines if c.text.strip() and MIN_CLIP_S <= c.end_s - c.start_s <= MAX_CLIP_S]
    if len(usable) <= n:
        return usable
    step = len(usable) / n
    return [usable[int(i * step)] for i in range(n)]


def recordings_root() -> Path:
    """Where live sessions are recorded, so their lines can be corrected and saved as training data."""
    return parley_home() / "recordings"


def new_recording_path(keep: int = 3) -> Path:
    """A fresh path for the next live recording; only the newest `keep` recordings are kept."""
    root = recordings_root()
    root.mkdir(parents=True, exist_ok=True)
    old = sorted(root.glob("live-*.wav"))
    for stale in old[: max(0, len(old) - (keep - 1))]:
        stale.unlink(missing_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return root / f"live-{stamp}.wav"


def _slug(text: str, n: int = 5) -> str:
    words = re.findall(r"[A-Za-z0-9]+", text)[:n]
    return "-".join(w.lower() for w in words) or "line"


def save_corrections(corrections: Sequence[Correction], folder: Path | None = None,
                     pad_s: float = PAD_S, drop_from: Path | None = None) -> SaveReport:
    """Cut each correction's audio (with `pad_s` either side) out of its file and write it with its text.

    Each audio file is decoded once, front to back, in chunks (a long file is never held whole). A line
    that cannot be saved (empty text, too short or long, past the end of its audio, unreadable audio) is
    named in the report and skipped; the others are still saved. A clip of the same line saved before in
    `drop_from` (an anchor, when the user has since corrected the line) is removed."""
    folder = Path(folder) if folder is not None else training_root()
    folder.mkdir(parents=True, exist_ok=True)
    report = SaveReport()
    by_file: dict[Path, list[tuple[int, Correction]]] = {}
    for index, c in enumerate(corrections):
        label = f"line at {c.start_s:.1f} s of {Path(c.audio).name}"
        if not c.text.strip():
            report.skipped.append(f"{label}: empty text")
        elif not MIN_CLIP_S <= c.end_s - c.start_s <= MAX_CLIP_S:
            report.skipped.append(f"{label}: {c.end_s - c.start_s:.1f} s long (clips are "
                                  f"{MIN_CLIP_S}–{MAX_CLIP_S:.0f} s)")
        else:
            by_file.setdefault(Path(c.audio), []).append((index, c))
    for path, items in by_file.items():
        spans = [(max(0.0, c.start_s - pad_s), c.end_s + pad_s) for _, c in items]
        try:
            cuts = _cut(path, spans)
        except Exception as e:  # noqa: BLE001 - the reason goes into the report, the other files still save
            report.skipped.extend(f"line at {c.start_s:.1f} s of {path.name}: {e}" for _, c in items)
            continue
        for (index, c), audio in zip(items, cuts):
            if audio is None or audio.size < MIN_CLIP_S * SAMPLE_RATE:
                report.skipped.append(f"line at {c.start_s:.1f} s of {path.name}: the audio ends before it")
                continue
            # the file's name and a hash of its full path (two talk.wav in different folders stay apart)
            tag = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:6]
            line = f"{path.stem}-{tag}-{int(round(c.start_s * 1000)):08d}-"
            stem = line + _slug(c.text)
            for folder_ in {folder, Path(drop_from) if drop_from is not None else folder}:
                for old in folder_.glob(f"{glob.escape(line)}*"):  # this line saved before, with other text
                    old.unlink(missing_ok=True)
            wav = folder / f"{stem}.wav"
            sf.write(wav, audio, SAMPLE_RATE, subtype="PCM_16")
            wav.with_suffix(".txt").write_text(c.text.strip() + "\n", encoding="utf-8")
            report.saved.append(wav)
            report.saved_indices.append(index)
    return report


def _cut(path: Path, spans: list[tuple[float, float]]) -> list[np.ndarray | None]:
    """The samples of each (start_s, end_s) span, in one pass over the file."""
    bounds = [(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)) for a, b in spans]
    pieces: list[list[np.ndarray]] = [[] for _ in bounds]
    last = max(b for _, b in bounds)
    pos = 0
    for chunk in iter_audio(path, chunk_s=30.0):
        end = pos + chunk.size
        for i, (a, b) in enumerate(bounds):
            lo, hi = max(a, pos), min(b, end)
            if lo < hi:
                pieces[i].append(chunk[lo - pos:hi - pos])
        pos = end
        if pos >= last:
            break
    return [np.concatenate(p) if p else None for p in pieces]


def collected_clips(folder: Path | None = None) -> int:
    """How many saved clips (audio with a same-named .txt) `folder` holds."""
    folder = Path(folder) if folder is not None else training_root()
    if not folder.is_dir():
        return 0
    return sum(1 for wav in folder.glob("*.wav") if wav.with_suffix(".txt").is_file())


def tuned_pack_path(base_pack: Path) -> Path:
    """Where the fine-tuned pack of `base_pack` goes: beside the installed packs, a new name each run."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    name = re.sub(r"-(int8|fp32|fp16)$", "", Path(base_pack).name)
    precision = pack_precision(base_pack)
    out = packs_root() / f"{name}-tuned-{stamp}-{precision}"
    n = 2
    while out.exists():
        out = packs_root() / f"{name}-tuned-{stamp}.{n}-{precision}"
        n += 1
    return out


def pack_precision(pack: Path) -> str:
    try:
        meta = json.loads((Path(pack) / "parley.json").read_text(encoding="utf-8"))
        precision = str(meta.get("precision", "int8"))
    except (OSError, ValueError):
        precision = "int8"
    return precision if precision in ("int8", "fp32", "fp16") else "int8"


LEARN_REFUSED = 3  # exit status of ``python -m export learn`` when the gate kept the current model


def learn_command(base_pack: Path, out: Path, glossary: Path | None = None, corrections: Path | None = None,
                  anchors: Path | None = None, alpha: float = FISHER_ALPHA, epochs: int = DEFAULT_EPOCHS,
                  lr: float = DEFAULT_LR, python: str | None = None) -> list[str]:
    """What Training → Learn these words… and Improve recognition… run: ``python -m export learn`` from
    `base_pack` (θ₀ and the Fisher weights stay the stock model's however often it is improved) on the glossary's
    spoken sentences and/or every saved correction; the pack at `out` is written only if, on voices and
    sentences it did not train on, the terms' errors (or the held-out corrections' WER) fall and general WER
    rises by at most 0.5 point. Exit status LEARN_REFUSED and a line 'not installed: …' otherwise."""
    base_pack = Path(base_pack)
    if not is_pack_dir(base_pack):
        raise FileNotFoundError(f"{base_pack}: not a model pack; choose an installed model to improve")
    if glossary is None and corrections is None:
        raise ValueError("nothing to learn: a glossary and/or saved corrections")
    command = [python or sys.executable, "-m", "export", "learn", "--base", str(base_pack), "--out", str(out),
               "--alpha", f"{alpha:g}", "--epochs", str(epochs), "--lr", f"{lr:g}",
               "--precision", pack_precision(base_pack), "--name", re.sub(r"-(int8|fp32|fp16)$", "", Path(out).name),
               "--speech-dir", str(parley_home() / "training" / "speech")]
    if glossary is not None:
        command += ["--glossary", str(glossary)]
    if corrections is not None:
        command += ["--corrections", str(corrections)]
    if anchors is not None and collected_clips(anchors) > 0:
        command += ["--anchors", str(anchors)]
    return command


def finish_improvement(out: Path | None, ok: bool) -> None:
    """After a fine-tune the app ran: on success drop the resumable checkpoint (optimizer state, the
    largest file) and keep the trained weights the pack was built from (the start of the next
    improvement); on failure or cancel remove the partial pack and its work folder."""
    if out is None:
        return
    work = out.parent / (out.name + ".train")
    if ok:
        (work / "checkpoint.pt").unlink(missing_ok=True)
    else:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


_STEP = re.compile(r"step (\d+)/(\d+) epoch \d+/\d+ loss ([0-9.]+)")


def parse_progress(line: str) -> tuple[int, int, float] | None:
    """(step, total, loss) from a progress line of ``python -m export train``, else None."""
    m = _STEP.search(line)
    return (int(m.group(1)), int(m.group(2)), float(m.group(3))) if m else None
