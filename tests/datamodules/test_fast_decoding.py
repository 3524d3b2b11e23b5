"""The fast input path (docs/datasets.md, "Decoding"): same crops as the reference, uint8 out, normalised once."""

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from affectlab.callbacks.media import denormalize
from affectlab.datamodules.crops import IMAGENET_MEAN, IMAGENET_STD, DecodeCrop, normalize_images, unit_rgb
from affectlab.datamodules.hierarchy import MIKELS
from affectlab.datamodules.images import decode_rgb
from affectlab.datamodules.samples.pictures import write_bad_files, write_class_photos
from affectlab.datamodules.vea.base import ImageListDataset, eval_transform, train_transform
from affectlab.datamodules.vea.fi import FI
from affectlab.modules.classifier import EmotionClassifier as Classifier

#: docs/datasets.md, "Decoding": per crop, PSNR ≥ 35 dB and mean |difference| ≤ 3 grey levels
MIN_PSNR, MAX_MEAN_ABS = 35.0, 3.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a.float() - b.float()) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """FI's layout with camera-sized photos (two per class, 640×480 and 480×640), plus the bad files."""
    root = tmp_path_factory.mktemp("fi_photos")
    rng = np.random.default_rng(0)
    write_class_photos(root, {"0": (640, 480), "1": (480, 640)}, rng)
    write_bad_files(root / "emotion_dataset" / MIKELS[1], rng)
    return root


def batches(root, fast, train=True, splits=("train",), size=64):
    """One epoch's batches of ``splits`` (epoch 3 of the seeded training order when ``train``)."""
    dm = FI(root=str(root), num_workers=0, batch_size=64, image_size=size, cache_index=False, fast_decode=fast)
    dm.setup("fit")
    out = []
    for split in splits:
        loader = dm._loader(split, train=train)
        if train:
            loader.sampler.set_epoch(3)
        out += list(loader)
    return dm, out


@pytest.mark.parametrize("train", [True, False], ids=["train_crop", "eval_crop"])
def test_fast_and_reference_paths_give_the_same_batch(release, train):
    """Same seed → same files, same boxes and flips; pixels within the documented tolerance."""
    _, fast = batches(release, True, train)
    _, reference = batches(release, False, train)
    assert len(fast) == len(reference) == 1
    f, r = fast[0], reference[0]
    assert f["path"] == r["path"] and f["skipped"] == r["skipped"] and torch.equal(f["label"], r["label"])
    assert f["image"].dtype == r["image"].dtype == torch.uint8 and f["image"].shape == r["image"].shape
    photos = [i for i, p in enumerate(f["path"]) if "bad_" not in p]
    scores = [psnr(f["image"][i], r["image"][i]) for i in photos]
    means = [(f["image"][i].float() - r["image"][i].float()).abs().mean().item() for i in photos]
    assert min(scores) >= MIN_PSNR and max(means) <= MAX_MEAN_ABS, (min(scores), max(means))
    # The reduced-scale decoding did happen (a crop that differs), and a wrong box would fail:
    assert any(s < 80 for s in scores)
    shifted = torch.roll(r["image"][photos], shifts=3, dims=-1)
    assert min(psnr(f["image"][i], shifted[k]) for k, i in enumerate(photos)) < MIN_PSNR


@pytest.mark.parametrize("train", [True, False])
def test_full_scale_fast_crop_is_the_reference_exactly(release, train):
    """Without reduced-scale decoding the fast crop is bit-identical to the torchvision reference."""
    path = next((release / "emotion_dataset" / "awe").glob("*.jpg"))
    reference = train_transform(56) if train else eval_transform(56)
    for seed in range(4):
        torch.manual_seed(seed)
        expected = reference(decode_rgb(path).image)
        torch.manual_seed(seed)
        assert torch.equal(DecodeCrop(56, train, draft=False)(path), expected)


def test_reduced_scale_only_while_the_crop_still_shrinks(release):
    path = next((release / "emotion_dataset" / "awe").glob("*_0.jpg"))  # 640×480
    crop = DecodeCrop(112, train=False)
    box = crop.box((640, 480))
    decoded = decode_rgb(path, lambda size: crop.needed(size, box))
    assert decoded.scale == 2 and decoded.image.size == (320, 240) and decoded.full_size == (640, 480)
    # at 448 the box needs every pixel: full scale
    big = DecodeCrop(448, train=False)
    assert decode_rgb(path, lambda size: big.needed(size, big.box(size))).scale == 1


def test_bad_files_are_still_decoded_or_counted(release):
    """CMYK, grey, palette, PNG-as-JPEG and truncated files give crops; empty and garbage are skipped."""
    for fast in (True, False):
        dm, loaded = batches(release, fast, splits=("train", "val", "test"))
        served = [p.rsplit("/", 1)[1] for b in loaded for p in b["path"] if "bad_" in p]
        assert sorted(served) == ["bad_cmyk.jpg", "bad_gray.jpg", "bad_palette.png", "bad_png_named.jpg",
                                  "bad_truncated.jpg"]
        for batch in loaded:
            dm.on_before_batch_transfer(batch, 0)
        assert dm.skip_report.total() == 2 and "bad_empty.jpg" in dm.skip_report.summary()


def test_uint8_batches_are_normalised_exactly_once(release):
    _, loaded = batches(release, True, train=False)
    images = loaded[0]["image"]
    module = Classifier(backbone="resnet18", pretrained=False)
    batch = module.on_after_batch_transfer({"image": images.clone(), "label": loaded[0]["label"]}, 0)
    expected = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)(v2.ToDtype(torch.float32, scale=True)(images))
    assert batch["image"].dtype == torch.float32 and torch.equal(batch["image"], expected)
    again = module.on_after_batch_transfer(batch, 0)  # a float batch passes untouched
    assert torch.equal(again["image"], expected)
    assert torch.equal(normalize_images(expected), expected)
    # the model called on uint8 images standardises them itself; on standardised ones it does not again
    module.eval()
    with torch.no_grad():
        assert torch.allclose(module(images[:2])[-1], module(expected[:2])[-1])


def test_normalisation_in_a_fit_reaches_the_network_once(release):
    """In a real fit the network sees standardised float images, not raw or twice-standardised ones."""
    import lightning as L

    seen = []

    class Spy(Classifier):
        def compute(self, images):
            seen.append(images.detach().clone())
            return super().compute(images)

    dm = FI(root=str(release), num_workers=0, batch_size=8, image_size=32, cache_index=False)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu")
    trainer.fit(Spy(backbone="resnet18", pretrained=False), datamodule=dm)
    images = seen[0]
    assert images.dtype == torch.float32
    pixels = unit_rgb(images)  # back to [0, 1]: a twice-standardised batch would not land on the 1/255 grid
    assert torch.allclose(pixels * 255, (pixels * 255).round(), atol=1e-3)
    assert images.min() < -1.0 and 1.5 < images.max() < 3.0  # the ImageNet-standardised range, not 0–255


def test_pictures_are_the_same_from_uint8_and_standardised_batches():
    images = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    np.testing.assert_allclose(denormalize(normalize_images(images)), denormalize(images), atol=1e-5)
    np.testing.assert_allclose(denormalize(images), images.permute(0, 2, 3, 1).numpy() / 255, atol=1e-6)


def test_stimuli_samples_take_the_reference_path(release):
    dataset = ImageListDataset(release, [("emotion_dataset/awe/awe_0.jpg", 0)], train_transform(32),
                               stimuli=lambda rel: None, crop=DecodeCrop(32, True))
    item = dataset[(0, 0)]
    assert item["image"].dtype == torch.uint8 and torch.all(item["stimuli"] == -1)


def test_an_empty_uint8_batch_passes_the_device_normalisation():
    # A batch whose every file was unreadable collates to an empty tensor; the empty-batch step takes it from there.
    out = normalize_images(torch.empty(0, dtype=torch.uint8))
    assert out.dtype == torch.float32 and out.numel() == 0
