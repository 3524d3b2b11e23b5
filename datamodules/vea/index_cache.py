"""The sample index of a release, built once per root and cached next to the run outputs.

WEBEmo lists 268K images and FI is a 23K-file tree: listing, parsing and checking them at every
start would dominate start-up. The index (samples per split, and the listed samples whose file is missing) is stored as
``<benchmark>-<key>.index`` (a JSON header line, then plain path and label lines) under
``$AFFECTLAB_RUNS/.index_cache/`` (``runs/.index_cache/`` by default), keyed by the benchmark, the resolved root, the layout and the protocol (seed, fold, agree). It is valid while
the layout's watched paths (list files, class folders) and, for list layouts, the folders the
listed files live in keep their size and modification time; adding, removing or renaming a file
in a folder changes the folder's mtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from itertools import groupby, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

from affectlab.datamodules.vea.layouts import Sample, Splits

log = logging.getLogger(__name__)

VERSION = 2
SUFFIX = ".index"
END = "#end"


def cache_dir() -> Path:
    """``$AFFECTLAB_RUNS/.index_cache`` (read at call time so tests and runs can redirect it)."""
    return Path(os.environ.get("AFFECTLAB_RUNS", "runs")) / ".index_cache"


def cache_key(benchmark: str, root: Path, layout: Any, protocol: dict[str, Any]) -> str:
    """A file-name-safe key of what determines the index."""
    spec = json.dumps([VERSION, benchmark, str(Path(root).resolve()), repr(layout), protocol], sort_keys=True, default=str)
    return f"{benchmark.lower()}-{hashlib.sha1(spec.encode()).hexdigest()[:16]}"


def stamp(paths: list[Path]) -> list[list[Any]]:
    """Size and modification time (ns) of every watched path; a vanished path stamps as ``None``."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append([str(path), st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([str(path), None, None])
    return out


def load(key: str, watched: list[Path]) -> tuple[Splits, Splits] | None:
    """The cached ``(splits, missing)`` for ``key`` if the watched paths are unchanged, else ``None``."""
    path = cache_dir() / f"{key}{SUFFIX}"
    try:
        with open(path, encoding="utf-8") as handle:
            header = json.loads(handle.readline())
            # The stamp covers the layout's watched paths, then the folders the listed files live
            # in (recorded at save time), so an image that appears after a download counts too.
            stamped = [Path(entry[0]) for entry in header.get("stamp", [])]
            if (header.get("version") != VERSION or stamped[:len(watched)] != list(watched)
                    or header["stamp"] != stamp(stamped)):
                log.info("index cache %s is stale; rebuilding", path)
                return None
            lines = handle.read().split("\n")
        if lines[-1] != END:  # atomic writes make this rare: a file damaged after the fact
            raise ValueError("no end marker")
        parts: dict[str, Splits] = {"splits": {}, "missing": {}}
        at = 0
        for kind, split, n in header["parts"]:
            samples: list[Sample] = []
            start = at
            for run in filter(None, lines[at + n].split(",")):  # label runs "label:count"
                label, count = map(int, run.split(":"))
                samples.extend(zip(lines[start:start + count], repeat(label)))
                start += count
            if start != at + n:
                raise ValueError(f"{kind}/{split}: labels for {start - at} of {n} paths")
            parts[kind][split] = samples
            at += n + 1
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        log.info("index cache %s is unreadable; rebuilding", path)
        return None
    return parts["splits"], parts["missing"]


def save(key: str, watched: list[Path], splits: Splits, missing: Splits) -> Path | None:
    """Write the index atomically (temp file + rename); a read-only runs folder only costs the cache.

    Format: one JSON header line (version, stamp, and the ``[kind, split, count]`` of each part),
    then per part its paths one per line and one line of ``label:count`` runs, then ``#end``. Plain lines
    parse several times faster than a JSON list of 268K strings. A path with a line break (never
    in a list file; possible only in a hostile folder tree) is not cached.
    """
    path = cache_dir() / f"{key}{SUFFIX}"
    header: dict[str, Any] = {"version": VERSION, "stamp": stamp(watched), "parts": []}
    body: list[str] = []
    for kind, parts in (("splits", splits), ("missing", missing)):
        for split, samples in parts.items():
            paths = list(map(itemgetter(0), samples))
            if any("\n" in p or "\r" in p for p in paths):
                log.warning("not caching the index: a path holds a line break")
                return None
            header["parts"].append([kind, split, len(paths)])
            body += paths
            # Splits list their samples class by class, so labels compress into a few runs.
            body.append(",".join(f"{label}:{len(list(run))}" for label, run in groupby(map(itemgetter(1), samples))))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(json.dumps(header) + "\n")
            handle.write("\n".join(body) + "\n" + END)
        os.replace(tmp, path)
        return path
    except OSError as err:
        log.warning("could not write the index cache %s: %s", path, err)
        return None


def existing(root: Path, samples: list[Sample]) -> tuple[set[str], list[Path]]:
    """The relative paths of files present in the folders ``samples`` live in, and those folders.

    Each folder is listed once (one ``listdir`` instead of a ``stat`` per listed file).
    """
    found: set[str] = set()
    heads = sorted({rel.rpartition("/")[0] for rel, _ in samples})
    for head in heads:
        try:
            names = os.listdir(root / head if head else root)
        except OSError:
            continue
        prefix = f"{head}/" if head else ""
        found.update([prefix + n for n in names] if prefix else names)
    return found, [root / head if head else root for head in heads]
