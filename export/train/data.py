"""Training data from a folder: audio files with same-named .txt transcripts, and/or TSV files.

A TSV line is ``audio path<TAB>transcript[<TAB>language]`` (paths relative to the TSV's folder; a first
line ``path<TAB>text...`` is a header). Every file that cannot be used (audio without transcript, empty
transcript, unreadable audio, too long for one 30 s window, transcript without audio) is reported by
name in ``DataSet.problems`` and logged, then skipped: never dropped silently.

Features are computed with ``engine.features`` exactly as the engine computes them at inference (audio
padded with 30 s of zeros, log-mel, cut to 3000 frames), so training and inference see the same input.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from engine.audio.decode import load_audio
from engine.features import N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim
from export.vocab import WhisperVocab

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".mp4", ".webm", ".opus", ".aiff"})
IGNORE = -100  # label of positions that carry no loss (the prompt, padding)


@dataclasses.dataclass(frozen=True)
class DataProblem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclasses.dataclass(frozen=True)
class Example:
    path: Path
    text: str
    language: str
    mel: np.ndarray  # [n_mels, 3000] float32, as the engine computes it
    tokens: tuple[int, ...]  # the transcript's text tokens (no special tokens)
    audio_frames: int  # mel frames of real audio (before the padding)


@dataclasses.dataclass(frozen=True)
class DataSet:
    train: tuple[Example, ...]
    held_out: tuple[Example, ...]
    problems: tuple[DataProblem, ...]


class TargetTokenizer:
    """Whisper's target sequence for fine-tuning: <|sot|> <|lang|> <|task|> <|notimestamps|> text <|eot|>."""

    def __init__(self, vocab: WhisperVocab):
        self.vocab = vocab
        self.tokenizer = Tokenizer.from_file(str(vocab.tokenizer_path))
        self.eot = vocab.tokens["eot"]

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(" " + text.strip(), add_special_tokens=False).ids

    def decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t < self.eot], skip_special_tokens=False).strip()

    def prompt(self, language: str, task: str = "transcribe") -> list[int]:
        t = self.vocab.tokens
        if not self.vocab.is_multilingual:
            return [t["sot"], t["no_timestamps"]]
        if language not in self.vocab.languages:
            raise ValueError(f"language {language!r} is not one of the model's {len(self.vocab.languages)} languages")
        return [t["sot"], self.vocab.languages[language], t[task], t["no_timestamps"]]


def _read_tsvs(folder: Path, problems: list[DataProblem]) -> dict[Path, tuple[str, str | None]]:
    entries: dict[Path, tuple[str, str | None]] = {}
    for tsv in sorted(folder.glob("*.tsv")):
        for n, line in enumerate(tsv.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or (n == 1 and line.lower().startswith("path\t")):
                continue
            cols = line.split("\t")
            if len(cols) < 2:
                problems.append(DataProblem(tsv, f"line {n} has no tab-separated transcript; skipped"))
                continue
            path = (tsv.parent / cols[0].strip()).resolve()
            entries[path] = (cols[1], cols[2].strip() if len(cols) > 2 and cols[2].strip() else None)
    return entries


def _pairs(folder: Path, problems: list[DataProblem]) -> list[tuple[Path, str, str | None]]:
    """(audio, transcript, language or None) for every usable pair; problems appended for the rest."""
    from_tsv = _read_tsvs(folder, problems)
    audio = sorted(p.resolve() for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    pairs = []
    for path in audio:
        if path in from_tsv:
            text, language = from_tsv[path]
        elif (txt := path.with_suffix(".txt")).is_file():
            text, language = txt.read_text(encoding="utf-8"), None
        else:
            problems.append(DataProblem(path, f"no transcript (expected {path.with_suffix('.txt').name} "
                                              "or a line in a .tsv); skipped"))
            continue
        pairs.append((path, text, language))
    audio_set = set(audio)
    for path in sorted(from_tsv):
        if path not in audio_set:
            problems.append(DataProblem(path, "listed in a .tsv but no such audio file; skipped"))
    stems = {p.with_suffix("") for p in audio}
    for txt in sorted(folder.glob("*.txt")):
        if txt.resolve().with_suffix("") not in stems:
            problems.append(DataProblem(txt, "transcript without an audio file of the same name; skipped"))
    return pairs


def load_examples(folder: Path, n_mels: int, tok: TargetTokenizer, language: str, max_tokens: int
                  ) -> tuple[list[Example], list[DataProblem]]:
    """Every usable example in `folder`, sorted by file name, and the problems with the rest."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder; --data takes a folder of audio files and transcripts")
    problems: list[DataProblem] = []
    examples = []
    for path, text, lang in _pairs(folder, problems):
        text = " ".join(text.split())
        if not text:
            problems.append(DataProblem(path, "the transcript is empty; skipped"))
            continue
        try:
            audio = load_audio(path)
        except Exception as e:  # AudioFileError, or a decoder's own error: the file is reported, not fatal
            problems.append(DataProblem(path, f"unreadable audio ({e}); skipped"))
            continue
        if audio.size > N_SAMPLES:
            problems.append(DataProblem(path, f"{audio.size / SAMPLE_RATE:.1f} s is longer than one 30 s window; "
                                              "cut it into shorter clips; skipped"))
            continue
        tokens = tok.encode(text)
        if len(tokens) > max_tokens:
            problems.append(DataProblem(path, f"the transcript has {len(tokens)} tokens, more than {max_tokens}; skipped"))
            continue
        mel = pad_or_trim(log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES), N_FRAMES)
        examples.append(Example(path, text, lang or language, np.ascontiguousarray(mel, dtype=np.float32),
                                tuple(tokens), min(audio.size // 160, N_FRAMES)))
    for p in problems:
        log.warning("%s", p)
    return examples, problems


def split(examples: list[Example], held_out: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A reproducible split: shuffled by `seed`, the last round(n * held_out) (at least one when held_out > 0
    and there are two examples or more) are held out."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_held = round(len(examples) * held_out)
    if held_out > 0 and n_held == 0 and len(examples) >= 2:
        n_held = 1
    cut = len(examples) - n_held
    return [examples[i] for i in sorted(order[:cut])], [examples[i] for i in sorted(order[cut:])]


def collate(batch: list[Example], tok: TargetTokenizer, task: str = "transcribe"
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mel [b, n_mels, 3000] float32, input ids [b, t] int64, labels [b, t] int64 with IGNORE on the prompt
    and padding). The model reads prompt + text and must predict text + <|eot|>."""
    seqs, labels = [], []
    for ex in batch:
        prompt = tok.prompt(ex.language, task)
        seq = prompt + list(ex.tokens)
        seqs.append(seq)
        labels.append([IGNORE] * (len(prompt) - 1) + list(ex.tokens) + [tok.eot])
    width = max(len(s) for s in seqs)
    ids = np.full((len(batch), width), tok.eot, dtype=np.int64)
    lab = np.full((len(batch), width), IGNORE, dtype=np.int64)
    for i, (s, lbl) in enumerate(zip(seqs, labels)):
        ids[i, : len(s)] = s
        lab[i, : len(lbl)] = lbl
    return np.stack([ex.mel for ex in batch]), ids, lab
