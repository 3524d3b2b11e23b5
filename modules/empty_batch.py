"""A training batch whose every file was unreadable, under DDP (docs/reliability.md, "DDP and unreadable files").

On one process such a batch is simply skipped. Under DDP every rank must take part in the
gradient all-reduce of every step, or the other ranks wait for ever; the empty rank therefore
backpropagates ``zero_loss``: a zero that reaches every trainable parameter, so its gradient is
exactly zero and the optimisers step together on every rank.
"""

from __future__ import annotations

import lightning as L
import torch


def distributed(module: L.LightningModule) -> bool:
    """Whether ``module`` trains on more than one process."""
    return module._trainer is not None and module.trainer.world_size > 1


def zero_loss(module: torch.nn.Module, *outputs: torch.Tensor) -> torch.Tensor:
    """``0 · Σ p`` over the trainable parameters (and any ``outputs`` of an empty forward pass)."""
    terms = [p.sum() for p in module.parameters() if p.requires_grad] + [o.sum() for o in outputs]
    return torch.stack(terms).sum() * 0.0 if terms else torch.zeros(())
