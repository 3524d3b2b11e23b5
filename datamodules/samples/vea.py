"""Fake visual-emotion releases: one writer, driven by each reader's layouts and a line of data per benchmark.

A benchmark's sample is a ``Plan`` (``PLANS``): which of the reader's declared layouts it is written
in, how many images per class each split holds, how its files are named and which data arguments
it needs. The writer reads everything else from the reader class itself — the taxonomy, the
layout's folders and list files (``datamodules/vea/layouts.py``), the release's label order — so
the sample is in the exact form the reader looks for, and a new benchmark needs a plan, not code.
What a layout kind adds to the pictures (list files, a vote table, JSON entries) is written by one
function per kind (``KINDS``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from affectlab.datamodules.hierarchy import Taxonomy
from affectlab.datamodules.samples.pictures import class_image, write_bad_files
from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.emotionroi import STIMULI_DIR
from affectlab.datamodules.vea.layouts import (
    ClassFolders,
    ClassPathLists,
    JSONSplits,
    Layout,
    URLLists,
    VoteTable,
    url_file_name,
)

#: the split name of a release that has no official split (the reader builds one)
UNSPLIT = "all"


@dataclass(frozen=True)
class Plan:
    """What a benchmark's sample holds, as data.

    Args:
        layout: the kind of layout the sample is written in: the first of the reader's ``layouts``
            of exactly that kind.
        per_class: images per class in each split (``UNSPLIT`` for a release without a split).
        name: the file stem, formatted with ``cls`` (the class name), ``label`` (its leaf index),
            ``i`` (the image's number within its class) and ``n`` (its number in the whole sample),
            both counted from ``first``.
        first: the first number.
        more: class → how many times ``per_class`` images it has (an imbalanced release).
        stimuli: a folder mirroring the images with one stimuli map per image (EmotionROI).
        overrides: data arguments the sample needs besides ``root`` and ``image_size``.
    """

    layout: type[Layout]
    per_class: Mapping[str, int]
    name: str = "{cls}_{i:04d}"
    first: int = 0
    more: Mapping[str, int] = field(default_factory=dict)
    stimuli: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)


#: Per benchmark (a reader class name; subclasses inherit their parent's plan).
PLANS: dict[str, Plan] = {
    "FI": Plan(ClassFolders, {UNSPLIT: 12}),  # 12 per class: the 5 % validation split holds one per class
    "Flickr": Plan(ClassFolders, {UNSPLIT: 20}, name="{i:04d}"),
    "TwitterII": Plan(ClassFolders, {UNSPLIT: 8}, name="{i:04d}", more={"positive": 2}),
    "TwitterI": Plan(VoteTable, {UNSPLIT: 15}, name="{n}", first=1000, overrides={"agree": 3}),
    "EmotionROI": Plan(ClassPathLists, {"train": 6, "test": 2}, name="{i}", first=1, stimuli=STIMULI_DIR),
    "WEBEmo": Plan(URLLists, {"train": 6, "test": 1}, name="{label:02d}_{i}", overrides={"download": False}),
    "EmoSet": Plan(JSONSplits, {"train": 4, "val": 1, "test": 1}, name="{cls}_{i:05d}"),
}


class Item(NamedTuple):
    """One image of the sample: its split, class, leaf label and file stem."""

    split: str
    cls: str
    label: int
    stem: str


def plan_of(reader: type[VEADataModule]) -> Plan:
    """The plan of ``reader`` or of the nearest base class that has one."""
    for klass in reader.__mro__:
        if klass.__name__ in PLANS:
            return PLANS[klass.__name__]
    raise ValueError(f"{reader.__name__} has no sample plan: add one to PLANS in {__name__}")


def layout_of(reader: type[VEADataModule], plan: Plan) -> Layout:
    found = [layout for layout in reader.layouts if type(layout) is plan.layout]
    if not found:
        raise ValueError(f"{reader.__name__} declares no {plan.layout.__name__} layout to write its sample in")
    return found[0]


def items(taxonomy: Taxonomy, plan: Plan, per_class: int | Mapping[str, int] | None = None) -> list[Item]:
    """The sample's images, split by split, class by class."""
    counts = plan.per_class
    if per_class is not None:
        if isinstance(per_class, int) and set(counts) != {UNSPLIT}:
            raise ValueError(f"this release is split ({', '.join(counts)}): give per_class as split → count")
        counts = {UNSPLIT: per_class} if isinstance(per_class, int) else per_class
    out: list[Item] = []
    numbers = {cls: plan.first for cls in taxonomy.leaves}
    for split, count in counts.items():
        for label, cls in enumerate(taxonomy.leaves):
            for _ in range(count * plan.more.get(cls, 1)):
                stem = plan.name.format(cls=cls, label=label, i=numbers[cls], n=plan.first + len(out))
                out.append(Item(split, cls, label, stem))
                numbers[cls] += 1
    return out


def looks(taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Per leaf, how ``class_image`` draws it: warm hues for positive classes, cool for negative, when they fit apart."""
    sentiment = taxonomy.leaf_to_level(0).tolist()
    if max(sentiment.count(s) for s in set(sentiment)) > 4:  # too many classes for the two hue ranges
        return [{"n_classes": len(sentiment)} for _ in sentiment]
    return [{"n_classes": len(sentiment), "positive": taxonomy.levels[0][s] == "positive",
             "rank": sentiment[:label].count(s)} for label, s in enumerate(sentiment)]


# -- what each layout kind writes besides the pictures: returns each item's image path ----------------

def _class_folders(layout: ClassFolders, root: Path, items: list[Item], reader: type[VEADataModule]) -> list[str]:
    base = f"{layout.subdir.strip('/')}/" if layout.subdir else ""
    return [f"{base}{item.cls}/{item.stem}.jpg" for item in items]


def _write_lines(root: Path, files: Mapping[str, str], items: list[Item], lines: list[str]) -> None:
    for split, name in files.items():
        chosen = [line for item, line in zip(items, lines, strict=True) if item.split == split]
        if chosen:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("\n".join(chosen) + "\n")


def _class_path_lists(layout: ClassPathLists, root: Path, items: list[Item], reader: type[VEADataModule]) -> list[str]:
    lines = [f"{item.cls}/{item.stem}.jpg" for item in items]
    _write_lines(root, layout.files, items, lines)
    return [f"{layout.prefix}/{line}" for line in lines]


def _url_lists(layout: URLLists, root: Path, items: list[Item], reader: type[VEADataModule]) -> list[str]:
    """``URL LABEL`` lines, labels in the release's order; the URLs point nowhere (the images are already there)."""
    order = reader.index_order
    urls = [f"http://127.0.0.1:9/{reader.benchmark.lower()}/{item.split}/{item.stem}.jpg" for item in items]
    labels = [str(order.index(item.cls)) if order else item.cls for item in items]
    _write_lines(root, layout.files, items, [f"{url} {label}" for url, label in zip(urls, labels, strict=True)])
    return [f"{layout.image_dir}/{url_file_name(url)}" for url in urls]


def _vote_table(layout: VoteTable, root: Path, items: list[Item], reader: type[VEADataModule]) -> list[str]:
    """Five votes per image, the class's side winning 5/0, 4/1 and 3/2 in turn, in a CSV with a header."""
    rows = [["image", "total_votes", f"{layout.positive}_votes", f"{layout.negative}_votes"]]
    for k, item in enumerate(items):
        winning = 5 - k % 3
        votes = (winning, 5 - winning) if item.cls == layout.positive else (5 - winning, winning)
        rows.append([f"{item.stem}.jpg", "5", *map(str, votes)])
    with open(root / layout.csv_file, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return [f"{layout.image_dir}/{item.stem}.jpg" for item in items]


def _json_splits(layout: JSONSplits, root: Path, items: list[Item], reader: type[VEADataModule]) -> list[str]:
    """``[label, id, image, annotation]`` entries, an annotation file each, and ``info.json``'s label order.

    The entries carry the paths, so the folders are the release's own (EmoSet's ``image/``, ``annotation/``).
    """
    entries = []
    for item in items:
        annotation = root / "annotation" / item.cls / f"{item.stem}.json"
        annotation.parent.mkdir(parents=True, exist_ok=True)
        annotation.write_text(json.dumps({"emotion": item.cls, "brightness": 0.5}))
        entries.append([item.cls, item.stem, f"image/{item.cls}/{item.stem}.jpg",
                        annotation.relative_to(root).as_posix()])
    for split, name in layout.files.items():
        (root / name).write_text(json.dumps([e for e, item in zip(entries, items, strict=True) if item.split == split]))
    if reader.index_order:
        (root / "info.json").write_text(json.dumps({"label2idx": {n: i for i, n in enumerate(reader.index_order)}}))
    return [entry[2] for entry in entries]


KINDS: dict[type[Layout], Callable[[Any, Path, list[Item], type[VEADataModule]], list[str]]] = {
    ClassFolders: _class_folders,
    ClassPathLists: _class_path_lists,
    URLLists: _url_lists,
    VoteTable: _vote_table,
    JSONSplits: _json_splits,
}


def _stimuli_map(rng: np.random.Generator, size: int) -> Image.Image:
    """A bright disc where the eye goes, on black."""
    stimuli = Image.new("L", (size, size))
    radius = size // 6
    cx, cy = rng.integers(radius + 2, size - radius - 2, 2).tolist()
    ImageDraw.Draw(stimuli).ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    return stimuli


def write_vea(reader: type[VEADataModule], root: Path, per_class: int | Mapping[str, int] | None = None,
              size: int = 48, seed: int = 0, bad_files: bool = False) -> dict[str, Any]:
    """Write ``reader``'s sample under ``root``; the data overrides that point a config at it.

    Args:
        per_class: images per class instead of the plan's (an int for a release without a split,
            otherwise split → count).
        size: side of the square images.
        seed: seed of the pictures.
        bad_files: also write the kinds of bad file real releases contain
            (``pictures.write_bad_files``) beside the first class's images (read by folder layouts).
    """
    plan = plan_of(reader)
    layout = layout_of(reader, plan)
    taxonomy = Taxonomy.from_spec(reader.taxonomy_name)
    planned = items(taxonomy, plan, per_class)
    root.mkdir(parents=True, exist_ok=True)
    paths = KINDS[plan.layout](layout, root, planned, reader)
    rng = np.random.default_rng(seed)
    drawn = looks(taxonomy)
    for item, rel in zip(planned, paths, strict=True):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        class_image(item.label, rng, size, **drawn[item.label]).save(root / rel, quality=92)
        if plan.stimuli:
            target = root / plan.stimuli / Path(rel).relative_to(Path(rel).parts[0])
            target.parent.mkdir(parents=True, exist_ok=True)
            _stimuli_map(rng, size).save(target)
    if bad_files:
        write_bad_files((root / paths[0]).parent, rng)
    return {"root": str(root), "image_size": 64, **plan.overrides}
