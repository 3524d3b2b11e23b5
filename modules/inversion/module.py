"""Feature map inversion as a LightningModule whose only trainable parameter is a batch of images.

``InversionModule`` holds the optimisation of the original (docs/inversion.md): B images start from the
same near-gray noise and each is pulled towards its own targets by ½‖φ(F_l(x_b)) − T_b,l‖² summed
over its layers, φ being the code itself, its energy vector or its Gram matrix. The loss of the
batch is the sum of the per-image losses, so no gradient mixes images and one batched optimisation
of N targets gives the same images as N separate ones (SGD with momentum, weight decay, gradient
clipping by value and the step schedule all act element-wise; early stopping is per image).

Subclasses say which targets the images get and how the results are laid out:
``FeatureMapInversion`` (layers × filters), ``RandomReallocation`` (several random energy
reallocations) and ``StyleTransfer`` (purposeful energy matching next to Gram matching).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import nn

from affectlab.callbacks.publish import publish
from affectlab.experiments.errors import InvalidValue
from affectlab.modules.inversion import codes
from affectlab.modules.inversion.denoise import from_unit, postprocess
from affectlab.modules.inversion.grids import save_grid
from affectlab.modules.inversion.trunk import FeatureTrunk

#: Layers of the purposeful / Gram style loss: the authors' vis_style.py (Gatys et al. add relu5_1).
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
#: The images StyleTransfer can produce, and their titles in the grid.
STYLE_METHODS = {"energy": "purposeful (energy)", "gram": "Gram", "content": "content only",
                 "sort_and_shift": "sort-and-shift code"}


@dataclass
class Term:
    """One loss term of one image: weight · ½‖statistic(F_layer(x_image)) − target‖²."""

    image: int
    layer: str
    statistic: str          # "code" | "energy" | "gram" (codes.STATISTICS)
    target: torch.Tensor    # C×H×W, C or C×C — without the batch dimension
    weight: float = 1.0


@dataclass
class _Group:
    """Terms sharing (layer, statistic), evaluated for their images in one batched call."""

    layer: str
    statistic: str
    index: torch.Tensor     # n image indices
    target: torch.Tensor    # n×…
    weight: torch.Tensor    # n


class InversionModule(LightningModule):
    """Optimises ``num_images`` images towards per-image targets computed from a content (and style) image.

    Each training batch is ``{"content": 1×3×S×S, "style": 1×3×S'×S'}`` in 0–1 RGB (the DataModule
    repeats it once per iteration); the targets are computed from it at the first step.

    Args:
        network, pretrained, pooling, feature_scale: the trunk (``FeatureTrunk``); ``network`` may be the
            path of a classifier checkpoint written by ``affectlab fit`` (``modules/inversion/trained.py``).
        image_size: S, side of the optimised images (linked from the DataModule).
        optimizer: ``sgd`` (the original) or ``lbfgs`` (an option: strong-Wolfe line search,
            lr 1, no clipping; its curvature memory spans the batch, so it stops for the batch).
        lr, momentum, weight_decay, clip, lr_step, lr_gamma: SGD lr 0.1, momentum 0.9, weight decay
            5e-4 on the image, gradients clipped element-wise to ±10, lr × 0.9 every 10 steps.
        stop_eps: stop when ‖x_t − x_{t−1}‖ / ‖x_t‖ < stop_eps (0.005).
        stop_per_image: apply the stop rule to each image (a converged image is frozen and leaves the
            forward pass while the rest go on; the run ends when all have stopped), which makes a batched inversion equal
            to separate ones; otherwise to the whole batch (one norm over all images).
        init_noise: start at uniform ±init_noise around the mean (the same noise for every image).
        tv_weight, tv_beta, alpha_weight, alpha: optional priors in the loss (Mahendran & Vedaldi),
            off by default as in the original.
        denoise_weight: Chambolle TV weight of the post-processing (0.2; 0 disables).
        seed: seeds the start noise, the random reallocations and a trunk's random weights
            (``pretrained=False``), independently of the global RNG.
        truncate: run the trunk only up to the deepest target layer.
        chunk_size: images per pass through the trunk (gradients accumulated over the chunks, the
            same images as one pass); None: the whole batch at once. Bounds memory on a GPU; on a
            CPU a chunk of 1–2 images is faster per image than large batches (benchmarks/RESULTS.md).
    """

    grid_name = "inversion"

    def __init__(
        self,
        network: str = "vgg19",
        pretrained: bool = True,
        pooling: str = "avg",
        feature_scale: float | None = None,
        image_size: int = 224,
        optimizer: str = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        clip: float = 10.0,
        lr_step: int = 10,
        lr_gamma: float = 0.9,
        stop_eps: float = 0.005,
        stop_per_image: bool = True,
        init_noise: float = 0.1,
        tv_weight: float = 0.0,
        tv_beta: float = 2.0,
        alpha_weight: float = 0.0,
        alpha: float = 6.0,
        denoise_weight: float = 0.2,
        seed: int = 0,
        truncate: bool = True,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if optimizer not in ("sgd", "lbfgs"):
            raise InvalidValue(f"optimizer must be 'sgd' or 'lbfgs', got {optimizer!r}")
        if chunk_size is not None and chunk_size < 1:
            raise InvalidValue(f"chunk_size must be a positive number of images or None, got {chunk_size}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.strict_loading = False     # checkpoints leave out the frozen trunk (on_save_checkpoint)
        with torch.random.fork_rng():        # random (not pretrained) weights are a function of the seed too
            torch.manual_seed(seed)
            self.trunk = FeatureTrunk(network, pretrained, pooling, feature_scale)
        self.trunk.check(self.content_layers() + self.style_layers())
        generator = torch.Generator().manual_seed(seed)
        noise = (torch.rand(1, 3, image_size, image_size, generator=generator) * 2 - 1) * init_noise
        self.image = nn.Parameter(noise.repeat(self.num_images, 1, 1, 1))   # B×3×S×S, 0–255 minus mean
        self.register_buffer("stopped_at", torch.zeros(self.num_images, dtype=torch.long))  # 0: still running
        self.iteration = 0
        self._groups: list[_Group] | None = None
        self._last_losses: torch.Tensor | None = None            # B, for logging
        self._layers: list[str] = []
        self._shown: dict[str, torch.Tensor] = {}

    # -- what a subclass defines ------------------------------------------------------------------------
    @property
    def num_images(self) -> int:
        raise NotImplementedError

    def content_layers(self) -> list[str]:
        """Layers whose content codes the targets need."""
        return []

    def style_layers(self) -> list[str]:
        """Layers whose style-image codes the targets need."""
        return []

    def terms(self, content: dict[str, torch.Tensor], style: dict[str, torch.Tensor],
              generator: torch.Generator) -> list[Term]:
        """Every image's loss terms, from the codes ``{layer: C×H×W}`` of the content and style."""
        raise NotImplementedError

    def layout(self) -> tuple[list[list[tuple[int | str, str]]], list[str]]:
        """The results grid: rows of (image index or "content"/"style", title) cells, and row labels."""
        raise NotImplementedError

    # -- the loss -------------------------------------------------------------------------------------
    def prepare(self, batch: dict[str, torch.Tensor]) -> None:
        """Compute the targets from the batch's content (and style) image; called at the first step."""
        content = batch["content"]
        size = self.hparams.image_size
        if content.shape[-2:] != (size, size):
            raise InvalidValue(f"the content image is {tuple(content.shape[-2:])}, the optimised images {size}×{size}: "
                               f"set data.image_size (linked to model.image_size)")
        content = from_unit(content[:1])
        style = from_unit(batch["style"][:1]) if batch.get("style") is not None else None
        if self.style_layers() and style is None:
            raise InvalidValue(f"{type(self).__name__} needs a style image: set data.style")
        with torch.no_grad():
            content_codes = {k: v[0] for k, v in self.trunk(content, self.content_layers()).items()} \
                if self.content_layers() else {}
            style_codes = {k: v[0] for k, v in self.trunk(style, self.style_layers()).items()} \
                if self.style_layers() else {}
        generator = torch.Generator().manual_seed(self.hparams.seed)
        self._groups = self.group(self.terms(content_codes, style_codes, generator))
        self._layers = sorted({g.layer for g in self._groups}, key=self.trunk.depth)
        self._shown = {"content": content[0].detach(), **({"style": style[0].detach()} if style is not None else {})}

    def group(self, terms: list[Term]) -> list[_Group]:
        """Stack the terms that share (layer, statistic) so each group costs one batched call."""
        keys: dict[tuple[str, str], list[Term]] = {}
        for term in terms:
            keys.setdefault((term.layer, term.statistic), []).append(term)
        device, dtype = self.image.device, self.image.dtype
        return [_Group(layer, statistic,
                       torch.tensor([t.image for t in ts], device=device),
                       torch.stack([t.target for t in ts]).to(device, dtype),
                       torch.tensor([t.weight for t in ts], device=device, dtype=dtype))
                for (layer, statistic), ts in keys.items()]

    def image_losses(self, images: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """Each image's loss. ``B×3×S×S`` → ``B``; image b's loss depends on image b alone.

        ``active`` (``B`` bool) leaves converged images out of the forward pass: their loss is 0 and
        they cost nothing, which changes no other image's loss or gradient.
        """
        assert self._groups is not None, "targets are computed at the first training step (prepare)"
        if active is not None and not bool(active.all()):
            position = torch.cumsum(active.long(), 0) - 1                      # B: index in the sub-batch
            kept = self._losses(images[active], position, active)             # n_active
            return images.new_zeros(images.shape[0]).index_put((active.nonzero()[:, 0],), kept)
        return self._losses(images)

    def _losses(self, images: torch.Tensor, position: torch.Tensor | None = None,
                active: torch.Tensor | None = None) -> torch.Tensor:
        features = self.trunk(images, self._layers, truncate=self.hparams.truncate)
        losses = images.new_zeros(images.shape[0])
        everyone = torch.arange(images.shape[0], device=images.device)
        for g in self._groups:
            index, target, weight = g.index, g.target, g.weight
            if active is not None:                                              # this group's active images
                keep = active[index]
                if not bool(keep.any()):
                    continue
                index, target, weight = position[index[keep]], target[keep], weight[keep]
            f = features[g.layer]                                                  # B×C×H×W
            if index.numel() != f.shape[0] or not torch.equal(index, everyone):
                f = f[index]                                                       # n×C×H×W
            residual = codes.STATISTICS[g.statistic](f) - target                 # n×…
            per_image = 0.5 * weight * residual.pow(2).flatten(1).sum(1)             # n
            # indices within a group are unique: a plain (deterministic) scatter, no atomic adds on GPU
            losses = losses + losses.new_zeros(losses.shape).index_put((index,), per_image)
        if self.hparams.tv_weight:
            losses = losses + self.hparams.tv_weight * tv_prior(images, self.hparams.tv_beta)
        if self.hparams.alpha_weight:
            losses = losses + self.hparams.alpha_weight * alpha_prior(images, self.hparams.alpha)
        return losses

    def accumulate_gradients(self, active: torch.Tensor | None = None,
                             backward: Callable[[torch.Tensor], Any] = torch.Tensor.backward) -> torch.Tensor:
        """Each image's loss (``B``, detached), its gradient accumulated into ``image.grad``.

        The loss is a sum over images, so each image gets only its own gradient. With ``chunk_size``
        the ``active`` images go through the trunk and back ``chunk_size`` at a time: only one
        chunk's activations are held, and the gradients are those of the whole batch.
        """
        size = self.image.shape[0]
        chosen = torch.arange(size, device=self.image.device) if active is None else active.nonzero()[:, 0]
        losses = self.image.new_zeros(size)
        for part in chosen.split(self.hparams.chunk_size or size):
            mask = torch.zeros(size, dtype=torch.bool, device=self.image.device)
            mask[part] = True
            chunk_losses = self.image_losses(self.image, mask)                  # B, zero outside the chunk
            backward(chunk_losses.sum())
            losses += chunk_losses.detach()
        return losses

    # -- the optimisation -----------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        if self.hparams.optimizer == "lbfgs":
            return torch.optim.LBFGS([self.image], lr=1.0, max_iter=1, history_size=100,
                                     line_search_fn="strong_wolfe")
        optimizer = torch.optim.SGD([self.image], lr=self.hparams.lr, momentum=self.hparams.momentum,
                                    weight_decay=self.hparams.weight_decay)
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, self.hparams.lr_step, self.hparams.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    @property
    def per_image(self) -> bool:
        return self.hparams.stop_per_image and self.hparams.optimizer == "sgd"

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self._groups is None:
            self.prepare(batch)
        optimizer = self.optimizers()
        running = self.stopped_at == 0                                              # B
        previous = self.image.detach().clone()
        last: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            losses = self.accumulate_gradients(running if self.per_image else None, self.manual_backward)
            if self.hparams.optimizer == "sgd" and self.hparams.clip:
                nn.utils.clip_grad_value_([self.image], self.hparams.clip)   # element-wise, as MXNet's clip_gradient
            last["losses"] = losses
            return losses.sum()

        optimizer.step(closure=closure)
        if self.hparams.optimizer == "sgd":
            self.lr_schedulers().step()
        self.iteration += 1
        with torch.no_grad():
            if self.per_image:
                self.image[~running] = previous[~running]                          # converged images stay put
                change = (self.image - previous).flatten(1).norm(dim=1) / self.image.flatten(1).norm(dim=1).clamp_min(1e-12)
                self.stopped_at[running & (change < self.hparams.stop_eps)] = self.iteration
                done = bool((self.stopped_at > 0).all())
            else:
                change = (self.image - previous).norm() / self.image.norm().clamp_min(1e-12)
                done = bool(change < self.hparams.stop_eps)
                if done:
                    self.stopped_at[self.stopped_at == 0] = self.iteration
        if done:
            self.trainer.should_stop = True
        # converged images left the forward pass: they count with the loss of their last computed step
        self._last_losses = torch.where(running, last["losses"], self._last_losses) \
            if self._last_losses is not None else last["losses"]
        losses = self._last_losses
        self.log("train/loss", losses.sum(), prog_bar=True)
        self.log("train/running", (self.stopped_at == 0).sum().float())
        return losses.sum()

    def on_fit_start(self) -> None:
        # The trunk is a fixed function of the image and stays in eval mode on purpose.
        warnings.filterwarnings("ignore", r"Found \d+ module\(s\) in eval mode", PossibleUserWarning)

    def on_train_start(self) -> None:
        self.iteration = self.global_step           # a resumed run goes on counting

    def on_train_end(self) -> None:
        self.write_outputs()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The trunk is fixed and rebuilt from its weights at load: keep checkpoints to the images."""
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("trunk.")}

    # -- outputs --------------------------------------------------------------------------------------
    def results(self) -> torch.Tensor:
        """The inverted images, post-processed as the original. ``B×3×S×S`` uint8 (grey for a grey-level network)."""
        return postprocess(self.trunk.preprocess.seen(self.image.float()), self.hparams.denoise_weight)

    @rank_zero_only
    def write_outputs(self) -> Path | None:
        """Write the labelled grid (``<grid_name>.png``) and the plain grid to the run folder and W&B."""
        if self._groups is None:
            return None
        images = self.results()
        shown = {k: postprocess(v[None].float(), 0.0)[0] for k, v in self._shown.items()}
        rows, row_labels = self.layout()
        grid = [[(shown[key] if isinstance(key, str) else images[key], label) for key, label in row] for row in rows]
        folder = Path(self.trainer.default_root_dir if self._trainer is not None else ".")
        path = save_grid(grid, folder / f"{self.grid_name}.png", row_labels,
                         title=f"{type(self).__name__} — {Path(self.hparams.network).name}, {self.iteration} iterations")
        publish(self._trainer, f"inversion/{self.grid_name}", path)
        return path


def tv_prior(images: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Σ ((Δ_h x)² + (Δ_v x)²)^{β/2} per image, on the 0–255 scale. ``B×3×H×W`` → ``B``."""
    dh = images[..., :-1, 1:] - images[..., :-1, :-1]
    dv = images[..., 1:, :-1] - images[..., :-1, :-1]
    return (dh.pow(2) + dv.pow(2) + 1e-8).pow(beta / 2).flatten(1).sum(1)


def alpha_prior(images: torch.Tensor, alpha: float = 6.0) -> torch.Tensor:
    """Σ |x / 128|^α per image: keeps pixels within the 0–255 range (128 ≈ half of it). ``B×3×H×W`` → ``B``."""
    return (images / 128.0).abs().pow(alpha).flatten(1).sum(1)


class FeatureMapInversion(InversionModule):
    """What every filter extracts: layers × filters, each image inverting a ``feature_map`` code.

    Image (l, k) matches T = feature_map(A_l, k) at layer l only; with ``include_original`` each row
    starts with the plain inversion of A_l (the ``original`` code) for reference.

    Args:
        layers: rows of the grid (relu1_1 … relu5_4 for VGG-19).
        filters: filters of interest k, the same for every layer (columns).
        include_original: add the ``original`` inversion of each layer as the first column.
        **kwargs: ``InversionModule``'s optimisation arguments.
    """

    grid_name = "filters"

    def __init__(self, layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                 filters: Sequence[int] = (0, 1, 2, 3, 4, 5, 6, 7), include_original: bool = True, **kwargs: Any) -> None:
        self.layers, self.filters, self.include_original = list(layers), [int(k) for k in filters], include_original
        super().__init__(**kwargs)

    @property
    def columns(self) -> list[int | None]:
        """None stands for the original code, k for the filter of interest."""
        return ([None] if self.include_original else []) + self.filters

    @property
    def num_images(self) -> int:
        return len(self.layers) * len(self.columns)

    def content_layers(self) -> list[str]:
        return self.layers

    def terms(self, content, style, generator) -> list[Term]:
        out, image = [], 0
        for layer in self.layers:
            for k in self.columns:
                target = codes.original(content[layer]) if k is None else codes.feature_map(content[layer], k)
                out.append(Term(image, layer, "code", target))
                image += 1
        return out

    def layout(self):
        titles = ["original" if k is None else f"filter {k}" for k in self.columns]
        width = len(titles)
        rows = [[("content", "content")] + [(r * width + c, titles[c]) for c in range(width)]
                for r in range(len(self.layers))]
        return rows, self.layers


class RandomReallocation(InversionModule):
    """Images of diverse styles: invert ``samples`` random energy reallocations of the content code.

    Every sample draws its own shares at every layer (``codes.random``); the loss is summed over
    ``layers``. The first image inverts the unmodified code for reference.
    """

    grid_name = "random"

    def __init__(self, layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1"), samples: int = 7,
                 share_mean: float = 3.0, share_std: float = 1000.0, **kwargs: Any) -> None:
        self.layers, self.samples, self.share_mean, self.share_std = list(layers), int(samples), share_mean, share_std
        super().__init__(**kwargs)

    @property
    def num_images(self) -> int:
        return 1 + self.samples

    def content_layers(self) -> list[str]:
        return self.layers

    def terms(self, content, style, generator) -> list[Term]:
        out = [Term(0, layer, "code", codes.original(content[layer])) for layer in self.layers]
        for image in range(1, self.num_images):
            for layer in self.layers:
                out.append(Term(image, layer, "code",
                                codes.random(content[layer], generator, self.share_mean, self.share_std)))
        return out

    def layout(self):
        cells = [("content", "content"), (0, "original")] + [(i, f"random {i}") for i in range(1, self.num_images)]
        rows = [cells[i:i + 5] for i in range(0, len(cells), 5)]
        return rows, [""] * len(rows)


class StyleTransfer(InversionModule):
    """Purposeful reallocation (per-channel energy of the style) next to Gram-matrix style transfer and controls.

    One image per entry of ``methods`` (``STYLE_METHODS``), all from the same start noise:

    - ``energy``: the content code at ``content_layer`` (relu2_2 in the paper) plus the style's
      energy vectors at ``style_layers`` — the authors' purposeful style transfer (``vis_style.py``);
    - ``gram``: the content code plus the style's Gram matrices (Gatys et al.), same weights;
    - ``content``: the content code alone — the control both are compared with (``style_losses``);
    - ``sort_and_shift``: plain inversion of the authors' ``purposeful`` code modification
      (``vis_invert.py``, ``codes.sort_and_shift``) at ``style_layers``: content patterns moved to the
      style's channel ranks and energies; no separate content term, as there.

    Each style term is its squared error relative to ‖target‖², scaled by ‖content target‖² /
    len(style_layers), so ``style_weight : content_weight`` weighs relative errors in the units of
    the unnormalised content loss — the same ratio then means the same for energies and Gram
    matrices, whose raw magnitudes differ by orders of magnitude. Relative errors do not depend on
    whether the energy is a sum over positions (the original) or a mean (here): ‖Σ − Σ'‖²/‖Σ'‖² =
    ‖mean − mean'‖²/‖mean'‖². Weight decay defaults to the original's 5e-3 for style transfer.
    """

    grid_name = "style"

    def __init__(self, content_layer: str = "relu2_2", style_layers: Sequence[str] = STYLE_LAYERS,
                 content_weight: float = 1.0, style_weight: float = 10.0,
                 methods: Sequence[str] = ("energy", "gram", "content", "sort_and_shift"),
                 weight_decay: float = 5e-3, **kwargs: Any) -> None:
        unknown = [m for m in methods if m not in STYLE_METHODS]
        if unknown or not methods or len(set(methods)) != len(methods):
            raise InvalidValue(f"methods must be distinct names among {list(STYLE_METHODS)}, got {list(methods)}")
        self.content_layer, self.style_layer_names = content_layer, list(style_layers)
        self.content_weight, self.style_weight, self.methods = content_weight, style_weight, list(methods)
        self._statistics: dict[str, dict[str, torch.Tensor]] = {}
        super().__init__(weight_decay=weight_decay, **kwargs)

    @property
    def num_images(self) -> int:
        return len(self.methods)

    def content_layers(self) -> list[str]:
        extra = self.style_layer_names if "sort_and_shift" in self.methods else []
        return list(dict.fromkeys([self.content_layer, *extra]))

    def style_layers(self) -> list[str]:
        return self.style_layer_names

    def terms(self, content, style, generator) -> list[Term]:
        target = codes.original(content[self.content_layer])
        units = float(target.pow(2).sum().clamp_min(1e-12)) / len(self.style_layer_names)
        self._statistics = {"content": {self.content_layer: target},
                            "energy": {layer: codes.purposeful(style[layer]) for layer in self.style_layer_names},
                            "gram": {layer: codes.gram(style[layer]) for layer in self.style_layer_names}}
        out = []
        for image, method in enumerate(self.methods):
            if method == "sort_and_shift":
                out += [Term(image, layer, "code", codes.sort_and_shift(content[layer], style[layer]))
                        for layer in self.style_layer_names]
                continue
            out.append(Term(image, self.content_layer, "code", target, self.content_weight))
            if method in ("energy", "gram"):
                for layer in self.style_layer_names:
                    s = self._statistics[method][layer]
                    out.append(Term(image, layer, method, s,
                                    self.style_weight * units / float(s.pow(2).sum().clamp_min(1e-12))))
        return out

    @torch.no_grad()
    def style_losses(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Relative errors of ``images`` (``B×3×S×S``, the original's space) against the targets. → ``{name: B}``.

        ``gram`` and ``energy``: ‖stat(F_l(x)) − stat(style_l)‖² / ‖stat(style_l)‖² averaged over the
        style layers; ``content``: ‖F(x) − F(content)‖² / ‖F(content)‖² at the content layer. How
        far energy matching gets in Gram loss (and Gram matching in energy loss), against the
        content-only image, is what the Gram explanation of the paper predicts.
        """
        assert self._statistics, "targets are computed at the first training step (prepare)"
        features = self.trunk(images, list(dict.fromkeys([self.content_layer, *self.style_layer_names])))
        out = {}
        for name in ("gram", "energy"):
            out[name] = torch.stack([(codes.STATISTICS[name](features[layer]) - s).pow(2).flatten(1).sum(1)
                                     / s.pow(2).sum().clamp_min(1e-12)
                                     for layer, s in self._statistics[name].items()]).mean(0)
        target = self._statistics["content"][self.content_layer]
        out["content"] = (features[self.content_layer] - target).pow(2).flatten(1).sum(1) / target.pow(2).sum().clamp_min(1e-12)
        return out

    def layout(self):
        return [[("content", "content"), ("style", "style")]
                + [(i, STYLE_METHODS[m]) for i, m in enumerate(self.methods)]], [""]
