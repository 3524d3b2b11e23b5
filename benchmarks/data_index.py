"""Start-up cost of indexing big releases: first start, cached start, and a plain ImageFolder scan.

Generates, under a temporary folder, a 268K-line WEBEmo list pair (train25.txt / test25.txt, with
an empty file per URL under images/ as after a download) and a 23,308-file FI tree
(emotion_dataset/<class>/, empty files: indexing never decodes). Then measures, in one run and
on a warm file-system cache:

- first start: ``setup()`` with an empty index cache (list/parse/scan, protocol, existence check);
- cached start: ``setup()`` again, the index read from ``$AFFECTLAB_RUNS/.index_cache``;
- the baseline, on the FI tree: ``os.walk`` over it, and torchvision's ``ImageFolder`` construction.

Targets: cached ≥ 5× faster than first; first no slower than ImageFolder's scan.

    python benchmarks/data_index.py [--repeats 5] [--keep DIR]
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

from affectlab.datamodules.hierarchy import MIKELS  # noqa: E402
from affectlab.datamodules.vea.layouts import url_file_name  # noqa: E402

WEBEMO_LINES = 268_000
FI_COUNTS = {"amusement": 4942, "anger": 1266, "awe": 3151, "contentment": 5374, "disgust": 1658,
             "excitement": 2963, "fear": 1032, "sadness": 2922}  # 23,308 (docs/datasets.md)


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


def timed(fn, repeats: int, before=None) -> tuple[float, float]:
    """Median wall and CPU (this process) seconds of ``fn`` over ``repeats`` runs.

    ``before`` runs untimed before each. CPU time is reported too because a shared machine's
    wall time mostly measures the other tenants.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        if before is not None:
            before()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="generate into (and keep) this folder")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="affectlab-index-"))
    os.environ["AFFECTLAB_RUNS"] = str(base / "runs")
    from torchvision.datasets import ImageFolder

    from affectlab.datamodules.vea import FI, WEBEmo, index_cache

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

    print("| release | samples | clock | first start (s) | cached start (s) | first / cached "
          "| os.walk (s) | ImageFolder scan (s) | first / ImageFolder |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, n, first, cached in rows:
        for k, clock in enumerate(("wall", "CPU")):
            if name.startswith("FI"):
                extra = f"{walk[k]:.3f} | {image_folder[k]:.3f} | {first[k] / image_folder[k]:.2f}×"
            else:
                extra = "– | – | –"
            print(f"| {name} | {n} | {clock} | {first[k]:.3f} | {cached[k]:.3f} | {first[k] / cached[k]:.1f}× | {extra} |")
    fi = rows[0]
    print(f"\ntargets: first/cached ≥ 5× (wall: {', '.join(f'{r[2][0] / r[3][0]:.1f}×' for r in rows)}; "
          f"CPU: {', '.join(f'{r[2][1] / r[3][1]:.1f}×' for r in rows)}); "
          f"FI first ≤ ImageFolder scan (wall {fi[2][0]:.3f} vs {image_folder[0]:.3f} s; "
          f"CPU {fi[2][1]:.3f} vs {image_folder[1]:.3f} s)")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
