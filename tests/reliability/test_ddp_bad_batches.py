"""A DDP rank whose batch is all unreadable files keeps DDP in step: no crash, no hang, no gradient from it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.vea import FI
from affectlab.modules.classifier import EmotionClassifier
from conftest import REPO, run_cli

BATCH = 4


class _Trainer:
    """The little of a Trainer ``empty_step`` reads."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.datamodule = None


def test_an_all_bad_batch_gives_a_zero_gradient_on_every_parameter_under_ddp_and_is_skipped_alone():
    model = EmotionClassifier(backbone="resnet18", pretrained=False)
    empty = {"image": torch.empty(0), "label": torch.empty(0, dtype=torch.long), "index": torch.empty(0), "path": []}
    assert model.training_step(empty, 0) is None  # one process: the step is skipped

    model._trainer = _Trainer(world_size=2)
    loss = model.training_step(empty, 0)
    assert loss is not None and loss.item() == 0.0
    loss.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    # Every parameter gets a gradient (DDP's all-reduce needs one from every rank), and it is zero.
    assert all(p.grad is not None for p in params)
    assert all(torch.count_nonzero(p.grad) == 0 for p in params)


def first_batch_of_rank(root: Path, rank: int, seed: int = 0) -> list[str]:
    """The files DistributedSampler gives ``rank`` first in epoch 0 (Lightning's sampler, seeded by seed_everything)."""
    dm = FI(root=str(root), num_workers=0, batch_size=BATCH, image_size=32, cache_index=False)
    dm.setup("fit")
    train = dm.splits["train"]
    sampler = DistributedSampler(range(len(train)), num_replicas=2, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(0)
    return [train[i][0] for i in list(sampler)[:BATCH]]


@pytest.mark.slow
def test_ddp_survives_a_rank_whose_batch_is_all_unreadable(tmp_path):
    root = Path(write_sample(FI, tmp_path / "fi", per_class=6, size=40)["root"])
    bad = first_batch_of_rank(root, rank=1)
    for rel in bad:
        (root / rel).write_bytes(b"")  # zero-byte: unreadable
    probe = tmp_path / "probe"
    script = shutil.which("affectlab", path=str(Path(sys.executable).parent))
    assert script, "the affectlab console script is not installed"
    run_cli(["fit", "-c", str(REPO / "experiments" / "baseline" / "demo.yaml"), "-c",
             str(REPO / "experiments" / "defaults" / "ddp_cpu.yaml"),
             "--data.init_args.root", str(root), "--data.init_args.image_size", "32",
             "--data.init_args.num_workers", "0", "--data.init_args.batch_size", str(BATCH),
             "--data.init_args.cache_index", "false",
             "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
             "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
             "--trainer.callbacks+=reliability._ddp_probe.RankProbe", f"--trainer.callbacks.folder={probe}"],
            cwd=tmp_path, launcher=[script], timeout=540, OMP_NUM_THREADS="1")

    ranks = [json.loads((probe / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[1]["batch_sizes"][0] == 0 and ranks[0]["batch_sizes"][0] > 0  # the trial really happened
    assert ranks[1]["skipped"] == {"train": BATCH}
    # Both ranks took both steps and ended with the same, finite weights: DDP stayed in step.
    assert [r["global_step"] for r in ranks] == [2, 2]
    assert all(r["finite"] for r in ranks)
    assert ranks[0]["weights_sum"] == ranks[1]["weights_sum"]
    assert ranks[0]["weights_abs_sum"] == ranks[1]["weights_abs_sum"]
