"""``affectlab-data stats -c CONFIG``: what a benchmark release holds, before any training.

(``affectlab-data shrink SRC DST --short-side N`` writes a resized copy of a release to train
from: ``datamodules/shrink.py``.)

Per split and leaf class: the number of images, how many of them cannot be decoded (every file
goes through ``load_rgb``, with a progress bar), how many the lists name but the disk lacks, and
where the class sits in the taxonomy. The same rows are logged to W&B when a fit starts
(``callbacks/data_stats.py``).

    affectlab-data stats -c experiments/baseline/fi.yaml --data.root /data/FI
    affectlab-data stats -c experiments/baseline/twitter1.yaml --data.root /data/TwitterI --data.agree 4

A mistake the user can fix is one line, ``affectlab-data: error: <message>``, and a non-zero exit
(2 for the command line itself); ``AFFECTLAB_DEBUG=1`` shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import yaml
from tqdm.auto import tqdm

from affectlab.datamodules.images import load_rgb
from affectlab.datamodules.vea.layouts import SPLITS
from affectlab.experiments.errors import USAGE_STATUS, InvalidValue, MissingPath, run_reporting_errors

COLUMNS = ("split", "label", "class", "ancestors", "images", "unreadable", "missing")


def unreadable_files(root: Path, paths: Sequence[str], workers: int = 4, progress: bool = True) -> set[str]:
    """The relative paths that ``load_rgb`` cannot decode (decoding is I/O- and C-bound: threads help)."""
    def bad(rel: str) -> str | None:
        return rel if load_rgb(root / rel) is None else None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = tqdm(pool.map(bad, paths), total=len(paths), desc="decoding", unit="img", disable=not progress)
        return {rel for rel in results if rel is not None}


def stats_rows(datamodule: Any, decode: bool = True, workers: int = 4, progress: bool = True) -> list[list[Any]]:
    """One row per split and leaf class: ``COLUMNS``; ``unreadable`` is ``None`` when ``decode`` is off."""
    datamodule.setup(None)
    taxonomy = datamodule.taxonomy
    root = Path(datamodule.root)
    ancestors = [" / ".join(taxonomy.levels[level][int(taxonomy.leaf_to_level(level)[leaf])]
                            for level in range(taxonomy.num_levels - 1)) for leaf in range(len(taxonomy.leaves))]
    rows = []
    order = [s for s in SPLITS if s in datamodule.splits] + [s for s in datamodule.splits if s not in SPLITS]
    for split in order:
        samples = datamodule.splits[split]
        bad = unreadable_files(root, [p for p, _ in samples], workers, progress) if decode else set()
        lost = datamodule.missing.get(split, [])  # listed but not on disk: already left out of the split
        for leaf, name in enumerate(taxonomy.leaves):
            in_class = [p for p, label in samples if label == leaf]
            rows.append([split, leaf, name, ancestors[leaf], len(in_class),
                         sum(p in bad for p in in_class) if decode else None,
                         sum(label == leaf for _, label in lost)])
    return rows


def format_table(rows: list[list[Any]], datamodule: Any) -> str:
    """A plain-text table with per-split totals, then the taxonomy."""
    taxonomy = datamodule.taxonomy
    widths = [max(len(str(c)) for c in [col, *(r[i] for r in rows)]) for i, col in enumerate(COLUMNS)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [f"{type(datamodule).__name__} at {datamodule.root}", line.format(*COLUMNS)]
    for split in dict.fromkeys(r[0] for r in rows):
        split_rows = [r for r in rows if r[0] == split]
        out += [line.format(*("-" if v is None else v for v in r)) for r in split_rows]
        unreadable = [r[5] for r in split_rows if r[5] is not None]
        out.append(f"  {split}: {sum(r[4] for r in split_rows)} images, "
                   f"{sum(unreadable) if unreadable else '-'} unreadable, {sum(r[6] for r in split_rows)} missing")
    out += [f"note: {note}" for note in datamodule.notes()] if hasattr(datamodule, "notes") else []
    out.append(f"taxonomy {taxonomy.name}: " + " → ".join(
        f"{name} ({n})" for name, n in zip(taxonomy.level_names, taxonomy.num_classes, strict=True)))
    for level in range(1, taxonomy.num_levels):
        groups: dict[str, list[str]] = {}
        for child, parent in enumerate(taxonomy.parents[level - 1]):
            groups.setdefault(taxonomy.levels[level - 1][parent], []).append(taxonomy.levels[level][child])
        out.append("  " + "; ".join(f"{p}: {', '.join(c)}" for p, c in groups.items()))
    return "\n".join(out)


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data.root`` or ``data.init_args.root`` style keys in the data section."""
    keys = dotted.split(".")
    if keys[0] != "data":
        raise InvalidValue(f"only --data.* overrides are understood, got --{dotted}")
    keys = keys[1:]
    if keys and keys[0] not in ("init_args", "class_path"):
        keys = ["init_args", *keys]
    node = config.setdefault("data", {})
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def datamodule_from_config(files: Sequence[str], overrides: Sequence[tuple[str, str]] = ()) -> Any:
    """Build the ``data`` section of experiment files (later files and overrides win)."""
    config: dict[str, Any] = {}
    from affectlab.experiments.cli import _accepts as accepts
    from affectlab.experiments.cli import composed  # experiment files may be composed of parts

    for file in files:
        if not Path(file).is_file():
            raise MissingPath(f"the config file {file} does not exist")
        try:
            data = (composed(file) or {}).get("data") or {}
        except yaml.YAMLError as err:
            raise InvalidValue(f"{file} is not valid YAML: {' '.join(str(err).split())}") from None
        if "class_path" in data:
            config.setdefault("data", {})["class_path"] = data["class_path"]
        config.setdefault("data", {}).setdefault("init_args", {}).update(data.get("init_args") or {})
    for key, value in overrides:
        _set(config, key, yaml.safe_load(value))
    data = config.get("data") or {}
    if "class_path" not in data:
        raise InvalidValue("the config has no data.class_path")
    module, _, name = data["class_path"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise InvalidValue(f"data.class_path {data['class_path']!r} names no importable class ({err})") from None
    args = data.get("init_args", {})
    unknown = [key for key in args if not accepts(cls, key)]
    if unknown:
        raise InvalidValue(f"{name} takes no argument {', '.join(unknown)} (--data.{unknown[0]})")
    return cls(**args)


class _OneLineParser(argparse.ArgumentParser):
    """A parser whose errors are one line, like the rest of affectlab's (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_STATUS, f"{self.prog}: error: {message} (--help lists the options)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``affectlab-data`` command; returns its exit status.

    A user error (a missing config file or release, a bad option or value) prints one line,
    ``affectlab-data: error: <message>``, and gives a non-zero status; ``AFFECTLAB_DEBUG=1`` shows its
    traceback (``experiments/errors.py``). Anything else keeps its traceback.
    """
    return run_reporting_errors(_main, argv, prog="affectlab-data")


def _main(argv: Sequence[str] | None = None) -> int:
    parser = _OneLineParser(prog="affectlab-data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    stats = sub.add_parser("stats", help="per split and class: images, unreadable, missing; the taxonomy")
    stats.add_argument("-c", "--config", action="append", required=True, help="experiment YAML (repeatable)")
    stats.add_argument("--no-decode", action="store_true", help="skip decoding every file")
    stats.add_argument("--workers", type=int, default=4, help="decoding threads")
    shrink = sub.add_parser("shrink", help="write a copy of a release with every image resized to a short side "
                                           "(same layout and names; resumable)")
    shrink.add_argument("src", help="the release folder (what --data.root points at)")
    shrink.add_argument("dst", help="the folder of the copy (point --data.root at it)")
    shrink.add_argument("--short-side", type=int, default=512, help="short side of the resized images (default 512)")
    shrink.add_argument("--quality", type=int, default=90, help="JPEG/WebP quality of resized images (default 90)")
    shrink.add_argument("--workers", type=int, default=4, help="threads (default 4)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "shrink":
        if rest:
            parser.error(f"unrecognised arguments {' '.join(rest)}")
        from affectlab.datamodules.shrink import shrink_release

        counts = shrink_release(args.src, args.dst, args.short_side, args.quality, args.workers,
                                progress=sys.stderr.isatty())
        print(f"{args.dst}: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in
                                          ("resized", "copied", "unreadable", "done")) + " (done: already there)")
        return 0
    overrides = []
    it = iter(rest)
    for token in it:
        if not token.startswith("--data."):
            parser.error(f"unrecognised argument {token}")
        key, eq, value = token[2:].partition("=")
        overrides.append((key, value if eq else next(it, "")))
    datamodule = datamodule_from_config(args.config, overrides)
    rows = stats_rows(datamodule, decode=not args.no_decode, workers=args.workers, progress=sys.stderr.isatty())
    print(format_table(rows, datamodule))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
