"""Attribute sweeps, attribute-control accuracy and image grids shared by both AD-VAE stages.

docs/advae.md (outputs): grids of drawing → photos across attribute settings and sampled styles,
and an attribute classifier's accuracy on generated images as the measure of attribute control.
Grids are saved as PNGs under ``trainer.default_root_dir/media/`` and, when the logger is
Weights & Biases, logged with ``WandbLogger.log_image``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.utils import make_grid

from affectlab.callbacks.publish import publish

#: Hair colours are one choice among several: asking for one turns the others off.
HAIR_GROUP = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
COMPLEXION = ("Pale_Skin", "Rosy_Cheeks")


def with_attribute(attributes: torch.Tensor, names: list[str], name: str, value: float) -> torch.Tensor:
    """``B×K`` attributes with ``name`` set to ``value`` (setting a hair colour clears the others)."""
    out = attributes.clone()
    if value and name in HAIR_GROUP:
        for other in HAIR_GROUP:
            if other in names:
                out[:, names.index(other)] = 0.0
    out[:, names.index(name)] = float(value)
    return out


def settings(names: list[str]) -> list[tuple[str, float]]:
    """Every (attribute, requested value) the control accuracy asks for.

    Hair colours are only asked "on" (asking one "off" does not say which colour to draw); every
    other attribute is asked on and off.
    """
    out: list[tuple[str, float]] = []
    for name in names:
        out.append((name, 1.0))
        if name not in HAIR_GROUP:
            out.append((name, 0.0))
    return out


@torch.no_grad()
def control_hits(classifier: torch.nn.Module, generate: Callable[[torch.Tensor], torch.Tensor],
                 attributes: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Whether the classifier finds each requested attribute in the generated image.

    Args:
        classifier: photo attribute classifier, ``B×3×S×S`` → ``B×K`` logits.
        generate: ``B×K`` requested attributes → ``B×3×S×S`` images in [0, 1] (same content/style).
        attributes: ``B×K`` the images' own attributes (the other attributes stay as they are).
        names: the K attribute names.

    Returns:
        ``B·M`` booleans, one per image and requested (attribute, value).
    """
    hits = []
    for name, value in settings(names):
        requested = with_attribute(attributes, names, name, value)
        logits = classifier(generate(requested))
        hits.append((logits[:, names.index(name)] > 0) == bool(value))
    return torch.cat(hits)


@torch.no_grad()
def control_floor_hits(classifier: torch.nn.Module, images: torch.Tensor, attributes: torch.Tensor,
                       names: list[str]) -> torch.Tensor:
    """``control_hits`` of a generator that ignores the request: the chance floor of attribute control.

    ``images`` are generated with the faces' own attributes; each request of ``settings`` counts as
    a hit when the classifier already finds the requested value there. With hair colours asked "on"
    only this floor is about 0.42 on balanced attributes, not 0.5 (docs/advae.md, control).
    """
    logits = classifier(images)
    return torch.cat([(logits[:, names.index(name)] > 0) == bool(value) for name, value in settings(names)])


def corrected_control(accuracy: torch.Tensor | float, floor: torch.Tensor | float) -> torch.Tensor:
    """Chance-corrected control ``(accuracy − floor) / (1 − floor)``: 0 ignores the request, 1 obeys it."""
    accuracy, floor = torch.as_tensor(accuracy, dtype=torch.float32), torch.as_tensor(floor, dtype=torch.float32)
    return (accuracy - floor) / (1 - floor).clamp_min(1e-6)


def log_control(module, control, floor) -> None:
    """Log ``val/attr_control_acc``, its floor and the corrected value from two ``MeanMetric``s (then reset)."""
    if not control.update_called:
        return
    accuracy, chance = control.compute(), floor.compute()
    module.log_dict({"val/attr_control_acc": accuracy, "val/attr_control_floor": chance,
                     "val/attr_control_corrected": corrected_control(accuracy, chance)})
    control.reset()
    floor.reset()


def sweep_columns(names: list[str]) -> list[tuple[str, float]]:
    """The columns of the hair-colour and complexion sweeps shown in the grids."""
    hair = [(n, 1.0) for n in HAIR_GROUP if n in names]
    complexion = [(n, v) for n in COMPLEXION if n in names for v in (0.0, 1.0)]
    return hair + complexion


def log_grid(module, key: str, rows: list[torch.Tensor], caption: str = "") -> Path | None:
    """Publish a grid to the run folder and W&B (``callbacks/publish.py``); returns the PNG path.

    Each element of ``rows`` (``N×C×S×S`` in [0, 1], gray expanded to RGB) is one row of the grid.
    ``None`` without a trainer.
    """
    trainer = getattr(module, "_trainer", None)
    if trainer is None or not rows:
        return None
    rows = [r.detach().float().cpu().clamp(0, 1) for r in rows]
    rows = [r.expand(-1, 3, -1, -1) if r.shape[1] == 1 else r for r in rows]
    grid = make_grid(torch.cat(rows), nrow=len(rows[0]), padding=1, pad_value=1.0)
    return publish(trainer, key, grid, caption or key)
