"""Token search over one window, as openai/whisper's ``decoding.py`` does it.

Small parts: ``LogitFilter``s (suppress blank, suppress tokens, timestamp rules) edit the logits
before each choice; ``greedy_or_sample`` and ``beam_search`` choose tokens through an ``Inference``
(anything with ``step`` and ``reorder``: the ONNX decoder, or a fake in tests); ``rank`` picks the
final sequence with Whisper's length penalty.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from collections.abc import Sequence
from typing import Protocol

import numpy as np

NEG_INF = -np.inf


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    """How one window is decoded. Defaults are Whisper's/faster-whisper's."""

    task: str = "transcribe"  # or "translate" (speech → English text)
    language: str | None = None  # None: detect from this window
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # tried in order while a guard fails
    beam_size: int = 5  # at temperature 0; 1 = greedy
    best_of: int = 5  # samples drawn at temperature > 0
    patience: float = 1.0  # beam search stops after round(beam_size * patience) finished candidates
    length_penalty: float | None = None  # None: rank by sum logprob / length; else Google NMT's alpha
    compression_ratio_threshold: float | None = 2.4  # above: repetitive, try the next temperature
    log_prob_threshold: float | None = -1.0  # avg logprob below: unsure, try the next temperature
    no_speech_threshold: float | None = 0.6  # no-speech prob above (and logprob low): a silent window
    max_fallbacks: int | None = None  # bound on extra temperatures tried (live mode); None: all
    time_budget_s: float | None = None  # wall time for the whole window; overrun → return what it has
    prefix: str | None = None  # text the window's output must start with
    suppress_tokens: tuple[int, ...] = (-1,)  # -1 stands for the pack's non-speech symbol tokens
    suppress_blank: bool = True  # no space/end-of-text as the first token
    without_timestamps: bool = False  # text only (<|notimestamps|>): one segment per window
    max_initial_timestamp: float | None = 1.0  # the first timestamp may not be later than this (s)
    word_timestamps: bool = False  # per-word times from cross-attention (DTW)
    sample_len: int | None = None  # max tokens per window; None: half the decoder context (224)
    seed: int = 0  # for sampling at temperature > 0 (reproducible)
    # Words the decoder is pushed toward (a glossary's terms): each token that continues one of them gets
    # bias_logit added to its logit (TermBias). () : no bias, and no cost.
    bias_terms: tuple[str, ...] = ()
    bias_logit: float = 2.0
    # The bonus of a term's first token, which can start at any word (None: bias_logit). Short first tokens
    # (" Qu", " T") also begin ordinary words; `bench/glossary.py --first-bias B` measures a smaller one.
    bias_first_logit: float | None = None

    def __post_init__(self) -> None:
        if self.task not in ("transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', got {self.task!r}")
        if self.beam_size < 1 or self.best_of < 1:
            raise ValueError(f"beam_size and best_of must be ≥ 1, got {self.beam_size} and {self.best_of}")
        if self.patience <= 0:
            raise ValueError(f"patience must be > 0, got {self.patience}")
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise ValueError(f"temperatures must be a non-empty sequence of values ≥ 0, got {self.temperatures}")
        if self.length_penalty is not None and not 0 <= self.length_penalty <= 1:
            raise ValueError(f"length_penalty must be None or in [0, 1], got {self.length_penalty}")
        if self.max_fallbacks is not None and self.max_fallbacks < 0:
            raise ValueError(f"max_fallbacks must be None or ≥ 0, got {self.max_fallbacks}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be None or > 0, got {self.time_budget_s}")
        if self.sample_len is not None and self.sample_len < 1:
            raise ValueError(f"sample_len must be None or ≥ 1, got {self.sample_len}")
        if not np.isfinite(self.bias_logit) or self.bias_logit < 0:
            raise ValueError(f"bias_logit must be a finite number ≥ 0, got {self.bias_logit}")
        first = self.bias_first_logit
        if first is not None and not (np.isfinite(first) and first >= 0):
            raise ValueError(f"bias_first_logit must be None or a finite number ≥ 0, got {self.bias_first_logit}")
        if isinstance(self.bias_terms, str) or not all(isinstance(t, str) and t.strip() for t in self.bias_terms):
            raise ValueError(f"bias_terms must be a tuple of non-empty words, got {self.bias_terms!r}")


class Inference(Protocol):
    def step(self, tokens: np.ndarray) -> np.ndarray:
        """tokens [batch] → logits [batch, n_vocab] for the next position."""

    def reorder(self, source: np.ndarray) -> None:
        """Row i of the state becomes row source[i] (beams that survived)."""


def compression_ratio(text: str) -> float:
    """len(utf-8) / len(zlib): high for repetitive text (Whisper's repetition guard)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return (np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m).squeeze(axis)


def log_softmax(x: np.ndarray) -> np.ndarray:
    return x - _logsumexp(x)[..., None]


# -- logit filters ----------------------------------------------------------------------------------


class LogitFilter(Protocol):
    def apply(self, logits: np.ndarray, sampled: Sequence[Sequence[int]]) -> None:
        """Edit logits [batch, n_vocab] in place, given each row's sampled tokens so far."""


class SuppressBlank:
    """No blank (space, end-of-text) as the first sampled token."""

    def __init__(self, blank_tokens: Sequence[int]):
        self.blank = np.asarray(blank_tokens)

    def apply(self, logits: np.ndarray, sampled: Sequence[Sequence[int]]) -> None:
        if len(sampled[0]) == 0:
            logits[:, self.blank] = NEG_INF


class SuppressTokens:
    def __init__(self, tokens: Sequence[int]):
        self.tokens = np.asarray(sorted(set(tokens)), dtype=np.int64)

    def apply(self, logits: np.ndarray, sampled: Sequence[Sequence[int]]) -> None:
        logits[:, self.tokens] = NEG_INF


class TimestampRules:
    """Whisper's timestamp grammar: timestamps come in pairs (except right before end-of-text), never
    go backwards, the first token is a timestamp no later than max_initial, and a timestamp is forced
    when all timestamps together are likelier than any text token."""

    def __init__(self, eot: int, no_timestamps: int, timestamp_begin: int, max_initial_index: int | None):
        self.eot = eot
        self.no_timestamps = no_timestamps
        self.ts = timestamp_begin
        self.max_initial_index = max_initial_index

    def apply(self, logits: np.ndarray, sampled: Sequence[Sequence[int]]) -> None:
        ts = self.ts
        logits[:, self.no_timestamps] = NEG_INF
        for k, seq in enumerate(sampled):
            last_ts = len(seq) >= 1 and seq[-1] >= ts
            penultimate_ts = len(seq) < 2 or seq[-2] >= ts
            if last_ts:
                if penultimate_ts:  # a closed pair: text must follow
                    logits[k, ts:] = NEG_INF
                else:  # an open pair: a timestamp (or end) must follow
                    logits[k, : self.eot] = NEG_INF
            stamps = [t for t in seq if t >= ts]
            if stamps:
                # no going back; a segment must have non-zero length (else it could loop forever)
                last = stamps[-1] if last_ts and not penultimate_ts else stamps[-1] + 1
                logits[k, ts:last] = NEG_INF
        if len(sampled[0]) == 0:
            logits[:, :ts] = NEG_INF
            if self.max_initial_index is not None:
                logits[:, ts + self.max_initial_index + 1:] = NEG_INF
        # if the timestamps together are likelier than any single text token, take a timestamp
        ts_mass = _logsumexp(logits[:, ts:])
        text_max = np.max(logits[:, :ts], axis=-1)
        logits[ts_mass > text_max, :ts] = NEG_INF


class TermBias:
    """Contextual biasing by shallow fusion over a prefix trie of the terms' token sequences.

    Each row's sampled tokens are matched against the trie: for every suffix of them that is a proper prefix of
    a term's tokens (the empty suffix included: a term can start at any word), the token that continues the
    term gets ``bonus`` added to its logit — once per row and token, however many terms it continues. The
    state is the row's own tokens, so beams that are reordered, dropped or duplicated keep their own matches.
    A step costs one dict lookup per suffix length (the longest term's token count)."""

    def __init__(self, sequences: Sequence[Sequence[int]], bonus: float, first_bonus: float | None = None):
        following: dict[tuple[int, ...], set[int]] = {}
        for seq in sequences:
            for k in range(len(seq)):
                following.setdefault(tuple(seq[:k]), set()).add(int(seq[k]))
        self.next_tokens = {prefix: np.array(sorted(t), dtype=np.int64) for prefix, t in following.items()}
        self.max_prefix = max((len(s) for s in sequences), default=1) - 1
        self.bonus = float(bonus)
        # With its own first-token bonus the trie's root is applied apart: each token gets the larger bonus
        # it is due (a term's first token may also continue another term).
        self.first_bonus = None if first_bonus is None or first_bonus == bonus else float(first_bonus)
        self.first = self.next_tokens.pop((), None) if self.first_bonus is not None else None

    def boosted(self, seq: Sequence[int]) -> np.ndarray:
        """The tokens that continue a term after ``seq``."""
        found = [self.next_tokens[p] for k in range(min(self.max_prefix, len(seq)) + 1)
                 if (p := tuple(seq[len(seq) - k:])) in self.next_tokens]
        if len(found) == 1:  # most steps: no term under way, only the terms' first tokens
            return found[0]
        return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)

    def apply(self, logits: np.ndarray, sampled: Sequence[Sequence[int]]) -> None:
        for row, seq in enumerate(sampled):
            tokens = self.boosted(seq)
            if self.first is None:
                logits[row, tokens] += self.bonus
                continue
            both = np.isin(self.first, tokens)
            logits[row, tokens] += self.bonus
            logits[row, self.first[~both]] += self.first_bonus
            logits[row, self.first[both]] += max(self.first_bonus - self.bonus, 0.0)


def apply_filters(filters: Sequence[LogitFilter], logits: np.ndarray, sampled: Sequence[Sequence[int]]) -> None:
    for f in filters:
        f.apply(logits, sampled)


# -- search -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Candidate:
    tokens: list[int]  # the prefix (if any) and sampled tokens, without end-of-text
    sum_logprob: float  # including the end-of-text token's logprob when finished


def _deadline_passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def greedy_or_sample(inference: Inference, first_logits: np.ndarray, n: int, temperature: float,
                     filters: Sequence[LogitFilter], eot: int, sample_len: int, initial: Sequence[int] = (),
                     rng: np.random.Generator | None = None, deadline: float | None = None
                     ) -> tuple[list[Candidate], bool]:
    """n sequences in one batch: argmax at temperature 0, else sampled from softmax(logits / T).
    first_logits [n_vocab] are the logits after the prompt; initial tokens (a prefix) count as
    already chosen. Returns (candidates, truncated)."""
    sampled: list[list[int]] = [list(initial) for _ in range(n)]
    sum_logprobs = np.zeros(n)
    finished = np.zeros(n, dtype=bool)
    logits = np.repeat(first_logits[None].astype(np.float32), n, axis=0)
    truncated = False
    for i in range(sample_len):
        if i > 0:
            if _deadline_passed(deadline):
                truncated = True
                break
            logits = inference.step(np.array([s[-1] if s else eot for s in sampled]))
            logits = np.array(logits, dtype=np.float32)  # writable copy: the filters edit it
        apply_filters(filters, logits, sampled)
        if temperature == 0:
            next_tokens = np.argmax(logits, axis=-1)
        else:
            gumbel = -np.log(-np.log(rng.uniform(1e-20, 1.0, size=logits.shape)))
            next_tokens = np.argmax(logits / temperature + gumbel, axis=-1)
        rows = np.arange(n)
        logprobs = logits[rows, next_tokens] - _logsumexp(logits)
        sum_logprobs += np.where(finished, 0.0, logprobs)
        next_tokens[finished] = eot
        for k in range(n):
            if not finished[k]:
                sampled[k].append(int(next_tokens[k]))
        finished |= next_tokens == eot
        if finished.all():
            break
    return [Candidate([t for t in s if t != eot], float(lp))
            for s, lp in zip(sampled, sum_logprobs)], truncated


def beam_search(inference: Inference, first_logits: np.ndarray, beam_size: int, patience: float,
                filters: Sequence[LogitFilter], eot: int, sample_len: int, initial: Sequence[int] = (),
                deadline: float | None = None) -> tuple[list[Candidate], bool]:
    """Whisper's beam search: each step keeps the beam_size best unfinished sequences of the
    beam_size + 1 best continuations of each beam; stops once round(beam_size * patience) sequences
    have finished. The inference holds beam_size rows, reordered to follow the survivors."""
    max_candidates = max(1, round(beam_size * patience))
    beams: list[list[int]] = [list(initial) for _ in range(beam_size)]
    sums = np.zeros(beam_size)
    finished: dict[tuple[int, ...], float] = {}
    logits = np.repeat(first_logits[None].astype(np.float32), beam_size, axis=0)
    truncated = False
    k = min(beam_size + 1, logits.shape[-1])
    for i in range(sample_len):
        if i > 0:
            if _deadline_passed(deadline):
                truncated = True
                break
            logits = np.array(inference.step(np.array([b[-1] for b in beams])), dtype=np.float32)
        apply_filters(filters, logits, beams)
        logprobs = log_softmax(logits)
        top = np.argpartition(-logprobs, k - 1, axis=-1)[:, :k]  # [beam, k], unordered
        scores: dict[tuple[int, ...], float] = {}
        sources: dict[tuple[int, ...], int] = {}
        rows = beams if i > 0 else beams[:1]  # at the first step every row holds the same prompt
        for j, prefix in enumerate(rows):
            for token in top[j]:
                lp = logprobs[j, token]
                if lp == NEG_INF:
                    continue
                seq = (*prefix, int(token))
                if seq not in scores:
                    scores[seq] = float(sums[j] + lp)
                    sources[seq] = j
        next_beams: list[list[int]] = []
        next_sums: list[float] = []
        source: list[int] = []
        newly: dict[tuple[int, ...], float] = {}
        for seq in sorted(scores, key=scores.get, reverse=True):
            if seq[-1] == eot:
                newly[seq] = scores[seq]
            else:
                next_beams.append(list(seq))
                next_sums.append(scores[seq])
                source.append(sources[seq])
                if len(next_beams) == beam_size:
                    break
        for seq in sorted(newly, key=newly.get, reverse=True):
            if len(finished) >= max_candidates:
                break
            finished[seq] = newly[seq]
        if not next_beams:
            break
        while len(next_beams) < beam_size:  # only with tiny vocabularies: keep the batch size
            next_beams.append(list(next_beams[0]))
            next_sums.append(next_sums[0])
            source.append(source[0])
        beams, sums = next_beams, np.asarray(next_sums)
        if len(finished) >= max_candidates:
            break
        if i > 0:
            inference.reorder(np.asarray(source))
    if len(finished) < beam_size:  # too few finished: the best unfinished ones count too
        for j in np.argsort(-sums):
            finished.setdefault((*beams[j], eot), float(sums[j]))
            if len(finished) >= beam_size:
                break
    return [Candidate([t for t in seq if t != eot], lp) for seq, lp in finished.items()], truncated


def rank(candidates: Sequence[Candidate], length_penalty: float | None) -> int:
    """Index of the best candidate: sum logprob / length, or / ((5 + length) / 6) ** alpha."""
    best, best_score = 0, -np.inf
    for i, c in enumerate(candidates):
        length = len(c.tokens)
        penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
        score = c.sum_logprob / max(penalty, 1e-9)
        if score > best_score:
            best, best_score = i, score
    return best
