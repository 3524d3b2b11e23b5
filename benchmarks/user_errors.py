"""How long a user error takes to report, against the time the command line takes to parse.

In one process (imports paid once), on a generated FI-layout sample: the parse alone
(``fit --print_config``) and each user error through ``run_reporting_errors(main)``, the wrapper of
the console script. Claim (docs/reliability.md): a user error is reported in about the time the
parser takes. Each round times every case once, the parse first; ``ratio`` is a case's time over
the parse of its own round (the load of a shared machine drifts between rounds). One row per case
and round in ``benchmarks/results/user_errors.csv``.

    OMP_NUM_THREADS=1 python benchmarks/user_errors.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import affectlab.experiments.cli as cli  # noqa: E402
from affectlab.datamodules.samples import write_sample  # noqa: E402
from affectlab.experiments.cli import main  # noqa: E402
from affectlab.experiments.errors import run_reporting_errors  # noqa: E402

#: The control: the same wrong root with the parse-time data check switched off, i.e. found when the
#: DataModule first reads the root (prepare_data/setup), after the model and the trainer are built.
CONTROL = "wrong root, no early check"
CASES = {
    "parse only (--print_config)": ["--print_config"],
    "unknown backbone": ["--model.init_args.backbone", "resnet7"],
    "image_size 7": ["--data.init_args.image_size", "7"],
    "batch_size 0": ["--data.init_args.batch_size", "0"],
    "misspelled key": ["--model.backbon", "resnet18"],
    "missing checkpoint": ["--ckpt_path", "/no/such.ckpt"],
    "wrong root": ["--data.init_args.root", "/no/such/root"],
    "wrong layout": ["--data.init_args.root", "{work}/not_fi"],
    "wrong root (test)": ["--data.init_args.root", "/no/such/root", "--no_checkpoint", "true"],
    CONTROL: ["--data.init_args.root", "/no/such/root"],
}
PARSE = "parse only (--print_config)"


@contextlib.contextmanager
def without_early_check(active: bool):
    """Switch the CLI's parse-time data check off (the control case)."""
    real = cli.check_before_building
    if active:
        cli.check_before_building = lambda config: None
    try:
        yield
    finally:
        cli.check_before_building = real


def main_(repeats: int) -> None:
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp())
    os.environ["AFFECTLAB_RUNS"] = str(work / "runs")
    os.environ["WANDB_MODE"] = "disabled"
    root = Path(write_sample("FI", work / "fi", per_class=12, size=48)["root"])
    (work / "not_fi" / "photos").mkdir(parents=True)  # a folder, but in none of FI's layouts
    rows = []
    for repeat in range(repeats + 1):  # the first round warms up lazy imports and is not kept
        parse = None
        for case, extra in CASES.items():
            command = "test" if case.endswith("(test)") else "fit"
            args = [command, "-c", str(REPO / "experiments/baseline/demo.yaml"), "--data.init_args.root", str(root),
                    "--data.init_args.num_workers", "0", "--trainer.logger", "false",
                    *(a.replace("{work}", str(work)) for a in extra)]
            out, err = io.StringIO(), io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), without_early_check(case == CONTROL):
                code = run_reporting_errors(main, args)
            seconds = time.perf_counter() - start
            parse = seconds if case == PARSE else parse
            message = next((line for line in err.getvalue().splitlines() if line.startswith("affectlab: error:")), "")
            if repeat:
                rows.append({"case": case, "repeat": repeat, "seconds": round(seconds, 3),
                             "ratio": round(seconds / parse, 2), "exit": code, "message": message[:120]})
    path = REPO / "benchmarks" / "results" / "user_errors.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    def spread(values: list[float]) -> str:
        return (f"{statistics.median(values):5.2f} ({statistics.mean(values):.2f} ± "
                f"{statistics.stdev(values) if len(values) > 1 else 0:.2f})")

    print(f"median (mean ± std) over {repeats} rounds")
    print(f"{'case':30s} {'seconds':>20s} {'× parse of its round':>22s}  exit")
    for case in CASES:
        mine = [r for r in rows if r["case"] == case]
        print(f"{case:30s} {spread([r['seconds'] for r in mine]):>20s} {spread([r['ratio'] for r in mine]):>22s}  "
              f"{mine[0]['exit']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    main_(parser.parse_args().repeats)
