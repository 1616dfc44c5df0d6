"""Greedy decoding in torch and the word error rate of a model on held-out examples."""

from __future__ import annotations

import dataclasses

import torch

from engine.metrics import normalize_text, wer
from export.train.data import Example, TargetTokenizer
from export.whisper_model import Whisper


@torch.no_grad()
def greedy(model: Whisper, mel: torch.Tensor, prompt: list[int], eot: int, max_tokens: int = 100,
           audio_states: torch.Tensor | None = None) -> list[int]:
    """Greedy tokens after `prompt` for mel [1, n_mels, frames] (or precomputed audio states), KV-cached."""
    xa = model.encoder(mel) if audio_states is None else audio_states
    cross = model.decoder.cross_kv(xa)
    device = xa.device
    logits, past, _ = model.decoder.step(torch.tensor([prompt], device=device), None, cross)
    tokens: list[int] = []
    limit = min(max_tokens, model.dims.n_text_ctx - len(prompt))
    while len(tokens) < limit:
        nxt = int(logits[0, -1].argmax())
        if nxt == eot:
            break
        tokens.append(nxt)
        logits, past, _ = model.decoder.step(torch.tensor([[nxt]], device=device), past, cross)
    return tokens


@dataclasses.dataclass(frozen=True)
class Evaluation:
    wer: float  # corpus WER: word edits over all reference words
    words: int  # reference words
    hypotheses: tuple[tuple[str, str, str], ...]  # (file name, reference, hypothesis)


def evaluate(model: Whisper, examples: list[Example] | tuple[Example, ...], tok: TargetTokenizer,
             device: str = "cpu") -> Evaluation:
    """Greedy-decode each example (transcribe task, no timestamps) and score it against its transcript."""
    was_training = model.training
    model.eval()
    rows, edits, words = [], 0.0, 0
    for ex in examples:
        mel = torch.from_numpy(ex.mel)[None].to(device)
        hyp = tok.decode(greedy(model, mel, tok.prompt(ex.language), tok.eot, max_tokens=2 * len(ex.tokens) + 10))
        n = len(normalize_text(ex.text).split())
        edits += wer(ex.text, hyp) * max(n, 1)
        words += n
        rows.append((ex.path.name, ex.text, hyp))
    model.train(was_training)
    return Evaluation(edits / max(words, 1), words, tuple(rows))
