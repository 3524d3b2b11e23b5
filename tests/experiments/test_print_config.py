"""``--print_config`` prints the values the run will use, and the run uses exactly those.

No environment variable carries state from the parser to the run: the run folder, precision,
checkpoint folder and logger names are resolved while parsing and recorded in the config.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from affectlab.experiments.cli import main
from conftest import REPO

DEMO = str(REPO / "experiments" / "mdan" / "demo.yaml")


def test_print_config_shows_the_resolved_values_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    environ = dict(os.environ)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", DEMO, "--trainer.accelerator", "cpu", "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    run_dir = printed["run_dir"]
    assert run_dir and Path(run_dir).parent == tmp_path / "runs" / "mdan-demo"
    assert printed["trainer"]["precision"] == "32-true"
    assert printed["trainer"]["default_root_dir"] == run_dir
    assert printed["checkpoint"]["dirpath"] == str(Path(run_dir) / "checkpoints")
    logger = printed["trainer"]["logger"]["init_args"]
    assert logger["save_dir"] == run_dir and logger["name"] == f"mdan-demo/{Path(run_dir).name}"
    assert logger["group"] == "mdan-demo" and logger["job_type"] == "fit" and logger["tags"] == ["mdan", "fi"]
    assert printed["compose"] is None  # the parts were loaded; a saved config needs none of them
    assert not (tmp_path / "runs").exists()  # printing creates no folder
    assert dict(os.environ) == environ  # and hands nothing on through the environment


def test_the_run_uses_what_the_parser_resolved(fi_sample, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = main(["-c", DEMO, "--data.init_args.root", str(fi_sample), "--trainer.accelerator", "cpu",
                "--trainer.logger", "false"], run=False)
    config = cli.config
    assert cli.trainer.default_root_dir == config["run_dir"] == config["trainer"]["default_root_dir"]
    assert cli.trainer.checkpoint_callback.dirpath == config["checkpoint"]["dirpath"]
    assert cli.trainer.precision == config["trainer"]["precision"] == "32-true"
    assert Path(config["run_dir"]).is_dir()


def test_parts_compose_on_the_command_line_like_the_experiment_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    printed = []
    for args in (["-c", DEMO],
                 ["-c", str(REPO / "experiments/model/mdan_demo.yaml"), "-c", str(REPO / "experiments/data/sample_fi.yaml"),
                  "-c", str(REPO / "experiments/trainer/demo.yaml")]):
        with pytest.raises(SystemExit):
            main(["fit", *args, "--print_config"])
        printed.append(yaml.safe_load(capsys.readouterr().out))
    whole, parts = printed
    assert whole["model"] == parts["model"]
    assert whole["data"] == parts["data"]
    assert parts["trainer"]["max_epochs"] == 8 and whole["trainer"]["max_epochs"] == 6  # the file's own keys win
    assert Path(parts["run_dir"]).parent.name == "mdan_demo-sample_fi"
