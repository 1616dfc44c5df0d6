"""Marian's binary lexical shortlist (``lex.50.50.<pair>.s2t.bin``): which target tokens may follow from
the source tokens of a sentence, so the output layer only scores those.

File: six uint64 (magic 0xF11A48D5013417F5, checksum, frequent, best, offsets length, list length),
then ``offsets`` (uint64, one per source id plus one) and the concatenated candidate lists (uint32 target
ids): source id s maps to ``lists[offsets[s]:offsets[s + 1]]``. For a sentence, the candidates are the
``frequent`` most frequent target ids (0..frequent−1), every source token's list, and — because
intgemm multiplies columns in groups of eight — the lowest unused ids above ``frequent`` until the
count is a multiple of 8, as Bergamot pads it. The result is sorted.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from engine.errors import PackError

log = logging.getLogger(__name__)

MAGIC = 0xF11A48D5013417F5
_HEADER_WORDS = 6
ALIGN = 8  # Bergamot pads the candidate count to a multiple of this


@dataclasses.dataclass(frozen=True)
class Shortlist:
    path: Path
    frequent: int  # target ids below this are always candidates
    best: int  # at most this many candidates per source token (informational)
    offsets: np.ndarray  # [source vocab + 1] uint64
    lists: np.ndarray  # [total] uint32 target ids
    target_vocab: int

    @classmethod
    def load(cls, path: str | Path, source_vocab: int, target_vocab: int) -> Shortlist:
        """Read and check the file against the model's vocabularies; PackError names the file."""
        path = Path(path)
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as e:
            raise PackError(f"{path}: cannot read the lexical shortlist ({e}); import the model again") from e
        if data.size < _HEADER_WORDS * 8:
            raise PackError(f"{path}: {data.size} bytes, too short for a lexical shortlist; the file is truncated")
        header = data[: _HEADER_WORDS * 8].view(np.uint64)
        magic, _, frequent, best, n_offsets, n_lists = (int(v) for v in header)
        if magic != MAGIC:
            raise PackError(f"{path}: not a binary Marian lexical shortlist (magic 0x{magic:x}); pass the "
                            "lex.*.s2t.bin file (convert a text lex.s2t.gz with marian-conv --shortlist)")
        expected = _HEADER_WORDS * 8 + n_offsets * 8 + n_lists * 4
        if data.size != expected:
            raise PackError(f"{path}: {data.size} bytes where its header describes {expected}; the file is "
                            "corrupt or truncated")
        offsets = data[_HEADER_WORDS * 8: _HEADER_WORDS * 8 + n_offsets * 8].view(np.uint64)
        lists = data[_HEADER_WORDS * 8 + n_offsets * 8:].view(np.uint32)
        if n_offsets != source_vocab + 1:
            raise PackError(f"{path}: a shortlist for {n_offsets - 1} source tokens, but the model's vocabulary has "
                            f"{source_vocab}: the shortlist belongs to another model")
        if int(offsets[-1]) != n_lists or np.any(np.diff(offsets.astype(np.int64)) < 0):
            raise PackError(f"{path}: inconsistent offsets; the file is corrupt")
        if n_lists and int(lists.max()) >= target_vocab:
            raise PackError(f"{path}: target id {int(lists.max())} outside the model's vocabulary of {target_vocab}: "
                            "the shortlist belongs to another model")
        return cls(path, frequent, best, offsets, lists, target_vocab)

    def candidates(self, source_ids: list[int] | np.ndarray) -> np.ndarray:
        """Sorted int64 target ids the output layer may score for a sentence with these source ids."""
        chosen = np.zeros(self.target_vocab, dtype=bool)
        chosen[: min(self.frequent, self.target_vocab)] = True
        for s in np.unique(np.asarray(source_ids, dtype=np.int64)):
            if 0 <= s < len(self.offsets) - 1:
                chosen[self.lists[int(self.offsets[s]): int(self.offsets[s + 1])]] = True
        short = (-int(chosen.sum())) % ALIGN
        if short:
            free = np.flatnonzero(~chosen[self.frequent:])[:short] + self.frequent
            chosen[free] = True
        return np.flatnonzero(chosen).astype(np.int64)
