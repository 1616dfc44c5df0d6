"""Training the text encoder into the shared space, and measuring that space.

Objective, per the founding document: L = alpha * L_recon + (1 - alpha) * L_reg, where here
- L_recon = decoder cross-entropy on the target text, the decoder reading the *text encoder's* states
  (the transcript itself with <|transcribe|>; an English translation with <|translate|> for parallel text),
  + align_weight * alignment term (text sentence vector vs. speech sentence vector of the same sentence);
- L_reg = sum ||theta - theta_0||^2 over the trained parameters (the text encoder's; the decoder's too
  with train_decoder).
The speech side (Whisper's encoder) is frozen; its sentence vectors are computed once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from pathlib import Path
from typing import TextIO

import torch
import torch.nn.functional as F

from engine.metrics import wer
from export.text_encoder import TextEncoder, alignment_loss, mean_pool
from export.train.data import IGNORE, Example, TargetTokenizer
from export.train.evaluate import greedy
from export.train.loss import Regulariser, total_loss
from export.whisper_model import Whisper

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TextTrainOptions:
    alpha: float = 0.9  # weight of L_recon (decoder CE + alignment); 1 - alpha weighs L_reg
    regulariser: str = "from_start"  # or "plain"
    align_weight: float = 1.0  # weight of the alignment term inside L_recon
    # Align text and speech sentence vectors after subtracting the mean speech vector of the training
    # sentences: Whisper's mean-pooled states of different sentences share a large common part (cosine of
    # two different sentences ~0.9), and aligning raw vectors mostly learns that part.
    centre: bool = True
    epochs: int = 20
    lr: float = 1e-3  # a new module: a larger step than fine-tuning uses
    batch_size: int = 8
    train_decoder: bool = False  # also adapt the shared decoder (the speech side stays frozen either way)
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.align_weight < 0:
            raise ValueError("epochs and batch_size must be >= 1, lr > 0, align_weight >= 0")


@dataclasses.dataclass(frozen=True)
class TextPair:
    source: tuple[int, ...]  # text tokens the text encoder reads
    language: str  # of the source
    target: tuple[int, ...]  # text tokens the decoder must write
    task: str  # "transcribe" (target = source) or "translate" (target = English)
    speech: int | None  # row of the speech sentence vectors for the same sentence spoken, if any


def pairs_from_examples(examples: list[Example]) -> list[TextPair]:
    return [TextPair(ex.tokens, ex.language, ex.tokens, "transcribe", i) for i, ex in enumerate(examples)]


def read_parallel(path: Path, tok: TargetTokenizer) -> list[TextPair]:
    """A TSV of ``source text<TAB>English text<TAB>source language``: text-only pairs for the translate task."""
    pairs = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        cols = line.split("\t")
        if len(cols) < 3 or not cols[0].strip() or not cols[1].strip():
            log.warning("%s: line %d is not 'source<TAB>English<TAB>language'; skipped", path, n)
            continue
        pairs.append(TextPair(tuple(tok.encode(cols[0])), cols[2].strip(), tuple(tok.encode(cols[1])), "translate", None))
    return pairs


@torch.no_grad()
def speech_vectors(states: torch.Tensor, examples: list[Example]) -> torch.Tensor:
    """Mean of the speech encoder's output over the frames of real audio: [n, d]."""
    lengths = torch.tensor([max(ex.audio_frames // 2, 1) for ex in examples], device=states.device)
    return mean_pool(states, lengths)


def speech_centre(speech: torch.Tensor | None, options: TextTrainOptions) -> torch.Tensor | None:
    """The vector both sides are centred on (the training sentences' mean speech vector), or None."""
    return speech.mean(0) if options.centre and speech is not None and len(speech) > 1 else None


def _batch_loss(model: Whisper, encoder: TextEncoder, tok: TargetTokenizer, batch: list[TextPair],
                speech: torch.Tensor | None, align_weight: float, device: torch.device,
                centre: torch.Tensor | None = None) -> tuple[torch.Tensor, float, float]:
    width = max(len(p.source) for p in batch)
    ids = torch.full((len(batch), width), tok.eot, dtype=torch.long, device=device)
    for i, p in enumerate(batch):
        ids[i, : len(p.source)] = torch.tensor(p.source)
    lengths = torch.tensor([len(p.source) for p in batch], device=device)
    padding = torch.arange(width, device=device)[None, :] >= lengths[:, None]
    states = encoder(ids, padding)
    ce = []
    for i, p in enumerate(batch):  # one at a time: the decoder's cross-attention has no padding mask
        prompt = tok.prompt(p.language, p.task)
        seq = torch.tensor([prompt + list(p.target)], device=device)
        labels = torch.tensor([[IGNORE] * (len(prompt) - 1) + list(p.target) + [tok.eot]], device=device)
        logits = model.decoder(seq, states[i: i + 1, : len(p.source)])
        ce.append(F.cross_entropy(logits[0].float(), labels[0], ignore_index=IGNORE))
    recon = torch.stack(ce).mean()
    align = torch.zeros((), device=device)
    rows = [i for i, p in enumerate(batch) if p.speech is not None]
    if rows and speech is not None and align_weight > 0:
        text_vec = mean_pool(states[rows], lengths[rows])
        speech_vec = speech[[batch[i].speech for i in rows]].to(device)
        if centre is not None:
            text_vec, speech_vec = text_vec - centre, speech_vec - centre
        align = alignment_loss(text_vec, speech_vec)
    return recon + align_weight * align, recon.item(), align.item()


def train_text_encoder(model: Whisper, encoder: TextEncoder, tok: TargetTokenizer, pairs: list[TextPair],
                       speech: torch.Tensor | None, options: TextTrainOptions = TextTrainOptions(),
                       stream: TextIO | None = None) -> list[dict]:
    """Train `encoder` (and the decoder with train_decoder) in place; returns the per-step history."""
    if not pairs:
        raise ValueError("no text pairs to train the text encoder on")
    device = torch.device(options.device)
    model.to(device).float().eval()
    encoder.to(device).float().train()
    for p in model.parameters():
        p.requires_grad_(False)
    params = {f"text_encoder.{n}": p for n, p in encoder.named_parameters()}
    if options.train_decoder:
        for n, p in model.decoder.named_parameters():
            p.requires_grad_(True)
            params[f"decoder.{n}"] = p
    regulariser = Regulariser(params, options.regulariser)
    centre = speech_centre(speech, options)
    centre = centre.to(device) if centre is not None else None
    optimizer = torch.optim.AdamW(params.values(), lr=options.lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(pairs) / options.batch_size)
    total, history, started = steps_per_epoch * options.epochs, [], time.perf_counter()
    out = stream or sys.stderr
    for epoch in range(options.epochs):
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(options.seed * 100_003 + epoch))
        for b in range(steps_per_epoch):
            batch = [pairs[i] for i in order[b * options.batch_size: (b + 1) * options.batch_size].tolist()]
            with torch.set_grad_enabled(options.alpha > 0):
                recon, ce, align = _batch_loss(model, encoder, tok, batch, speech, options.align_weight, device,
                                               centre)
            with torch.set_grad_enabled(options.alpha < 1):
                reg = regulariser()
            loss = total_loss(options.alpha, recon, reg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
            optimizer.step()
            history.append({"step": len(history) + 1, "epoch": epoch, "loss": loss.item(), "ce": ce,
                            "align": align, "reg": reg.item()})
            if len(history) % max(1, total // 20) == 0 or len(history) == total:
                h = history[-1]
                out.write(f"text encoder step {h['step']}/{total} loss {h['loss']:.4f} (ce {ce:.4f}, align {align:.4f}, "
                          f"reg {h['reg']:.3g}) {(time.perf_counter() - started) / h['step']:.2f} s/step\n")
                out.flush()
    encoder.eval()
    return history


@dataclasses.dataclass(frozen=True)
class SharedSpaceReport:
    centred: bool  # vectors compared after subtracting the mean speech vector of the training sentences
    cosine_same: float  # mean cosine of a sentence's text vector with its own speech vector
    cosine_other: float  # mean cosine with the other sentences' speech vectors
    retrieval_accuracy: float  # share of sentences whose text vector is closest to their own speech
    candidates: int  # speech vectors each text competes among
    reconstruction_wer: float  # decoder greedy output from the text encoder's states vs. the text
    examples: tuple[tuple[str, str], ...]  # (text, what the decoder wrote from the text encoder)

    def summary(self) -> str:
        return (f"shared space on {self.candidates} held-out sentences{' (centred)' if self.centred else ''}: cosine same {self.cosine_same:.3f} vs other "
                f"{self.cosine_other:.3f}, retrieval {100 * self.retrieval_accuracy:.0f}% (chance "
                f"{100 / max(self.candidates, 1):.0f}%), reconstruction WER {100 * self.reconstruction_wer:.1f}%")


@torch.no_grad()
def text_states(encoder: TextEncoder, tokens: list[int] | tuple[int, ...], device: str = "cpu") -> torch.Tensor:
    return encoder(torch.tensor([list(tokens)], device=device))


@torch.no_grad()
def measure_shared_space(model: Whisper, encoder: TextEncoder, tok: TargetTokenizer, examples: list[Example],
                         speech: torch.Tensor, task: str = "transcribe",
                         centre: torch.Tensor | None = None) -> SharedSpaceReport:
    """Cosine and retrieval between text and speech vectors of the same held-out sentences (after subtracting
    ``centre``, the training sentences' mean speech vector, if given), and what the decoder writes from the
    text encoder's states."""
    model.eval()
    encoder.eval()
    text_vec = torch.cat([text_states(encoder, ex.tokens).mean(1) for ex in examples]).float()
    speech = speech.float()
    if centre is not None:
        text_vec, speech = text_vec - centre.float(), speech - centre.float()
    t, s = F.normalize(text_vec, dim=-1), F.normalize(speech, dim=-1)
    sim = t @ s.T  # [n, n]
    n = len(examples)
    same = float(sim.diag().mean())
    other = float((sim.sum() - sim.diag().sum()) / max(n * (n - 1), 1))
    retrieval = float((sim.argmax(1) == torch.arange(n)).float().mean())
    rows, edits, words = [], 0.0, 0
    for ex in examples:
        hyp = tok.decode(greedy(model, None, tok.prompt(ex.language, task), tok.eot, 2 * len(ex.tokens) + 10,
                                text_states(encoder, ex.tokens)))
        k = max(len(ex.text.split()), 1)
        edits += wer(ex.text, hyp) * k
        words += k
        rows.append((ex.text, hyp))
    return SharedSpaceReport(centre is not None, same, other, retrieval, n, edits / max(words, 1), tuple(rows))
