"""``affectlab`` answers --help, --version and ``sweep --help`` without torch, and lists every subcommand.

Each check runs a fresh interpreter and asserts on what it imported: the speed follows from not
importing torch or Lightning (``benchmarks/cli_startup.py`` measures the time itself).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import affectlab
from conftest import subprocess_env

PROBE = """
import json, sys
from affectlab.experiments.launcher import main
try:
    code = main({args!r})
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("torch", "lightning", "matplotlib", "sweeps", "wandb") if m in sys.modules)
print("PROBE" + json.dumps({{"code": code, "heavy": heavy}}))
"""


def probe(args: list[str]) -> tuple[dict, str]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], env=subprocess_env(),
                            capture_output=True, text=True, timeout=120)
    line = next(line for line in result.stdout.splitlines() if line.startswith("PROBE"))
    return json.loads(line[len("PROBE"):]), result.stdout + result.stderr


@pytest.mark.parametrize("args", [["--help"], ["sweep", "--help"], ["--version"], []])
def test_help_version_and_sweep_help_import_nothing_heavy(args):
    outcome, output = probe(args)
    assert outcome["heavy"] == [], outcome
    if args == ["--version"]:
        assert outcome["code"] == 0 and f"affectlab {affectlab.__version__}" in output
    elif args == ["--help"]:
        assert outcome["code"] == 0
        assert "affectlab: hierarchical visual emotion analysis" in output
        for sub in ("fit", "validate", "test", "predict", "sweep"):
            assert f"    {sub} " in output, sub
    elif args == []:
        assert outcome["code"] == 2 and "sweep" in output
    else:
        assert outcome["code"] == 0 and "usage: affectlab sweep" in output


def test_an_unknown_subcommand_is_one_error_line():
    outcome, output = probe(["fitt"])
    assert outcome["code"] == 2 and "unknown subcommand 'fitt'" in output and outcome["heavy"] == []


def test_the_console_script_is_the_launcher():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "affectlab"]
    assert script.value == "affectlab.experiments.launcher:console"
