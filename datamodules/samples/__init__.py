"""Fake releases in each benchmark's real on-disk layout: for the tests, ``make demo``, and for
trying a config without the data.

``write_sample(reader, root, **options)`` writes a small release that the reader (a DataModule
class, its class path, or its name) finds exactly as it would find the real one, and returns the
``data.init_args`` overrides that point a config at it (at least ``root`` for the readers that read
files); the config tests run every YAML in ``experiments/`` on such a sample. The pictures carry
their labels visibly (``pictures.class_image``, ``faces.face_image``), so a small network learns
them in a few CPU epochs. From the shell::

    python -m affectlab.datamodules.samples FI data/sample_fi per_class=40 size=64
    python -m affectlab.datamodules.samples CelebA data/sample_celeba counts=[512,128,64] correlated=true

The readers never import this package (``tests/package/test_namespace.py`` checks it): reading
code stays apart from the code that fakes what it reads.

- ``vea``: the visual-emotion benchmarks, one writer driven by each reader's declared layouts;
- ``faces``: synthetic faces with visible attributes, CelebA's layout, photos for ``LineDrawings``;
- ``pictures``: the class pictures, photo-textured images and bad files the samples are made of;
- here: Fashion-MNIST's raw IDX files and the feature-inversion images.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import struct
from pathlib import Path
from typing import Any

import numpy as np

#: Reader class name → its writer: a function here, or ``module.function`` of this package (imported
#: when used). A reader without an entry uses its nearest base class's (every VEA benchmark's:
#: ``VEADataModule``'s). A writer is called as ``writer(reader class, root, **options)``.
WRITERS = {
    "VEADataModule": "vea.write_vea",
    "CelebA": "faces.write_celeba",
    "LineDrawings": "faces.write_line_drawings",
    "FashionMNIST": "write_fashion_mnist",
    "InversionImages": "write_inversion_images",
    "PhotoPatches": "photo_patches",
}
#: The modules holding the readers, searched for a reader given by its bare class name.
READER_MODULES = ("affectlab.datamodules.vea", "affectlab.datamodules.celeba", "affectlab.datamodules.sketch",
                  "affectlab.datamodules.fashion_mnist", "affectlab.datamodules.inversion")


def reader_class(reader: type | str) -> type:
    """A reader given as a class, a class path (``affectlab.datamodules.vea.FI``) or a class name (``FI``)."""
    if isinstance(reader, type):
        return reader
    if "." in reader:
        module, name = reader.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)
    for module in READER_MODULES:
        found = getattr(importlib.import_module(module), reader, None)
        if isinstance(found, type):
            return found
    raise ValueError(f"no reader named {reader!r} in {', '.join(READER_MODULES)}")


def write_sample(reader: type | str, root: str | Path, **options: Any) -> dict[str, Any]:
    """Write ``reader``'s fake release under ``root``; returns the data overrides that point a config at it.

    ``options`` are the writer's (sizes, counts, seed, ``bad_files`` ...; see each writer).
    """
    cls = reader_class(reader)
    for klass in cls.__mro__:
        if klass.__name__ in WRITERS:
            module, _, function = WRITERS[klass.__name__].rpartition(".")
            writer = getattr(importlib.import_module(f"{__name__}.{module}"), function) if module else globals()[function]
            return writer(cls, Path(root).expanduser(), **options)
    raise ValueError(f"{cls.__name__} has no sample writer (readers with one: {', '.join(WRITERS)} and their subclasses)")


def ensure_sample(reader: type | str, root: str | Path, **options: Any) -> dict[str, Any]:
    """``write_sample`` unless ``root`` already holds something (then only ``{"root": root}`` is returned)."""
    root = Path(root)
    if root.is_dir() and any(root.iterdir()):
        return {"root": str(root)}
    return write_sample(reader, root, **options)


def write_fashion_mnist(reader: type, root: Path, train: int = 240, test: int = 60, seed: int = 0) -> dict[str, Any]:
    """A tiny Fashion-MNIST in torchvision's raw IDX layout: one separable stripe pattern per class."""
    rng = np.random.default_rng(seed)
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    from affectlab.datamodules.fashion_mnist import CLASSES

    classes = len(CLASSES)
    yy, xx = np.mgrid[0:28, 0:28] / 28.0
    for split, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % classes
        images = np.empty((n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            angle = np.pi * label / classes
            stripes = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * (xx * np.cos(angle) + yy * np.sin(angle)))
            image = stripes * (0.4 + 0.06 * label) + rng.normal(0, 0.08, (28, 28))
            images[i] = (np.clip(image, 0, 1) * 255).astype(np.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())
    return {"root": str(root), "val_size": train // 5, "batch_size": 32, "num_workers": 0}


def write_inversion_images(reader: type, root: Path) -> dict[str, Any]:
    """A small content and style PNG (not square: the reader's crop has work); overrides for 16 px and 3 steps."""
    from PIL import Image
    from skimage import data as skdata

    root.mkdir(parents=True, exist_ok=True)
    for name, photo in (("content.png", skdata.astronaut()), ("style.png", skdata.coffee())):
        Image.fromarray(photo).resize((48, 40)).save(root / name)
    return {"root": str(root), "content": "content.png", "style": "style.png", "image_size": 16, "iterations": 3}


def photo_patches(reader: type, root: Path) -> dict[str, Any]:
    """The photos ship with scikit-image: nothing to write; overrides for a tiny run (16 px, a few crops)."""
    return {"image_size": 16, "train_size": 8, "val_size": 4, "test_size": 4, "batch_size": 2}


def main(argv: list[str] | None = None) -> None:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m affectlab.datamodules.samples",
                                     description="Write a reader's fake release in its exact on-disk layout.")
    parser.add_argument("reader", help="the reader's class name (FI, CelebA, ...) or class path")
    parser.add_argument("root", help="the folder to write it in")
    parser.add_argument("options", nargs="*", metavar="KEY=VALUE",
                        help="the writer's options, values in YAML (per_class=40, counts=[512,128,64], correlated=true)")
    args = parser.parse_args(argv)
    options = {}
    for option in args.options:
        key, sep, value = option.partition("=")
        if not sep:
            parser.error(f"option {option!r} is not KEY=VALUE")
        value = yaml.safe_load(value)
        options[key] = tuple(value) if isinstance(value, list) else value
    try:
        overrides = write_sample(args.reader, args.root, **options)
    except (TypeError, ValueError) as err:  # an unknown reader or option, a count of the wrong form
        parser.error(str(err))
    print(f"{args.reader} sample written to {args.root}; point a config at it with:")
    print(" ".join(f"--data.init_args.{key} {shlex.quote(str(value))}" for key, value in overrides.items()))
