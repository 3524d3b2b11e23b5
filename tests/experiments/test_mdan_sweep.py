"""The MDAN ablation sweep is a valid W&B sweep over MDAN's own switches."""

from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from modules.mdan import MDAN

SWEEP = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "mdan_ablation.yaml"


def test_the_ablation_sweep_is_a_valid_grid_over_mdan_switches():
    from sweeps.config import schema_violations_from_proposed_config

    config = yaml.safe_load(SWEEP.read_text())
    assert schema_violations_from_proposed_config(config) == []
    assert config["method"] == "grid" and config["metric"]["name"] == "val/acc"
    init_args = inspect.signature(MDAN.__init__).parameters
    switches = {key.removeprefix("model.init_args.") for key in config["parameters"]}
    assert {"mcca", "ldcam", "global_branch", "local_branch", "hierarchy_mode", "fuse"} <= switches <= set(init_args)
    assert "experiments/mdan/fi.yaml" in config["command"] and "${args}" in config["command"]
