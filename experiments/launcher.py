"""The ``affectlab`` command: decides what was asked before importing anything heavy.

``affectlab --help``, ``--version`` and ``affectlab sweep ...`` answer without torch or Lightning
(``benchmarks/cli_startup.py`` measures it); ``fit``, ``validate``, ``test`` and ``predict`` hand
the arguments to the LightningCLI in ``experiments/cli.py``.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

import affectlab
from affectlab.experiments import DESCRIPTION

#: The subcommands and what each does, in the order ``--help`` lists them.
SUBCOMMANDS = {
    "fit": "train a model: runs/<name>/<run>/ holds config.yaml, checkpoints/ and the W&B run",
    "validate": "evaluate a checkpoint on the validation split (outputs beside the run's folder)",
    "test": "evaluate a checkpoint on the test split (config, metrics beside the run's folder)",
    "predict": "write predictions.csv for a checkpoint (beside the run's folder)",
    "sweep": "run a W&B sweep file on this machine, no W&B server needed",
    "dashboard": "the W&B workspaces of affectlab's experiments (experiments/dashboard.py)",
}

EPILOG = """examples:
  affectlab fit -c experiments/mdan/demo.yaml
  affectlab fit -c experiments/model/mdan.yaml -c experiments/data/fi.yaml --data.root /path/to/FI
  affectlab test -c experiments/mdan/fi.yaml --ckpt_path runs/mdan-fi/<run>/checkpoints/last.ckpt
  affectlab sweep experiments/sweeps/baseline_demo.yaml --count 4

`affectlab SUBCOMMAND --help` lists a subcommand's options."""


def parser() -> argparse.ArgumentParser:
    """The top-level parser: description, version and the subcommand list (options live in each)."""
    top = argparse.ArgumentParser(prog="affectlab", description=textwrap.fill(DESCRIPTION, 100), epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"affectlab {affectlab.__version__}")
    sub = top.add_subparsers(title="subcommands", metavar="{" + ",".join(SUBCOMMANDS) + "}")
    for name, text in SUBCOMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return top


def main(args: list[str] | None = None) -> int | None:
    """Dispatch ``args`` (default: the command line); returns an exit code for ``sweep``."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] not in SUBCOMMANDS:
        if not argv or argv[0] in ("-h", "--help", "--version"):
            top = parser()
            if not argv:
                top.print_help()
                return 2
            top.parse_args(argv[:1])  # prints help or the version and exits
        top = parser()
        top.error(f"unknown subcommand {argv[0]!r}; choose one of {', '.join(SUBCOMMANDS)}")
    if argv[0] == "sweep":
        from affectlab.experiments.sweep import main as sweep_main

        return sweep_main(argv[1:])
    if argv[0] == "dashboard":
        from affectlab.experiments.dashboard import main as dashboard_main

        return dashboard_main(argv[1:])
    from affectlab.experiments.cli import main as cli_main

    cli_main(args)  # None: the command line itself, which DDP's relaunched ranks see too
    return None


def console() -> None:
    """Entry point of the ``affectlab`` console script and ``python -m affectlab.experiments``.

    A user error ends the process with one message and a non-zero status; ``AFFECTLAB_DEBUG=1``
    shows its traceback (``experiments/errors.py``).
    """
    from affectlab.experiments.errors import run_reporting_errors

    code = run_reporting_errors(main)
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    console()
