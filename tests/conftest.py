"""Shared fixtures: sample data in real layouts, an isolated runs folder, and CLI launchers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_runs(tmp_path, monkeypatch):
    """Every test writes its runs under its own tmp folder, offline, with no W&B network."""
    monkeypatch.setenv("AFFECTLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    import affectlab.experiments.cli as cli

    monkeypatch.setattr(cli, "RUNS", tmp_path / "runs")
    yield
    # A W&B run a test left open would be reused by the next test's logger (WandbLogger takes over
    # ``wandb.run``), which then logs into the previous test's folder.
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


@pytest.fixture(scope="session")
def fi_sample(tmp_path_factory) -> Path:
    """A small FI-layout sample set (8 classes × 12 images, 48 px), shared by the session."""
    from affectlab.datamodules.samples import write_sample

    return Path(write_sample("FI", tmp_path_factory.mktemp("fi_sample"), per_class=12, size=48)["root"])


@pytest.fixture(scope="module")
def one_thread_module():
    """Run a module's tests on one intra-op thread (tiny networks, where threads only add overhead)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that imports this checkout (not another install)."""
    env = dict(os.environ)
    # A W&B run earlier in this test process leaves WANDB_SERVICE pointing at its own wandb-core: a
    # child would log through it and exit before it has written the child's record. Each child
    # starts its own service, as a user's run does.
    env.pop("WANDB_SERVICE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("WANDB_MODE", "offline")
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 600, launcher: list[str] | None = None,
            **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m affectlab.experiments ARGS`` (or ``launcher + ARGS``) in a subprocess; fail with its output."""
    command = (launcher or [sys.executable, "-m", "affectlab.experiments"]) + args
    result = subprocess.run(command, cwd=cwd, env=subprocess_env(**env), capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
                             f"{result.stderr[-20000:]}")
    return result
