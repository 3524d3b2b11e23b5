"""How benchmark releases sit on disk, and the customary split protocols, as reusable data.

A *layout* knows which paths identify a release (``required``), which paths a cached index
depends on (``watched``) and how to list its samples per split (``read``). A benchmark (one small
module per benchmark in ``datamodules/vea/``) is a taxonomy plus an ordered tuple of layouts; the
first one whose required paths exist is read. Samples are ``(relative path, leaf label)`` pairs;
labels index the taxonomy's finest level. The kinds:

- ``ClassFolders`` ``<class>/<file>`` (FI, Flickr, Instagram; Twitter II with ``folds``),
  ``SplitFolders`` ``{train,val,test}/<class>/`` (WSCNet's FI, split Twitter II);
- ``SplitFiles`` ``relative/path label`` lines (the generic form every benchmark accepts);
- ``ClassPathLists`` ``<class>/<file>`` lines (EmotionROI's official split);
- ``URLLists`` ``URL LABEL`` lines, images fetched under stable names (WEBEmo);
- ``VoteTable`` a CSV of worker votes, agreement subsets and k folds (Twitter I);
- ``JSONSplits`` ``[label, id, image, annotation]`` entries (EmoSet).

Protocols are deterministic across machines: file lists are sorted and shuffled with NumPy's
PCG64 generator seeded by ``seed`` (documented default 0), stratified per class. A layout's
``read`` also receives the benchmark's protocol choices (``fold``, ``agree``) as keywords.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha1
from itertools import groupby, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from affectlab.datamodules.hierarchy import Taxonomy
from affectlab.experiments.errors import InvalidValue, MissingPath

Sample = tuple[str, int]
Splits = dict[str, list[Sample]]
SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_COMMON_CASES = IMAGE_EXTENSIONS + tuple(ext.upper() for ext in IMAGE_EXTENSIONS)


class LayoutError(MissingPath):
    """The root does not hold any layout the benchmark knows."""


# -- protocols --------------------------------------------------------------------------------------

def stratified_split(samples: Sequence[Sample], fractions: Mapping[str, float], seed: int = 0) -> Splits:
    """Split per class with the given fractions (e.g. train .8 / val .05 / test .15).

    Each class's sorted files are shuffled with ``seed``; counts are rounded per class and the
    last split takes the remainder, so the splits are disjoint and cover every sample. Within a
    split, samples are listed class by class, sorted by path.
    """
    names = list(fractions)
    total = sum(fractions.values())
    by_class = _by_class(samples)
    out: Splits = {name: [] for name in names}
    rng = np.random.default_rng(seed)
    for label in sorted(by_class):
        paths = by_class[label]
        order = rng.permutation(len(paths)).tolist()
        start = 0
        for i, name in enumerate(names):
            stop = len(paths) if i == len(names) - 1 else start + round(len(paths) * fractions[name] / total)
            out[name].extend(zip(map(paths.__getitem__, sorted(order[start:stop])), repeat(label)))
            start = stop
    return out


def _path(sample: Sample) -> str:
    return sample[0]


def _by_class(samples: Sequence[Sample]) -> dict[int, list[str]]:
    """Sorted paths per label: the deterministic order every protocol starts from."""
    by_label = sorted(samples, key=itemgetter(1))  # stable, and linear when readers emit class runs
    return {label: sorted(map(itemgetter(0), run)) for label, run in groupby(by_label, key=itemgetter(1))}


def stratified_folds(samples: Sequence[Sample], n_folds: int = 5, seed: int = 0) -> list[list[Sample]]:
    """Partition into ``n_folds`` stratified folds (disjoint, covering, seeded)."""
    by_class = _by_class(samples)
    folds: list[list[Sample]] = [[] for _ in range(n_folds)]
    rng = np.random.default_rng(seed)
    offset = 0
    for label in sorted(by_class):
        paths = by_class[label]
        for rank, j in enumerate(rng.permutation(len(paths)).tolist()):
            folds[(rank + offset) % n_folds].append((paths[j], label))
        offset += len(paths)  # balance fold sizes across classes
    return [sorted(f, key=_path) for f in folds]


def fold_splits(samples: Sequence[Sample], n_folds: int, fold: int, seed: int = 0,
                val_fraction: float = 0.1) -> Splits:
    """K-fold cross-validation: fold ``fold`` is the test set, the others train (validation carved from them)."""
    if not 0 <= fold < n_folds:
        raise InvalidValue(f"fold must be in 0..{n_folds - 1}, got {fold}")
    folds = stratified_folds(samples, n_folds, seed)
    train = [s for k, f in enumerate(folds) if k != fold for s in f]
    return carve_val({"train": sorted(train, key=_path), "test": folds[fold]}, val_fraction, seed)


def carve_val(splits: Splits, fraction: float, seed: int = 0) -> Splits:
    """Carve a stratified validation set out of ``train`` when a release has none."""
    if splits.get("val") or fraction <= 0:
        return splits
    parts = stratified_split(splits["train"], {"train": 1.0 - fraction, "val": fraction}, seed)
    return {**splits, "train": parts["train"], "val": parts["val"]}


# -- class-name resolution ------------------------------------------------------------------------------

def resolver(taxonomy: Taxonomy, aliases: Mapping[str, str] | None = None,
             index_order: Sequence[str] | None = None) -> Callable[[str], int]:
    """Map a label as written on disk (leaf name, alias, or integer index) to a leaf index.

    Names are matched case-insensitively. An integer ``k`` is read in ``index_order`` — the
    release's own order of class names (EmoSet: amusement 0, awe 1, ...; docs/datasets.md), never
    the project's — and refused when the benchmark declares none, since guessing would silently
    relabel images.
    """
    leaves = {name.lower(): i for i, name in enumerate(taxonomy.leaves)}
    alias = {k.lower(): leaves[v.lower()] for k, v in (aliases or {}).items()}
    by_index = [leaves[name.lower()] for name in index_order] if index_order is not None else None

    memo: dict[str, int] = {}

    def resolve(text: str) -> int:
        if text in memo:  # a 268K-line list repeats 25 labels: look each spelling up once
            return memo[text]
        memo[text] = label = _resolve(text)
        return label

    def _resolve(text: str) -> int:
        key = text.strip().lower()
        if key in leaves:
            return leaves[key]
        if key in alias:
            return alias[key]
        if key.lstrip("-").isdigit():
            if by_index is None:
                raise InvalidValue(f"integer label {text!r}, but {taxonomy.name!r} here has no official index order: "
                                   f"write class names {list(taxonomy.leaves)}, or name the order of the indices "
                                   f"with --data.label_order")
            if not 0 <= int(key) < len(by_index):
                raise InvalidValue(f"label index {text!r} outside 0..{len(by_index) - 1} of the order "
                                   f"{list(index_order)}")
            return by_index[int(key)]
        raise InvalidValue(f"label {text!r} is not a class of {taxonomy.name!r}: expected one of "
                           f"{list(taxonomy.leaves)}, an alias {sorted(alias)}"
                           + (f" or an index 0..{len(by_index) - 1}" if by_index is not None else ""))

    return resolve


def check_order(order: Sequence[str], taxonomy: Taxonomy) -> tuple[str, ...]:
    """``order`` as a tuple of leaf names, checked to name every leaf exactly once."""
    names = [str(n) for n in order]
    if sorted(n.lower() for n in names) != sorted(n.lower() for n in taxonomy.leaves):
        raise InvalidValue(f"label order {names} must name each class of {taxonomy.name!r} once: {list(taxonomy.leaves)}")
    return tuple(names)


def relative_images(root: Path, folder: str) -> list[str]:
    """Image files under ``root/folder`` (recursive) as sorted posix paths relative to ``root``.

    Plain strings from ``os.listdir`` (no ``Path`` or stat per image file): a 23K-file tree lists
    faster than torchvision's ``ImageFolder`` scan. A folder named like an image is not descended.
    """
    found: list[str] = []
    visited = 0
    stack = [folder.strip("/")]
    while stack:
        current = stack.pop()
        prefix = f"{current}/" if current else ""
        here = os.path.join(root, current)
        names = os.listdir(here)
        images = [n for n in names if n.endswith(_COMMON_CASES)]  # the common case: no lower(), no stat
        if len(images) < len(names):  # mixed-case extensions, sub-folders, other files
            chosen = set(images)
            for n in names:
                if n in chosen:
                    continue
                if n.lower().endswith(IMAGE_EXTENSIONS):
                    images.append(n)
                elif os.path.isdir(os.path.join(here, n)):
                    stack.append(prefix + n)
        images.sort()  # short names sort faster than prefixed paths
        found.extend([prefix + n for n in images] if prefix else images)
        visited += 1
    if visited > 1:
        found.sort()
    return found


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted)."""
    return [folder / rel for rel in relative_images(folder, "")]


# -- layouts --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """Base class: the paths that identify a release, and how to read it."""

    description: str = ""

    def required(self, root: Path) -> list[Path]:
        raise NotImplementedError

    def missing(self, root: Path) -> Path | None:
        return next((p for p in self.required(root) if not p.exists()), None)

    #: Whether the layout *lists* files (which may be missing) rather than finding them on disk;
    #: listed files are checked for existence once, when the index is built.
    lists_files: ClassVar[bool] = False

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        """Samples per split. ``protocol`` holds the benchmark's protocol choices (``fold``, ``agree``)."""
        raise NotImplementedError

    def watched(self, root: Path) -> list[Path]:
        """Files and folders whose change invalidates a cached index (default: the required ones)."""
        return self.required(root)


@dataclass(frozen=True)
class SplitFiles(Layout):
    """The generic split-file form: ``train.txt``/``val.txt``/``test.txt``, lines ``relative/path label``.

    ``val.txt`` is optional; without it validation is carved from train.
    """

    lists_files = True

    files: Mapping[str, str] = field(default_factory=lambda: {"train": "train.txt", "val": "val.txt", "test": "test.txt"})
    prefix: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    val_fraction: float = 0.1
    description: str = "split files train.txt / test.txt (optional val.txt) with lines 'relative/path label'"

    def required(self, root: Path) -> list[Path]:
        return [root / self.files["train"], root / self.files["test"]]

    def watched(self, root: Path) -> list[Path]:
        return [root / f for f in self.files.values() if (root / f).exists()]

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        resolve = resolver(taxonomy, self.aliases, protocol.get("index_order"))
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
                    raise InvalidValue(f"{path}:{n}: cannot parse {line!r} as 'relative/path label' ({err})") from None
            splits[split] = samples
        return carve_val(splits, self.val_fraction, seed)


@dataclass(frozen=True)
class ClassFolders(Layout):
    """``<subdir>/<class>/<file>``: one folder per class, no official split; ``fractions`` decide it."""

    subdir: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)
    fractions: Mapping[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.05, "test": 0.15})
    min_classes: int = 2
    folds: int = 0
    val_fraction: float = 0.1
    description: str = "<class>/<file> folders"

    def base(self, root: Path) -> Path:
        return root / self.subdir if self.subdir else root

    def class_dirs(self, root: Path, taxonomy: Taxonomy) -> dict[str, int]:
        resolve = resolver(taxonomy, self.aliases)
        found = {}
        base = self.base(root)
        if base.is_dir():
            with os.scandir(base) as entries:  # the entry type comes with the listing: no stat per image file
                folders = sorted(entry.name for entry in entries if entry.is_dir())
            for entry in folders:
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
        prefix = f"{self.subdir.strip('/')}/" if self.subdir else ""
        out = []
        for folder, label in self.class_dirs(root, taxonomy).items():
            out.extend(zip(relative_images(root, prefix + folder), repeat(label)))
        return out

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        samples = self.samples(root, taxonomy)
        if self.folds:
            return fold_splits(samples, self.folds, protocol.get("fold", 0), seed, self.val_fraction)
        return stratified_split(samples, self.fractions, seed)


@dataclass(frozen=True)
class SplitFolders(ClassFolders):
    """``{train,val,test}/<class>/<file>``: the release is already split (``val`` optional)."""

    splits: tuple[str, ...] = ("train", "val", "test")
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

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        splits: Splits = {}
        for split in self.splits:
            if (root / split).is_dir():
                splits[split] = ClassFolders(subdir=split, aliases=self.aliases).samples(root, taxonomy)
        return carve_val(splits, self.val_fraction, seed)


@dataclass(frozen=True)
class ClassPathLists(Layout):
    """List files whose lines are ``<class>/<file>``: the class is the first folder (EmotionROI's split).

    ``files`` maps split → list file, ``prefix`` is the image folder the paths are relative to.
    """

    lists_files: ClassVar[bool] = True
    files: Mapping[str, str] = field(default_factory=lambda: {"train": "train.txt", "test": "test.txt"})
    prefix: str = "images"
    aliases: Mapping[str, str] = field(default_factory=dict)
    val_fraction: float = 0.1
    description: str = "list files with lines '<class>/<file>'"

    def required(self, root: Path) -> list[Path]:
        return [root / self.prefix, *(root / f for f in self.files.values())]

    def watched(self, root: Path) -> list[Path]:
        return [root / f for f in self.files.values()]

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        resolve = resolver(taxonomy, self.aliases)
        splits: Splits = {}
        for split, name in self.files.items():
            samples = []
            for n, line in enumerate((root / name).read_text().splitlines(), start=1):
                rel = line.strip().replace("\\", "/")
                if not rel:
                    continue
                if "/" not in rel:
                    raise InvalidValue(f"{root / name}:{n}: expected '<class>/<file>', got {line!r}")
                try:
                    samples.append((f"{self.prefix}/{rel}", resolve(rel.split("/", 1)[0])))
                except ValueError as err:
                    raise InvalidValue(f"{root / name}:{n}: {err}") from None
            splits[split] = samples
        return carve_val(splits, self.val_fraction, seed)


def url_file_name(url: str) -> str:
    """A stable file name for an image URL: 20 hex digits of its SHA-1 plus the URL's image extension.

    The same URL gives the same name on every machine, so a download can resume and a list can be
    indexed without touching the network.
    """
    if url.endswith(_COMMON_CASES):  # the usual case, cheap: 268K URLs are named at every first start
        suffix = url[url.rfind("."):].lower()
    else:
        tail = url.partition("?")[0].partition("#")[0].rpartition("/")[2]
        suffix = tail[tail.rfind("."):].lower() if "." in tail else ""
        if suffix not in IMAGE_EXTENSIONS:
            suffix = ".jpg"
    return sha1(url.encode()).hexdigest()[:20] + suffix


@dataclass(frozen=True)
class URLLists(Layout):
    """Lists of ``URL LABEL`` lines whose images are fetched into ``image_dir`` (WEBEmo).

    Each image lives under ``image_dir/url_file_name(url)``; lines whose image was never fetched
    (dead links) are counted as missing when the index is built.
    """

    lists_files: ClassVar[bool] = True
    files: Mapping[str, str] = field(default_factory=lambda: {"train": "train.txt", "test": "test.txt"})
    image_dir: str = "images"
    val_fraction: float = 0.1
    description: str = "URL lists with lines 'URL LABEL'"

    def required(self, root: Path) -> list[Path]:
        return [root / f for f in self.files.values()]

    def watched(self, root: Path) -> list[Path]:
        images = root / self.image_dir
        return [*self.required(root), *([images] if images.is_dir() else [])]

    def urls(self, root: Path, taxonomy: Taxonomy, index_order: Sequence[str] | None = None
             ) -> dict[str, list[tuple[str, int]]]:
        """``(url, label)`` per split, in list order; integer labels in ``index_order`` (the release's)."""
        resolve = resolver(taxonomy, index_order=index_order)
        out: dict[str, list[tuple[str, int]]] = {}
        for split, name in self.files.items():
            rows = []
            with open(root / name, encoding="utf-8") as handle:
                for n, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        url, label = line.rsplit(maxsplit=1)
                        rows.append((url.strip(), resolve(label)))
                    except ValueError as err:
                        raise InvalidValue(f"{root / name}:{n}: cannot parse {line!r} as 'URL LABEL' ({err})") from None
            out[split] = rows
        return out

    def shared_urls(self, rows: Mapping[str, list[tuple[str, int]]]) -> set[str]:
        """URLs listed in train and in test (or val): a test image must never be trained on."""
        held_out = {url for split, split_rows in rows.items() if split != "train" for url, _ in split_rows}
        return {url for url, _ in rows.get("train", []) if url in held_out}

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        prefix = self.image_dir + "/"
        rows = self.urls(root, taxonomy, protocol.get("index_order"))
        shared = self.shared_urls(rows)  # dropped from train only (counted by the benchmark's notes())
        splits = {split: [(prefix + url_file_name(url), label) for url, label in split_rows
                          if split != "train" or url not in shared]
                  for split, split_rows in rows.items()}
        return carve_val(splits, self.val_fraction, seed)


@dataclass(frozen=True)
class VoteTable(Layout):
    """Images in ``image_dir`` with a CSV of per-image worker votes (Twitter I's ``amt_result.csv``).

    The label is the majority of the positive/negative votes; ``agree`` (protocol) keeps the
    images on which at least that many workers agree (5, 4 or 3 of 5). The split is k-fold
    cross-validation (``fold``, protocol), stratified and seeded. With a header row, the columns
    are found by name (a cell containing ``pos`` / ``neg``). Public copies of the release's
    ``amt_result.csv`` have no header, and public loaders disagree on whether the third column
    counts positive or negative votes (docs/datasets.md, Twitter I), so a header-less file is read
    only when the user names its columns (protocol ``columns``, e.g. ``[image, total, positive,
    negative]``); otherwise it fails, saying so.
    """

    lists_files: ClassVar[bool] = True
    csv_file: str = "amt_result.csv"
    image_dir: str = "images"
    folds: int = 5
    val_fraction: float = 0.1
    positive: str = "positive"
    negative: str = "negative"
    description: str = "a vote table votes.csv (image, positive and negative votes) and images/"

    def required(self, root: Path) -> list[Path]:
        return [root / self.image_dir, root / self.csv_file]

    def watched(self, root: Path) -> list[Path]:
        return self.required(root)

    def votes(self, root: Path, columns: Sequence[str] | None = None) -> list[tuple[str, int, int]]:
        """``(image file, positive votes, negative votes)`` per row.

        ``columns`` names every column in order (``image``, ``positive``, ``negative``; anything
        else, e.g. ``total``, is ignored); it overrides a header and is required without one.
        """
        path = root / self.csv_file
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
        if not rows:
            return []
        first = [cell.strip().lower() for cell in rows[0]]
        has_header = not any(cell.replace(".", "", 1).isdigit() for cell in first[1:])
        if has_header:
            rows = rows[1:]
        names = [c.strip().lower() for c in columns] if columns else (first if has_header else None)
        if names is None:
            raise InvalidValue(
                f"{path} has no header row, and the order of its vote columns is not settled by public sources "
                f"(image, total, positive, negative or image, total, negative, positive). Name them, e.g. "
                f"--data.columns '[image, total, positive, negative]', after checking a few rows against the images")
        image = next((i for i, c in enumerate(names) if c in ("image", "file", "filename", "name", "img")), 0)
        pos = next((i for i, c in enumerate(names) if "pos" in c), None)
        neg = next((i for i, c in enumerate(names) if "neg" in c), None)
        if pos is None or neg is None:
            raise InvalidValue(f"{path}: columns {names} name no positive and negative vote counts "
                               f"(cells containing 'pos' and 'neg'); name them with --data.columns")
        out = []
        for n, row in enumerate(rows, start=2 if has_header else 1):
            try:
                name = os.path.basename(row[image].strip().replace("\\", "/"))
                out.append((name, int(float(row[pos])), int(float(row[neg]))))
            except (IndexError, ValueError) as err:
                raise InvalidValue(f"{path}:{n}: cannot read {row!r} with columns {names} ({err})") from None
        return out

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        agree = int(protocol.get("agree", 3))
        resolve = resolver(taxonomy)
        positive, negative = resolve(self.positive), resolve(self.negative)
        samples = [(f"{self.image_dir}/{name}", positive if p > n else negative)
                   for name, p, n in self.votes(root, protocol.get("columns")) if max(p, n) >= agree and p != n]
        return fold_splits(samples, self.folds, int(protocol.get("fold", 0)), seed, self.val_fraction)


@dataclass(frozen=True)
class JSONSplits(SplitFiles):
    """JSON split files listing ``[label, id, image_path, annotation_path]`` entries (EmoSet).

    The label is a class name; paths are relative to the root. Entries without an id
    (``[label, image_path, annotation_path]``) are read too.
    """

    files: Mapping[str, str] = field(default_factory=lambda: {"train": "train.json", "val": "val.json", "test": "test.json"})
    description: str = "JSON split files train.json / val.json / test.json with [label, id, image, annotation] entries"

    def read(self, root: Path, taxonomy: Taxonomy, seed: int, **protocol: Any) -> Splits:
        resolve = resolver(taxonomy, index_order=protocol.get("index_order"))
        splits: Splits = {}
        for split, name in self.files.items():
            if not (root / name).exists():
                continue
            samples = []
            for n, entry in enumerate(json.loads((root / name).read_text())):
                try:
                    samples.append((entry[2] if len(entry) >= 4 else entry[1], resolve(str(entry[0]))))
                except (ValueError, IndexError) as err:
                    raise InvalidValue(f"{root / name}: entry {n} {entry!r}: {err}") from None
            splits[split] = samples
        return carve_val(splits, self.val_fraction, seed)
