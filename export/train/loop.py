"""The fine-tuning loop: batches, the alpha-weighted loss, AdamW, a progress bar, checkpoints, exact resume.

The data order of epoch e is a permutation drawn from a generator seeded by (seed, e), so a run resumed
from a checkpoint at step s sees exactly the batches an uninterrupted run sees after step s; together
with the optimiser state this makes resumed weights identical to uninterrupted ones (same device and
thread count).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import resource
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from export.train.data import Example, TargetTokenizer, collate
from export.train.evaluate import Evaluation, evaluate
from export.train.loss import Regulariser, fisher_weights, reconstruction_loss, total_loss, trainable_parameters
from export.train.options import TrainOptions
from export.whisper_model import Whisper

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class StepRecord:
    step: int  # 1-based optimiser step
    epoch: int  # 0-based
    loss: float  # L
    recon: float  # L_recon (computed for the record even when alpha = 0)
    reg: float  # L_reg (computed for the record even when alpha = 1)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    steps: int  # optimiser steps done in all (resumed ones included)
    history: tuple[StepRecord, ...]
    before: Evaluation | None  # held-out WER of the starting model (None: no held-out data)
    after: Evaluation | None
    checkpoint: Path | None
    seconds: float  # wall time of this run (not of earlier runs it resumed)
    peak_memory_mb: float  # peak resident memory of the process (CPU) or peak CUDA allocation


class Progress:
    """One line on stderr: a bar, the step, and the running loss. Redrawn in place on a terminal; on a pipe
    or file a line is written about twenty times per run."""

    def __init__(self, total: int, stream: TextIO | None, enabled: bool = True):
        self.total, self.stream, self.enabled = max(total, 1), stream or sys.stderr, enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = 1 if self.tty else max(1, self.total // 20)
        self.started = time.perf_counter()

    def update(self, rec: StepRecord, epochs: int) -> None:
        if not self.enabled or (rec.step % self.every and rec.step != self.total):
            return
        filled = int(30 * rec.step / self.total)
        rate = (time.perf_counter() - self.started) / max(rec.step, 1)
        line = (f"[{'#' * filled}{'.' * (30 - filled)}] step {rec.step}/{self.total} epoch {rec.epoch + 1}/{epochs} "
                f"loss {rec.loss:.4f} (recon {rec.recon:.4f}, reg {rec.reg:.3g}) {rate:.2f} s/step")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fingerprint(train: list[Example]) -> list[str]:
    return [f"{ex.path.name}\t{ex.text}" for ex in train]


def _options_record(options: TrainOptions) -> dict:
    d = dataclasses.asdict(options)
    for k in ("resume", "max_steps", "progress", "eval_max", "checkpoint_every", "device"):
        d.pop(k)  # they may differ between the run that wrote a checkpoint and the one resuming it
    return d


def save_checkpoint(path: Path, model: Whisper, params: dict, optimizer: torch.optim.Optimizer, step: int,
                    options: TrainOptions, train: list[Example], history: list[StepRecord],
                    before: Evaluation | None) -> Path:
    """Write atomically: a crash while saving leaves the previous checkpoint intact."""
    state = {
        "format": CHECKPOINT_FORMAT, "step": step, "dims": model.dims.as_dict(),
        "params": {n: p.detach().cpu() for n, p in params.items()}, "optimizer": optimizer.state_dict(),
        "rng": _rng_state(), "options": _options_record(options), "data": _fingerprint(train),
        "history": [dataclasses.astuple(r) for r in history],
        "before": None if before is None else (before.wer, before.words, [list(r) for r in before.hypotheses]),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    log.info("checkpoint at step %d: %s", step, path)
    return path


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable training checkpoint ({e}); pass one written by `python -m export "
                         "train` or start without --resume") from e


def _anchor_fisher(model: Whisper, tok: TargetTokenizer, anchors: list[Example], params, anchor_states,
                   device: torch.device) -> dict[str, torch.Tensor]:
    """The fisher regulariser's weights, from L_recon of the starting model on each anchor clip."""
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()

    def losses():
        for i, ex in enumerate(anchors):
            mel, ids, labels = collate([ex], tok)
            xa = (anchor_states[i:i + 1].to(device) if anchor_states is not None
                  else model.encoder(torch.from_numpy(mel).to(device)))
            yield reconstruction_loss(model.decoder(torch.from_numpy(ids).to(device), xa),
                                      torch.from_numpy(labels).to(device))

    weights = fisher_weights(params, losses())
    model.train(was_training)
    log.info("fisher weights from %d anchor clip(s) in %.1f s", len(anchors), time.perf_counter() - t0)
    return weights


def fine_tune(model: Whisper, tok: TargetTokenizer, train: list[Example], held_out: list[Example],
              options: TrainOptions, work_dir: Path, stream: TextIO | None = None,
              audio_states: torch.Tensor | None = None, anchors: list[Example] | None = None,
              anchor_states: torch.Tensor | None = None, reference: Whisper | None = None) -> TrainResult:
    """Train `model` in place on `train`; WER on `held_out` before and after; checkpoints in `work_dir`.

    audio_states: the frozen encoder's outputs for `train`, [n, n_audio_ctx, d] (trainable="decoder" only;
    computed here when not given). anchors: clips the model must keep recognising, for the ``fisher``
    regulariser (anchor_states: their encoder outputs, as audio_states). reference: the model whose weights are
    theta_0 and on which the Fisher weights are measured (the stock model, when `model` was tuned before);
    None: `model` itself as it is now."""
    if not train:
        raise ValueError("no training examples left after the held-out split; add data or lower --held-out")
    if options.regulariser == "fisher" and not anchors:
        raise ValueError("the fisher regulariser needs anchor clips (--anchor-data): transcribed speech of the "
                         "kind the model must keep recognising, to measure which weights that rests on")
    started = time.perf_counter()
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but torch sees no CUDA device; use --device cpu")
    work_dir.mkdir(parents=True, exist_ok=True)
    model.to(device).float()
    params = trainable_parameters(model, options.trainable)
    weights, start = None, None
    if reference is not None:
        reference.to(device).float()
        ref_params = trainable_parameters(reference, options.trainable)
        if set(ref_params) != set(params) or any(ref_params[n].shape != p.shape for n, p in params.items()):
            raise ValueError("the reference model (theta_0) is not the same architecture as the trained one")
        if options.regulariser == "fisher":
            weights = _anchor_fisher(reference, tok, anchors, ref_params, anchor_states, device)
        start = {n: p.detach() for n, p in ref_params.items()}
        for p in ref_params.values():
            p.requires_grad_(False)
    elif options.regulariser == "fisher":
        weights = _anchor_fisher(model, tok, anchors, params, anchor_states, device)
    regulariser = Regulariser(params, options.regulariser, weights, start)
    optimizer = torch.optim.AdamW(params.values(), lr=options.lr, weight_decay=0.0)  # L_reg is the only penalty
    steps_per_epoch = math.ceil(len(train) / options.batch_size)
    total = steps_per_epoch * options.epochs
    evaluated = held_out[: options.eval_max] if options.eval_max is not None else held_out
    history: list[StepRecord] = []
    step = 0
    before: Evaluation | None = None
    if options.resume is not None:
        ckpt = load_checkpoint(Path(options.resume))
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt["dims"] != model.dims.as_dict():
            raise ValueError(f"{options.resume}: checkpoint of another model or format; start without --resume")
        if ckpt["data"] != _fingerprint(train) or ckpt["options"] != _options_record(options):
            raise ValueError(f"{options.resume}: written for other data or options; resume with the same --data "
                             "and options, or start without --resume")
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(ckpt["params"][n].to(device))
        optimizer.load_state_dict(ckpt["optimizer"])
        _set_rng_state(ckpt["rng"])
        step = int(ckpt["step"])
        history = [StepRecord(*r) for r in ckpt["history"]]
        if ckpt["before"] is not None:
            w, n, rows = ckpt["before"]
            before = Evaluation(w, n, tuple(tuple(r) for r in rows))
        log.info("resumed from %s at step %d of %d", options.resume, step, total)
    elif evaluated:
        before = evaluate(model, evaluated, tok, options.device)
        log.info("held-out WER before training: %.1f%% (%d words)", 100 * before.wer, before.words)
    stop_at = total if options.max_steps is None else min(total, options.max_steps)

    cache = None if audio_states is None else audio_states.to(device)
    if cache is not None and (options.trainable != "decoder" or cache.shape[0] != len(train)):
        raise ValueError("audio_states are for trainable='decoder' and must hold one row per training example")
    if cache is None and options.trainable == "decoder":  # the speech encoder is frozen: its outputs are computed once
        with torch.no_grad():
            cache = torch.cat([model.encoder(torch.from_numpy(collate(train[i: i + options.batch_size], tok)[0])
                                             .to(device)) for i in range(0, len(train), options.batch_size)])

    checkpoint = work_dir / CHECKPOINT
    saved_at = -1
    progress = Progress(total, stream, options.progress)
    model.train()
    try:
        while step < stop_at:
            epoch, index = divmod(step, steps_per_epoch)
            gen = torch.Generator().manual_seed(options.seed * 100_003 + epoch)
            order = torch.randperm(len(train), generator=gen).tolist()
            chunk = order[index * options.batch_size: (index + 1) * options.batch_size]
            mel, ids, labels = collate([train[i] for i in chunk], tok)
            ids_t, labels_t = torch.from_numpy(ids).to(device), torch.from_numpy(labels).to(device)
            with torch.set_grad_enabled(options.alpha > 0):
                xa = cache[chunk] if cache is not None else model.encoder(torch.from_numpy(mel).to(device))
                recon = reconstruction_loss(model.decoder(ids_t, xa), labels_t)
            with torch.set_grad_enabled(options.alpha < 1):
                reg = regulariser()
            loss = total_loss(options.alpha, recon, reg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if options.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params.values(), options.grad_clip)
            optimizer.step()
            step += 1
            history.append(StepRecord(step, epoch, loss.item(), recon.item(), reg.item()))
            progress.update(history[-1], options.epochs)
            if step % options.checkpoint_every == 0 or step % steps_per_epoch == 0:
                save_checkpoint(checkpoint, model, params, optimizer, step, options, train, history, before)
                saved_at = step
    except KeyboardInterrupt:
        progress.close()
        save_checkpoint(checkpoint, model, params, optimizer, step, options, train, history, before)
        log.warning("interrupted at step %d; continue with --resume %s", step, checkpoint)
        raise
    progress.close()
    if saved_at != step:
        save_checkpoint(checkpoint, model, params, optimizer, step, options, train, history, before)
    model.eval()
    after = evaluate(model, evaluated, tok, options.device) if evaluated else None
    if after is not None:
        log.info("held-out WER after training: %.1f%% (before %.1f%%)", 100 * after.wer,
                 100 * before.wer if before else float("nan"))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return TrainResult(step, tuple(history), before, after, checkpoint, time.perf_counter() - started, peak)
