"""Fold and seed aggregates through the sweep agent: mean ± std per level and branch (experiments/sweep.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from affectlab.experiments import sweep
from affectlab.experiments.cli import main
from conftest import REPO

STUB = Path(__file__).with_name("sweep_stub_trial.py")


def test_a_seed_sweep_writes_mean_and_std_per_level_and_branch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    config = {"name": "seeds_stub", "method": "grid", "metric": {"name": "val/acc", "goal": "maximize"},
              "parameters": {"score": {"values": [0.5, 0.7, 0.9]}},
              "command": ["${env}", "${interpreter}", str(STUB), "--test_after_fit=true", "${args}"]}
    file = tmp_path / "seeds_stub.yaml"
    file.write_text(yaml.safe_dump(config))
    main(["sweep", str(file), "--poll", "0.05", "--config", "base.yaml", "--epochs=1"])
    folder = sweep.sweeps_root() / "seeds_stub"
    state = json.loads((folder / sweep.STATE_FILE).read_text())
    argv = json.loads((Path(state["trials"][0]["run_dir"]) / "stub.json").read_text())["argv"]
    # The base config comes before the swept parameter, so the parameter wins over it.
    assert argv.index("-c") < argv.index("--score=0.5") and argv[argv.index("-c") + 1] == "base.yaml"
    table = (folder / "aggregate.md").read_text()
    assert "test accuracy over 3 trial(s)" in table
    assert "| l1 | 0.7000 ± 0.2000 | 0.7000 ± 0.2000 | 0.3500 ± 0.1000 | - |" in table
    assert "| l2 | 0.1750 ± 0.0500 | - | - | - |" in table
    assert "test violation rate: 0.1000 ± 0.0000" in table
    assert "0.7000 ± 0.2000" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["folds_twitter1", "folds_twitter2"])
def test_fold_sweeps_run_the_five_folds_with_a_test_each(name):
    config = sweep.load_sweep(REPO / f"experiments/sweeps/{name}.yaml")
    assert config["parameters"]["data.init_args.fold"]["values"] == [0, 1, 2, 3, 4]
    assert "--test_after_fit=true" in config["command"]
    seeds = sweep.load_sweep(REPO / "experiments/sweeps/seeds.yaml")
    assert "seed_everything" in seeds["parameters"] and "--test_after_fit=true" in seeds["command"]


def test_test_after_fit_tests_the_chosen_checkpoint_in_the_same_run(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["fit", "-c", str(REPO / "experiments/mdan/demo.yaml"), "--data.init_args.root", str(fi_sample),
                "--data.init_args.image_size", "32", "--data.init_args.num_workers", "0",
                "--trainer.accelerator", "cpu", "--trainer.logger", "false", "--trainer.max_epochs", "1",
                "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                "--trainer.enable_progress_bar", "false", "--test_after_fit", "true",
                "--trainer.callbacks+=affectlab.callbacks.metrics_file.MetricsFile"])
    metrics = json.loads((Path(cli.trainer.default_root_dir) / "metrics.json").read_text())
    assert {"test/acc_l1", "test/acc_l2", "test/acc_l2_global", "test/acc_l2_local", "test/acc_l2_fused",
            "test/violation_rate"} <= set(metrics["test"])
    assert metrics["history"] and metrics["best"]["path"].endswith(".ckpt")
