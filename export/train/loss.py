"""The founding document's objective, L = alpha * L_recon + (1 - alpha) * L_reg.

- ``L_recon``: token cross-entropy of the decoder on the target text (mean over target tokens);
- ``L_reg``: sum over the trained parameters of ||theta - theta_0||^2 (``from_start``: the L2 distance
  from the starting weights, so fine-tuning keeps what the model knew) or ||theta||^2 (``plain``), or
  (``fisher``) sum F * (theta - theta_0)^2: the same L2 distance, each weight's square scaled by its diagonal
  Fisher information on anchor clips (speech the model must keep recognising), as in elastic weight
  consolidation (Kirkpatrick et al. 2017). A uniform L2 pull holds back every weight alike, the ones the
  new words need and the ones general English rests on; the Fisher weighting spends it on the latter.
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
    """L_reg over named parameters; ``from_start`` and ``fisher`` remember theta_0 when it is created."""

    def __init__(self, params: dict[str, nn.Parameter], kind: str = "from_start",
                 weights: dict[str, Tensor] | None = None, start: dict[str, Tensor] | None = None):
        """``start``: theta_0 when it is not the parameters' present value (the stock model's weights, when
        training continues from a model tuned before: the pull is always toward the stock model)."""
        if kind not in ("from_start", "plain", "fisher"):
            raise ValueError(f"regulariser must be 'from_start', 'plain' or 'fisher', got {kind!r}")
        if (kind == "fisher") != (weights is not None):
            raise ValueError("the fisher regulariser takes per-parameter weights (fisher_weights); the others none")
        if weights is not None and set(weights) != set(params):
            raise ValueError("fisher weights must cover exactly the trained parameters")
        self.kind = kind
        self.params = params
        self.weights = weights or {}
        if start is not None and set(start) != set(params):
            raise ValueError("theta_0 must cover exactly the trained parameters")
        if kind == "plain":
            self.start = {}
        elif start is not None:
            self.start = {n: start[n].detach().to(p.device, p.dtype).clone() for n, p in params.items()}
        else:
            self.start = {n: p.detach().clone() for n, p in params.items()}

    def __call__(self) -> Tensor:
        total = None
        for name, p in self.params.items():
            d = p if self.kind == "plain" else p - self.start[name]
            term = d.float().pow(2)
            term = (term * self.weights[name]).sum() if self.kind == "fisher" else term.sum()
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


def fisher_weights(params: dict[str, nn.Parameter], losses) -> dict[str, Tensor]:
    """Diagonal empirical Fisher information of the trained parameters: the mean over ``losses`` (an
    iterable of scalar L_recon tensors, one per anchor clip, each with its graph) of the squared gradient,
    scaled so that its mean over all trained weights is 1 (so sum F*(theta-theta_0)^2 is on the scale of
    sum (theta-theta_0)^2, and alpha means the same for both). A weight no anchor clip's loss depends on
    gets 0: it is free to move."""
    names = list(params)
    sums = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    count = 0
    for loss in losses:
        grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
        for name, g in zip(names, grads):
            if g is not None:
                sums[name] += g.detach().float().pow(2)
        count += 1
    if not count:
        raise ValueError("the fisher regulariser needs at least one anchor clip")
    total = sum(float(s.sum()) for s in sums.values())
    elements = sum(s.numel() for s in sums.values())
    if total <= 0:
        raise ValueError("the anchor clips give no gradient to the trained parameters")
    scale = elements / total
    return {n: s * scale for n, s in sums.items()}
