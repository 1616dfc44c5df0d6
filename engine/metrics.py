"""Word and character error rates with the normalisation they compare under (no jiwer needed).

Used by the benches, the training evaluation (export/train) and the tests; the test corpus that is scored
with them lives in bench/clips.py.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

def normalize_text(s: str) -> str:
    """Lowercase, apostrophes dropped ("don't" -> "dont"), other punctuation and symbols turned into
    spaces, whitespace collapsed. Numbers are left as they are."""
    s = unicodedata.normalize("NFKC", s).lower()
    s = re.sub(r"['\u2019\u2018]", "", s)
    s = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in s)
    return " ".join(s.split())


def _edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(ref: str, hyp: str) -> float:
    """Word error rate of ``hyp`` against ``ref`` after normalize_text: (substitutions + deletions +
    insertions) / reference words. An empty reference counts each hypothesis word as one error."""
    r, h = normalize_text(ref).split(), normalize_text(hyp).split()
    return _edit_distance(r, h) / max(len(r), 1)


def cer(ref: str, hyp: str) -> float:
    """Character error rate after normalize_text, spaces ignored (for zh and ja, which have no spaces)."""
    r, h = normalize_text(ref).replace(" ", ""), normalize_text(hyp).replace(" ", "")
    return _edit_distance(r, h) / max(len(r), 1)
