"""Every shipped sweep file is a valid W&B sweep, and the trials it proposes are valid affectlab runs.

Written over the folder: a new file under ``experiments/sweeps/`` is checked without a new test.
A sweep whose experiment config (the command's ``-c`` file) is not in this checkout yet is skipped
with the missing file named; once the experiment lands, the check runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sweeps
import yaml

from affectlab.experiments import sweep
from affectlab.experiments.cli import main
from conftest import REPO

SWEEP_FILES = sorted((REPO / "experiments" / "sweeps").glob("*.yaml"))


def _id(path: Path) -> str:
    return path.stem


def _cli_args(command: list[str]) -> list[str]:
    """The arguments after ``-m affectlab.experiments`` of a rendered trial command."""
    index = next(i for i in range(len(command) - 1) if command[i] == "-m" and command[i + 1] == "affectlab.experiments")
    return command[index + 2:]


def _config_files(args: list[str]) -> list[Path]:
    files = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--config")]
    files += [a.split("=", 1)[1] for a in args if a.startswith("--config=")]
    return [REPO / f for f in files]


def _lookup(config: dict, dotted: str):
    """``a.b.c`` in a parsed config; a list (``trainer.callbacks``) is entered at its last item, as
    jsonargparse applies ``--trainer.callbacks.init_args.x`` to the last callback."""
    node = config
    for part in dotted.split("."):
        if isinstance(node, list):
            node = node[-1]
        node = node[part]
    return node


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def test_the_shipped_sweeps_are_there():
    assert {p.stem for p in SWEEP_FILES} >= {"baseline_demo", "mdan_ablation", "mdan_search_fi", "pruning_fashion"}


@pytest.mark.parametrize("path", SWEEP_FILES, ids=_id)
def test_sweep_file_validates_with_the_sweeps_engine(path):
    raw = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(raw) == []
    config = sweep.load_sweep(path)
    assert config["metric"]["goal"] in ("maximize", "minimize")
    assert "/" in config["metric"]["name"], "metric keys are stage/name, the keys the modules log"
    assert "${args}" in config["command"]
    assert sweeps.next_run(config, []) is not None
    for key, spec in config["parameters"].items():
        assert key in ("config", "seed_everything") or "." in key, f"{key} is not a dotted affectlab CLI key"
        if key == "config":  # row files of an ablation: they must exist and be YAML mappings
            for value in spec.get("values", [spec.get("value")]):
                assert isinstance(yaml.safe_load((REPO / value).read_text()), dict), value


@pytest.mark.parametrize("path", SWEEP_FILES, ids=_id)
def test_a_proposed_trial_is_accepted_by_the_cli(path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    config = sweep.load_sweep(path)
    params = {key: spec["value"] for key, spec in sweeps.next_run(config, []).config.items()}
    # A fold or seed sweep repeats the experiment given with the agent's --config: use the one its header shows.
    example = re.search(r"--config (\S+\.yaml)", path.read_text())
    base = ["-c", example[1]] if example else []
    args = _cli_args(sweep.trial_command(config, params, base))
    missing = [str(f.relative_to(REPO)) for f in _config_files(args) if not f.exists()]
    if missing:
        pytest.skip(f"the experiment this sweep tunes is not in this checkout yet: {', '.join(missing)}")
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in params.items():
        if key == "config":
            for leaf, expected in _leaves(yaml.safe_load((REPO / value).read_text())):
                assert _lookup(printed, leaf) == expected, leaf
        elif isinstance(value, float):
            assert _lookup(printed, key) == pytest.approx(value), key
        elif isinstance(value, dict) and "class_path" in value:  # a class: its settings, beside defaults
            got = _lookup(printed, key)
            assert got["class_path"] == value["class_path"], key
            for leaf, expected in _leaves(value.get("init_args") or {}):
                assert _lookup(got["init_args"], leaf) == expected, f"{key}.{leaf}"
        else:
            assert _lookup(printed, key) == value, key
