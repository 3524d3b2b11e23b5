"""The flat baseline: shapes, gradients, consistent levels, learning, checkpoint reload."""

from functools import partial

import lightning as L
import pytest
import torch

from affectlab.datamodules.vea import FI
from affectlab.modules.classifier import EmotionClassifier


def test_outputs_per_level_sum_to_one_and_coarse_is_sum_of_children():
    model = EmotionClassifier("mikels", backbone="resnet18", pretrained=False).eval()
    out = model.compute(torch.randn(3, 3, 48, 48))
    sentiment, emotion = out["probs"]
    assert sentiment.shape == (3, 2) and emotion.shape == (3, 8) and out["logits"].shape == (3, 8)
    torch.testing.assert_close(emotion.sum(1), torch.ones(3))
    torch.testing.assert_close(sentiment, emotion @ model.taxonomy.parent_matrix(1))


def test_every_parameter_gets_a_gradient():
    model = EmotionClassifier("webemo", backbone="resnet18", pretrained=False)
    labels = model.taxonomy.labels_at_levels(torch.tensor([0, 5, 24]))
    model.loss(model.compute(torch.randn(3, 3, 48, 48)), labels)["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing


def test_backbone_gets_the_smaller_learning_rate():
    model = EmotionClassifier("mikels", backbone="resnet18", pretrained=False, backbone_lr_mult=0.1,
                              optimizer=partial(torch.optim.SGD, lr=0.01),
                              lr_scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=7))
    config = model.configure_optimizers()
    groups = {g["name"]: g for g in config["optimizer"].param_groups}
    # The schedule decays from each group's own learning rate.
    assert config["lr_scheduler"]["scheduler"].base_lrs == pytest.approx([0.01, 0.001])
    assert groups["heads"]["lr"] == 0.01 and abs(groups["backbone"]["lr"] - 0.001) < 1e-12
    assert sum(len(g["params"]) for g in groups.values()) == len(list(model.parameters()))


def test_baseline_learns_the_sample_set_well_above_chance(fi_sample, tmp_path):
    L.seed_everything(0)
    data = FI(root=str(fi_sample), batch_size=16, num_workers=0, image_size=48)
    data.setup("fit")
    data.splits["val"] = data.splits["test"]  # a bigger held-out set for a steadier estimate
    model = EmotionClassifier("mikels", backbone="resnet18", pretrained=False, backbone_lr_mult=1.0,
                              optimizer=partial(torch.optim.AdamW, lr=3e-3))
    trainer = L.Trainer(max_epochs=8, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    metrics = trainer.callback_metrics
    assert metrics["val/acc"] > 0.5, metrics          # chance is 1/8
    assert metrics["val/acc_l1"] > 0.75, metrics       # chance is 1/2
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    reloaded = EmotionClassifier.load_from_checkpoint(ckpt).eval()
    x = torch.randn(2, 3, 48, 48)
    model.eval()
    assert reloaded.taxonomy == model.taxonomy
    torch.testing.assert_close(reloaded(x)[1], model(x)[1])
