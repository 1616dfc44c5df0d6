"""The founding document's objective, L = alpha * L_recon + (1 - alpha) * L_reg.

- ``L_recon``: token cross-entropy of the decoder on the target text (mean over target tokens);
- ``L_reg``: sum over the trained parameters of ||theta - theta_0||^2 (``from_start``: the L2 distance
  from the starting weights, so fine-tuning keeps what the model knew) or ||theta||^2 (``plain``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from export.train.data import IGNORE


def reconstruction_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """logits [b, t, vocab], labels [b, t] (IGNORE where no loss) -> mean cross-entropy over target tokens."""
    return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)


class Regulariser:
    """L_reg over named parameters; ``from_start`` remembers theta_0 when it is created."""

    def __init__(self, params: dict[str, nn.Parameter], kind: str = "from_start"):
        if kind not in ("from_start", "plain"):
            raise ValueError(f"regulariser must be 'from_start' or 'plain', got {kind!r}")
        self.kind = kind
        self.params = params
        self.start = {n: p.detach().clone() for n, p in params.items()} if kind == "from_start" else {}

    def __call__(self) -> Tensor:
        total = None
        for name, p in self.params.items():
            d = p - self.start[name] if self.kind == "from_start" else p
            term = d.float().pow(2).sum()
            total = term if total is None else total + term
        assert total is not None, "no trained parameters"
        return total


def total_loss(alpha: float, recon: Tensor | None, reg: Tensor | None) -> Tensor:
    """alpha * recon + (1 - alpha) * reg; a term whose weight is zero is left out of the graph entirely."""
    parts = []
    if alpha > 0:
        assert recon is not None
        parts.append(alpha * recon)
    if alpha < 1:
        assert reg is not None
        parts.append((1 - alpha) * reg)
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


def trainable_parameters(model: nn.Module, which: str) -> dict[str, nn.Parameter]:
    """Mark `which` parameters ("all", "decoder", "encoder") trainable, freeze the rest; returns the trained ones."""
    out = {}
    for name, p in model.named_parameters():
        train = which == "all" or name.startswith(which + ".")
        p.requires_grad_(train)
        if train:
            out[name] = p
    if not out:
        raise ValueError(f"no parameters match trainable={which!r}")
    return out


@torch.no_grad()
def parameter_distance(model: nn.Module, start: dict[str, Tensor]) -> float:
    """sqrt(sum ||theta - theta_0||^2) over the parameters in `start` (for reports)."""
    params = dict(model.named_parameters())
    return float(sum((params[n].float() - t.float()).pow(2).sum() for n, t in start.items()) ** 0.5)
