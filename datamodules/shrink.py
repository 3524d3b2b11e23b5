"""``affectlab-data shrink SRC DST --short-side N``: a resized copy of a release, trained from as is.

Large releases (WEBEmo, EmoSet, FI) ship photos far larger than a 224 or 448 crop needs, and
every epoch pays for decoding them in full. This writes, once, a copy of the whole release tree
in which every image whose short side exceeds ``N`` is resized to short side ``N`` (Lanczos, same
format, same file name, same folder); everything else — lists, annotations, split files, small
images, files that cannot be decoded — is copied byte for byte. ``--data.root DST`` then trains
on it with the same layout, the same splits and the same count of unreadable files
(docs/datasets.md, "Decoding").

The copy is resumable and idempotent: each file is written under a temporary name and renamed
when complete, then stamped with its source's modification time; a later run skips every file
whose copy carries its source's time, so it finishes an interrupted run, redoes changed sources,
and does nothing when the copy is complete. The settings are kept in ``DST/.affectlab-shrink.json``
and a run with other settings into the same folder is refused.

    affectlab-data shrink /data/EmoSet-118K /data/EmoSet-118K-512 --short-side 512
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from affectlab.datamodules.images import decode_rgb
from affectlab.experiments.errors import InvalidValue, MissingPath

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SETTINGS_FILE = ".affectlab-shrink.json"
PART = ".shrink-part"
#: what ``shrink_file`` did to one file
OUTCOMES = ("resized", "copied", "unreadable", "done")


def _files(src: Path, dst: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(src):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() != dst)
        for name in sorted(files):
            if name == SETTINGS_FILE or name.endswith(PART):
                continue
            yield (here / name).relative_to(src)


def _done(source: Path, target: Path) -> bool:
    try:
        return target.stat().st_mtime_ns // 1000 == source.stat().st_mtime_ns // 1000
    except FileNotFoundError:
        return False


def _finish(part: Path, target: Path, source: Path) -> None:
    stat = source.stat()
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(part, target)


def shrink_file(source: Path, target: Path, short_side: int, quality: int = 90) -> str:
    """Write ``target`` from ``source`` (see the module docstring); returns one of ``OUTCOMES``."""
    if _done(source, target):
        return "done"
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART)
    outcome = "copied"
    if source.suffix.lower() in IMAGE_SUFFIXES:
        def needed(size: tuple[int, int]) -> tuple[int, int]:  # JPEGs: decode at ≥ the output size only
            factor = short_side / min(size)
            return (max(1, int(size[0] * factor)), max(1, int(size[1] * factor)))

        decoded = decode_rgb(source, needed)
        if decoded is None:
            outcome = "unreadable"  # copied as is, so training finds and counts it just the same
        elif min(decoded.full_size) > short_side:
            width, height = decoded.full_size
            factor = short_side / min(width, height)
            size = (short_side, round(height * factor)) if width <= height else (round(width * factor), short_side)
            resized = decoded.image.resize(size, Image.LANCZOS)
            fmt = decoded.format or "JPEG"
            options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
            resized.save(part, format=fmt, **options)
            _finish(part, target, source)
            return "resized"
    shutil.copyfile(source, part)
    _finish(part, target, source)
    return outcome


def shrink_release(src: str | Path, dst: str | Path, short_side: int, quality: int = 90, workers: int = 4,
                   progress: bool = True) -> Counter:
    """Write the shrunk copy of the release at ``src`` to ``dst``; returns the count of each outcome."""
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    if short_side < 1:
        raise InvalidValue(f"short side must be a positive number of pixels, got {short_side}")
    if not 1 <= quality <= 100:
        raise InvalidValue(f"JPEG quality must be in 1..100, got {quality}")
    if not src.is_dir():
        raise MissingPath(f"the release folder {src} does not exist")
    if dst == src:
        raise InvalidValue(f"the copy must go to another folder than the release itself ({src})")
    settings = {"short_side": short_side, "quality": quality}
    marker = dst / SETTINGS_FILE
    if marker.exists():
        previous = json.loads(marker.read_text())
        if previous != settings:
            raise InvalidValue(f"{dst} holds a copy made with {previous}, not {settings}: choose another folder")
    dst.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text(json.dumps(settings) + "\n")
    files = list(_files(src, dst))

    def one(rel: Path) -> str:
        return shrink_file(src / rel, dst / rel, short_side, quality)

    counts: Counter = Counter()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # decoding and encoding release the GIL
        for outcome in tqdm(pool.map(one, files), total=len(files), desc="shrinking", unit="file",
                            disable=not progress):
            counts[outcome] += 1
    return counts
