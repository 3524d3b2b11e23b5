"""``affectlab sweep FILE --count N``: run a W&B sweep file on this machine, no W&B server needed.

The sweep files under ``experiments/sweeps/`` are W&B's format and work unchanged with
``wandb sweep FILE`` + ``wandb agent ID``. This agent runs the same file offline:

- trials are proposed by W&B's open-source ``sweeps`` engine (``sweeps.next_run``; grid, random
  and bayes) and stopped early by it (``sweeps.stop_runs``, hyperband) — no search is written here;
- each trial is the file's ``command`` with W&B's macros rendered exactly as ``wandb agent`` does
  (``${args}`` becomes ``--model.init_args.lr=0.01 ...``), plus ``--name <sweep>``, the
  ``MetricsFile`` callback and any extra arguments given after FILE, run as a subprocess in
  ``runs/sweeps/<sweep>/<trial>/`` (its log in ``trial.log``);
- the trial's score is read from the ``metrics.json`` that ``callbacks.metrics_file.MetricsFile``
  writes after every validation: the best value of the sweep's metric over the epochs (what the
  engine's ``metric_extremum`` and the best checkpoint use), its history feeding hyperband;
- everything is kept in ``runs/sweeps/<sweep>/sweep.json``, rewritten after every change, so a
  killed agent resumes with the same command: finished and failed trials are kept, a trial that
  was running is rerun with the same parameters, then new trials are proposed up to ``--count``;
- trials share ``WANDB_RUN_GROUP=<sweep>``, so W&B groups them; a leaderboard is printed at the end
  and written to ``leaderboard.md``.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from affectlab.experiments.errors import UserError

STATE_FILE = "sweep.json"
# The contract with a trial, passed to its MetricsFile callback on the command line: the callback
# writes METRICS_FILE into the run folder after every validation and stops when STOP_FILE appears.
METRICS_CALLBACK = "affectlab.callbacks.metrics_file.MetricsFile"
METRICS_FILE = "metrics.json"
STOP_FILE = "STOP"
ARG_MACROS = ("${args}", "${args_no_hyphens}", "${args_no_boolean_flags}", "${args_no_equals}", "${args_json}")
RERUN = ("running", "interrupted")  # states a resumed agent runs again
# How the agent's trial states read to the engine (a hyperband-stopped trial is a finished one).
ENGINE_STATE = {"finished": "finished", "stopped": "finished", "failed": "failed", "running": "running"}


def _engine() -> Any:
    """The ``sweeps`` engine, imported when a sweep runs (it takes seconds; ``--help`` needs none of it)."""
    with warnings.catch_warnings():  # the engine's pydantic models warn about renamed v1 options
        warnings.simplefilter("ignore")
        import sweeps
    return sweeps


class SweepError(UserError, ValueError):
    """A sweep file or sweep folder the agent cannot work with; the message says which and why."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sweeps_root() -> Path:
    """``runs/sweeps``, or ``$AFFECTLAB_RUNS/sweeps`` as for the CLI's run folders (read at call time).

    The agent imports neither torch nor Lightning: it only starts processes and reads JSON.
    """
    return Path(os.environ.get("AFFECTLAB_RUNS", "runs")) / "sweeps"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temp file + rename): a sweep killed mid-write keeps its previous state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and validate a W&B sweep file with the engine's own schema; defaults are filled in."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {path} does not exist")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SweepError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(config, dict):
        raise SweepError(f"{path} is not a W&B sweep file (expected a mapping with method/metric/parameters)")
    sweeps = _engine()
    violations = sweeps.schema_violations_from_proposed_config(config)
    if violations:
        raise SweepError(f"{path} is not a valid W&B sweep: " + "; ".join(violations))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        filled = dict(sweeps.SweepConfig(config))
    if "metric" not in filled:
        raise SweepError(f"{path} has no `metric:` section; the agent needs the key to rank trials by")
    command = [str(c) for c in filled.get("command") or []]
    if not command:
        raise SweepError(f"{path} has no `command:`; write the affectlab command with ${{args}} in it")
    if not any(token in ARG_MACROS for token in command):
        raise SweepError(f"{path}: the command never passes the parameters (one of {', '.join(ARG_MACROS)})")
    return filled


def trial_command(config: dict[str, Any], params: dict[str, Any], base: list[str] | None = None) -> list[str]:
    """The sweep's ``command`` with W&B's macros filled in for ``params``, as ``wandb agent`` renders them.

    W&B's own helpers format the arguments (``${args}`` → ``--key=value`` with Python's ``str``) and
    expand ``${envvar:NAME}``; ``${interpreter}`` is this interpreter so trials use the same environment.
    ``base`` (the agent's ``--config`` files as ``-c FILE``) goes just before the parameters, so the
    parameters win over the experiment file they vary (a fold, a seed).
    """
    from wandb.sdk.launch.sweeps import utils as wandb_sweep_utils

    command = wandb_sweep_utils.create_sweep_command([str(c) for c in config["command"]])
    macros: dict[str, list[str]] = wandb_sweep_utils.create_sweep_command_args(
        {"args": {key: {"value": value} for key, value in params.items()}})
    macros["interpreter"] = [sys.executable]
    macros["env"] = ["/usr/bin/env"] if os.path.exists("/usr/bin/env") else []
    macros["program"] = [str(config["program"])] if config.get("program") else []
    rendered: list[str] = []
    for token in command:
        if token.startswith("${") and token.endswith("}"):
            if token[2:-1] not in macros:
                raise SweepError(f"the local agent cannot render the macro {token} (use ${{args}})")
            if token in ARG_MACROS:
                rendered += list(base or [])
            rendered += [str(v) for v in macros[token[2:-1]]]
        else:
            rendered.append(token)
    return rendered


def write_params_config(path: Path, params: dict[str, Any]) -> Path:
    """The trial's parameters as a W&B config file, nested at the dots (``model.init_args.lr``).

    Handed to the trial as ``WANDB_SWEEP_PARAM_PATH``, the variable ``wandb agent`` sets too: W&B
    merges the file into the run's config, so a synced trial carries the keys the sweep varied
    (what the sweep's workspace, ``affectlab dashboard --method sweep FILE``, plots).
    """
    nested: dict[str, Any] = {}
    for key, value in copy.deepcopy(params).items():  # a class-valued parameter gets nested keys added below
        head, *rest = key.split(".")
        node = nested.setdefault(head, {"value": {}} if rest else {"value": value})
        if rest:
            if not isinstance(node["value"], dict):
                node["value"] = {}
            leaf = node["value"]
            for part in rest[:-1]:
                leaf = leaf.setdefault(part, {})
            leaf[rest[-1]] = value
    path.write_text(yaml.safe_dump({"wandb_version": 1, **nested}, sort_keys=True))
    return path


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """A trial's ``metrics.json`` (``{}`` while it has not validated yet or wrote nothing)."""
    try:
        return json.loads((run_dir / METRICS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def engine_run(trial: dict[str, Any]) -> Any:
    """The trial as the ``sweeps`` engine sees a W&B run: config, state, history and summary."""
    # By alias: the engine's pydantic-v1-style models ignore field names under pydantic 2.
    sweeps = _engine()
    state = sweeps.RunState(ENGINE_STATE[trial["state"]]) if trial["state"] in ENGINE_STATE else sweeps.RunState.killed
    return sweeps.SweepRun(name=trial["name"], state=state,
                    config={key: {"value": value} for key, value in trial["params"].items()},
                    sampledHistory=trial.get("history") or [], summaryMetrics=trial.get("summary") or {},
                    stopped=trial["state"] == "stopped")


def trial_score(trial: dict[str, Any], metric: dict[str, Any]) -> float | None:
    """The best value of the sweep's metric over the trial's epochs and final summary (None if never logged)."""
    try:
        value = engine_run(trial).metric_extremum(metric["name"], kind=metric.get("goal", "minimize"))
    except (ValueError, KeyError):
        return None
    return float(value)


def _short(key: str) -> str:
    """``model.init_args.lr`` → ``model.lr``: the leaderboard's column names."""
    return key.replace(".init_args.", ".")


def _cell(value: Any) -> str:
    """A parameter as the leaderboard shows it: a class (``class_path``/``init_args``) by its name and settings."""
    if isinstance(value, dict) and "class_path" in value:
        settings = ", ".join(f"{k}={v}" for k, v in (value.get("init_args") or {}).items())
        return f"{str(value['class_path']).rsplit('.', 1)[-1]}({settings})"
    return str(value)


def _last(trial: dict[str, Any], name: str) -> float | None:
    """The metric's value when the trial ended (W&B's summary value), e.g. after the last pruning step."""
    if name in (trial.get("summary") or {}):
        return float(trial["summary"][name])
    values = [entry[name] for entry in trial.get("history") or [] if name in entry]
    return float(values[-1]) if values else None


def leaderboard(state: dict[str, Any]) -> str:
    """A markdown table of the trials, best first by the sweep's metric and goal."""
    metric = state["config"]["metric"]
    maximize = metric.get("goal", "minimize") == "maximize"
    trials = state["trials"]
    keys = sorted({key for trial in trials for key in trial["params"]})
    scored = sorted((t for t in trials if t.get("metric") is not None),
                    key=lambda t: -t["metric"] if maximize else t["metric"])
    rows = scored + [t for t in trials if t.get("metric") is None]
    header = ["rank", "trial", "state", f"{metric['name']} (best)", "last", "epochs", *(_short(k) for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, trial in enumerate(rows, 1):
        value, last = trial.get("metric"), _last(trial, metric["name"])
        cells = [str(rank) if value is not None else "-", trial["name"], trial["state"],
                 f"{value:.4f}" if value is not None else "-", f"{last:.4f}" if last is not None else "-",
                 str(len(trial.get("history") or [])), *(_cell(trial["params"].get(k, "")) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


AGGREGATE_KEY = re.compile(r"^test/acc_l(\d+)(?:_(global|local|fused))?$")
BRANCHES = ("reported", "global", "local", "fused")


def aggregate(state: dict[str, Any]) -> tuple[str, list[list[Any]]]:
    """Mean ± std over the finished trials (folds or seeds) per level and per branch.

    Reads each trial's ``test/*`` metrics, which trials run with ``--test_after_fit`` record (the
    fold and seed sweeps); a search over settings has none and gets no aggregate. Returns the
    markdown table and its rows ``[stage, level, branch, mean, std, n]`` (also the violation rate,
    as level ``-``). The standard deviation is the sample one (ddof 1).
    """
    import statistics

    done = [t for t in state["trials"] if t["state"] in ("finished", "stopped")]
    stage = "test"
    if not any(t.get("test") for t in done):
        return "", []
    values: dict[tuple[str, str], list[float]] = {}
    for trial in done:
        metrics = trial.get("test")
        for key, value in (metrics or {}).items():
            match = AGGREGATE_KEY.match(key)
            if match:
                values.setdefault((f"l{match[1]}", match[2] or "reported"), []).append(float(value))
            elif key == f"{stage}/violation_rate":
                values.setdefault(("-", "violation rate"), []).append(float(value))
    rows = []
    for (level, branch), vals in sorted(values.items(), key=lambda kv: (kv[0][0], BRANCHES.index(kv[0][1])
                                                                        if kv[0][1] in BRANCHES else 9)):
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        rows.append([stage, level, branch, statistics.fmean(vals), std, len(vals)])
    levels = sorted({r[1] for r in rows if r[1] != "-"})
    header = ["level", *BRANCHES]
    lines = [f"{stage} accuracy over {len(done)} trial(s) ({', '.join(t['name'] for t in done)}): mean ± std",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cell = {(r[1], r[2]): f"{r[3]:.4f} ± {r[4]:.4f}" for r in rows}
    for level in levels:
        lines.append("| " + " | ".join([level, *(cell.get((level, b), "-") for b in BRANCHES)]) + " |")
    if ("-", "violation rate") in cell:
        lines += ["", f"{stage} violation rate: {cell[('-', 'violation rate')]}"]
    return "\n".join(lines), rows


def log_aggregate(state: dict[str, Any], folder: Path, rows: list[list[Any]]) -> None:
    """The aggregate table as a W&B run of the sweep's group (offline unless WANDB_MODE says online)."""
    if not rows:
        return
    try:
        import wandb

        run = wandb.init(project=state["config"].get("project") or "affectlab", group=state["name"],
                         job_type="aggregate", name=f"{state['name']}-aggregate", dir=str(folder),
                         mode=os.environ.get("WANDB_MODE", "offline"), reinit="finish_previous")
        run.log({"aggregate": wandb.Table(columns=["stage", "level", "branch", "mean", "std", "n"], data=rows)})
        run.summary.update({f"{r[0]}/{r[1]}_{r[2]}/mean": r[3] for r in rows})
        run.finish()
    except Exception as error:  # W&B is a mirror: the table is already in aggregate.md
        print(f"[sweep {state['name']}] aggregate not logged to W&B: {error}", flush=True)


def _die_with_parent() -> None:
    """Child side: get SIGTERM if the agent dies (Linux), so no trial outlives a killed sweep."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalAgent:
    """Runs one sweep folder: proposes, runs, scores and records trials until the count is reached.

    Args:
        file: the W&B sweep file.
        count: how many trials the sweep holds in all (finished, stopped and failed ones count);
            rerunning the same command after an interruption completes the rest. Default: the
            whole grid for ``method: grid``; required for random and bayes.
        name: the sweep's folder and W&B group (default: the file's ``name:``, else its stem).
        extra_args: CLI arguments appended to every trial (override the sweep's values).
        base_configs: experiment files every trial starts from (``-c FILE`` before the sweep's
            parameters, which therefore win): the config a fold or seed sweep repeats.
        fresh: discard an existing sweep folder of the same name instead of resuming it.
        poll: seconds between looks at a running trial's metrics (early termination).
    """

    def __init__(self, file: str | Path, count: int | None = None, name: str | None = None,
                 extra_args: list[str] | None = None, fresh: bool = False, poll: float = 1.0,
                 base_configs: list[str] | None = None) -> None:
        self.file = Path(file)
        self.base = [arg for config in base_configs or [] for arg in ("-c", str(config))]
        self.config = load_sweep(self.file)
        if count is None and self.config["method"] != "grid":
            raise SweepError(f"method {self.config['method']} never runs out of trials: give --count N")
        self.count = count
        self.name = name or self.config.get("name") or self.file.stem
        self.extra_args = list(extra_args or [])
        self.poll = poll
        self.folder = sweeps_root() / self.name
        if fresh and self.folder.exists():
            shutil.rmtree(self.folder)
        self.state = self._load_state()

    # ---- state -------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        path = self.folder / STATE_FILE
        if not path.exists():
            return {"name": self.name, "file": str(self.file), "config": self.config, "created": _now(),
                    "trials": []}
        state = json.loads(path.read_text())
        if state["config"].get("parameters") != self.config.get("parameters") or \
                state["config"].get("method") != self.config.get("method"):
            raise SweepError(f"{self.folder} holds a sweep with other parameters or method than {self.file}; "
                             "resume with the same file, or pass --name NEW (or --fresh to discard it)")
        state["config"] = self.config  # metric, early termination and command may be edited between resumes
        return state

    def save(self) -> None:
        write_json(self.folder / STATE_FILE, self.state)

    @property
    def metric(self) -> dict[str, Any]:
        return self.config["metric"]

    def _target_reached(self) -> bool:
        target = self.metric.get("target")
        if target is None:
            return False
        values = [t["metric"] for t in self.state["trials"] if t.get("metric") is not None]
        if self.metric.get("goal") == "maximize":
            return any(v >= target for v in values)
        return any(v <= target for v in values)

    # ---- trials ------------------------------------------------------------------------------
    def _propose(self) -> dict[str, Any] | None:
        """The engine's next trial given every recorded one, or None when the grid is exhausted."""
        runs = [engine_run(t) for t in self.state["trials"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proposal = _engine().next_run(self.config, runs)
        if proposal is None:
            return None
        trial = {"name": f"trial-{len(self.state['trials']):03d}", "state": "pending", "attempts": 0,
                 "params": {key: spec["value"] for key, spec in proposal.config.items()}}
        self.state["trials"].append(trial)
        return trial

    def _should_stop(self, trial: dict[str, Any]) -> bool:
        """Hyperband (``sweeps.stop_runs``) over every trial's history with this one running."""
        if "early_terminate" not in self.config:
            return False
        runs = [engine_run(t) for t in self.state["trials"] if t is not trial and t["state"] in ENGINE_STATE]
        runs.append(engine_run({**trial, "state": "running"}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stopped = _engine().stop_runs(self.config, runs)
        return any(run.name == trial["name"] for run in stopped)

    def run_trial(self, trial: dict[str, Any]) -> None:
        """Run one trial to its end, polling its metrics for early termination; record the outcome."""
        run_dir = self.folder / trial["name"]
        shutil.rmtree(run_dir, ignore_errors=True)  # what an interrupted attempt left behind
        run_dir.mkdir(parents=True, exist_ok=True)
        command = trial_command(self.config, trial["params"], self.base)
        command += ["--name", self.name, f"--trainer.callbacks+={METRICS_CALLBACK}",
                    f"--trainer.callbacks.init_args.filename={METRICS_FILE}",
                    f"--trainer.callbacks.init_args.stop_file={STOP_FILE}",
                    f"--trainer.default_root_dir={run_dir.resolve()}", *self.extra_args]
        params_file = write_params_config(run_dir / "sweep_params.yaml", trial["params"])
        env = dict(os.environ, WANDB_RUN_GROUP=self.name,
                   WANDB_JOB_TYPE="sweep", WANDB_SWEEP_PARAM_PATH=str(params_file.resolve()))
        env.setdefault("WANDB_MODE", "offline")
        trial.update(state="running", command=command, run_dir=str(run_dir), started=_now(), ended=None,
                     exitcode=None, history=[], summary={}, metric=None, error=None,
                     attempts=trial.get("attempts", 0) + 1)
        self.save()
        start = time.monotonic()
        with open(run_dir / "trial.log", "w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            try:
                stop_requested, seen = False, 0
                while process.poll() is None:
                    time.sleep(self.poll)
                    history = read_metrics(run_dir).get("history") or []
                    if len(history) != seen and not stop_requested:
                        seen = len(history)
                        trial["history"] = history
                        if self._should_stop(trial):
                            (run_dir / STOP_FILE).touch()  # MetricsFile ends the fit after this epoch
                            stop_requested = True
                            print(f"[sweep {self.name}] {trial['name']}: hyperband stops it after "
                                  f"{seen} epoch(s)", flush=True)
            except BaseException:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                trial.update(state="interrupted", ended=_now())
                self.save()
                raise
        metrics = read_metrics(run_dir)
        trial.update(exitcode=process.returncode, ended=_now(), seconds=round(time.monotonic() - start, 1),
                     history=metrics.get("history") or [], summary=metrics.get("final") or {},
                     test=metrics.get("test") or {},
                     best_checkpoint=(metrics.get("best") or {}).get("path"))
        if process.returncode == 0:
            trial["state"] = "stopped" if stop_requested else "finished"
        else:
            trial["state"] = "failed"
            lines = (run_dir / "trial.log").read_text(errors="replace").strip().splitlines()
            trial["error"] = "\n".join(lines[-15:])
        trial["metric"] = trial_score(trial, self.metric)
        self.save()

    def _describe(self, trial: dict[str, Any]) -> str:
        params = " ".join(f"{_short(k)}={_cell(v)}" for k, v in trial["params"].items())
        return f"[sweep {self.name}] {trial['name']}: {params}"

    def _report(self, trial: dict[str, Any]) -> None:
        value = trial.get("metric")
        score = f"{self.metric['name']}={value:.4f}" if value is not None else f"no {self.metric['name']}"
        note = f" (exit {trial['exitcode']}, see {trial['run_dir']}/trial.log)" if trial["state"] == "failed" else ""
        print(f"[sweep {self.name}] {trial['name']} {trial['state']}: {score}, "
              f"{trial.get('seconds', 0):.0f} s{note}", flush=True)

    def run(self) -> dict[str, Any]:
        """Rerun interrupted trials, then propose and run new ones; print the leaderboard."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with _AgentLock(self.folder):
            self.save()
            for trial in [t for t in self.state["trials"] if t["state"] in RERUN]:
                print(self._describe(trial) + " (rerun: it was interrupted)", flush=True)
                self.run_trial(trial)
                self._report(trial)
            while not self._target_reached():
                if self.count is not None and len(self.state["trials"]) >= self.count:
                    break
                trial = self._propose()
                if trial is None:
                    print(f"[sweep {self.name}] the grid is exhausted", flush=True)
                    break
                print(self._describe(trial), flush=True)
                self.run_trial(trial)
                self._report(trial)
        table = leaderboard(self.state)
        (self.folder / "leaderboard.md").write_text(table + "\n")
        print(f"\nSweep {self.name} ({self.config['method']}, {self.metric.get('goal')} {self.metric['name']}), "
              f"state in {self.folder / STATE_FILE}:\n{table}", flush=True)
        summary, rows = aggregate(self.state)
        if rows:
            (self.folder / "aggregate.md").write_text(summary + "\n")
            print(f"\n{summary}\n(in {self.folder / 'aggregate.md'})", flush=True)
            log_aggregate(self.state, self.folder, rows)
        return self.state


class _AgentLock:
    """One agent per sweep folder: a second one would propose the same grid points twice."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "agent.pid"

    def __enter__(self) -> _AgentLock:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip())
                os.kill(pid, 0)
            except (ValueError, ProcessLookupError, PermissionError):
                pass  # a stale lock of a killed agent
            else:
                if pid != os.getpid():
                    raise SweepError(f"another agent (pid {pid}) is running the sweep in {self.path.parent}")
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """``affectlab sweep FILE [--count N] [--name NAME] [--fresh] [TRIAL ARGS...]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="affectlab sweep", allow_abbrev=False,
        description="Run a W&B sweep file locally (no W&B server): trials are proposed by the `sweeps` "
                    "engine and run as `python -m affectlab.experiments ...`; state in runs/sweeps/<name>/. "
                    "Arguments after FILE that are not options of this command (or everything after --) "
                    "are appended to every trial, e.g. --trainer.max_epochs 2.")
    parser.add_argument("file", help="a W&B sweep YAML (experiments/sweeps/*.yaml)")
    parser.add_argument("--count", type=int, default=None,
                        help="trials the sweep holds in all (default: the whole grid; required for random/bayes)")
    parser.add_argument("--name", default=None, help="sweep folder and W&B group (default: the file's name)")
    parser.add_argument("--fresh", action="store_true", help="discard a previous sweep of this name")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at a running trial")
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="experiment file every trial starts from, before the sweep's parameters "
                             "(repeatable): the config a fold or seed sweep repeats")
    argv = list(sys.argv[1:] if argv is None else argv)
    after = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args, extra = parser.parse_known_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # a scheduler's SIGTERM ends the trial, saves state
    try:
        agent = LocalAgent(args.file, count=args.count, name=args.name, extra_args=extra + after,
                           fresh=args.fresh, poll=args.poll, base_configs=args.config)
        state = agent.run()
    except SweepError as error:
        print(f"affectlab sweep: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("affectlab sweep: interrupted; run the same command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    trials = state["trials"]
    # Like `wandb agent`, a failed trial does not fail the sweep; a sweep where nothing ran does.
    return 1 if trials and all(t["state"] == "failed" for t in trials) else 0


if __name__ == "__main__":
    raise SystemExit(main())
