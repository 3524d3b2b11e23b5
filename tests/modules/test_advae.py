"""AD-VAE (docs/advae.md) on synthetic faces in CelebA's layout whose attributes are visible.

The learning test trains stage 1 for eighty CPU steps and then asks for each hair colour: the
hair region of the generated face must take the requested colour far more often than a decoder
that ignores the request. The slow disentanglement test trains with and without the adversary
and asks a fresh probe on frozen z which of the two still carries the attributes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from affectlab.datamodules.celeba import CelebA
from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.samples.faces import HAIR_COLOURS, hair_probe_colour
from affectlab.datamodules.sketch import LineDrawings
from affectlab.modules.advae import ADVAEStage1, ADVAEStage2
from affectlab.modules.advae.media import corrected_control, with_attribute

SMALL = {"content_dim": 16, "style_dim": 8, "width": 16}


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """Tiny networks: one intra-op thread is several times faster than two busy ones."""


@pytest.fixture(scope="module")
def celeba(tmp_path_factory) -> CelebA:
    root = tmp_path_factory.mktemp("celeba")
    overrides = write_sample(CelebA, root, counts=(128, 32, 8))
    dm = CelebA(**{**overrides, "batch_size": 32})
    dm.setup("fit")
    return dm


def trainer(root: Path, **kwargs) -> L.Trainer:
    options = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=root,
                   num_sanity_val_steps=0, accelerator="cpu", devices=1)
    return L.Trainer(**{**options, **kwargs})


def val_batch(dm: CelebA) -> dict:
    return dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)


@torch.no_grad()
def hair_control(model: ADVAEStage1, batch: dict) -> tuple[float, float]:
    """(reconstruction MSE, chance-corrected hair control).

    A hit when the generated hair probe colour is nearest the requested colour; the floor is the
    hit rate of the face's own reconstruction (what a decoder that ignores the request scores,
    about 1/4); the corrected control is ``(hits − floor) / (1 − floor)``: 0 for a decoder that
    ignores the request, 1 for one that always obeys.
    """
    model.eval()
    x, a, d = batch["image"], batch["attributes"], batch["drawing"]
    own = model.reconstruct(x, a, d)
    mse = torch.nn.functional.mse_loss(own, x).item()
    palette = torch.tensor(list(HAIR_COLOURS.values())) / 255
    nearest = lambda images: torch.cdist(hair_probe_colour(images), palette).argmin(1)  # noqa: E731
    hits, floor = [], []
    for index, name in enumerate(HAIR_COLOURS):
        hits.append(nearest(model.reconstruct(x, with_attribute(a, model.attributes, name, 1.0), d)) == index)
        floor.append(nearest(own) == index)
    return mse, corrected_control(torch.cat(hits).float().mean(), torch.cat(floor).float().mean()).item()


@pytest.fixture(scope="module")
def trained_stage1(celeba, tmp_path_factory):
    """Stage 1 trained for 80 steps; returns (model, checkpoint path, before, after, trainer)."""
    L.seed_everything(0)
    model = ADVAEStage1(attributes=celeba.attributes, image_size=32, kl_warmup_steps=50, adv_warmup_steps=50,
                        control_batches=1, **SMALL)
    batch = val_batch(celeba)
    before = hair_control(model, batch)
    root = tmp_path_factory.mktemp("stage1")
    fit = trainer(root, max_steps=80, check_val_every_n_epoch=20, limit_val_batches=1)
    fit.fit(model, celeba)
    path = root / "stage1.ckpt"
    fit.save_checkpoint(path)
    return model, path, before, hair_control(model, batch), fit


def test_extra_adversary_steps_read_the_recent_batches_latents(celeba, tmp_path):
    model = ADVAEStage1(attributes=celeba.attributes, image_size=32, adv_steps=3, adv_memory=2, **SMALL)
    seen = []
    model.adversary.register_forward_hook(lambda module, inputs, output: seen.append(len(inputs[0])))
    trainer(tmp_path, max_steps=4, limit_val_batches=0).fit(model, celeba)
    # per step: the encoder's term on the current batch, 2 extra updates on it plus up to 2 remembered
    # batches, then the joint update on the current batch alone
    assert seen == [32, 32, 32, 32] + [32, 64, 64, 32] + [32, 96, 96, 32] * 2
    assert len(model._memory) == 2


@pytest.mark.parametrize("content_from", ["photo", "drawing"])
def test_stage1_shapes_finite_losses_and_gradients_reach_every_network(celeba, content_from):
    model = ADVAEStage1(attributes=celeba.attributes, image_size=32, content_from=content_from, **SMALL)
    batch = val_batch(celeba)
    x, a, d = batch["image"], batch["attributes"], batch["drawing"]
    content, style = model.encode(x, d)
    assert content.mu.shape == (32, 16) and style.mu.shape == (32, 8)
    assert model.reconstruct(x, a, d).shape == (32, 3, 32, 32)
    assert model.adversary(torch.cat([content.mu, style.mu], 1)).shape == (32, 8)
    terms = model.losses(x, a, drawings=d)
    assert all(torch.isfinite(v).all() for v in terms.values())
    terms["loss"].backward()
    optimised = [p for group in model.configure_optimizers()[0].param_groups for p in group["params"]]
    assert optimised and all(p.grad is not None and p.grad.abs().sum() > 0 for p in optimised)
    if content_from == "drawing":  # z_content cannot see the photo, only its drawing
        assert model.content_encoder is not None and model.encoder.content is None
        with pytest.raises(KeyError, match="needs the drawings"):
            model.encode(x)


def test_stage1_learns_to_reconstruct_and_obeys_the_requested_hair_colour(trained_stage1):
    _, _, (mse_before, hair_before), (mse_after, hair_after), _ = trained_stage1
    assert mse_after < 0.8 * mse_before
    assert hair_before < 0.25  # corrected for chance: an untrained decoder ignores the request
    print(f"recon MSE {mse_before:.4f} -> {mse_after:.4f}; corrected hair control {hair_before:.2f} -> {hair_after:.2f}")
    # 0.73 with the defaults after these 80 steps (0.41 with content_from="photo"); ignoring the request scores 0.
    assert hair_after > 0.55, f"chance-corrected hair control only {hair_after:.2f}"


def test_validation_logs_control_accuracy_and_writes_grids(trained_stage1):
    _, _, _, _, fit = trained_stage1
    metrics = fit.callback_metrics
    for key in ("val/loss", "val/recon_mse", "val/attr_control_acc", "val/attr_clf_acc", "val/adv_acc",
                "val/attr_control_floor", "val/attr_control_corrected", "val/probe_acc", "val/probe_gap",
                "val/probe_gap/Pale_Skin"):
        assert key in metrics and torch.isfinite(metrics[key]), key
    assert 0.3 < metrics["val/attr_control_floor"] < 0.6  # hair colours asked "on" only: not 0.5
    # The probe ran once (epoch 19, every 5 epochs) and the end of fit did not repeat it.
    rows = (Path(fit.default_root_dir) / "probe.csv").read_text().splitlines()
    assert rows[0] == "epoch,step,attribute,probe_acc,majority,gap" and len(rows) == 1 + 8
    media = {p.name for p in (Path(fit.default_root_dir) / "media").iterdir()}
    assert {"val_reconstruction_e019.png", "val_attribute_sweep_e019.png",
            "val_style_transfer_e019.png"} <= media


def test_stage2_loads_the_stage1_checkpoint_and_learns_against_it_frozen(trained_stage1, celeba, tmp_path):
    stage1, path, *_ = trained_stage1
    model = ADVAEStage2(stage1_checkpoint=str(path), attributes=celeba.attributes, image_size=32, width=16)
    for mine, theirs in zip(model.stage1.encoder.state_dict().values(), stage1.encoder.state_dict().values(),
                            strict=True):
        assert torch.equal(mine, theirs)
    assert model.hparams.stage1["content_dim"] == 16
    frozen = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    batch = val_batch(celeba)
    before = model.losses(batch)["match"].item()
    trainer(tmp_path, max_steps=30, limit_val_batches=1, check_val_every_n_epoch=100).fit(model, celeba)
    model.eval()
    with torch.no_grad():
        after = model.losses(batch)["match"].item()
    assert after < 0.7 * before
    assert all(torch.equal(frozen[k], v) for k, v in model.decoder.state_dict().items())
    # Synthesis: z_style from the prior or from a style photo.
    with torch.no_grad():
        sampled = model.synthesise(batch["drawing"], batch["attributes"], model.prior_styles(32))
        transferred = model.synthesise(batch["drawing"], batch["attributes"], model.style_of(batch["image"]))
    assert sampled.shape == transferred.shape == (32, 3, 32, 32)


def test_stage2_takes_the_newest_checkpoint_matching_a_pattern(trained_stage1, celeba):
    _, path, *_ = trained_stage1
    model = ADVAEStage2(stage1_checkpoint=str(path.parent / "*.ckpt"), attributes=celeba.attributes, image_size=32)
    assert model.stage1.content_dim == 16


def test_stage2_without_a_checkpoint_warns_and_a_missing_one_fails(celeba, tmp_path):
    with pytest.warns(UserWarning, match="freshly initialised stage 1"):
        ADVAEStage2(stage1_checkpoint=None, stage1=SMALL, attributes=celeba.attributes, image_size=32)
    with pytest.raises(FileNotFoundError, match="stage-1 checkpoint .*nope.ckpt does not exist"):
        ADVAEStage2(stage1_checkpoint=str(tmp_path / "nope.ckpt"), attributes=celeba.attributes, image_size=32)


def test_stage2_rejects_a_stage1_trained_on_other_attributes(trained_stage1):
    _, path, *_ = trained_stage1
    with pytest.raises(ValueError, match="trained with attributes"):
        ADVAEStage2(stage1_checkpoint=str(path), attributes=["Male"], image_size=32)


def test_predict_writes_every_synthesis_and_a_grid(trained_stage1, celeba, tmp_path):
    _, path, *_ = trained_stage1
    model = ADVAEStage2(stage1_checkpoint=str(path), attributes=celeba.attributes, image_size=32, width=16)
    overrides = write_sample(LineDrawings, tmp_path / "faces")  # 4 photos, turned into drawings
    chosen = [{"Blond_Hair": 1}, {"Black_Hair": 1, "Pale_Skin": 1}]
    dm = LineDrawings(**overrides, image_size=32, batch_size=3, chosen_attributes=chosen, num_styles=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path / "run").predict(model, dm)
    out = tmp_path / "run" / "predict"
    assert len(list(out.glob("face_*_a*_s*.png"))) == 4 * 2 * 2
    assert (out / "grid.png").is_file()
    # With a style photo there is one style (the photo's); without a choice, one setting per hair colour.
    styled = LineDrawings(**overrides, image_size=32, style_photo=str(tmp_path / "faces" / "face_0.png"))
    trainer(tmp_path / "styled").predict(model, styled)
    assert len(list((tmp_path / "styled" / "predict").glob("face_*.png"))) == 4 * 4 * 1


def test_predict_rejects_unknown_attributes(tmp_path):
    with pytest.raises(ValueError, match="unknown attribute"):
        LineDrawings(root=str(tmp_path), chosen_attributes=[{"Blue_Hair": 1}])


def test_a_stage2_checkpoint_reloads_without_its_stage1_file(trained_stage1, celeba, tmp_path):
    _, path, *_ = trained_stage1
    copy = tmp_path / "stage1.ckpt"
    copy.write_bytes(path.read_bytes())
    model = ADVAEStage2(stage1_checkpoint=str(copy), attributes=celeba.attributes, image_size=32, width=16)
    fit = trainer(tmp_path, max_steps=1, limit_val_batches=0)
    fit.fit(model, celeba)
    fit.save_checkpoint(tmp_path / "stage2.ckpt")
    copy.unlink()
    with pytest.warns(UserWarning, match="is gone; stage 1 is rebuilt"):
        reloaded = ADVAEStage2.load_from_checkpoint(tmp_path / "stage2.ckpt")
    assert reloaded.hparams.stage1_checkpoint == str(copy)
    for mine, theirs in zip(reloaded.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs)


def test_predict_on_celeba_uses_the_test_split_drawings(trained_stage1, celeba, tmp_path):
    _, path, *_ = trained_stage1
    model = ADVAEStage2(stage1_checkpoint=str(path), attributes=celeba.attributes, image_size=32, width=16,
                        num_styles=2)
    trainer(tmp_path, limit_predict_batches=1).predict(model, celeba)
    written = list((tmp_path / "predict").glob("*_a*_s*.png"))
    assert len(written) == 8 * 4 * 2  # 8 test images × one setting per hair colour × 2 sampled styles


@pytest.mark.slow
def test_content_from_drawing_makes_the_background_follow_the_style_photo(celeba, tmp_path):
    """With z_content read from the drawing, z_style is what the drawing lacks: background, light."""
    L.seed_everything(0)
    model = ADVAEStage1(attributes=celeba.attributes, image_size=32, kl_warmup_steps=50, adv_warmup_steps=50,
                        content_from="drawing", **SMALL)
    fit = trainer(tmp_path, max_steps=240, limit_val_batches=0)
    fit.fit(model, celeba)
    fit.save_checkpoint(tmp_path / "stage1.ckpt")
    model.eval()
    batch = val_batch(celeba)
    x, a, d = batch["image"], batch["attributes"], batch["drawing"]
    other = torch.roll(torch.arange(len(x)), 1)
    with torch.no_grad():
        content, style = model.encode(x, d)
        transferred = model.decode(torch.cat([content.mu, style.mu[other]], 1), a)
    corner = lambda t: t[..., :4, :4].mean((-1, -2))  # noqa: E731 — the background
    follows = (corner(transferred) - corner(x[other])).norm(dim=1) < (corner(transferred) - corner(x)).norm(dim=1)
    # 0.69 here with the default adversary (0.88 on 512 faces); content_from="photo" gives 0.28–0.42
    # (benchmarks/RESULTS.md, AD-VAE): the background then stays with the content.
    assert follows.float().mean() > 0.6
    # Stage 2 trains against this stage 1 too.
    stage2 = ADVAEStage2(stage1_checkpoint=str(tmp_path / "stage1.ckpt"), attributes=celeba.attributes,
                         image_size=32, width=16)
    assert stage2.stage1.content_encoder is not None
    fit = trainer(tmp_path / "s2", max_steps=2, limit_val_batches=0)
    fit.fit(stage2, celeba)
    assert torch.isfinite(fit.callback_metrics["train/loss"])


@pytest.mark.parametrize("size", [64, 128])
def test_networks_follow_the_image_size_and_reject_others(size):
    model = ADVAEStage1(image_size=size, content_dim=8, style_dim=4, width=8)
    x, d = torch.rand(2, 3, size, size), torch.rand(2, 1, size, size)
    assert model.reconstruct(x, torch.zeros(2, 8), d).shape == (2, 3, size, size)
    assert model.classifier(x).shape == (2, 8)
    with pytest.raises(ValueError, match="image_size must be 4·2\\^n"):
        ADVAEStage1(image_size=size - 16)


def with_and_without_adversary(dm: CelebA, root: Path) -> dict[float, ADVAEStage1]:
    """The study's setting (seed 0, 240 steps at 32 px): λ_adv = 0 and the adversary, trained on ``dm``."""
    models = {}
    for lam in (0.0, 1000.0):
        L.seed_everything(0)
        model = ADVAEStage1(attributes=dm.attributes, image_size=32, kl_warmup_steps=100, adv_warmup_steps=100,
                            lambda_adv=lam, adv_steps=10 if lam else 1, adv_memory=8, content_from="photo",
                            probe_every_n_epochs=0, **SMALL)
        trainer(root / f"l{lam:g}", max_steps=240, limit_val_batches=0).fit(model, dm)
        models[lam] = model
    dm.setup("fit")
    return models


@pytest.mark.slow
def test_without_the_adversary_a_fresh_probe_reads_the_attributes_from_z(tmp_path):
    """The disentanglement claim, with its control: λ_adv = 0 (a conditional VAE) against the default.

    The setting of ``benchmarks/advae_disentangle.py`` (seed 0): 512 faces with correlated training
    attributes, 240 steps at 32 px. Measured there (3 seeds): probe gap 0.22 at λ_adv = 0, 0.08 with the
    adversary on each batch alone, −0.005 with it reading the 8 recent batches too.
    """
    dm = CelebA(**{**write_sample(CelebA, tmp_path / "faces", counts=(512, 128, 8), correlated=True),
                   "batch_size": 32, "cache_drawings": True})
    gaps = {lam: model.probe(dm._loader("train"), dm._loader("val")).gap.mean().item()
            for lam, model in with_and_without_adversary(dm, tmp_path).items()}
    print("probe gap by λ_adv:", gaps)
    assert gaps[0.0] > 0.15, "the control must carry the attributes for the test to mean anything"
    assert gaps[1000.0] < 0.06 and gaps[1000.0] < gaps[0.0] - 0.12


@pytest.mark.slow
def test_with_noisy_labels_only_the_adversary_keeps_the_decoder_obeying_the_request(tmp_path):
    """Where disentanglement matters: training labels that are wrong 15 % of the time, as annotators
    err on real CelebA. The conditional VAE (λ_adv = 0) then reads the attributes from z, which the
    photo never gets wrong, and ignores the request; the adversary, by emptying z of them, leaves
    the request as the decoder's only source. Measured with an independent judge in
    ``benchmarks/advae_disentangle.py --label-noise 0.15`` (3 seeds): control 0.48 against 0.72.
    """
    dm = CelebA(**{**write_sample(CelebA, tmp_path / "faces", counts=(512, 128, 8), correlated=True,
                                  label_noise=0.15), "batch_size": 32, "cache_drawings": True})
    models = with_and_without_adversary(dm, tmp_path)
    batches = [dm.on_after_batch_transfer(b, 0) for b in dm.val_dataloader()]
    control = {lam: sum(hair_control(model, b)[1] for b in batches) / len(batches) for lam, model in models.items()}
    print("corrected hair control by λ_adv:", control)
    assert control[1000.0] > control[0.0] + 0.2
