"""Every AD-VAE experiment file runs alone with fast_dev_run on a generated CelebA-layout tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from datamodules.celeba import CelebA
from experiments.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "advae").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Two busy cores: one intra-op thread is several times faster for these tiny networks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    return CelebA.write_sample(tmp_path_factory.mktemp("celeba"), counts=(16, 8, 4))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_runs_with_fast_dev_run(config, sample, tmp_path):
    overrides = [f"--data.init_args.{k}={v}" for k, v in sample.items()]
    args = ["fit", "-c", str(config), *overrides, "--trainer.fast_dev_run=1", "--trainer.accelerator=cpu",
            f"--trainer.default_root_dir={tmp_path}"]
    if "stage2" in config.stem:
        with pytest.warns(UserWarning, match="freshly initialised"):
            cli = main(args)
    else:
        cli = main(args)
    assert cli.trainer.state.finished
    assert cli.model.image_size == 32 and cli.model.attributes == cli.datamodule.attributes


def test_three_configs_exist():
    assert {p.stem for p in CONFIGS} == {"celeba_stage1", "celeba_stage2", "demo"}
