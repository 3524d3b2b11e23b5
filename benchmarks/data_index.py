"""Start-up cost of indexing big releases: first start, cached start, and a plain ImageFolder scan.

Generates, under a temporary folder, a 268K-line WEBEmo list pair (train25.txt / test25.txt, with
an empty file per URL under images/ as after a download) and a 23,308-file FI tree
(emotion_dataset/<class>/, empty files: indexing never decodes). Then measures, in one run and
on a warm file-system cache:

- first start: ``setup()`` with an empty index cache (list/parse/scan, protocol, existence check);
- cached start: ``setup()`` again, the index read from ``$AFFECTLAB_RUNS/.index_cache``;
- the baseline, on the FI tree: ``os.walk`` over it, and torchvision's ``ImageFolder`` construction.

Targets (issue #3): cached ≥ 5× faster than first; first no slower than ImageFolder's scan.

    python benchmarks/data_index.py [--repeats 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datamodules.hierarchy import MIKELS  # noqa: E402
from datamodules.vea.layouts import url_file_name  # noqa: E402

WEBEMO_LINES = 268_000
FI_COUNTS = {"amusement": 4942, "anger": 1266, "awe": 3151, "contentment": 5374, "disgust": 1658,
             "excitement": 2963, "fear": 1032, "sadness": 2922}  # 23,308 (DATASETS.md)


def touch(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def make_webemo(root: Path) -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    n_train = int(WEBEMO_LINES * 0.8)
    lines = {"train25.txt": [], "test25.txt": []}
    for i in range(WEBEMO_LINES):
        url = f"https://stock.example.com/photos/{i // 1000:03d}/{i:07d}-{(i * 7919) % 104729}.jpg"
        lines["train25.txt" if i < n_train else "test25.txt"].append(f"{url} {i % 25}")
        touch(root / "images" / url_file_name(url))
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")


def make_fi(root: Path) -> None:
    assert tuple(FI_COUNTS) == MIKELS
    for name, n in FI_COUNTS.items():
        folder = root / "emotion_dataset" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            touch(folder / f"{name}_{i:05d}.jpg")


def timed(fn, repeats: int, before=None) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs (``before`` runs untimed before each)."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="generate into (and keep) this folder")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="affectlab-index-"))
    os.environ["AFFECTLAB_RUNS"] = str(base / "runs")
    from torchvision.datasets import ImageFolder

    from datamodules.vea import FI, WEBEmo, index_cache

    start = time.perf_counter()
    if not (base / "webemo" / "test25.txt").exists():
        make_webemo(base / "webemo")
    if not (base / "fi" / "emotion_dataset").exists():
        make_fi(base / "fi")
    print(f"generated {WEBEMO_LINES} WEBEmo lines and {sum(FI_COUNTS.values())} FI files under {base} "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    def clear() -> None:
        shutil.rmtree(index_cache.cache_dir(), ignore_errors=True)

    def start_up(cls, root: Path, **kwargs):
        def run():
            dm = cls(root=str(root), num_workers=0, **kwargs)
            dm.setup("fit")
            return dm
        return run

    for _ in os.walk(base):  # warm the file-system cache for every measurement alike
        pass
    rows = []
    fi_root = base / "fi"
    walk = timed(lambda: sum(len(files) for _, _, files in os.walk(fi_root / "emotion_dataset")), args.repeats)
    image_folder = timed(lambda: ImageFolder(str(fi_root / "emotion_dataset")), args.repeats)
    for name, cls, root, kwargs in (("FI tree (23,308 files)", FI, fi_root, {}),
                                    ("WEBEmo lists (268,000 lines)", WEBEmo, base / "webemo", {"download": False})):
        first = timed(start_up(cls, root, **kwargs), args.repeats, before=clear)
        start_up(cls, root, **kwargs)()
        cached = timed(start_up(cls, root, **kwargs), args.repeats)
        n = sum(len(v) for v in start_up(cls, root, **kwargs)().splits.values())
        rows.append((name, n, first, cached))

    print("| release | samples | first start (s) | cached start (s) | first / cached | os.walk (s) | ImageFolder scan (s) | first / ImageFolder |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, first, cached in rows:
        is_fi = name.startswith("FI")
        extra = (f"{walk:.3f} | {image_folder:.3f} | {first / image_folder:.2f}×" if is_fi else "– | – | –")
        print(f"| {name} | {n} | {first:.3f} | {cached:.3f} | {first / cached:.1f}× | {extra} |")
    print(f"\ntargets: first/cached ≥ 5× ({', '.join(f'{f / c:.1f}×' for _, _, f, c in rows)}); "
          f"FI first ≤ ImageFolder scan ({rows[0][2]:.3f} s vs {image_folder:.3f} s)")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
