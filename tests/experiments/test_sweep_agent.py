"""The local sweep agent (``affectlab sweep``): trials, scores, resumption, failures, hyperband.

One test runs real trials of the baseline on the sample set; the others run a stand-in trial
(``sweep_stub_trial.py``) that keeps the agent's contract in a fraction of a second, so the
bookkeeping is specified without paying for training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from affectlab.experiments import sweep
from affectlab.experiments.cli import main
from conftest import REPO, subprocess_env

STUB = Path(__file__).with_name("sweep_stub_trial.py")


def write_sweep(folder: Path, parameters: dict, name: str = "stub", **extra) -> Path:
    """A sweep file whose command is the stand-in trial."""
    config = {"name": name, "method": "grid", "metric": {"name": "val/acc", "goal": "maximize"},
              "parameters": parameters, "command": ["${env}", "${interpreter}", str(STUB), "${args}"], **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_state(name: str) -> dict:
    return json.loads((sweep.sweeps_root() / name / sweep.STATE_FILE).read_text())


def test_three_trial_sweep_on_the_sample_set_prints_a_leaderboard(fi_sample, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    monkeypatch.setenv("WANDB_MODE", "disabled")  # the W&B service is not what is tested here
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # trials share 2 cores; more threads only spin
    main(["sweep", str(REPO / "experiments/sweeps/baseline_demo.yaml"), "--count", "3", "--poll", "0.2",
          "--data.init_args.root", str(fi_sample), "--data.init_args.num_workers", "0",
          "--data.init_args.batch_size", "8", "--data.init_args.image_size", "32",
          "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1", "--trainer.max_epochs", "1",
          "--trainer.enable_progress_bar", "false"])
    out = capsys.readouterr().out

    state = read_state("baseline_demo")
    trials = state["trials"]
    assert [t["state"] for t in trials] == ["finished"] * 3, [t.get("error") for t in trials]
    # The grid's first three points, in the engine's order.
    adamw = {"class_path": "torch.optim.AdamW", "init_args": {"weight_decay": 0.0001}}
    assert [t["params"] for t in trials] == [
        {"model.init_args.optimizer": adamw, "model.init_args.optimizer.init_args.lr": lr}
        for lr in (0.01, 0.003, 0.001)]
    for trial in trials:
        assert 0.0 <= trial["metric"] <= 1.0
        run_dir = Path(trial["run_dir"])
        run_config = yaml.safe_load((run_dir / "config.yaml").read_text())
        optimizer = run_config["model"]["init_args"]["optimizer"]
        assert optimizer["class_path"] == "torch.optim.AdamW"
        assert optimizer["init_args"]["lr"] == trial["params"]["model.init_args.optimizer.init_args.lr"]
        assert run_config["trainer"]["max_epochs"] == 1  # the extra arguments reach every trial
        assert list((run_dir / "checkpoints").glob("best-*.ckpt"))
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| rank | trial | state | val/acc (best) | last | epochs | model.optimizer | model.optimizer.lr")
    assert len(table) == 1 + 3
    assert (sweep.sweeps_root() / "baseline_demo" / "leaderboard.md").read_text().count("trial-") == 3


def test_a_killed_sweep_resumes_without_repeating_finished_trials(tmp_path, monkeypatch):
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("STUB_STARTS", str(starts))
    file = write_sweep(tmp_path, {"score": {"values": [0.1, 0.2, 0.3]}, "sleep": {"value": 0.5}})
    command = [sys.executable, "-m", "affectlab.experiments.sweep", str(file), "--count", "3", "--poll", "0.05"]
    agent = subprocess.Popen(command, env=subprocess_env(), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill while the second trial is running
            try:
                states = [t["state"] for t in read_state("stub")["trials"]]
            except (OSError, ValueError):
                states = []
            started = starts.read_text().split() if starts.exists() else []
            if states[:2] == ["finished", "running"] and "trial-001" in started:
                break
            assert agent.poll() is None, "the agent ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the second trial never started")
    finally:
        os.killpg(agent.pid, signal.SIGKILL)  # agent and trial, as a scheduler or Ctrl-\ would
        agent.wait()
    finished = read_state("stub")["trials"][0]
    assert [t["state"] for t in read_state("stub")["trials"]] == ["finished", "running"]

    main(["sweep", str(file), "--count", "3", "--poll", "0.05"])  # the same command resumes

    trials = read_state("stub")["trials"]
    assert [t["state"] for t in trials] == ["finished"] * 3
    assert trials[0] == finished  # untouched
    assert [t["params"]["score"] for t in trials] == [0.1, 0.2, 0.3]
    assert [t["attempts"] for t in trials] == [1, 2, 1]
    assert starts.read_text().split() == ["trial-000", "trial-001", "trial-001", "trial-002"]
    assert [t["metric"] for t in trials] == [0.1, 0.2, 0.3]


def test_a_crashing_trial_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    file = write_sweep(tmp_path, {"crash": {"values": [True, False]}, "score": {"value": 0.7}})
    main(["sweep", str(file), "--poll", "0.05"])

    failed, finished = read_state("stub")["trials"]
    assert failed["state"] == "failed" and failed["exitcode"] == 3 and failed["metric"] is None
    assert "crashing as asked" in failed["error"]
    assert finished["state"] == "finished" and finished["metric"] == pytest.approx(0.7)
    out = capsys.readouterr().out
    assert "| 1 | trial-001 | finished | 0.7000 |" in out and "| - | trial-000 | failed | - |" in out


def test_a_sweep_where_every_trial_fails_exits_non_zero(tmp_path):
    file = write_sweep(tmp_path, {"crash": {"value": True}})
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(file), "--poll", "0.05"])
    assert exit_info.value.code == 1


def test_trials_get_the_sweep_name_group_and_extra_arguments(tmp_path):
    file = write_sweep(tmp_path, {"score": {"value": 0.5}}, name="grouped")
    main(["sweep", str(file), "--poll", "0.05", "--trainer.max_epochs", "2", "--", "-c", "extra.yaml"])

    trial = read_state("grouped")["trials"][0]
    seen = json.loads((Path(trial["run_dir"]) / "stub.json").read_text())
    assert seen["group"] == "grouped"  # WANDB_RUN_GROUP: W&B groups the trials by sweep
    argv = seen["argv"]
    assert argv[:1] == ["--score=0.5"]
    assert argv[argv.index("--name") + 1] == "grouped"
    assert "--trainer.callbacks+=affectlab.callbacks.metrics_file.MetricsFile" in argv
    assert argv[-4:] == ["--trainer.max_epochs", "2", "-c", "extra.yaml"]  # last, so they win


def test_hyperband_stops_a_trial_that_falls_behind(tmp_path):
    file = write_sweep(tmp_path, {"score": {"values": [0.9, 0.1]}, "epochs": {"value": 6},
                                  "sleep": {"value": 0.3}},
                       early_terminate={"type": "hyperband", "min_iter": 1, "eta": 3})
    main(["sweep", str(file), "--poll", "0.05"])

    good, bad = read_state("stub")["trials"]
    assert good["state"] == "finished" and len(good["history"]) == 6
    assert bad["state"] == "stopped" and len(bad["history"]) < 6
    assert bad["metric"] == pytest.approx(0.1)


def test_random_search_needs_a_count(tmp_path, capsys):
    file = write_sweep(tmp_path, {"score": {"min": 0.0, "max": 1.0}}, method="random")
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(file)])
    assert exit_info.value.code == 2
    assert "--count" in capsys.readouterr().err


def test_trial_command_renders_parameters_as_wandb_agent_does():
    config = {"command": ["${env}", "${interpreter}", "-m", "affectlab.experiments", "fit", "${args}"]}
    command = sweep.trial_command(config, {"model.init_args.mcca": False, "model.init_args.level_weights": [0.5, 1.0],
                                           "model.init_args.lr": 0.001})
    assert command[1:] == [sys.executable, "-m", "affectlab.experiments", "fit", "--model.init_args.mcca=False",
                           "--model.init_args.level_weights=[0.5, 1.0]", "--model.init_args.lr=0.001"]


def test_sigterm_ends_the_running_trial_and_leaves_it_to_be_rerun(tmp_path, monkeypatch):
    starts = tmp_path / "starts.txt"
    monkeypatch.setenv("STUB_STARTS", str(starts))
    file = write_sweep(tmp_path, {"score": {"value": 0.5}, "sleep": {"value": 5.0}})
    agent = subprocess.Popen([sys.executable, "-m", "affectlab.experiments.sweep", str(file), "--poll", "0.05"],
                             env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (starts.exists() and starts.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.send_signal(signal.SIGTERM)  # what SLURM sends at the time limit
    _, err = agent.communicate(timeout=60)

    assert agent.returncode == 130, err
    assert "run the same command to resume" in err
    trial = read_state("stub")["trials"][0]
    assert trial["state"] == "interrupted" and not (sweep.sweeps_root() / "stub" / "agent.pid").exists()


def test_an_invalid_sweep_file_is_refused_with_the_engine_s_reason(tmp_path):
    file = write_sweep(tmp_path, {"score": {"values": [0.1]}}, metric={"name": "val/acc", "goal": "maximise"})
    with pytest.raises(sweep.SweepError, match="maximise"):
        sweep.load_sweep(file)
    without_args = write_sweep(tmp_path, {"score": {"values": [0.1]}}, name="no_args", command=["python", "x.py"])
    with pytest.raises(sweep.SweepError, match="never passes the parameters"):
        sweep.load_sweep(without_args)
