"""The MDAN ablation sweep regenerates the ablation table: one valid row per switch setting."""

from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from affectlab.modules.mdan import MDAN

REPO = Path(__file__).resolve().parents[2]
SWEEP = REPO / "experiments" / "sweeps" / "mdan_ablation.yaml"
SWITCHES = {"mcca", "ldcam", "global_branch", "local_branch", "hierarchy_mode", "fuse"}


def test_the_ablation_sweep_is_a_valid_grid_of_rows_over_mdan_switches():
    from sweeps.config import schema_violations_from_proposed_config

    config = yaml.safe_load(SWEEP.read_text())
    assert schema_violations_from_proposed_config(config) == []
    assert config["method"] == "grid" and config["metric"]["name"] == "val/acc"
    assert "experiments/mdan/fi.yaml" in config["command"] and "${args}" in config["command"]
    init_args = set(inspect.signature(MDAN.__init__).parameters)
    rows = [yaml.safe_load((REPO / row).read_text())["model"]["init_args"] for row in config["parameters"]["config"]["values"]]
    switched = set().union(*rows)
    assert SWITCHES <= switched <= init_args
    for row in rows:  # no row turns off both branches (MDAN refuses that at start-up)
        assert row.get("global_branch", True) or row.get("local_branch", True), row
    assert len({tuple(sorted(row.items())) for row in rows}) == len(rows)  # rows differ
