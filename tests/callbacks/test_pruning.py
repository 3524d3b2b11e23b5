"""Gradually global pruning (docs/pruning.md): ranking, bias elimination, surgery, stop rule, checkpoints, DDP."""

from __future__ import annotations

import copy
import json
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch import nn

from affectlab.callbacks import pruning_graph as g
from affectlab.callbacks.pruning import GradualGlobalPruning
from affectlab.callbacks.pruning_importance import (
    CRITERIA,
    NORMALIZATIONS,
    activation_scores,
    criterion_scores,
    layerwise_keys,
    normalise,
    response_scores,
    select_flops,
    select_global,
    select_layerwise,
)
from affectlab.datamodules.fashion_mnist import FashionMNIST
from affectlab.datamodules.samples import write_sample
from affectlab.modules.small_cnn import SmallCNNClassifier, SmallVGG
from conftest import REPO, run_cli

X = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _groups(model: nn.Module, x: torch.Tensor = X):
    graph = g.build_graph(model, x)
    return graph, g.neuron_groups(graph, g.output_layers(graph))


# -- ranking and bias elimination ----------------------------------------------------------------------

def test_ranking_is_one_global_list_over_all_layers():
    scores = [torch.tensor([0.1, 0.2, 5.0]), torch.tensor([3.0, 4.0, 0.15, 6.0])]
    chosen = select_global(scores, count=3)
    assert chosen == [[0, 1], [2]]  # the three lowest of all seven, wherever they are


def test_mean_normalisation_keeps_a_small_scale_layer_from_being_emptied():
    small = torch.tensor([0.010, 0.011, 0.012, 0.013, 0.014])   # a layer with tiny raw activations
    large = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    biased = select_global(normalise([small, large], "none"), count=5, min_channels=1)
    fair = select_global(normalise([small, large], "mean"), count=5, min_channels=1)
    assert len(biased[0]) == 4                    # raw scores empty the small layer down to the minimum
    assert len(fair[0]) < 4 and len(fair[1]) > 1  # normalised, both layers give neurons
    for how in ("l2", "max"):
        assert len(select_global(normalise([small, large], how), count=5)[1]) > 1


def test_per_layer_minimum_holds_in_every_mode():
    scores = [torch.rand(6), torch.rand(9), torch.rand(3)]
    for chosen in (select_global(scores, count=100, min_channels=2), select_layerwise(scores, 0.99, min_channels=2)):
        assert [len(s) - len(c) for s, c in zip(scores, chosen, strict=True)] == [2, 2, 2]


def test_layerwise_takes_the_same_ratio_per_layer():
    chosen = select_layerwise([torch.rand(10), torch.rand(40)], 0.1)
    assert [len(c) for c in chosen] == [1, 4]


def test_activation_scores_are_mean_post_activation_magnitudes():
    net = SmallVGG(1, (4, 6), hidden=5, num_classes=3).eval()
    _, groups = _groups(net)
    scores = activation_scores(net, groups, [X], net)
    first = net.features[2](net.features[1](net.features[0](X)))  # conv → BN → ReLU
    assert torch.allclose(scores[0], first.mean((0, 2, 3)), atol=1e-6)


# -- surgery ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["resnet18", pytest.param("vgg11_bn", marks=pytest.mark.slow)])
def test_output_layers_are_found_and_never_pruned(backbone):
    from affectlab.modules.classifier import EmotionClassifier

    model = EmotionClassifier(backbone=backbone, pretrained=False).eval()
    x = torch.randn(2, 3, 32, 32)
    graph = g.build_graph(model, x)
    params = g.count_params(model)
    assert g.output_layers(graph) == [model.head[-1]]
    groups = g.neuron_groups(graph, g.output_layers(graph))
    assert all(model.head[-1] not in grp.layers for grp in groups)
    chosen = select_global(normalise([torch.rand(grp.width) for grp in groups]), count=300, min_channels=2)
    g.prune_groups(graph, groups, chosen)
    out = model(x)
    assert model.head[-1].out_features == 8 and out[-1].shape == (2, 8)
    assert torch.isfinite(out[-1]).all() and g.count_params(model) < params
    if backbone.startswith("vgg"):
        return
    # residual additions stay consistent: each block's output width equals its shortcut's
    for block in model.backbone.stages["layer1"]:
        assert block.conv2.out_channels == model.backbone.stages["stem"][0].out_channels


def test_surgery_keeps_shapes_consistent_and_outputs_finite():
    model = SmallCNNClassifier(in_channels=1, widths=[8, 8, 16], hidden=12).eval()
    graph, groups = _groups(model)
    before = g.count_flops(model, X)
    g.prune_groups(graph, groups, select_global([torch.rand(grp.width) for grp in groups], count=15))
    probs = model(X)[-1]
    assert probs.shape == (2, 8) and torch.isfinite(probs).all()
    assert g.count_flops(model, X) < before
    assert sum(g.widths(model).values()) == 8 + 8 + 16 + 12 + 8 - 15


def test_removing_all_zero_neurons_leaves_outputs_unchanged():
    net = SmallVGG(1, (6, 8), hidden=10, num_classes=4).eval()
    dead = {0: [1, 4], 3: [0, 5, 7]}  # conv index in net.features → dead output channels
    with torch.no_grad():
        for i, channels in dead.items():
            net.features[i].weight[channels] = 0
            net.features[i + 1].weight[channels] = 0  # BN scale and shift 0: the neuron outputs 0
            net.features[i + 1].bias[channels] = 0
        net.classifier[1].weight[[2, 3]] = 0
        net.classifier[1].bias[[2, 3]] = 0
    reference = net(X)
    graph, groups = _groups(net)
    by_name = {grp.name: grp for grp in groups}
    g.prune_groups(graph, [by_name["features.0"], by_name["features.3"], by_name["classifier.1"]],
                   [dead[0], dead[3], [2, 3]])
    assert g.widths(net) == {"features.0": 4, "features.3": 5, "classifier.1": 8, "classifier.4": 4}
    assert torch.allclose(net(X), reference, atol=1e-5)


# -- the schedule and the stop rule -------------------------------------------------------------------

class ScriptedMetric(SmallCNNClassifier):
    """Logs a scripted ``val/acc`` per epoch so the stop rule can be driven exactly."""

    script = (0.90, 0.895, 0.50, 0.50, 0.90, 0.90)

    def on_validation_epoch_end(self) -> None:
        self.metrics["val"].reset()
        self.log("val/acc", self.script[self.current_epoch])


class KeepAccepted(L.Callback):
    def __init__(self, pruning: GradualGlobalPruning) -> None:
        self.pruning, self.saved = pruning, {}

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.pruning.rows and self.pruning.rows[-1]["status"] == "accepted":
            self.saved = copy.deepcopy(pl_module.state_dict())


@pytest.fixture(scope="module")
def fashion_sample(tmp_path_factory) -> dict:
    return write_sample(FashionMNIST, tmp_path_factory.mktemp("fashion"), train=80, test=20)


def test_stop_rule_backs_off_then_restores_the_last_accepted_network(fashion_sample, tmp_path):
    """Step 2 falls too far: restore, halve the step, retry; the retry falls too: restore and stop."""
    data = FashionMNIST(**{**fashion_sample, "batch_size": 32})
    model = ScriptedMetric(taxonomy=data.taxonomy_spec, in_channels=1, widths=[8, 16], hidden=16)
    pruning = GradualGlobalPruning(warmup_epochs=1, step_ratio=0.4, min_step_ratio=0.2, step_unit="neurons",
                                   max_drop=0.01, max_drop_unit="absolute", calibration_batches=1, export=False)
    keep = KeepAccepted(pruning)
    trainer = L.Trainer(max_epochs=6, callbacks=[pruning, keep], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    assert [r["status"] for r in pruning.rows] == ["baseline", "accepted", "rejected", "rejected"]
    assert trainer.current_epoch == 4  # stopped right after the retry was rejected, not after the first rejection
    total = sum(pruning.rows[1]["widths"].values())
    removed = [total - sum(r["widths"].values()) for r in pruning.rows[2:]]
    assert removed[1] < removed[0] and abs(removed[1] - removed[0] / 2) <= 1  # the retry is half the step
    assert pruning.ratio == 0.2 and pruning.done and "smallest step" in pruning.reason
    assert g.widths(model) == pruning.rows[1]["widths"]
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in keep.saved.items())
    assert (tmp_path / "pruning.csv").is_file() and (tmp_path / "pruning.png").is_file()


def test_one_rejection_without_room_to_back_off_stops(fashion_sample, tmp_path):
    data = FashionMNIST(**{**fashion_sample, "batch_size": 32})
    model = ScriptedMetric(taxonomy=data.taxonomy_spec, in_channels=1, widths=[8, 16], hidden=16)
    pruning = GradualGlobalPruning(warmup_epochs=1, step_ratio=0.2, min_step_ratio=0.2, max_drop=0.01,
                                   max_drop_unit="absolute", calibration_batches=1, export=False)
    trainer = L.Trainer(max_epochs=6, callbacks=[pruning], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    assert [r["status"] for r in pruning.rows] == ["baseline", "accepted", "rejected"] and trainer.current_epoch == 3


def test_max_drop_in_standard_errors_scales_with_the_validation_set():
    pruning = GradualGlobalPruning(max_drop=2.0, max_drop_unit="se")
    pruning.baseline = 0.9

    class Loader:
        dataset, batch_size = list(range(5000)), 100

    class Trainer:
        val_dataloaders, num_val_batches, world_size = Loader(), [50], 1

    assert pruning.allowed_drop(Trainer()) == pytest.approx(2 * (0.9 * 0.1 / 5000) ** 0.5)
    Trainer.num_val_batches = [10]  # limit_val_batches: only 1,000 images behind the metric
    assert pruning.allowed_drop(Trainer()) == pytest.approx(2 * (0.9 * 0.1 / 1000) ** 0.5)
    assert not pruning._dropped_too_far(0.9 - 0.018, Trainer()) and pruning._dropped_too_far(0.9 - 0.02, Trainer())


def test_optimiser_is_rebuilt_over_the_new_parameters(fashion_sample, tmp_path):
    data = FashionMNIST(**{**fashion_sample, "batch_size": 32})
    model = SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=[6, 8], hidden=8,
                               optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9), backbone_lr_mult=0.5,
                               lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))
    pruning = GradualGlobalPruning(warmup_epochs=1, step_ratio=0.2, max_drop=None, criterion="taylor",
                                   calibration_batches=1, export=False)
    trainer = L.Trainer(max_epochs=3, callbacks=[pruning], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    assert pruning.step == 2
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.parameters()}
    # The rebuilt optimiser is the configured one, its backbone group at backbone_lr_mult of the heads',
    # under the configured schedule (how far the schedule has run is the callback's fine-tuning policy).
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates["backbone"] == pytest.approx(0.5 * rates["heads"]) and 0 < rates["heads"] < 0.05
    assert isinstance(trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.StepLR)


# -- through the CLI: end to end, checkpoints in a fresh process, DDP -------------------------------------

def _config(tmp_path: Path, sample: dict, extra: dict | None = None) -> Path:
    config = yaml.safe_load((REPO / "experiments/pruning/fashion_vgg.yaml").read_text())
    config["trainer"].update({"max_epochs": 3, "enable_progress_bar": False, "log_every_n_steps": 1,
                              "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                                         "init_args": {"save_dir": str(tmp_path / "logs")}}})
    config["trainer"]["callbacks"][0]["init_args"].update(
        {"warmup_epochs": 1, "step_ratio": 0.2, "max_drop": None, "calibration_batches": 1})
    config["model"]["init_args"].update({"widths": [6, 8], "hidden": 8})
    config["data"]["init_args"].update({**sample, "batch_size": 32})
    config.update(extra or {})
    path = tmp_path / "pruning.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def cli_run(fashion_sample, tmp_path_factory) -> Path:
    """One end-to-end CLI fit with the callback; returns the run folder."""
    tmp = tmp_path_factory.mktemp("cli")
    run_cli(["fit", "-c", str(_config(tmp, fashion_sample)), "--trainer.default_root_dir", str(tmp / "run")],
            cwd=tmp, AFFECTLAB_RUNS=str(tmp / "runs"))
    return tmp / "run"


def test_cli_run_prunes_reports_and_exports(cli_run):
    rows = (cli_run / "pruning.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 and "flops_ratio" in rows[0]
    for name in ("module.pt", "program.pt2", "pruned.ckpt", "history_rank0.json"):
        assert (cli_run / "pruned" / name).is_file()
    assert json.loads((cli_run / "pruned/history_rank0.json").read_text())["steps"] == 2


def test_pruned_checkpoint_reloads_identically_in_a_fresh_process(cli_run, tmp_path):
    """The CLI trained and pruned in another process; this one only has the files."""
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    exported = torch.load(cli_run / "pruned/module.pt", weights_only=False).eval()
    program = torch.export.load(cli_run / "pruned/program.pt2").module()
    loaded = SmallCNNClassifier.load_from_checkpoint(cli_run / "pruned/pruned.ckpt").eval()
    assert g.widths(loaded) == g.widths(exported) and g.count_params(loaded) < g.count_params(
        SmallCNNClassifier(in_channels=1, widths=[6, 8], hidden=8))
    assert torch.equal(loaded(x)[-1], exported(x)[-1])
    assert torch.allclose(program(x)[-1], exported(x)[-1], atol=1e-5)
    # restoring through ckpt_path into an unpruned module rebuilds it before the weights load
    ckpt = torch.load(cli_run / "pruned/pruned.ckpt", weights_only=False)
    def init_args(hparams: dict) -> dict:
        return {k: v for k, v in hparams.items() if not k.startswith("_")}

    fresh = SmallCNNClassifier(**init_args(ckpt["hyper_parameters"]))
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.validate(fresh, FashionMNIST(**init_args(ckpt["datamodule_hyper_parameters"])),
                     ckpt_path=cli_run / "pruned/pruned.ckpt", verbose=False)
    assert torch.equal(fresh.eval()(x)[-1], exported(x)[-1])


@pytest.mark.slow
def test_cli_resume_from_a_pruned_checkpoint_continues_training(cli_run, fashion_sample, tmp_path):
    config = _config(tmp_path, fashion_sample)
    run_cli(["fit", "-c", str(config), "--trainer.max_epochs", "4", "--ckpt_path",
             str(cli_run / "checkpoints/last.ckpt"), "--trainer.default_root_dir", str(tmp_path / "resumed")],
            cwd=tmp_path)
    rows = (tmp_path / "resumed/pruning.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # the restored report rows plus the resumed epoch's step


@pytest.mark.slow
def test_ddp_ranks_prune_the_same_neurons(fashion_sample, tmp_path):
    config = _config(tmp_path, fashion_sample)
    run_cli(["fit", "-c", str(REPO / "experiments/defaults/ddp_cpu.yaml"), "-c", str(config),
             "--trainer.default_root_dir", str(tmp_path / "run")], cwd=tmp_path)
    ranks = [json.loads((tmp_path / f"run/pruned/history_rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["steps"] == 2 and ranks[0]["history"]
    assert ranks[0]["history"] == ranks[1]["history"]


def test_comparison_modes_are_configured_by_mode():
    assert GradualGlobalPruning(mode="global_unnormalised").normalization == "none"
    for how in NORMALIZATIONS:  # the FLOPs-aware ones too: their costs come from the network later
        assert GradualGlobalPruning(normalization=how).normalization == how
    with pytest.raises(ValueError, match="normalization must be one of"):
        GradualGlobalPruning(normalization="z-score")
    assert GradualGlobalPruning(mode="layerwise").normalization == GradualGlobalPruning().normalization
    with pytest.raises(ValueError, match="baseline"):
        GradualGlobalPruning(warmup_epochs=0)
    with pytest.raises(ValueError, match="step_unit"):
        GradualGlobalPruning(step_unit="params")
    with pytest.raises(ValueError, match="target_flops_ratio"):
        GradualGlobalPruning(mode="one_shot")
    with pytest.raises(ValueError, match="criterion"):
        GradualGlobalPruning(criterion="random")


def test_thinning_reaches_a_flops_budget_and_keeps_the_logits():
    from affectlab.callbacks.pruning import thin

    net = SmallVGG(1, (8, 16, 16), hidden=16, num_classes=5).eval()
    rows = thin(net, X[:1], target_flops_ratio=0.5, step_ratio=0.1)
    assert rows[-1]["flops_ratio"] <= 0.5 < (rows[-2]["flops_ratio"] if len(rows) > 1 else 1.0)
    assert net.classifier[-1].out_features == 5 and torch.isfinite(net(X)).all()


def test_feature_map_inversion_reads_the_pruned_network(cli_run):
    """The thinner network's surviving filters are what an inversion of the pruned checkpoint addresses."""
    from affectlab.modules.inversion.trunk import FeatureTrunk

    pruned = SmallCNNClassifier.load_from_checkpoint(cli_run / "pruned/pruned.ckpt")
    trunk = FeatureTrunk(str(cli_run / "pruned/pruned.ckpt"))
    convs = [m.out_channels for m in pruned.net.features if isinstance(m, nn.Conv2d)]
    assert [trunk.sequential.get_submodule(f"conv1_{i}").out_channels for i in (1, 2)] == convs
    assert convs != [6, 8] and trunk(torch.randn(1, 3, 28, 28), ["relu1_2"])["relu1_2"].shape[1] == convs[1]


# -- criteria, FLOPs steps ---------------------------------------------------------------------------------

def _planted(seed: int = 0) -> tuple[SmallVGG, list]:
    """A small VGG with a dead hidden unit (all-zero weights) and a constant conv channel (all-zero
    conv weights, so batch norm outputs its shift β = 1 everywhere), beside useful neurons."""
    torch.manual_seed(seed)
    net = SmallVGG(1, (8, 8), pool_every=1, hidden=12, num_classes=4).eval()
    with torch.no_grad():
        for bn in (net.features[1], net.features[5]):
            bn.running_mean.normal_(0, 0.1)
            bn.weight.uniform_(0.5, 1.5)
        net.features[4].weight[3] = 0          # constant channel 3 of the second conv
        net.features[5].bias[3] = 1.0
        net.classifier[1].bias.fill_(0.5)      # every hidden unit responds ...
        net.classifier[1].weight[5] = 0        # ... but unit 5, dead
        net.classifier[1].bias[5] = 0
    return net, _groups(net)[1]


def _planted_scores(criterion: str) -> tuple[torch.Tensor, torch.Tensor]:
    net, groups = _planted()
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 4, (16,), generator=torch.Generator().manual_seed(3))
    stats = response_scores(net, groups, [x], net, taylor=True,
                            loss=lambda out, i: nn.functional.cross_entropy(out, y))
    scores = normalise(criterion_scores(criterion, groups, stats), "l2")
    return scores[1], scores[2]  # second conv, hidden layer


def test_dead_and_constant_neurons_rank_below_useful_ones():
    conv2, hidden = _planted_scores("std")
    useful = torch.cat([conv2[torch.arange(8) != 3], hidden[torch.arange(12) != 5]])
    assert hidden[5] < useful.min() and conv2[3] < useful.min(), (conv2, hidden)
    assert select_global([torch.ones(8), conv2, hidden], count=2) == [[], [3], [5]]  # exactly these two go first
    # the control: the mean response (the first default) scores the constant channel (β = 1) above useful ones
    conv2, _ = _planted_scores("activation")
    assert conv2[3] > conv2[torch.arange(8) != 3].median()


def test_fisher_is_half_the_mean_squared_per_image_loss_change():
    net, groups = _planted()
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, 4, (6,), generator=torch.Generator().manual_seed(5))
    stats = response_scores(net, groups, [x], net, taylor=True,
                            loss=lambda out, i: nn.functional.cross_entropy(out, y))
    # the definition, one image at a time: its own loss's gradient at the hidden pre-activation
    site, expected = groups[2].sites[0], torch.zeros(12)
    for n in range(6):
        captured: dict[str, torch.Tensor] = {}
        handle = site.register_forward_hook(lambda m, i, o, captured=captured: captured.setdefault("a", o))
        loss = nn.functional.cross_entropy(net(x[n:n + 1]), y[n:n + 1])
        handle.remove()
        (grad,) = torch.autograd.grad(loss, captured["a"])
        expected += (captured["a"] * grad).detach()[0].pow(2) / 2 / 6
    assert torch.allclose(stats["fisher"][2], expected, rtol=1e-4, atol=1e-9)
    assert stats["fisher"][2][5] == 0  # the dead unit


def test_a_flops_budget_ranked_per_flop_leaves_cheap_layers_standing():
    """The default normalisation: raw loss-rise scores spend a FLOPs budget on a cheap wide layer
    (each of its neurons costs little loss and little FLOPs) until it is empty; per FLOP they do not."""
    scores = [torch.linspace(1.0, 2.0, 16), torch.full((64,), 0.05)]   # expensive layer, cheap wide layer
    costs = [1000.0, 10.0]
    budget = 0.2 * (16 * 1000 + 64 * 10)
    raw = select_flops(normalise(scores, "none", costs), costs, budget, min_channels=2)
    per_flop = select_flops(normalise(scores, "flops", costs), costs, budget, min_channels=2)
    assert len(raw[1]) == 62            # emptied down to min_channels ...
    assert len(per_flop[1]) == 0 and len(per_flop[0]) == 4  # ... or untouched, the budget bought elsewhere
    assert GradualGlobalPruning().normalization == "flops" and GradualGlobalPruning().criterion == "fisher"


def test_every_criterion_and_normalisation_scores_every_neuron():
    net, groups = _planted()
    stats = response_scores(net, groups, [X], net, taylor=True, loss=lambda out, i: out.logsumexp(1).mean())
    costs = g.neuron_costs(net, groups, X[:1])
    for criterion in CRITERIA:
        for how in ("mean", "l2", "max", "none", "flops", "mean_flops"):
            scores = normalise(criterion_scores(criterion, groups, stats), how, costs)
            assert [len(s) for s in scores] == [8, 8, 12] and all(torch.isfinite(s).all() for s in scores)


def test_neuron_costs_are_the_flops_one_neuron_saves():
    net = SmallVGG(1, (8, 16, 16), pool_every=1, hidden=16, num_classes=5).eval()
    graph, groups = _groups(net)
    costs = g.neuron_costs(net, groups, X[:1])
    before = g.count_flops(net, X[:1])
    for i, grp in enumerate(groups):
        trial = copy.deepcopy(net)
        trial_graph, trial_groups = _groups(trial)
        g.prune_groups(trial_graph, [trial_groups[i]], [[0]])
        assert before - g.count_flops(trial, X[:1]) == pytest.approx(costs[i], rel=0.02), grp.name


@pytest.mark.parametrize("share", [0.1, 0.3])
def test_flops_steps_remove_about_the_asked_share_of_flops(fashion_sample, tmp_path, share):
    data = FashionMNIST(**{**fashion_sample, "batch_size": 32})
    model = SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=[16, 32, 32], hidden=32)
    pruning = GradualGlobalPruning(warmup_epochs=1, step_ratio=share, max_drop=None, calibration_batches=1,
                                   export=False)
    trainer = L.Trainer(max_epochs=3, callbacks=[pruning], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    ratios = [r["flops_ratio"] for r in pruning.rows]
    assert len(ratios) == 3
    for before, after in zip(ratios, ratios[1:], strict=False):
        assert share <= 1 - after / before <= share + 0.05, ratios  # the asked share, give or take one neuron


@pytest.mark.parametrize("mode", ["global", "layerwise", "one_shot"])
def test_a_trained_network_is_pruned_to_a_flops_target_from_the_first_epoch(fashion_sample, tmp_path, mode):
    data = FashionMNIST(**{**fashion_sample, "batch_size": 32})
    model = SmallCNNClassifier(taxonomy=data.taxonomy_spec, in_channels=1, widths=[16, 32, 32], hidden=32)
    pruning = GradualGlobalPruning(mode=mode, warmup_epochs=0, baseline=0.9, step_ratio=0.3, max_drop=None,
                                   target_flops_ratio=0.5, finetune_lr=1e-4, calibration_batches=1, export=False)
    trainer = L.Trainer(max_epochs=4, callbacks=[pruning], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    assert pruning.rows[0]["status"] == "baseline" and pruning.rows[0]["flops_ratio"] == 1.0
    assert 0.45 <= pruning.rows[-1]["flops_ratio"] <= 0.5 and pruning.reason
    assert pruning.step == (1 if mode == "one_shot" else 2)
    assert all(grp["lr"] == pytest.approx(1e-4) for grp in trainer.optimizers[0].param_groups)
    if mode == "layerwise":  # the same share of every layer
        kept = [w / full for w, full in zip(g.widths(model).values(), [16, 32, 32, 32], strict=False)]
        assert max(kept) - min(kept) <= 0.15, g.widths(model)


def test_layerwise_keys_take_the_same_share_of_every_layer():
    keys = layerwise_keys([torch.rand(10), torch.rand(40) * 100])
    chosen = select_flops(keys, [1.0, 1.0], budget=10)
    assert [len(c) for c in chosen] == [2, 8]


def test_the_report_publishes_its_pictures_through_the_one_helper(tmp_path, monkeypatch):
    """The final report logs pruning.png and pruning_layers.png by ``publish`` (run folder path, W&B key,
    step), and the step table, line plot and bar charts straight to the run."""
    from types import SimpleNamespace

    import affectlab.callbacks.pruning_report as report_module
    import affectlab.callbacks.publish as publish_module
    from affectlab.callbacks.pruning_report import PruningReport

    class RecordingWandb:
        def __init__(self) -> None:
            self.images, self.logged = [], []
            self.experiment = SimpleNamespace(log=self.logged.append)

        def log_image(self, **kwargs) -> None:
            self.images.append(kwargs)

    monkeypatch.setattr(publish_module, "WandbLogger", RecordingWandb)
    monkeypatch.setattr(report_module, "WandbLogger", RecordingWandb)
    wandb = RecordingWandb()
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), current_epoch=4, global_step=40, is_global_zero=True,
                              loggers=[wandb])
    rows = [{"step": s, "epoch": s, "status": status, "val/acc": acc, "params": 10, "flops": 10, "params_ratio": 1.0,
             "flops_ratio": 1 - 0.2 * s, "widths": {"conv1": 8 - s, "conv2": 16 - 2 * s}}
            for s, (status, acc) in enumerate([("baseline", 0.9), ("accepted", 0.88), ("rejected", 0.7)])]
    report = PruningReport(tmp_path)
    report.write(rows, "val/acc", trainer)
    assert wandb.images == [] and wandb.logged == []  # steps only rewrite the files
    report.write(rows, "val/acc", trainer, final=True)
    assert [(i["key"], i["images"], i["step"]) for i in wandb.images] == [
        ("pruning/plot", [str(tmp_path / "pruning.png")], 40), ("pruning/layers", [str(tmp_path / "pruning_layers.png")], 40)]
    assert set(wandb.logged[0]) == {"pruning/steps", "pruning/metric_vs_flops", "pruning/removed_step1"}
