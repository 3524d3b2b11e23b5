"""How benchmark releases sit on disk, and the customary split protocols, as reusable data.

A *layout* knows which paths identify a release (``required``) and how to list its samples per
split (``read``). A benchmark (``datamodules/vea/benchmarks.py``) is a taxonomy plus an ordered tuple
of layouts; the first one whose required paths exist is read. Samples are ``(relative path, leaf
label)`` pairs; labels index the taxonomy's finest level.

Protocols are deterministic across machines: file lists are sorted and shuffled with NumPy's
PCG64 generator seeded by ``seed`` (documented default 0), stratified per class.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datamodules.hierarchy import Taxonomy

Sample = tuple[str, int]
Splits = dict[str, list[Sample]]
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class LayoutError(FileNotFoundError):
    """The root does not hold any layout the benchmark knows."""


# -- protocols --------------------------------------------------------------------------------------

def stratified_split(samples: Sequence[Sample], fractions: Mapping[str, float], seed: int = 0) -> Splits:
    """Split per class with the given fractions (e.g. train .8 / val .05 / test .15).

    Each class's sorted files are shuffled with ``seed``; counts are rounded per class and the
    last split takes the remainder, so the splits are disjoint and cover every sample.
    """
    names = list(fractions)
    total = sum(fractions.values())
    by_class: dict[int, list[str]] = {}
    for path, label in sorted(samples):
        by_class.setdefault(label, []).append(path)
    out: Splits = {name: [] for name in names}
    rng = np.random.default_rng(seed)
    for label in sorted(by_class):
        paths = by_class[label]
        order = rng.permutation(len(paths))
        start = 0
        for i, name in enumerate(names):
            stop = len(paths) if i == len(names) - 1 else start + round(len(paths) * fractions[name] / total)
            out[name].extend((paths[j], label) for j in order[start:stop])
            start = stop
    return {name: sorted(s) for name, s in out.items()}


def stratified_folds(samples: Sequence[Sample], n_folds: int = 5, seed: int = 0) -> list[list[Sample]]:
    """Partition into ``n_folds`` stratified folds (disjoint, covering, seeded)."""
    by_class: dict[int, list[str]] = {}
    for path, label in sorted(samples):
        by_class.setdefault(label, []).append(path)
    folds: list[list[Sample]] = [[] for _ in range(n_folds)]
    rng = np.random.default_rng(seed)
    offset = 0
    for label in sorted(by_class):
        paths = by_class[label]
        for rank, j in enumerate(rng.permutation(len(paths))):
            folds[(rank + offset) % n_folds].append((paths[j], label))
        offset += len(paths)  # balance fold sizes across classes
    return [sorted(f) for f in folds]


def carve_val(splits: Splits, fraction: float, seed: int = 0) -> Splits:
    """Carve a stratified validation set out of ``train`` when a release has none."""
    if splits.get("val") or fraction <= 0:
        return splits
    parts = stratified_split(splits["train"], {"train": 1.0 - fraction, "val": fraction}, seed)
    return {**splits, "train": parts["train"], "val": parts["val"]}


# -- class-name resolution ------------------------------------------------------------------------------

def resolver(taxonomy: Taxonomy, aliases: Mapping[str, str] | None = None) -> Callable[[str], int]:
    """Map a label as written on disk (leaf name, alias, or integer index) to a leaf index."""
    leaves = {name.lower(): i for i, name in enumerate(taxonomy.leaves)}
    alias = {k.lower(): leaves[v.lower()] for k, v in (aliases or {}).items()}

    def resolve(text: str) -> int:
        key = text.strip().lower()
        if key in leaves:
            return leaves[key]
        if key in alias:
            return alias[key]
        if key.lstrip("-").isdigit() and 0 <= int(key) < len(taxonomy.leaves):
            return int(key)
        raise ValueError(f"label {text!r} is not a class of {taxonomy.name!r}: expected one of "
                         f"{list(taxonomy.leaves)}, an alias {sorted(alias)} or an index 0..{len(leaves) - 1}")

    return resolve


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); ``os.scandir`` keeps big trees fast."""
    found: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(Path(entry.path))
    return sorted(found)


# -- layouts --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Base class: the paths that identify a release, and how to read it."""

    description: str = ""

    def required(self, root: Path) -> list[Path]:
        raise NotImplementedError

    def missing(self, root: Path) -> Path | None:
        return next((p for p in self.required(root) if not p.exists()), None)

    def read(self, root: Path, taxonomy: Taxonomy, seed: int) -> Splits:
        raise NotImplementedError

    def watched(self, root: Path) -> list[Path]:
        """Files and folders whose change invalidates a cached index (default: the required ones)."""
        return self.required(root)


@dataclass(frozen=True)
class SplitFiles(Layout):
    """The generic split-file form: ``train.txt``/``val.txt``/``test.txt``, lines ``relative/path label``.

    ``val.txt`` is optional; without it validation is carved from train.
    """

    files: Mapping[str, str] = field(default_factory=lambda: {"train": "train.txt", "val": "val.txt", "test": "test.txt"})
    prefix: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    val_fraction: float = 0.1
    description: str = "split files train.txt / test.txt (optional val.txt) with lines 'relative/path label'"

    def required(self, root: Path) -> list[Path]:
        return [root / self.files["train"], root / self.files["test"]]

    def watched(self, root: Path) -> list[Path]:
        return [root / f for f in self.files.values() if (root / f).exists()]

    def read(self, root: Path, taxonomy: Taxonomy, seed: int) -> Splits:
        resolve = resolver(taxonomy, self.aliases)
        splits: Splits = {}
        for split, name in self.files.items():
            path = root / name
            if not path.exists():
                continue
            samples = []
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    rel, label = line.rsplit(maxsplit=1)
                    samples.append((os.path.join(self.prefix, rel.strip()), resolve(label)))
                except ValueError as err:
                    raise ValueError(f"{path}:{n}: cannot parse {line!r} as 'relative/path label' ({err})") from None
            splits[split] = samples
        return carve_val(splits, self.val_fraction, seed)


@dataclass(frozen=True)
class ClassFolders(Layout):
    """``<subdir>/<class>/<file>``: one folder per class, no official split; ``fractions`` decide it."""

    subdir: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    fractions: Mapping[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.05, "test": 0.15})
    min_classes: int = 2
    description: str = "<class>/<file> folders"

    def base(self, root: Path) -> Path:
        return root / self.subdir if self.subdir else root

    def class_dirs(self, root: Path, taxonomy: Taxonomy) -> dict[str, int]:
        resolve = resolver(taxonomy, self.aliases)
        found = {}
        base = self.base(root)
        if base.is_dir():
            for entry in sorted(os.listdir(base)):
                if (base / entry).is_dir():
                    try:
                        found[entry] = resolve(entry)
                    except ValueError:
                        continue
        return found

    def required(self, root: Path) -> list[Path]:
        return [self.base(root)]

    def watched(self, root: Path) -> list[Path]:
        base = self.base(root)
        return [base, *(base / d for d in sorted(os.listdir(base)) if (base / d).is_dir())] if base.is_dir() else []

    def matches(self, root: Path, taxonomy: Taxonomy) -> bool:
        return len(self.class_dirs(root, taxonomy)) >= self.min_classes

    def samples(self, root: Path, taxonomy: Taxonomy) -> list[Sample]:
        base = self.base(root)
        out = []
        for folder, label in self.class_dirs(root, taxonomy).items():
            for path in list_images(base / folder):
                out.append((path.relative_to(root).as_posix(), label))
        return out

    def read(self, root: Path, taxonomy: Taxonomy, seed: int) -> Splits:
        return stratified_split(self.samples(root, taxonomy), self.fractions, seed)


@dataclass(frozen=True)
class SplitFolders(ClassFolders):
    """``{train,val,test}/<class>/<file>``: the release is already split (``val`` optional)."""

    splits: tuple[str, ...] = ("train", "val", "test")
    val_fraction: float = 0.1
    description: str = "split folders {train,val,test}/<class>/<file>"

    def required(self, root: Path) -> list[Path]:
        return [root / "train", root / "test"]

    def watched(self, root: Path) -> list[Path]:
        out = []
        for split in self.splits:
            if (root / split).is_dir():
                out += ClassFolders(subdir=split).watched(root)
        return out

    def matches(self, root: Path, taxonomy: Taxonomy) -> bool:
        return all(len(ClassFolders(subdir=s, aliases=self.aliases).class_dirs(root, taxonomy)) >= self.min_classes
                   for s in ("train", "test"))

    def read(self, root: Path, taxonomy: Taxonomy, seed: int) -> Splits:
        splits: Splits = {}
        for split in self.splits:
            if (root / split).is_dir():
                splits[split] = ClassFolders(subdir=split, aliases=self.aliases).samples(root, taxonomy)
        return carve_val(splits, self.val_fraction, seed)
