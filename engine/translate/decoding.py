"""Greedy and beam search over a translation decoder, step for step as Hugging Face ``generate`` does.

The search talks to the model through two calls (``start`` and ``step``, see engine.translate.model)
and reorders its cache with ``DecoderState.select``. Scores follow transformers' arithmetic in float32:
log-softmax, then the logits rules (banned tokens, minimum length, forced first token for the target
language, forced end at the length limit), beam scores summed, finished hypotheses ranked by
``score / length ** length_penalty``, and the same stopping heuristic, so our tokens equal
``generate``'s for the same model and options.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from engine.translate.model import DecoderState

_NEG = np.float32(-1e9)


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    beam_size: int = 1  # 1 = greedy
    max_length: int = 256  # decoder length including the start token (generate's max_length)
    length_penalty: float = 1.0  # beam: finished score = logprob sum / length ** length_penalty
    early_stopping: bool | str = False  # beam: True stops once beam_size hypotheses finished; "never"; False = heuristic
    min_length: int = 0  # end-of-sentence is banned before this length (start token included)
    banned_tokens: tuple[int, ...] = ()  # never generated (Marian: its pad token)
    forced_bos: int | None = None  # token forced at the first step (NLLB/M2M100 target language)
    forced_eos: int | None = None  # token forced at the last allowed step

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be ≥ 1, got {self.beam_size}")
        if self.max_length < 2:
            raise ValueError(f"max_length must be ≥ 2 (start token and one more), got {self.max_length}")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")


class Decoder(Protocol):
    def start(self, tokens: np.ndarray, encoder_out: np.ndarray, encoder_mask: np.ndarray
              ) -> tuple[np.ndarray, DecoderState]: ...

    def step(self, tokens: np.ndarray, state: DecoderState) -> tuple[np.ndarray, DecoderState]: ...


def _rules(scores: np.ndarray, cur_len: int, eos: int, o: SearchOptions) -> np.ndarray:
    """Apply the logits rules in place to scores [rows, vocab] for the token at position cur_len."""
    if o.banned_tokens:
        scores[:, list(o.banned_tokens)] = -np.inf
    if cur_len < o.min_length:
        scores[:, eos] = -np.inf
    forced = o.forced_bos if cur_len == 1 else None
    if cur_len == o.max_length - 1 and o.forced_eos is not None:
        forced = o.forced_eos
    if forced is not None:
        scores[:] = -np.inf
        scores[:, forced] = 0
    return scores


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32, copy=False)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def greedy(model: Decoder, encoder_out: np.ndarray, encoder_mask: np.ndarray, start: int, eos: int,
           options: SearchOptions) -> list[list[int]]:
    """The most likely token at each step, for each row; each result ends with eos unless cut at max_length."""
    rows = encoder_out.shape[0]
    results: list[list[int]] = [[] for _ in range(rows)]
    active = np.arange(rows)
    logits, state = model.start(np.full((rows, 1), start, np.int64), encoder_out, encoder_mask)
    cur_len = 1
    while True:
        tokens = _rules(logits.astype(np.float32), cur_len, eos, options).argmax(axis=-1)
        for row, token in zip(active, tokens):
            results[row].append(int(token))
        cur_len += 1
        keep = (tokens != eos) & (cur_len < options.max_length)
        if not keep.any():
            return results
        if not keep.all():
            active, tokens, state = active[keep], tokens[keep], state.select(np.flatnonzero(keep))
        logits, state = model.step(tokens[:, None].astype(np.int64), state)


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values of each row, largest first (ties: lower index first)."""
    return np.argsort(-values, axis=-1, kind="stable")[:, :k]


def beam_search(model: Decoder, encoder_out: np.ndarray, encoder_mask: np.ndarray, start: int, eos: int,
                pad: int, options: SearchOptions) -> list[list[int]]:
    """transformers' beam search (one end-of-sentence token, no sampling); the best hypothesis per row."""
    o, k = options, options.beam_size
    b, length = encoder_out.shape[0], options.max_length
    keep = 2 * k
    running = np.full((b, k, length), pad, np.int64)
    running[:, :, 0] = start
    finished_seqs = running.copy()
    running_scores = np.zeros((b, k), np.float32)
    running_scores[:, 1:] = _NEG
    scores = np.full((b, k), _NEG, np.float32)
    finished = np.zeros((b, k), bool)
    improvable = np.ones((b, 1), bool)
    top_k_mask = np.arange(keep) < k
    offset = (np.arange(b) * k)[:, None]
    rows = np.repeat(np.arange(b), k)
    logits, state = model.start(np.full((b * k, 1), start, np.int64), encoder_out[rows], encoder_mask[rows])
    cur_len = 1
    while True:
        logp = _rules(_log_softmax(logits), cur_len, eos, o).reshape(b, k, -1)
        vocab = logp.shape[-1]
        total = (logp + running_scores[:, :, None]).reshape(b, -1)
        idx = _top(total, keep)
        cand_lp = np.take_along_axis(total, idx, axis=1)  # [b, 2k]
        src_beam, tokens = idx // vocab, idx % vocab
        cand = np.take_along_axis(running, src_beam[:, :, None], axis=1)
        cand[:, :, cur_len] = tokens
        hits = (tokens == eos) | (cur_len + 1 >= length)
        # live beams: the best k candidates that did not end
        live_lp = cand_lp + hits.astype(np.float32) * _NEG
        nxt = _top(live_lp, k)
        running = np.take_along_axis(cand, nxt[:, :, None], axis=1)
        running_scores = np.take_along_axis(live_lp, nxt, axis=1)
        reorder = (np.take_along_axis(src_beam, nxt, axis=1) + offset).reshape(-1)
        # finished hypotheses: merge the ended top-k candidates into the kept ones
        done = hits & top_k_mask[None, :]
        fin_lp = (cand_lp / np.float32(cur_len ** o.length_penalty)).astype(np.float32)
        full = finished.all(axis=1, keepdims=True) & (o.early_stopping is True)
        fin_lp = fin_lp + full.astype(np.float32) * _NEG + (~improvable).astype(np.float32) * _NEG
        fin_lp = fin_lp + (~done).astype(np.float32) * _NEG
        merged_scores = np.concatenate([scores, fin_lp], axis=1)
        best = _top(merged_scores, k)
        finished_seqs = np.take_along_axis(np.concatenate([finished_seqs, cand], axis=1), best[:, :, None], axis=1)
        scores = np.take_along_axis(merged_scores, best, axis=1)
        finished = np.take_along_axis(np.concatenate([finished, done], axis=1), best, axis=1)
        cur_len += 1
        best_len = (length - 1) if (o.early_stopping == "never" and o.length_penalty > 0) else (cur_len - 1)
        best_possible = running_scores[:, :1] / np.float32(best_len ** o.length_penalty)
        worst_finished = np.where(finished, scores.min(axis=1, keepdims=True), _NEG)
        improvable = improvable & (best_possible > worst_finished).any(axis=-1, keepdims=True)
        go_on = improvable.any() and not (finished.all() and o.early_stopping is True) and not hits.all()
        if not go_on:
            break
        state = state.select(reorder)
        logits, state = model.step(running[:, :, cur_len - 1].reshape(-1, 1), state)
    results = []
    for seq in finished_seqs[:, 0, 1:]:
        ends = np.flatnonzero(seq == eos)
        results.append([int(t) for t in (seq[: ends[0] + 1] if len(ends) else seq)])
    return results
