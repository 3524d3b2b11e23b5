"""MDAN (docs/mdan.md) as specifications: shapes, hierarchy, gradients, ablations, learning, reload, DDP."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch

from affectlab.datamodules.hierarchy import get_taxonomy
from affectlab.modules.mdan import (
    MDAN,
    AffectiveSemanticMapping,
    LevelDependentCAM,
    MultiHeadCrossChannelAttention,
    mask_by_hierarchy,
)
from affectlab.modules.mdan.attention import normalise_map
from affectlab.modules.mdan.module import log_probabilities_from_leaves

REPO = Path(__file__).resolve().parents[2]
TAXONOMIES = ["sentiment", "mikels", "webemo"]  # one, two and three affective levels


def small_mdan(taxonomy: str = "mikels", **kwargs) -> MDAN:
    torch.manual_seed(0)
    return MDAN(taxonomy, backbone="resnet18", pretrained=False, **kwargs)


def open_mcca(model: MDAN, scale: float = 0.5) -> None:
    """Give MCCA's residual and the LDCAM gates a non-zero scale (they start at 0, which hides their effect)."""
    for module in model.modules():
        if isinstance(module, MultiHeadCrossChannelAttention | LevelDependentCAM):
            module.scale.data.fill_(scale)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """One intra-op thread: on a shared 2-core machine more threads only wait for each other."""


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", TAXONOMIES)
def test_outputs_have_one_entry_per_level_with_its_class_count(name, images):
    model = small_mdan(name).eval()
    out = model.compute(images)
    counts = list(model.taxonomy.num_classes)
    for key in ("probs", "global_probs", "local_probs", "local_logits", "fused_probs"):
        assert [t.shape for t in out[key]] == [torch.Size([4, n]) for n in counts], key
    assert len(out["cams"]) == len(counts)
    # Coarser levels sit on shallower stages, so their maps are larger; all lie in [0, 1].
    sides = [cam.shape[-1] for cam in out["cams"]]
    assert sides == sorted(sides, reverse=True) and len(set(sides)) == len(sides)
    assert all(cam.min() >= 0 and cam.max() <= 1 + 1e-6 for cam in out["cams"])
    for p in out["probs"]:
        torch.testing.assert_close(p.sum(1), torch.ones(4))


def test_affective_semantic_mapping_defaults_to_the_last_k_stages():
    stages = ("stem", "layer1", "layer2", "layer3", "layer4")
    assert AffectiveSemanticMapping(stages, 3).stages == ("layer2", "layer3", "layer4")   # WEBEmo
    assert AffectiveSemanticMapping(stages, 2).stages == ("layer3", "layer4")             # FI, EmotionROI
    assert AffectiveSemanticMapping(stages, 1).stages == ("layer4",)                      # binary sets
    assert AffectiveSemanticMapping(stages, 2, ["layer2", "layer4"]).level_of("layer4") == 1
    with pytest.raises(ValueError, match="deeper"):
        AffectiveSemanticMapping(stages, 2, ["layer4", "layer3"])
    with pytest.raises(ValueError, match="2 levels"):
        AffectiveSemanticMapping(stages, 2, ["layer4"])


def test_a_custom_mapping_drops_the_unused_deeper_stages(images):
    model = small_mdan("mikels", stage_mapping=["layer2", "layer3"])
    assert "layer4" not in model.net.backbone.stages
    assert model.compute(images)["features"].shape[1] == 256  # resnet18 layer3


@pytest.mark.parametrize("name", ["mikels", "webemo"])
def test_coarse_probabilities_are_the_sums_of_their_children(name, images):
    model = small_mdan(name).eval()
    taxonomy = model.taxonomy
    out = model.compute(images)
    probs = out["global_probs"]
    for l in range(1, taxonomy.num_levels):
        torch.testing.assert_close(probs[l - 1], probs[l] @ taxonomy.parent_matrix(l))
    # The loss takes the same sums in log space.
    for p, log_p in zip(probs, log_probabilities_from_leaves(taxonomy, out["global_logits"]), strict=True):
        torch.testing.assert_close(log_p.exp(), p)


@pytest.mark.parametrize("name", TAXONOMIES)
def test_every_learnable_parameter_receives_a_gradient(name, images):
    model = small_mdan(name)
    labels = model.taxonomy.labels_at_levels(torch.tensor([0, 1, 0, 1]))
    # At start MCCA's and the gates' scales are 0, so only the scales themselves can learn; each must
    # receive a gradient (one MCCA per level, one gate per level below the coarsest).
    model.loss(model.compute(images), labels)["loss"].backward()
    scales = [m.scale for m in model.modules() if isinstance(m, MultiHeadCrossChannelAttention | LevelDependentCAM)]
    assert len(scales) == 2 * model.taxonomy.num_levels - 1 and all(s.grad.abs().item() > 0 for s in scales)
    model.zero_grad(set_to_none=True)
    open_mcca(model)
    model.loss(model.compute(images), labels)["loss"].backward()
    dead = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert not dead, dead


@pytest.mark.parametrize("name", ["mikels", "webemo"])
@pytest.mark.parametrize("switches", [{}, {"fuse": True}, {"global_branch": False}])
def test_mask_mode_never_violates_the_hierarchy(name, switches):
    model = small_mdan(name, hierarchy_mode="mask", **switches).eval()
    open_mcca(model)
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    probs = model.compute(images)["probs"]
    assert not model.taxonomy.violations([p.argmax(1) for p in probs]).any()
    # And on arbitrary probabilities, including ones where summing alone violates the hierarchy.
    taxonomy = get_taxonomy(name)
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        random = [torch.rand(32, n, generator=g).softmax(1) for n in taxonomy.num_classes]
        masked = mask_by_hierarchy(taxonomy, random)
        assert not taxonomy.violations([p.argmax(1) for p in masked]).any()
        assert all(torch.allclose(p.sum(1), torch.ones(32)) for p in masked)


def test_summing_alone_can_violate_the_hierarchy_and_mask_repairs_it():
    taxonomy = get_taxonomy("mikels")  # amusement (0) is positive; anger (1) and disgust (4) are negative
    leaves = torch.zeros(1, 8)
    leaves[0, 0], leaves[0, 1], leaves[0, 4] = 0.4, 0.3, 0.3
    summed = [leaves @ taxonomy.parent_matrix(1), leaves]
    assert taxonomy.violations([p.argmax(1) for p in summed]).all()   # negative wins, amusement is the leaf
    masked = mask_by_hierarchy(taxonomy, summed)
    assert masked[1].argmax(1).item() in (1, 4)


# -- each ablation switch changes the computation it names --------------------------------------------------
def test_mcca_switch_adds_the_channel_attention_residual(images):
    with_mcca, without = small_mdan(mcca=True).eval(), small_mdan(mcca=False).eval()
    assert without.net.mcca is None and not any(isinstance(m, MultiHeadCrossChannelAttention)
                                                for m in without.modules())
    without.load_state_dict(with_mcca.state_dict(), strict=False)  # same backbone and heads
    # Zero scale: MCCA is the identity, the two networks agree; open it and they differ.
    torch.testing.assert_close(with_mcca.compute(images)["probs"][-1], without.compute(images)["probs"][-1])
    open_mcca(with_mcca)
    assert not torch.allclose(with_mcca.compute(images)["probs"][-1], without.compute(images)["probs"][-1])


def test_mcca_attends_across_stages():
    mcca = MultiHeadCrossChannelAttention(16, source_channels=8, heads=4)
    x, source = torch.randn(2, 16, 4, 4), torch.randn(2, 8, 8, 8)
    assert mcca(x, source).shape == x.shape
    torch.testing.assert_close(mcca(x, source), x)  # zero-initialised residual scale
    mcca.scale.data.fill_(1.0)
    changed = mcca.attend(x, source)
    assert not torch.allclose(changed, mcca.attend(x, source * 2))  # keys/values come from the source
    own = MultiHeadCrossChannelAttention(16, heads=4)                # first mapped stage: self-attention
    assert own.attend(x).shape == x.shape
    with pytest.raises(ValueError, match="divide"):
        MultiHeadCrossChannelAttention(10, heads=4)


def test_ldcam_switch_gates_the_finer_level_with_the_coarser_map(images):
    gated, plain = small_mdan(ldcam=True).eval(), small_mdan(ldcam=False).eval()
    assert plain.net.ldcam is None and len(gated.net.ldcam) == 1  # one gate: level 2 by level 1
    plain.load_state_dict(gated.state_dict(), strict=False)  # identical backbone and heads
    torch.testing.assert_close(gated.compute(images)["global_logits"], plain.compute(images)["global_logits"])
    open_mcca(gated), open_mcca(plain)  # γ = 0 hides the gate; open it
    a, b = gated.compute(images), plain.compute(images)
    torch.testing.assert_close(a["local_logits"][0], b["local_logits"][0])   # the coarsest level is ungated
    torch.testing.assert_close(a["cams"][0], b["cams"][0])
    assert not torch.allclose(a["local_logits"][1], b["local_logits"][1])
    assert not torch.allclose(a["global_logits"], b["global_logits"])


@pytest.mark.parametrize("name", TAXONOMIES)
def test_a_fresh_network_computes_exactly_its_backbones_features_at_every_mapped_stage(name, images):
    """docs/mdan.md, identity at start: MCCA and the LDCAM gate add nothing until training opens them."""
    model = small_mdan(name).eval()  # every component on
    assert model.net.mcca is not None and model.net.ldcam is not None and model.net.local is not None
    with torch.no_grad():
        refined = model.compute(images)["stage_features"]
        plain = model.net.backbone(images)  # the same trunk without MCCA and LDCAM
    assert list(refined) == list(model.net.mapping.stages)
    for stage, features in refined.items():
        relative = ((features - plain[stage]).norm() / plain[stage].norm()).item()
        assert relative < 1e-6, (stage, relative)
    open_mcca(model)  # the check can fail: opened, the mapped stages after the first differ
    with torch.no_grad():
        opened = model.compute(images)["stage_features"][model.net.mapping.deepest]
    assert not torch.allclose(opened, plain[model.net.mapping.deepest])


def test_the_cam_gate_is_flat_for_a_flat_map_and_not_stretched_for_a_nearly_flat_one():
    gate = LevelDependentCAM()
    gate.scale.data.fill_(1.0)
    features = torch.rand(2, 4, 6, 6) + 0.5
    flat = torch.full((2, 3, 3), 7.0)
    torch.testing.assert_close(normalise_map(flat), torch.zeros(2, 3, 3))
    torch.testing.assert_close(gate.gate(features, flat), features)  # a flat map gates nothing
    nearly_flat = flat + 1e-3 * torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0))
    ratio = gate.gate(features, nearly_flat) / features
    assert (ratio - 1).abs().max() < 1e-2  # min–max would have spread it over [1, 2]
    peaked = torch.zeros(2, 6, 6)
    peaked[:, 3, 3] = 5.0
    ratio = gate.gate(features, peaked) / features
    assert ratio[:, :, 3, 3].min() > 1.9 and 0.85 < ratio.min()  # a clear peak is gated up, the rest a little down


def test_branch_switches_choose_the_losses_and_the_reported_prediction(images):
    labels = get_taxonomy("mikels").labels_at_levels(torch.tensor([0, 1, 2, 3]))
    both = small_mdan()
    both_loss = both.loss(both.compute(images), labels)
    assert {"nll_global_l1", "nll_global_l2", "ce_local_l1", "ce_local_l2"} <= set(both_loss)

    global_only = small_mdan(local_branch=False, ldcam=False)
    assert global_only.net.local is None
    out = global_only.compute(images)
    assert not any(k.startswith("ce_local") for k in global_only.loss(out, labels))
    assert out["probs"] is out["global_probs"] and out["cams"] == []

    local_only = small_mdan(global_branch=False)
    assert local_only.net.global_head is None
    out = local_only.compute(images)
    assert not any(k.startswith("nll_global") for k in local_only.loss(out, labels))
    torch.testing.assert_close(out["probs"][1], out["local_logits"][1].softmax(1))

    with pytest.raises(ValueError, match="at least one"):
        small_mdan(global_branch=False, local_branch=False)


def test_fuse_reports_the_mean_of_global_and_local(images):
    model = small_mdan(fuse=True).eval()
    out = model.compute(images)
    for p, g, q in zip(out["probs"], out["global_probs"], out["local_probs"], strict=True):
        torch.testing.assert_close(p, (g + q) / 2)
    default = small_mdan().eval().compute(images)
    assert default["probs"] is default["global_probs"]


def test_hierarchy_mode_mask_changes_the_reported_prediction_only(images):
    summed, masked = small_mdan(fuse=True).eval(), small_mdan(fuse=True, hierarchy_mode="mask").eval()
    masked.load_state_dict(summed.state_dict())
    a, b = summed.compute(images), masked.compute(images)
    torch.testing.assert_close(a["fused_probs"], b["fused_probs"])
    assert not torch.allclose(a["probs"][-1], b["probs"][-1])  # finer level restricted to one parent's children
    with pytest.raises(ValueError, match="hierarchy_mode"):
        small_mdan(hierarchy_mode="tree")


def test_level_weights_and_lambda_scale_the_loss_terms(images):
    labels = get_taxonomy("mikels").labels_at_levels(torch.tensor([0, 1, 2, 3]))
    model = small_mdan(level_weights=[0.5, 2.0], lambda_local=0.25)
    terms = model.loss(model.compute(images), labels)
    expected = 0.5 * terms["nll_global_l1"] + 2.0 * terms["nll_global_l2"] + \
        0.25 * (terms["ce_local_l1"] + terms["ce_local_l2"])
    torch.testing.assert_close(terms["loss"], expected)
    with pytest.raises(ValueError, match="level_weights"):
        small_mdan(level_weights=[1.0])


def test_heads_learn_ten_times_faster_than_the_backbone_by_default():
    model = small_mdan()
    opt = model.configure_optimizers()  # the default: SGD 0.9, lr 1e-3, weight decay 1e-4, no schedule
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["heads"]["lr"] == pytest.approx(1e-3) and groups["backbone"]["lr"] == pytest.approx(1e-4)
    heads = {id(p) for p in groups["heads"]["params"]}
    assert id(model.net.global_head.weight) in heads and id(model.net.mcca[0].scale) in heads
    assert not heads & {id(p) for p in model.net.backbone.parameters()}


# -- training through Lightning --------------------------------------------------------------------------------
def _fi(root: Path, **kwargs):
    from affectlab.datamodules.vea import FI

    return FI(root=str(root), num_workers=0, **kwargs)


def test_mdan_learns_the_sample_set_above_chance_at_every_level(tmp_path):
    from affectlab.datamodules.samples import write_sample

    start = time.perf_counter()
    L.seed_everything(0)
    root = Path(write_sample("FI", tmp_path / "fi", per_class=20, size=32)["root"])
    data = _fi(root, batch_size=16, image_size=32)
    model = MDAN("mikels", backbone="resnet18", pretrained=False, backbone_lr_mult=1.0,
                 optimizer=partial(torch.optim.AdamW, lr=0.01))
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path)
    trainer.fit(model, datamodule=data)
    metrics = trainer.test(model, datamodule=data, verbose=False)[0]
    chance = [1 / n for n in model.taxonomy.num_classes]
    assert metrics["test/acc_l1"] > chance[0] + 0.15, metrics
    assert metrics["test/acc_l2"] > chance[1] + 0.1, metrics
    assert metrics["test/acc_l2_local"] > chance[1], metrics
    print(f"learning test took {time.perf_counter() - start:.0f} s: {metrics}")


def test_checkpoint_reloads_alone_with_identical_outputs(tmp_path, fi_sample):
    model = MDAN("mikels", backbone="resnet18", pretrained=False, heads=4, hierarchy_mode="mask", fuse=True,
                 lambda_local=0.5)
    open_mcca(model, 0.3)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=1, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=1,
                        default_root_dir=tmp_path)
    trainer.fit(model, datamodule=_fi(fi_sample, batch_size=4, image_size=32))
    assert {"val/acc_l1_global", "val/acc_l2_local", "val/acc_l2_fused", "val/violation_rate"} <= \
        set(trainer.callback_metrics)
    assert trainer.callback_metrics["val/violation_rate"] == 0  # mask mode
    path = tmp_path / "mdan.ckpt"
    trainer.save_checkpoint(path)
    reloaded = MDAN.load_from_checkpoint(path, map_location="cpu")
    assert reloaded.taxonomy == model.taxonomy and reloaded.hparams.heads == 4 and reloaded.hparams.fuse
    images = torch.randn(2, 3, 32, 32)
    model.eval(), reloaded.eval()
    for a, b in zip(model.compute(images)["probs"], reloaded.compute(images)["probs"], strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.slow  # about 80 s on two shared cores: two processes each import torch and Lightning
def test_two_process_cpu_ddp_through_the_cli(tmp_path, fi_sample):
    from tests.conftest import run_cli

    start = time.perf_counter()
    run_cli(["fit", "-c", str(REPO / "experiments/mdan/demo.yaml"), "-c", str(REPO / "experiments/defaults/ddp_cpu.yaml"),
             "--data.init_args.root", str(fi_sample), "--data.init_args.image_size", "32",
             "--data.init_args.batch_size", "4", "--data.init_args.num_workers", "0",
             "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
             "--trainer.enable_progress_bar", "false"], cwd=tmp_path, AFFECTLAB_RUNS=str(tmp_path / "runs"))
    checkpoints = list((tmp_path / "runs").rglob("checkpoints/last.ckpt"))
    assert len(checkpoints) == 1, list((tmp_path / "runs").rglob("*"))
    reloaded = MDAN.load_from_checkpoint(checkpoints[0], map_location="cpu")
    assert reloaded.taxonomy.name == "mikels"
    assert list((tmp_path / "runs").rglob("media/val_ldcam_e000.png"))
    print(f"DDP run took {time.perf_counter() - start:.0f} s")


def test_predict_returns_a_prediction_and_probabilities_at_every_level(images):
    model = small_mdan("webemo").eval()
    batch = {"image": images, "label": torch.zeros(4, dtype=torch.long), "path": [f"{i}.jpg" for i in range(4)]}
    with torch.no_grad():
        rows = model.predict_step(batch, 0)
    assert len(rows) == 4
    taxonomy = model.taxonomy
    for level, names in zip(taxonomy.level_names, taxonomy.levels, strict=True):
        assert rows[0][f"pred_{level}"] in names
        assert sum(rows[0][f"p_{level}_{name}"] for name in names) == pytest.approx(1, abs=1e-5)
