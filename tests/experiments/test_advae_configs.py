"""Every AD-VAE experiment file runs alone with fast_dev_run on a generated CelebA-layout tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectlab.datamodules.celeba import CelebA
from affectlab.datamodules.samples import write_sample
from affectlab.experiments.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "advae").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """Tiny networks: one intra-op thread is several times faster than two busy ones."""


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    return write_sample(CelebA, tmp_path_factory.mktemp("celeba"), counts=(16, 8, 4))


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


@pytest.mark.slow
def test_stage1_then_stage2_then_predict_from_the_command_line(sample, tmp_path):
    """The documented sequence: stage 1, stage 2 on its checkpoint (a glob), predict on drawings."""
    from affectlab.datamodules.sketch import LineDrawings

    data = [f"--data.init_args.{k}={v}" for k, v in sample.items()]
    quick = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
             "--trainer.accelerator=cpu"]
    advae = Path(__file__).resolve().parents[2] / "experiments" / "advae"
    main(["fit", "-c", str(advae / "demo.yaml"), *data, *quick, f"--trainer.default_root_dir={tmp_path / 's1'}"])
    stage2 = main(["fit", "-c", str(advae / "celeba_stage2.yaml"), *data, *quick,
                   f"--model.init_args.stage1_checkpoint={tmp_path}/s1/checkpoints/*.ckpt",
                   f"--trainer.default_root_dir={tmp_path / 's2'}"])
    assert stage2.model.stage1.content_dim == 16  # the demo's stage 1, not a fresh default one
    drawings = write_sample(LineDrawings, tmp_path / "faces")
    main(["predict", "-c", str(advae / "celeba_stage2.yaml"), "--trainer.accelerator=cpu",
          f"--ckpt_path={tmp_path}/s2/checkpoints/last.ckpt", "--data=affectlab.datamodules.sketch.LineDrawings",
          f"--data.root={drawings['root']}", "--data.image_size=32", "--data.num_workers=0",
          "--data.chosen_attributes=[{Blond_Hair: 1, Pale_Skin: 1}, {Black_Hair: 1}]",
          f"--data.style_photo={drawings['root']}/face_0.png", f"--trainer.default_root_dir={tmp_path / 'p'}"])
    out = tmp_path / "p" / "predict"
    assert len(list(out.glob("face_*_a*_s0.png"))) == 4 * 2 and (out / "grid.png").is_file()
