"""How fast ``affectlab`` answers: ``--help``, ``sweep --help``, ``--version`` against ``python -c pass``.

Each command runs as a fresh interpreter (the console script's module, ``python -m
affectlab.experiments``), ``--repeats`` times, interleaved with the baseline so the machine's load
hits all of them alike; the median wall time of each and its ratio to the baseline are printed,
and one row per measurement is appended to ``benchmarks/results/cli_startup.csv``. For contrast,
``fit --help`` (the LightningCLI's full option list, which imports torch and Lightning) is timed too.

Target: ``--help`` and ``sweep --help`` under 2 s.

    python benchmarks/cli_startup.py [--repeats 5] [--no-fit-help]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "cli_startup.csv"


def commands(fit_help: bool) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "affectlab.experiments"]
    out = {"python -c pass": [sys.executable, "-c", "pass"],
           "affectlab --help": [*cli, "--help"],
           "affectlab sweep --help": [*cli, "sweep", "--help"],
           "affectlab --version": [*cli, "--version"]}
    if fit_help:
        out["affectlab fit --help"] = [*cli, "fit", "--help"]
    return out


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-fit-help", dest="fit_help", action="store_false")
    args = parser.parse_args()
    todo = commands(args.fit_help)
    times: dict[str, list[float]] = {name: [] for name in todo}
    for command in todo.values():  # warm the file-system cache once
        timed(command)
    for _ in range(args.repeats):
        for name, command in todo.items():
            times[name].append(timed(command))
    base = statistics.median(times["python -c pass"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    new = not RESULTS.exists()
    with RESULTS.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["when", "command", "repeat", "seconds", "load1", "cpus", "python"])
        for name, values in times.items():
            for i, value in enumerate(values):
                writer.writerow([stamp, name, i, f"{value:.4f}", f"{load:.2f}", os.cpu_count(), platform.python_version()])
    print(f"{'command':<26} {'median s':>9} {'min s':>7} {'× python -c pass':>17}   (load {load:.1f}, {args.repeats} runs)")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<26} {median:9.3f} {min(values):7.3f} {median / base:17.1f}")


if __name__ == "__main__":
    main()
