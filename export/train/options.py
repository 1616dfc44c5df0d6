"""What a fine-tuning run does, in one frozen dataclass (change it with ``dataclasses.replace``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

TRAINABLE = ("all", "decoder", "encoder")
REGULARISERS = ("from_start", "plain", "fisher")


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """L = alpha * L_recon + (1 - alpha) * L_reg, minimised with AdamW over the ``trainable`` parameters."""

    alpha: float = 0.9  # weight of L_recon; 1.0 switches the regulariser off, 0.0 leaves only it
    regulariser: str = "from_start"  # "from_start": sum ||theta - theta_0||^2 (keeps what the model knew);
    #                                  "plain": sum ||theta||^2, as the founding document writes it;
    #                                  "fisher": sum F (theta - theta_0)^2, F measured on anchor clips (EWC)
    trainable: str = "all"  # "all", "decoder" (speech encoder frozen: its outputs are computed once) or "encoder"
    epochs: int = 3
    max_steps: int | None = None  # stop after this many optimiser steps in all (None: run every epoch)
    lr: float = 1e-5
    batch_size: int = 4
    held_out: float = 0.2  # fraction of the data kept out of training to measure WER before and after
    language: str = "en"  # spoken language of the data (the <|lang|> token of the target sequence)
    seed: int = 0  # data split and shuffling
    checkpoint_every: int = 50  # steps between checkpoints (one is also written after every epoch and at the end)
    device: str = "cpu"  # "cpu" or "cuda"
    grad_clip: float | None = 1.0  # max global gradient norm; None: no clipping
    eval_max: int | None = None  # held-out clips to decode for WER (None: all)
    resume: Path | None = None  # a checkpoint written by an earlier run of the same data and options
    progress: bool = True  # a progress bar with the loss on stderr

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.regulariser not in REGULARISERS:
            raise ValueError(f"regulariser must be one of {', '.join(REGULARISERS)}, got {self.regulariser!r}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {', '.join(TRAINABLE)}, got {self.trainable!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise ValueError("epochs, batch_size and checkpoint_every must be at least 1")
        if self.max_steps is not None and self.max_steps < 0:
            raise ValueError(f"max_steps must be None or >= 0, got {self.max_steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.held_out < 1.0:
            raise ValueError(f"held_out must be in [0, 1), got {self.held_out}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be None or positive, got {self.grad_clip}")
