"""The sample index of a release, built once per root and cached next to the run outputs.

WEBEmo lists 268K images and FI is a 23K-file tree: listing, parsing and checking them at every
start would dominate start-up. The index (samples per split, and the listed samples whose file is missing) is stored
as JSON under ``$AFFECTLAB_RUNS/.index_cache/`` (``runs/.index_cache/`` by default), keyed by the
benchmark, the resolved root, the layout and the protocol (seed, fold, agree). It is valid while
the layout's watched paths (list files, class folders) keep their size and modification time;
adding, removing or renaming a file in a watched folder changes the folder's mtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from operator import itemgetter
from pathlib import Path
from typing import Any

from datamodules.vea.layouts import Sample, Splits

log = logging.getLogger(__name__)

VERSION = 1


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
    path = cache_dir() / f"{key}.json"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if data.get("version") != VERSION or data.get("stamp") != stamp(watched):
        log.info("index cache %s is stale; rebuilding", path)
        return None
    # Columnar storage keeps the JSON small and fast to parse: paths and labels as two lists.
    def unpack(columns: dict[str, dict[str, Any]]) -> Splits:
        out: Splits = {}
        for split, c in columns.items():
            paths = c["paths"].split("\n") if isinstance(c["paths"], str) and c["paths"] else c["paths"] or []
            out[split] = list(zip(paths, c["labels"], strict=True))
        return out

    return unpack(data["splits"]), unpack(data["missing"])


def save(key: str, watched: list[Path], splits: Splits, missing: Splits) -> Path | None:
    """Write the index atomically (temp file + rename); a read-only runs folder only costs the cache."""
    folder = cache_dir()
    path = folder / f"{key}.json"
    def pack(parts: Splits) -> dict[str, dict[str, Any]]:
        # Paths joined by newlines (a list file cannot hold one in a path): a single JSON string
        # encodes and decodes several times faster than a list of 268K strings.
        out = {}
        for split, samples in parts.items():
            paths = list(map(itemgetter(0), samples))
            joined = "\n".join(paths)
            safe = joined.count("\n") == max(len(paths) - 1, 0) and "" not in paths
            out[split] = {"paths": joined if safe else paths, "labels": list(map(itemgetter(1), samples))}
        return out

    data = {"version": VERSION, "stamp": stamp(watched), "splits": pack(splits), "missing": pack(missing)}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        text = json.dumps(data, separators=(",", ":"))  # dumps uses the C encoder; dump streams in Python
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        return path
    except OSError as err:
        log.warning("could not write the index cache %s: %s", path, err)
        return None


def existing(root: Path, samples: list[Sample]) -> set[str]:
    """The relative paths of files present in the folders ``samples`` live in.

    Each folder is listed once (one ``listdir`` instead of a ``stat`` per listed file).
    """
    found: set[str] = set()
    for head in {rel.rpartition("/")[0] for rel, _ in samples}:
        try:
            names = os.listdir(root / head if head else root)
        except OSError:
            continue
        prefix = f"{head}/" if head else ""
        found.update([prefix + n for n in names] if prefix else names)
    return found
