"""AD-VAE's two training stages as LightningModules (docs/advae.md).

Stage 1 (``ADVAEStage1``) learns an attribute-disentangled VAE on photos: q(z|x) with
z = (z_content, z_style), p(x|z, a), and a latent adversary that predicts a from z and that the
encoder learns to fool (Fader networks), so that the attributes are carried by a alone. Three
optimisers step in each training step (manual optimisation): the VAE, the adversary, and a photo
attribute classifier used only to measure attribute control on generated images.

Stage 2 (``ADVAEStage2``) learns a drawing encoder r(z_content|d) matched to the frozen stage-1
encoder's posterior, and synthesises ``decoder(z_content(drawing), z_style, a_chosen)`` with z_style
from the prior (one drawing, many photos) or from a style photo (style transfer).
"""

from __future__ import annotations

import csv
import glob
import inspect
import logging
import warnings
from collections import deque
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchvision.utils import save_image

from affectlab.datamodules.celeba import DEFAULT_ATTRIBUTES
from affectlab.experiments.errors import InvalidValue, MissingPath
from affectlab.modules.advae.media import (
    HAIR_GROUP,
    control_floor_hits,
    control_hits,
    log_control,
    log_grid,
    sweep_columns,
    with_attribute,
)
from affectlab.modules.advae.networks import (
    AttributeAdversary,
    AttributeClassifier,
    AttributeDecoder,
    ConvEncoder,
    Gaussian,
)
from affectlab.modules.advae.probe import ProbeResult, fit_probe
from affectlab.modules.empty_batch import distributed, zero_loss

log = logging.getLogger(__name__)

#: Drawings shown in predict's grid.png (every synthesis is written as its own PNG regardless).
GRID_DRAWINGS = 32
#: Training images whose latents the disentanglement probe is fitted on (the first ones served).
PROBE_TRAIN_SAMPLES = 4096


def reconstruction_loss(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """−log p(x|z, a) summed over pixels, averaged over the batch (``B×C×S×S`` → scalar).

    ``bce``: Bernoulli likelihood of intensities in [0, 1]; ``mse``: Gaussian with unit variance (½‖x−x̂‖²).
    """
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    elif kind == "mse":
        per_pixel = 0.5 * (torch.sigmoid(logits) - target).pow(2)
    else:
        raise InvalidValue(f"reconstruction must be 'bce' or 'mse', not {kind!r}")
    return per_pixel.flatten(1).sum(1).mean()


def squared_correlation(z: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """Σ over latent dimensions i and attributes k of corr(z_i, a_k)² within the batch (scalar).

    A closed-form linear critic: unlike a trained adversary it is always at its optimum, so an
    encoder cannot escape it by moving the attribute to where the adversary is not yet looking.
    """
    zc, ac = z - z.mean(0), attributes - attributes.mean(0)
    cov = zc.T @ ac / len(z)  # D×K
    scale = zc.pow(2).mean(0).sqrt()[:, None] * ac.pow(2).mean(0).sqrt()[None] + 1e-6
    return (cov / scale).pow(2).sum()


def _ramp(step: int, warmup: int) -> float:
    """Linear warm-up factor 0 → 1 over ``warmup`` steps (1 when warmup ≤ 0)."""
    return 1.0 if warmup <= 0 else min(1.0, step / warmup)


class ADVAEStage1(L.LightningModule):
    """Stage 1: the attribute-disentangled VAE on photos (docs/advae.md).

    Loss of the VAE: ``reconstruction + β·KL + λ_adv·adversarial``. The adversary reads the
    posterior means (what a probe reads) and learns the attributes from them; the adversarial term
    is its cross-entropy against the batch's attribute *rates*, i.e. what an adversary that can
    read nothing would answer, so the encoder is rewarded for a z from which the attributes cannot
    be read (Fader networks use the flipped attributes instead, which a strong encoder can satisfy
    by encoding the attribute inverted). β and λ_adv warm up linearly; the adversary takes
    ``adv_steps`` steps per VAE step. Disentanglement is judged by a fresh probe on frozen z
    (``probe``), logged as ``val/probe_acc`` and ``val/probe_gap`` every ``probe_every_n_epochs``.

    Args:
        attributes: the K attribute names (linked from the DataModule).
        image_size: side of the images (linked from the DataModule).
        content_dim: dimensions of z_content (the face, what the drawing shows).
        style_dim: dimensions of z_style (background and illumination).
        width: channels of the first encoder block / last decoder block.
        reconstruction: ``bce`` or ``mse`` likelihood.
        beta: weight of KL(q(z|x) ‖ N(0, I)).
        kl_warmup_steps: steps over which β rises from 0.
        lambda_adv: weight of the adversarial term. It is a sum over the K attributes (≈ 5.5 nats
            at chance for 8) against a reconstruction summed over pixels (≈ 1,800 nats at 32 px),
            so it needs a weight in the hundreds to matter; 1000 with ``adv_steps=10`` was the
            best measured at 32 px (docs/advae.md). The reconstruction grows with the pixel count:
            scale λ_adv with it (4000 at 64 px in ``experiments/advae/celeba_stage1.yaml``).
        adv_warmup_steps: steps over which λ_adv rises from 0.
        adv_steps: adversary updates per VAE update; an adversary that lags behind the encoder is
            fooled without z losing the attributes.
        adv_memory: the extra adversary updates read the latents of this many recent batches besides
            the current one (0: the current batch only). A critic fitted again and again on one batch
            of 32 learns that batch; one fitted on a few hundred recent latents is closer to the
            probe that judges the result. Measured at 32 px (docs/advae.md): 8 brings the probe gap
            from 0.08 to about 0 at the same control.
        lambda_decor: weight of ``squared_correlation(z, a)``, a closed-form linear critic beside the
            adversary (same warm-up as λ_adv).
        lr: Adam learning rate of the VAE.
        adv_lr: Adam learning rate of the adversary.
        clf_lr: Adam learning rate of the evaluation classifier.
        content_from: what the content posterior q(z_content|·) reads. ``drawing`` (default):
            z_content is read from the photo's XDoG drawing and z_style from the photo (a
            style-only encoder), so the face's contours can only be content and the rest
            (background, illumination) must be style; measured: style transfer moves the background
            in 0.88 of cases against 0.36, and control from drawings in stage 2 is as good or
            better (docs/advae.md). ``photo``: one encoder reads the photo and outputs both parts,
            the literal reading of the paper; nothing then decides which part holds the face.
        control_batches: validation batches on which attribute control is measured.
        media_samples: images shown in the validation grids.
        probe_every_n_epochs: fit the disentanglement probe every n validation epochs and at the end
            of fit (0: never).
    """

    def __init__(self, attributes: list[str] | None = None, image_size: int = 64, content_dim: int = 32,
                 style_dim: int = 16, width: int = 32, reconstruction: str = "bce", beta: float = 1.0,
                 kl_warmup_steps: int = 1000, lambda_adv: float = 1000.0, adv_warmup_steps: int = 1000,
                 lr: float = 1e-3, adv_lr: float = 1e-3, clf_lr: float = 1e-3, content_from: str = "drawing",
                 control_batches: int = 4, media_samples: int = 8, adv_steps: int = 10,
                 lambda_decor: float = 0.0, probe_every_n_epochs: int = 5, adv_memory: int = 8) -> None:
        super().__init__()
        attributes = list(attributes or DEFAULT_ATTRIBUTES)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.attributes, self.image_size = attributes, image_size
        k = len(attributes)
        if content_from not in ("photo", "drawing"):
            raise InvalidValue(f"content_from must be 'photo' or 'drawing', not {content_from!r}")
        if adv_steps < 1 or probe_every_n_epochs < 0 or adv_memory < 0:
            raise InvalidValue(f"adv_steps must be ≥ 1, probe_every_n_epochs and adv_memory ≥ 0, got {adv_steps}, "
                               f"{probe_every_n_epochs} and {adv_memory}")
        drawn = content_from == "drawing"
        self.encoder = ConvEncoder(3, image_size, width, 0 if drawn else content_dim, style_dim)
        self.content_encoder = ConvEncoder(1, image_size, width, content_dim, 0) if drawn else None
        self.content_dim, self.style_dim = content_dim, style_dim
        self.decoder = AttributeDecoder(content_dim + style_dim, k, image_size, width)
        self.adversary = AttributeAdversary(content_dim + style_dim, k)
        self.classifier = AttributeClassifier(k, image_size)
        self.val_control = MeanMetric()
        self.val_control_floor = MeanMetric()
        self.val_clf_acc = MeanMetric()
        self.val_adv_acc = MeanMetric()
        self._media: dict[str, torch.Tensor] | None = None
        self._probed_step: int | None = None
        self._memory: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=adv_memory)

    # -- the model ---------------------------------------------------------------------------------
    def encode(self, photos: torch.Tensor, drawings: torch.Tensor | None = None) -> tuple[Gaussian, Gaussian]:
        """``B×3×S×S`` photos (and their ``B×1×S×S`` drawings) → posteriors over z_content and z_style."""
        content, style = self.encoder(photos)
        if self.content_encoder is not None:
            if drawings is None:
                raise KeyError("ADVAEStage1(content_from='drawing') needs the drawings (CelebA with drawings: true)")
            content = self.content_encoder(drawings)[0]
        return content, style

    def decode(self, z: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        """``B×D`` z and ``B×K`` attributes → ``B×3×S×S`` image in [0, 1]."""
        return torch.sigmoid(self.decoder(z, attributes))

    def reconstruct(self, photos: torch.Tensor, attributes: torch.Tensor,
                    drawings: torch.Tensor | None = None) -> torch.Tensor:
        """Mean reconstruction (posterior means) with the given attributes: ``B×3×S×S`` in [0, 1]."""
        content, style = self.encode(photos, drawings)
        return self.decode(torch.cat([content.mu, style.mu], 1), attributes)

    # -- training ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        vae = [p for net in (self.encoder, self.content_encoder, self.decoder) if net is not None
               for p in net.parameters()]
        return (torch.optim.Adam(vae, lr=self.hparams.lr, betas=(0.5, 0.999)),
                torch.optim.Adam(self.adversary.parameters(), lr=self.hparams.adv_lr, betas=(0.5, 0.999)),
                torch.optim.Adam(self.classifier.parameters(), lr=self.hparams.clf_lr))

    def losses(self, photos: torch.Tensor, attributes: torch.Tensor, step: int | None = None,
               drawings: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The VAE's loss terms on a batch (weights at ``step``; the full weights when ``None``)."""
        content, style = self.encode(photos, drawings)
        z = torch.cat([content.sample(), style.sample()], 1)  # B×(Dc+Ds)
        mu = torch.cat([content.mu, style.mu], 1)
        recon = reconstruction_loss(self.decoder(z, attributes), photos, self.hparams.reconstruction)
        kl = (content.kl_to_prior() + style.kl_to_prior()).mean()
        # The encoder wants the adversary, reading the posterior means, to answer the attributes'
        # rates as if it could read nothing. The adversary is called with detached weights, so this
        # term moves the encoder only (copies: the adversary may step before this backward pass).
        frozen = {name: p.detach().clone() for name, p in self.adversary.named_parameters()}
        fooled = torch.func.functional_call(self.adversary, frozen, (mu,))
        rates = attributes.mean(0, keepdim=True).expand_as(attributes)
        fool = F.binary_cross_entropy_with_logits(fooled, rates, reduction="sum") / len(z)
        beta = self.hparams.beta * (1.0 if step is None else _ramp(step, self.hparams.kl_warmup_steps))
        ramp = 1.0 if step is None else _ramp(step, self.hparams.adv_warmup_steps)
        lam = self.hparams.lambda_adv * ramp
        decor = squared_correlation(mu, attributes)
        loss = recon + beta * kl + lam * fool + self.hparams.lambda_decor * ramp * decor
        return {"loss": loss, "recon": recon, "kl": kl, "adv_fool": fool, "decor": decor,
                "beta": torch.tensor(beta), "lambda_adv": torch.tensor(lam), "z": z, "mu": mu}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        photos, attributes, drawings = batch["image"], batch["attributes"], batch.get("drawing")
        if len(photos) == 0:
            if distributed(self):  # every rank steps together (modules/empty_batch.py)
                optimizers = self.optimizers()[:1] + self.optimizers(use_pl_optimizer=False)[1:]
                for opt in optimizers:
                    opt.zero_grad()
                self.manual_backward(zero_loss(self))
                for opt in optimizers[1:] + optimizers[:1]:
                    opt.step()
            return None
        # The adversary's and the classifier's steps go through the raw optimisers so that
        # global_step counts VAE steps only (max_steps, warm-ups, logging intervals). Precision:
        # 32-bit or bf16-mixed (16-mixed's loss scaling would need the wrapped optimisers).
        opt_vae = self.optimizers()[0]
        opt_adv, opt_clf = self.optimizers(use_pl_optimizer=False)[1:]
        # The VAE reconstructs with a and fools the adversary; the adversary learns to read a from
        # the (detached) latents; the evaluation classifier learns a from real photos only. The three
        # losses touch disjoint parameters, so one backward pass serves all three optimisers (and
        # DDP sees every parameter used once per step).
        terms = self.losses(photos, attributes, self.global_step, drawings)
        latents = terms["mu"].detach()
        recent = [latents, *(z for z, _ in self._memory)], [attributes, *(a for _, a in self._memory)]
        recent_latents, recent_attributes = torch.cat(recent[0]), torch.cat(recent[1])
        for _ in range(self.hparams.adv_steps - 1):  # extra adversary steps: a sharper critic for the VAE
            self._adversary_step(recent_latents, recent_attributes, opt_adv)
        if self._memory.maxlen:
            self._memory.appendleft((latents, attributes))
        adv_logits = self.adversary(latents)
        adv_loss = F.binary_cross_entropy_with_logits(adv_logits, attributes)
        clf_loss = F.binary_cross_entropy_with_logits(self.classifier(photos), attributes)
        for opt in (opt_vae, opt_adv, opt_clf):
            opt.zero_grad()
        self.manual_backward(terms["loss"] + adv_loss + clf_loss)
        opt_adv.step()
        opt_clf.step()
        opt_vae.step()
        adv_acc = ((adv_logits > 0) == attributes.bool()).float().mean()
        logs = {f"train/{k}": v.detach() for k, v in terms.items() if k not in ("z", "mu")}
        logs.update({"train/adv_loss": adv_loss.detach(), "train/adv_acc": adv_acc, "train/clf_loss": clf_loss.detach()})
        self.log_dict(logs, on_step=True, on_epoch=True, batch_size=len(photos))

    def _adversary_step(self, latents: torch.Tensor, attributes: torch.Tensor, opt_adv: torch.optim.Optimizer) -> None:
        """One adversary update on detached latents, outside DDP's gradient hooks.

        Under DDP each backward pass must reach every parameter of the module; this one reaches
        the adversary's only. Its gradients are therefore taken with ``torch.autograd.grad`` (which
        leaves DDP's hooks alone) and averaged over the processes by hand, so every rank's
        adversary stays the same.
        """
        params = [p for p in self.adversary.parameters() if p.requires_grad]
        loss = F.binary_cross_entropy_with_logits(self.adversary(latents), attributes)
        grads = torch.autograd.grad(loss, params)
        if distributed(self):
            flat = self.trainer.strategy.reduce(torch.cat([g.flatten() for g in grads]), reduce_op="mean")
            grads = flat.split([g.numel() for g in grads])
        for p, g in zip(params, grads, strict=True):
            p.grad = g.view_as(p).to(p.dtype)
        opt_adv.step()

    # -- validation --------------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        photos, attributes, drawings = batch["image"], batch["attributes"], batch.get("drawing")
        if len(photos) == 0:
            return
        terms = self.losses(photos, attributes, drawings=drawings)
        content, style = self.encode(photos, drawings)
        z = torch.cat([content.mu, style.mu], 1)
        recon = self.decode(z, attributes)
        n = len(photos)
        self.log("val/loss", terms["recon"] + self.hparams.beta * terms["kl"], batch_size=n, sync_dist=True)
        self.log("val/recon", terms["recon"], batch_size=n, sync_dist=True)
        self.log("val/kl", terms["kl"], batch_size=n, sync_dist=True)
        self.log("val/recon_mse", F.mse_loss(recon, photos), batch_size=n, sync_dist=True)
        self.val_adv_acc.update(((self.adversary(z) > 0) == attributes.bool()).float().mean(), n)
        self.val_clf_acc.update(((self.classifier(photos) > 0) == attributes.bool()).float().mean(), n)
        self.log("val/adv_acc", self.val_adv_acc, batch_size=n)
        self.log("val/attr_clf_acc", self.val_clf_acc, batch_size=n)
        if batch_idx < self.hparams.control_batches:
            hits = control_hits(self.classifier, lambda a: self.decode(z, a), attributes, self.attributes)
            self.val_control.update(hits.float().mean(), len(hits))
            floor = control_floor_hits(self.classifier, recon, attributes, self.attributes)
            self.val_control_floor.update(floor.float().mean(), len(floor))
        if batch_idx == 0:
            keep = self.hparams.media_samples
            self._media = {k: batch[k][:keep] for k in ("image", "attributes", "drawing") if k in batch}

    # -- the disentanglement probe -----------------------------------------------------------------
    @torch.no_grad()
    def latents(self, loader, max_samples: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means and attributes over a loader's batches (``N×D``, ``N×K``), in eval mode."""
        was_training, datamodule = self.training, getattr(self.trainer, "datamodule", None) if self._trainer else None
        self.eval()
        zs, attrs, count = [], [], 0
        for batch in loader:
            if len(batch["image"]) == 0:
                continue
            batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            if datamodule is not None:  # the drawings are made after transfer
                batch = datamodule.on_after_batch_transfer(batch, 0)
            content, style = self.encode(batch["image"], batch.get("drawing"))
            zs.append(torch.cat([content.mu, style.mu], 1).cpu())
            attrs.append(batch["attributes"].cpu())
            count += len(zs[-1])
            if max_samples is not None and count >= max_samples:
                break
        self.train(was_training)
        return torch.cat(zs)[:max_samples], torch.cat(attrs)[:max_samples]

    def probe(self, train_loader=None, val_loader=None) -> ProbeResult:
        """Fit a fresh probe on frozen z of the training split, score it on the validation split.

        The loaders default to the trainer's DataModule's (the first ``PROBE_TRAIN_SAMPLES``
        training images). Writes nothing; see ``docs/advae.md`` (how disentanglement is shown).
        """
        if train_loader is None or val_loader is None:
            datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
            if datamodule is None:
                raise RuntimeError("ADVAEStage1.probe: pass the loaders, or fit with a DataModule")
            train_loader = train_loader or datamodule.train_dataloader()
            val_loader = val_loader or datamodule.val_dataloader()
        z_train, a_train = self.latents(train_loader, PROBE_TRAIN_SAMPLES)
        z_val, a_val = self.latents(val_loader)
        return fit_probe(z_train, a_train, z_val, a_val, self.attributes)

    def _probe_and_record(self, log_now: bool) -> None:
        """Run the probe; log ``val/probe_*`` and append its rows to ``<run>/probe.csv``."""
        if self._probed_step == self.global_step or getattr(self.trainer, "datamodule", None) is None:
            return
        result = self.probe()
        self._probed_step = self.global_step
        summary = {f"val/{k}": v for k, v in result.summary().items()}
        if log_now:
            self.log_dict(summary)
        else:  # after fit: no hook may self.log there, so the loggers get it directly
            for logger in self.trainer.loggers:
                logger.log_metrics(summary, step=self.global_step)
        if self.trainer.is_global_zero:
            path = Path(self.trainer.default_root_dir) / "probe.csv"
            new = not path.exists()
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", newline="") as handle:
                writer = csv.DictWriter(handle, ["epoch", "step", "attribute", "probe_acc", "majority", "gap"])
                if new:
                    writer.writeheader()
                for row in result.rows():
                    writer.writerow({"epoch": self.current_epoch, "step": self.global_step, **row})
            log.info("AD-VAE probe at step %d: accuracy %.3f, majority %.3f, gap %.3f", self.global_step,
                     *(result.summary()[k] for k in ("probe_acc", "probe_majority", "probe_gap")))

    def on_fit_end(self) -> None:
        """The probe on the final weights (unless the last validation epoch just ran it)."""
        if self.hparams.probe_every_n_epochs and not self.trainer.sanity_checking:
            self._probe_and_record(log_now=False)

    def on_validation_epoch_end(self) -> None:
        log_control(self, self.val_control, self.val_control_floor)
        every = self.hparams.probe_every_n_epochs
        if (every and not self.trainer.sanity_checking and self.trainer.state.fn == "fit"
                and (self.current_epoch + 1) % every == 0):
            self._probe_and_record(log_now=True)
        if self._media is None or self.trainer.sanity_checking:
            return
        photos, attributes = self._media["image"], self._media["attributes"]
        content, style = self.encode(photos, self._media.get("drawing"))
        z = torch.cat([content.mu, style.mu], 1)
        rows = [self._media["drawing"]] if "drawing" in self._media else []
        log_grid(self, "val/reconstruction", rows + [photos, self.decode(z, attributes)],
                 "rows: drawing, photo, reconstruction")
        columns = sweep_columns(self.attributes)
        log_grid(self, "val/attribute_sweep",
                 [photos] + [self.decode(z, with_attribute(attributes, self.attributes, n, v)) for n, v in columns],
                 "rows: photo, then " + ", ".join(f"{n}={int(v)}" for n, v in columns))
        # Style transfer: row j keeps every image's content and attributes, with image j's style.
        rows = [photos] + [self.decode(torch.cat([content.mu, style.mu[j].expand_as(style.mu)], 1), attributes)
                           for j in range(min(4, len(photos)))]
        log_grid(self, "val/style_transfer", rows, "rows: photo, then the style of photos 1..4")
        self._media = None


def _architecture(hparams: dict[str, Any]) -> dict[str, Any]:
    """The ``ADVAEStage1`` arguments among ``hparams`` (less the linked attributes and image size)."""
    known = set(inspect.signature(ADVAEStage1.__init__).parameters) - {"self", "attributes", "image_size"}
    return {k: v for k, v in hparams.items() if k in known}


class ADVAEStage2(L.LightningModule):
    """Stage 2: line drawing → z_content, and synthesis with chosen attributes and style (docs/advae.md).

    The drawing encoder is trained to match the frozen stage-1 posterior: the loss is
    KL(q(z_content|x) ‖ r(z_content|d)), plus optionally ``recon_weight`` × the photo's reconstruction
    through the frozen decoder from (z_content(d), z_style(x), a).

    Args:
        stage1_checkpoint: path of a stage-1 checkpoint (``ADVAEStage1``), or a glob pattern (the newest
            match is used). ``None`` trains against a freshly initialised stage 1, with a warning (only
            useful to check that a config runs, or to rebuild a stage-2 checkpoint).
        stage1: the architecture (``ADVAEStage1`` arguments) of a freshly initialised stage 1; filled
            from the checkpoint when one is loaded, so that reloading a stage-2 checkpoint whose
            stage-1 file is gone rebuilds stage 1 (with a warning; its weights are in the checkpoint).
        attributes: the K attribute names (linked from the DataModule; must match stage 1's).
        image_size: side of the images (linked from the DataModule; must match stage 1's).
        width: channels of the drawing encoder's first block.
        lr: Adam learning rate.
        recon_weight: weight of the reconstruction through the frozen decoder.
        num_styles: z_style samples per drawing in the validation grids (and in ``predict`` when
            the batch does not say).
        control_batches: validation batches on which attribute control is measured.
        media_samples: images shown in the validation grids.
    """

    def __init__(self, stage1_checkpoint: str | None = None, stage1: dict[str, Any] | None = None,
                 attributes: list[str] | None = None, image_size: int = 64, width: int = 32, lr: float = 1e-3, recon_weight: float = 0.0,
                 num_styles: int = 3, control_batches: int = 4, media_samples: int = 8) -> None:
        super().__init__()
        attributes = list(attributes or DEFAULT_ATTRIBUTES)
        self.save_hyperparameters()
        self.attributes, self.image_size = attributes, image_size
        stage1, resolved = self._load_stage1(stage1_checkpoint, stage1, attributes, image_size)
        # Stored: the checkpoint actually used (a pattern resolves once) and the stage-1 architecture,
        # so a stage-2 checkpoint can be rebuilt without the stage-1 file.
        self.hparams.stage1_checkpoint = resolved
        self.hparams.stage1 = _architecture(stage1.hparams)
        self.stage1 = stage1  # frozen: photo encoder(s), decoder and the evaluation classifier
        self.stage1.requires_grad_(False).eval()
        self.drawing_encoder = ConvEncoder(1, image_size, width, stage1.content_dim, style_dim=0)
        self.val_control = MeanMetric()
        self.val_control_floor = MeanMetric()
        self._media: dict[str, torch.Tensor] | None = None
        self._predict_rows: list[torch.Tensor] = []

    @staticmethod
    def _load_stage1(path: str | None, architecture: dict[str, Any] | None, attributes: list[str],
                     image_size: int) -> tuple[ADVAEStage1, str | None]:
        """The stage-1 module and the path it was loaded from."""
        architecture = None if architecture is None else _architecture(architecture)
        if path is None:
            warnings.warn("ADVAEStage2: model.init_args.stage1_checkpoint is null, so stage 2 trains against a "
                          "freshly initialised stage 1; set it to a stage-1 checkpoint for real results",
                          stacklevel=3)
            return ADVAEStage1(**{**(architecture or {}), "attributes": attributes, "image_size": image_size}), None
        if any(c in path for c in "*?["):  # a pattern: the newest matching checkpoint
            matches = sorted(glob.glob(path), key=lambda p: Path(p).stat().st_mtime)
            if not matches:
                raise MissingPath(f"ADVAEStage2: no stage-1 checkpoint matches {path} "
                                  "(model.init_args.stage1_checkpoint; train experiments/advae/celeba_stage1.yaml)")
            path = matches[-1]
            log.info("ADVAEStage2: stage 1 from %s", path)
        if not Path(path).is_file() and architecture is not None:
            # A stage-2 checkpoint being reloaded: its weights include stage 1, the file is not needed.
            warnings.warn(f"ADVAEStage2: the stage-1 checkpoint {path} is gone; stage 1 is rebuilt from "
                          "hparams.stage1 (its weights must come from a stage-2 checkpoint)", stacklevel=3)
            return ADVAEStage1(**{**architecture, "attributes": attributes, "image_size": image_size}), path
        if not Path(path).is_file():
            raise MissingPath(f"ADVAEStage2: the stage-1 checkpoint {path} does not exist "
                              "(model.init_args.stage1_checkpoint; train experiments/advae/celeba_stage1.yaml)")
        stage1 = ADVAEStage1.load_from_checkpoint(path, map_location="cpu", weights_only=True)
        if list(stage1.attributes) != list(attributes) or stage1.image_size != image_size:
            raise InvalidValue(f"ADVAEStage2: the stage-1 checkpoint {path} was trained with attributes "
                               f"{stage1.attributes} at {stage1.image_size} px, but the data gives {attributes} at "
                               f"{image_size} px")
        return stage1, path

    def train(self, mode: bool = True) -> ADVAEStage2:
        """Keep the frozen stage-1 networks in evaluation mode (their batch statistics are fixed)."""
        super().train(mode)
        self.stage1.eval()
        return self

    @property
    def decoder(self) -> AttributeDecoder:
        return self.stage1.decoder

    @property
    def classifier(self) -> AttributeClassifier:
        return self.stage1.classifier

    # -- synthesis ---------------------------------------------------------------------------------
    def content(self, drawings: torch.Tensor) -> Gaussian:
        """``B×1×S×S`` drawings → r(z_content | d)."""
        return self.drawing_encoder(drawings)[0]

    def synthesise(self, drawings: torch.Tensor, attributes: torch.Tensor, z_style: torch.Tensor) -> torch.Tensor:
        """decoder(z_content(drawing), z_style, a): ``B×1×S×S``, ``B×K``, ``B×Ds`` → ``B×3×S×S`` in [0, 1]."""
        return torch.sigmoid(self.decoder(torch.cat([self.content(drawings).mu, z_style], 1), attributes))

    def style_of(self, photos: torch.Tensor) -> torch.Tensor:
        """z_style of style photos (posterior mean): ``B×3×S×S`` → ``B×Ds``."""
        return self.stage1.encoder(photos)[1].mu

    def prior_styles(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n×Ds`` styles sampled from the prior N(0, I)."""
        return torch.randn(n, self.stage1.style_dim, generator=generator).to(self.device)

    # -- training ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        return torch.optim.Adam(self.drawing_encoder.parameters(), lr=self.hparams.lr, betas=(0.5, 0.999))

    def losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if "drawing" not in batch:
            raise KeyError("ADVAEStage2 needs batch['drawing'] (CelebA with drawings: true)")
        photos, attributes, drawings = batch["image"], batch["attributes"], batch["drawing"]
        with torch.no_grad():
            target, style = self.stage1.encode(photos, drawings)
        content = self.content(drawings)
        match = target.kl_to(content).mean()  # KL(q(z_c|x) ‖ r(z_c|d))
        terms = {"match": match, "loss": match}
        if self.hparams.recon_weight:
            z = torch.cat([content.sample(), style.mu], 1)
            recon = reconstruction_loss(self.decoder(z, attributes), photos, "bce")
            terms.update(recon=recon, loss=match + self.hparams.recon_weight * recon)
        return terms

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        if len(batch["image"]) == 0:  # skipped; under DDP a zero gradient (modules/empty_batch.py)
            return zero_loss(self) if distributed(self) else None
        terms = self.losses(batch)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, on_step=True, on_epoch=True,
                      batch_size=len(batch["image"]))
        return terms["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        photos, attributes = batch["image"], batch["attributes"]
        if len(photos) == 0:
            return
        n = len(photos)
        terms = self.losses(batch)
        style = self.style_of(photos)
        synthesis = self.synthesise(batch["drawing"], attributes, style)
        self.log("val/loss", terms["loss"], batch_size=n, sync_dist=True)
        self.log("val/match", terms["match"], batch_size=n, sync_dist=True)
        self.log("val/synth_mse", F.mse_loss(synthesis, photos), batch_size=n, sync_dist=True)
        if batch_idx < self.hparams.control_batches:
            hits = control_hits(self.classifier, lambda a: self.synthesise(batch["drawing"], a, style), attributes,
                                self.attributes)
            self.val_control.update(hits.float().mean(), len(hits))
            floor = control_floor_hits(self.classifier, synthesis, attributes, self.attributes)
            self.val_control_floor.update(floor.float().mean(), len(floor))
        if batch_idx == 0:
            keep = self.hparams.media_samples
            self._media = {k: batch[k][:keep] for k in ("image", "attributes", "drawing")}

    def on_validation_epoch_end(self) -> None:
        log_control(self, self.val_control, self.val_control_floor)
        if self._media is None or self.trainer.sanity_checking:
            return
        photos, attributes, drawings = self._media["image"], self._media["attributes"], self._media["drawing"]
        style = self.style_of(photos)
        generator = torch.Generator().manual_seed(0)
        sampled = [self.synthesise(drawings, attributes, self.prior_styles(1, generator).expand_as(style))
                   for _ in range(self.hparams.num_styles)]
        log_grid(self, "val/synthesis", [drawings, photos, self.synthesise(drawings, attributes, style)] + sampled,
                 "rows: drawing, photo, synthesis with the photo's style, then sampled styles")
        columns = sweep_columns(self.attributes)
        log_grid(self, "val/attribute_sweep",
                 [drawings] + [self.synthesise(drawings, with_attribute(attributes, self.attributes, n, v), style)
                               for n, v in columns],
                 "rows: drawing, then " + ", ".join(f"{n}={int(v)}" for n, v in columns))
        rows = [drawings] + [self.synthesise(drawings, attributes, style[j].expand_as(style))
                             for j in range(min(4, len(photos)))]
        log_grid(self, "val/style_transfer", rows,
                 "rows: drawing, then the style of photos 1..4")
        self._media = None

    # -- predict -----------------------------------------------------------------------------------
    def default_requests(self) -> torch.Tensor:
        """One attribute vector per hair colour (all else off): ``M×K``."""
        hair = [n for n in HAIR_GROUP if n in self.attributes]
        vectors = torch.zeros(max(1, len(hair)), len(self.attributes))
        for m, name in enumerate(hair):
            vectors[m, self.attributes.index(name)] = 1.0
        return vectors

    @property
    def predict_dir(self) -> Path:
        return Path(self.trainer.default_root_dir) / "predict"

    def on_predict_epoch_start(self) -> None:
        self._predict_rows = []
        self.predict_dir.mkdir(parents=True, exist_ok=True)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[str]:
        """Synthesise each drawing under every requested setting and style; write one PNG each.

        The request travels in the batch (``datamodules.sketch.LineDrawings``): ``requested`` (``M×K``
        attribute vectors), ``style`` (a style photo) or ``num_styles`` and ``style_seed`` (styles
        from the prior, the same for every drawing). A batch without them (CelebA's test split) gets
        one setting per hair colour and ``num_styles`` sampled styles.
        """
        drawings = batch["drawing"]
        if len(drawings) == 0:
            return []
        n = len(drawings)
        if "style" in batch:  # style transfer from the given photo
            styles = [self.style_of(batch["style"][:1])]
        else:  # one-to-many: the same sampled styles for every drawing
            generator = torch.Generator().manual_seed(int(batch.get("style_seed", 0)))
            styles = [self.prior_styles(1, generator) for _ in range(int(batch.get("num_styles", self.hparams.num_styles)))]
        requested = batch.get("requested")
        requested = self.default_requests() if requested is None else requested
        if requested.shape[-1] != len(self.attributes):
            raise InvalidValue(f"predict: {requested.shape[-1]} requested attributes for a model of {len(self.attributes)}")
        written, columns = [], [drawings.float().expand(-1, 3, -1, -1)]
        for k, vector in enumerate(requested.to(self.device)):
            attributes = vector.expand(n, -1)
            for j, style in enumerate(styles):
                images = self.synthesise(drawings, attributes, style.expand(n, -1)).float()
                columns.append(images)
                for path, image in zip(batch["path"], images, strict=True):
                    out = self.predict_dir / f"{Path(path).stem}_a{k}_s{j}.png"
                    save_image(image, out)
                    written.append(str(out))
        kept = sum(len(r) for r in self._predict_rows) // len(columns)
        if kept < GRID_DRAWINGS:  # the grid shows the first drawings only (memory on big folders)
            rows = torch.stack(columns, 1)[: GRID_DRAWINGS - kept]  # B×(1+M·styles)×3×S×S
            self._predict_rows.append(rows.flatten(0, 1).cpu())
        self._predict_columns = len(columns)
        return written

    def on_predict_epoch_end(self) -> None:
        if self._predict_rows:
            save_image(torch.cat(self._predict_rows), self.predict_dir / "grid.png", nrow=self._predict_columns,
                       padding=1, pad_value=1.0)
            log.info("AD-VAE predict: images and grid.png written to %s", self.predict_dir)
