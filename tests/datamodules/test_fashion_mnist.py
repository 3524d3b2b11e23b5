"""Fashion-MNIST reads torchvision's layout and the Debian package's, and batches like the VEA modules."""

from __future__ import annotations

import gzip
import shutil

import pytest
import torch

from affectlab.datamodules import fashion_mnist
from affectlab.datamodules.fashion_mnist import FILES, FashionMNIST, FashionMNISTError
from affectlab.datamodules.samples import write_sample


def test_sample_in_torchvision_layout_gives_vea_style_batches(tmp_path):
    overrides = write_sample(FashionMNIST, tmp_path, train=50, test=20)
    data = FashionMNIST(**{**overrides, "val_size": 10, "batch_size": 8})
    data.setup()
    assert [len(data.datasets[s]) for s in ("train", "val", "test")] == [40, 10, 20]
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"image", "label", "index", "path"}
    assert batch["image"].shape == (8, 1, 28, 28) and batch["image"].dtype == torch.float32
    assert data.num_channels == 1 and data.taxonomy.num_classes == (10,)
    assert data.taxonomy.leaves[9] == "ankle boot"


def test_split_is_seeded_and_disjoint(tmp_path):
    write_sample(FashionMNIST, tmp_path, train=50, test=10)
    a, b, c = (FashionMNIST(str(tmp_path), val_size=10, seed=s, num_workers=0) for s in (0, 0, 1))
    for d in (a, b, c):
        d.setup()
    assert torch.equal(a.datasets["val"].indices, b.datasets["val"].indices)
    assert not torch.equal(a.datasets["val"].indices, c.datasets["val"].indices)
    assert not set(a.datasets["val"].indices.tolist()) & set(a.datasets["train"].indices.tolist())


def gzipped_sample(tmp_path, folder: str):
    """A sample's four IDX files gzipped into ``tmp_path / folder``, as the Debian package ships them."""
    write_sample(FashionMNIST, tmp_path / "src", train=20, test=10)
    target = tmp_path / folder
    target.mkdir()
    for name in FILES:
        with open(tmp_path / "src/FashionMNIST/raw" / name, "rb") as fin, gzip.open(target / f"{name}.gz", "wb") as fout:
            shutil.copyfileobj(fin, fout)
    return target


def test_debian_package_layout_is_decompressed_into_the_cache(tmp_path, monkeypatch):
    debian = gzipped_sample(tmp_path, "usr_share")
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", debian)
    data = FashionMNIST(str(tmp_path / "empty"), val_size=5, cache_dir=str(tmp_path / "cache"), num_workers=0)
    data.setup()
    assert (tmp_path / "cache/FashionMNIST/raw/train-images-idx3-ubyte").is_file()
    assert len(data.datasets["train"]) == 15
    # the .gz files handed directly as root work too
    assert fashion_mnist.locate(debian, tmp_path / "cache2") == tmp_path / "cache2"


def test_missing_data_names_both_layouts(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "nowhere")
    with pytest.raises(FashionMNISTError, match="torchvision's layout.*\n.*dataset-fashion-mnist"):
        FashionMNIST(str(tmp_path)).setup()


def test_runs_started_together_decompress_into_one_cache(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    source = gzipped_sample(tmp_path, "gz")
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(lambda _: fashion_mnist.locate(source, tmp_path / "cache"), range(4)))
    assert found == [tmp_path / "cache"] * 4
    raw = tmp_path / "cache/FashionMNIST/raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)  # no part file left behind
    for name in FILES:
        assert (raw / name).read_bytes() == (tmp_path / "src/FashionMNIST/raw" / name).read_bytes()
