"""Every experiment YAML runs as shipped: parsed, printed, and fitted with fast_dev_run.

The test is parametrised over the folder, so a new config is covered the moment it is added. Each
DataModule gets a small sample in its real release layout (``datamodules/samples``); pretrained weights,
which cannot be downloaded here, are switched off.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from affectlab.datamodules.samples import write_sample
from affectlab.experiments.cli import _accepts as accepts
from affectlab.experiments.cli import composed, main

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
PRESETS = sorted((EXPERIMENTS / "defaults").glob("*.yaml"))
#: Parts (model/, data/, trainer/) and presets compose experiments; they are not runs on their own.
NOT_EXPERIMENTS = {"defaults", "sweeps", "slurm", "model", "data", "trainer"}
CONFIGS = sorted(p for p in EXPERIMENTS.rglob("*.yaml") if p.relative_to(EXPERIMENTS).parts[0] not in NOT_EXPERIMENTS)


def _class(path: str):
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


#: Small sizes so a fast_dev_run of a paper-sized config stays quick on a CPU.
SMALL_DATA = {"batch_size": 2, "image_size": 64, "num_workers": 0}


def overrides(config: Path, tmp_path: Path) -> list[str]:
    """CLI arguments that point ``config`` at generated data and switch off pretrained weights."""
    spec = composed(config)
    args = []
    data = spec.get("data") or {}
    if "class_path" in data:
        cls = _class(data["class_path"])
        sample = write_sample(cls, tmp_path / "data")
        small = {k: v for k, v in SMALL_DATA.items() if accepts(cls, k) and k not in sample}
        for key, value in {**small, **sample}.items():
            args += [f"--data.init_args.{key}", str(value)]
    model = spec.get("model") or {}
    if "class_path" in model and accepts(_class(model["class_path"]), "pretrained"):
        args += ["--model.init_args.pretrained", "false"]
    return args


def test_there_are_experiments():
    assert len(CONFIGS) >= 2, CONFIGS


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_experiment_runs_with_fast_dev_run(config: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["-c", str(config), *overrides(config, tmp_path),
            "--trainer.fast_dev_run", "2", "--trainer.accelerator", "cpu", "--trainer.devices", "1"]
    cli = main(["fit", *args])
    assert cli.trainer.state.finished, cli.trainer.state
    assert cli.trainer.global_step > 0 or not list(cli.model.parameters())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_experiment_prints_its_config(config: Path, tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "-c", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"] == composed(config)["model"]["class_path"]


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_compose_with_an_experiment(preset: Path, tmp_path: Path, monkeypatch):
    """Each preset parses on top of an experiment file (launching DDP is covered elsewhere)."""
    monkeypatch.chdir(tmp_path)
    demo = EXPERIMENTS / "baseline" / "demo.yaml"
    cli = main(["-c", str(demo), "-c", str(preset), *overrides(demo, tmp_path),
                "--trainer.devices", "1", "--trainer.strategy", "auto"], run=False)
    text = yaml.safe_load(preset.read_text())
    for key, value in (text.get("trainer") or {}).items():
        if key.endswith("+"):  # appended to the experiment's own list (callbacks+)
            tail = cli.config["trainer"][key[:-1]][-len(value):]
            assert [c["class_path"] for c in tail] == [c["class_path"] for c in value], key
            continue
        if key not in ("devices", "strategy", "logger") and value is not None:  # None: resolved by the CLI
            assert cli.config["trainer"][key] == value, key
