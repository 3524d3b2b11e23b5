"""The training seed (``seed_everything``) drives sample order and augmentation; ``data.seed`` only the split."""

from __future__ import annotations

import lightning as L
import torch

from affectlab.datamodules.vea import FI
from affectlab.datamodules.vea.base import EpochSampler


def first_batches(root, training_seed: int, data_seed: int = 0, epoch: int = 0, batches: int = 2):
    L.seed_everything(training_seed, verbose=False)
    data = FI(root=str(root), batch_size=8, num_workers=0, image_size=32, seed=data_seed, cache_index=False)
    data.setup("fit")
    loader = data.train_dataloader()
    loader.sampler.set_epoch(epoch)
    out = []
    for i, batch in enumerate(loader):
        if i == batches:
            break
        out.append(batch)
    return data, out


def test_the_same_training_seed_gives_the_same_batches_and_pixels(fi_sample):
    _, a = first_batches(fi_sample, 3)
    torch.manual_seed(12345)  # the global generator's state does not matter, only the seed given
    _, b = first_batches(fi_sample, 3)
    for x, y in zip(a, b, strict=True):
        assert x["path"] == y["path"]
        torch.testing.assert_close(x["image"], y["image"], rtol=0, atol=0)


def test_another_training_seed_gives_other_batches_and_other_crops_on_the_same_split(fi_sample):
    data_a, a = first_batches(fi_sample, 0)
    data_b, b = first_batches(fi_sample, 1)
    assert data_a.splits == data_b.splits  # data.seed alone sets the split
    assert [x["path"] for x in a] != [y["path"] for y in b]
    # The same image, drawn under the two seeds, gets different augmentation.
    dataset = data_a.dataset("train", train=True)
    order_a = list(EpochSampler(len(dataset), seed=0))
    order_b = list(EpochSampler(len(dataset), seed=1))
    draw_a = dict(order_a)[0]
    draw_b = dict(order_b)[0]
    assert draw_a != draw_b
    assert not torch.equal(dataset[(0, draw_a)]["image"], dataset[(0, draw_b)]["image"])
    # And the split protocol's seed moves the split, not the training order's dependence on it.
    data_c, _ = first_batches(fi_sample, 0, data_seed=1, batches=0)
    assert data_c.splits["val"] != data_a.splits["val"]


def test_a_resumed_epoch_sees_the_batches_and_pixels_of_the_uninterrupted_run(fi_sample):
    # Uninterrupted: epochs 0 then 1 from one sampler; resumed: a fresh process starting at epoch 1.
    L.seed_everything(5, verbose=False)
    data = FI(root=str(fi_sample), batch_size=8, num_workers=0, image_size=32, cache_index=False)
    data.setup("fit")
    loader = data.train_dataloader()
    loader.sampler.set_epoch(0)
    list(loader)
    loader.sampler.set_epoch(1)
    straight = next(iter(loader))
    torch.manual_seed(999)
    _, resumed = first_batches(fi_sample, 5, epoch=1, batches=1)
    assert straight["path"] == resumed[0]["path"]
    torch.testing.assert_close(straight["image"], resumed[0]["image"], rtol=0, atol=0)
    # Epochs differ from each other.
    _, epoch0 = first_batches(fi_sample, 5, epoch=0, batches=1)
    assert epoch0[0]["path"] != straight["path"]
