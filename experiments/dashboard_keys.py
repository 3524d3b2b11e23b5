"""What each method's W&B workspace charts: the one place to change when a logged key is renamed or added.

``experiments/dashboard.py`` turns these specifications into saved W&B workspaces, and
``tests/experiments/test_dashboard.py`` checks every key below against what a short offline fit of
the method's demo configuration really logs, so a renamed metric fails a test instead of leaving an
empty panel. A panel names keys exactly (``keys``) or by a regular expression (``regex``) where
their number depends on the data: one line per affective level (``val/acc_l1`` … ``val/acc_lK``).

Keys are the ``stage/name`` of the README's "Metrics" section; ``trainer/global_step`` is the step
Lightning's WandbLogger logs every metric against.
"""

from __future__ import annotations

from dataclasses import dataclass

STEP = "trainer/global_step"


@dataclass(frozen=True)
class Line:
    """Line plot of scalars against the global step: the ``keys`` given and every key matching ``regex``."""

    title: str
    keys: tuple[str, ...] = ()
    regex: str | None = None


@dataclass(frozen=True)
class Media:
    """Images logged with ``log_image`` (newest step first, one column per run)."""

    title: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A ``wandb.Table`` as logged (its newest version)."""

    key: str


@dataclass(frozen=True)
class TableLine:
    """A line chart drawn from two columns of a logged table (``y`` against ``x``)."""

    title: str
    table: str
    x: str
    y: str


@dataclass(frozen=True)
class Section:
    name: str
    panels: tuple[Line | Media | Table | TableLine, ...]
    open: bool = True


#: Runs of a method are recognised by their name, ``<experiment folder>-<file>/<time>`` (``mdan-fi/...``).
RUN_NAMES = {"mdan": "^mdan-", "pruning": "^pruning-", "advae": "^advae-", "inversion": "^inversion-"}

LEVEL = r"l\d+"  # one affective level, l1 (coarsest) ... lK

WORKSPACES: dict[str, tuple[Section, ...]] = {
    # docs/mdan.md; README "MDAN", "What is logged".
    "mdan": (
        Section("Accuracy per level and branch", (
            Line("val/acc (finest level)", keys=("val/acc",)),
            Line("accuracy per level (reported prediction)", regex=rf"^val/acc_{LEVEL}$"),
            Line("global branch (bottom-up) per level", regex=rf"^val/acc_{LEVEL}_global$"),
            Line("local branch (top-down) per level", regex=rf"^val/acc_{LEVEL}_local$"),
            Line("fused branches per level", regex=rf"^val/acc_{LEVEL}_fused$"),
            Line("hierarchy violation rate", keys=("val/violation_rate",)),
        )),
        Section("Losses per term", (
            Line("total loss", keys=("train/loss", "val/loss")),
            Line("global NLL per level", regex=rf"^train/nll_global_{LEVEL}$"),
            Line("local cross-entropy per level", regex=rf"^train/ce_local_{LEVEL}$"),
        )),
        Section("LDCAM", (
            Media("LDCAM per level (columns: image, levels coarse → fine)", keys=("val/ldcam",)),
            Line("CAM vs stimuli: ROC AUC per level (0.5 = chance)", regex=rf"^val/cam_auc_{LEVEL}$"),
            Line("CAM vs stimuli: mean inside / outside", regex=rf"^val/cam_inside_outside_{LEVEL}$"),
        )),
        Section("Predictions", (
            Media("confusion matrices per level", keys=("val/confusion_matrix",)),
            Media("validation predictions", keys=("val/predictions",)),
        )),
        Section("Per-class accuracy", (
            Line("per-class accuracy, every level", regex=rf"^val/class_acc_{LEVEL}/"),
        ), open=False),
        Section("Data", (Table("data/stats"),), open=False),
    ),
    # docs/pruning.md; README "Gradually global pruning", "What a run leaves".
    "pruning": (
        Section("Metric and FLOPs per step", (
            Line("monitored metric", keys=("val/acc",)),
            TableLine("val/acc against the FLOPs ratio", table="pruning/metric_vs_flops_table",
                      x="flops_ratio", y="val/acc"),
            Media("metric against FLOPs (accepted, rejected, baseline)", keys=("pruning/plot",)),
        )),
        Section("Steps: status, parameters, FLOPs and every layer's width", (Table("pruning/steps"),)),
        Section("Training", (
            Line("loss", keys=("train/loss", "val/loss")),
            Media("confusion matrix", keys=("val/confusion_matrix",)),
        ), open=False),
    ),
    # docs/advae.md; README "AD-VAE", "Decisions".
    "advae": (
        Section("Losses", (
            Line("VAE loss", keys=("train/loss_step", "val/loss")),
            Line("reconstruction", keys=("train/recon_step", "val/recon", "val/recon_mse")),
            Line("KL and its weight β", keys=("train/kl_step", "val/kl", "train/beta_step")),
            Line("latent adversary", keys=("train/adv_loss_step", "train/adv_fool_step", "train/lambda_adv_step")),
        )),
        Section("Disentanglement and attribute control", (
            Line("attribute control (classifier on generated faces)", keys=("val/attr_control_acc",)),
            Line("classifier on real photos (ceiling)", keys=("val/attr_clf_acc",)),
            Line("adversary on z (majority rate when disentangled)", keys=("val/adv_acc",)),
            Line("attribute probe on z and its gap", keys=("val/probe_acc", "val/probe_gap")),
        )),
        Section("Attribute and style grids", (
            Media("attribute sweep (hair colours, complexion)", keys=("val/attribute_sweep",)),
            Media("style transfer (row j: the style of photo j)", keys=("val/style_transfer",)),
            Media("drawing / photo / reconstruction", keys=("val/reconstruction",)),
        )),
    ),
    # docs/inversion.md; README "Feature map inversion".
    "inversion": (
        Section("Optimisation", (
            Line("loss per iteration (summed over images)", keys=("train/loss",)),
            Line("images still optimised (per-image stop rule)", keys=("train/running",)),
        )),
        Section("Texture grids per layer", (
            Media("filters: rows layers, columns filters", keys=("inversion/filters",)),
            Media("random energy reallocation", keys=("inversion/random",)),
            Media("purposeful (energy) vs Gram style transfer", keys=("inversion/style",)),
        )),
    ),
}

#: Keys a panel shows that the method does not log yet (added together with their metric). The
#: reality test requires them to be absent, so a key that starts being logged is moved out of here.
NOT_YET_LOGGED: dict[str, frozenset[str]] = {}

#: Sweep parameters that repeat one setting (folds, seeds): a sweep over them is summarised as the
#: mean ± std of its metric over the repeats, grouped by every other parameter.
REPEAT_PARAMETERS = ("seed_everything", "data.init_args.fold", "data.init_args.seed", "model.init_args.seed",
                     "data.fold", "data.seed", "model.seed")


def keys_of(panel: Line | Media | Table | TableLine) -> tuple[list[str], list[str], list[str]]:
    """``(scalar keys, media or table keys, regular expressions)`` a panel reads."""
    if isinstance(panel, Line):
        return list(panel.keys), [], [panel.regex] if panel.regex else []
    if isinstance(panel, Media):
        return [], list(panel.keys), []
    if isinstance(panel, Table):
        return [], [panel.key], []
    return [], [panel.table], []  # TableLine: its columns are checked against the table itself
