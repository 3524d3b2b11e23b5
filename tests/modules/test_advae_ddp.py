"""AD-VAE's extra adversary steps under real DDP (two CPU processes through the CLI)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from affectlab.datamodules.samples import write_sample
from conftest import REPO, run_cli


@pytest.mark.slow
def test_adversary_steps_keep_every_rank_in_step_under_ddp(tmp_path):
    overrides = write_sample("CelebA", tmp_path / "celeba", counts=(32, 8, 4))
    probe = tmp_path / "probe"
    script = shutil.which("affectlab", path=str(Path(sys.executable).parent))
    assert script, "the affectlab console script is not installed"
    run_cli(["fit", "-c", str(REPO / "experiments" / "advae" / "demo.yaml"), "-c",
             str(REPO / "experiments" / "defaults" / "ddp_cpu.yaml"),
             "--data.init_args.root", overrides["root"], "--data.init_args.num_workers", "0",
             "--data.init_args.batch_size", "8", "--model.init_args.adv_steps", "3",
             "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0",
             "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
             "--trainer.callbacks+=reliability._ddp_probe.RankProbe", f"--trainer.callbacks.folder={probe}"],
            cwd=tmp_path, launcher=[script], timeout=540, OMP_NUM_THREADS="1")
    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["global_step"] for r in ranks] == [2, 2]
    assert all(r["finite"] for r in ranks)
    # The adversary's extra steps average their gradients over the ranks: the weights stay identical.
    assert ranks[0]["weights_sum"] == ranks[1]["weights_sum"]
    assert ranks[0]["weights_abs_sum"] == ranks[1]["weights_abs_sum"]
