"""The W&B workspaces that come with affectlab: built without a network, and every key they chart is logged.

The reality tests run a short offline fit of each method's demo configuration and read back what the
run logged from its own W&B record (``experiments/run_record.py``); every key a panel of
``experiments/dashboard_keys.py`` names must be there, so renaming a metric breaks a test instead of
leaving an empty panel.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from affectlab.datamodules.samples import write_sample
from affectlab.experiments import dashboard
from affectlab.experiments.dashboard_keys import NOT_YET_LOGGED, STEP, WORKSPACES, Line, TableLine, keys_of
from affectlab.experiments.run_record import logged_keys, wandb_record_keys

sys.path.insert(0, str(Path(__file__).parent))
from test_configs import overrides  # noqa: E402  (sample data in each data module's real layout)

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
SWEEPS = sorted((EXPERIMENTS / "sweeps").glob("*.yaml"))


def panels(view: dict) -> list[dict]:
    return [p for s in view["spec"]["section"]["panelBankConfig"]["sections"] for p in s["panels"]]


# -- built from code, without a network ---------------------------------------------------------------

@pytest.mark.parametrize("method", list(WORKSPACES))
def test_method_workspace_serialises_every_panel_of_its_specification(method):
    view = dashboard.view_json(dashboard.method_workspace(method, "me", "affectlab"))
    json.dumps(view)
    sections = view["spec"]["section"]["panelBankConfig"]["sections"]
    assert [s["name"] for s in sections] == [s.name for s in WORKSPACES[method]]
    assert view["name"] == f"nw-affectlab{method}-v"   # fixed: saving again updates the view
    charted, media, regexes = set(), set(), set()
    for p in panels(view):
        config = p["config"]
        if p["viewType"] == "Run History Line Plot":
            assert config["xAxis"] == STEP
            charted |= set(config["metrics"])
            if config.get("useMetricRegex"):
                regexes.add(config["metricRegex"])
        elif p["viewType"] == "Media Browser":
            media |= set(config["mediaKeys"])
    spec_scalars, spec_media, spec_regexes = set(), set(), set()
    for section in WORKSPACES[method]:
        for panel in section.panels:
            s, m, r = keys_of(panel)
            spec_scalars |= set(s)
            spec_media |= {k for k in m if not isinstance(panel, TableLine)}
            spec_regexes |= set(r)
    assert charted == spec_scalars and regexes == spec_regexes
    assert spec_media >= media and media
    tables = json.dumps(view)
    for key in spec_media - media:   # tables live in Weave queries and custom-chart queries
        assert json.dumps(key)[1:-1] in tables, key
    assert view["spec"]["section"]["runSets"][0]["search"] == {"query": f"^{method}-", "isRegex": True}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_workspace_plots_the_swept_keys_and_ranks_runs_by_the_metric(path):
    spec = yaml.safe_load(path.read_text())
    metric = spec["metric"]["name"]
    view = dashboard.view_json(dashboard.sweep_workspace(path, "me", "affectlab"))
    coordinates = next(p for p in panels(view) if p["viewType"] == "Parallel Coordinates Plot")
    columns = [c["accessor"] for c in coordinates["config"]["columns"]]
    assert columns[-1] == f"summary:{metric}"
    assert len(columns) == len(spec["parameters"]) + 1
    runset = view["spec"]["section"]["runSets"][0]
    assert runset["sort"]["keys"][0]["ascending"] is (spec["metric"]["goal"] == "minimize")
    assert runset["filters"]["filters"], "the runset must be restricted to the sweep's runs"
    assert spec["name"] in json.dumps(runset["filters"])


def test_a_repeated_sweep_shows_mean_and_std_over_its_folds(tmp_path):
    path = tmp_path / "folds.yaml"
    path.write_text(yaml.safe_dump({
        "name": "twitter_folds", "method": "grid", "metric": {"name": "val/acc", "goal": "maximize"},
        "parameters": {"data.init_args.fold": {"values": [0, 1, 2, 3, 4]},
                       "model.init_args.lr": {"values": [0.01, 0.001]}, "trainer.max_epochs": {"value": 3}}}))
    view = dashboard.view_json(dashboard.sweep_workspace(path, "me", "affectlab"))
    runset = view["spec"]["section"]["runSets"][0]
    assert len(runset["grouping"]) == 1 and "lr" in json.dumps(runset["grouping"])  # one group per lr, folds inside
    aggregated = [p for p in panels(view) if p["config"].get("groupAgg") == "mean"]
    assert aggregated and all(p["config"]["groupArea"] == "stddev" for p in aggregated)
    coordinates = next(p for p in panels(view) if p["viewType"] == "Parallel Coordinates Plot")
    assert len(coordinates["config"]["columns"]) == 3   # fold, lr, val/acc: a fixed value is not swept
    single = tmp_path / "lr.yaml"
    single.write_text(yaml.safe_dump({"name": "lr", "metric": {"name": "val/loss", "goal": "minimize"},
                                      "parameters": {"model.init_args.lr": {"values": [0.1, 0.01]}}}))
    view = dashboard.view_json(dashboard.sweep_workspace(single, "me", "affectlab", sweep_id="abc123"))
    assert view["spec"]["section"]["runSets"][0]["grouping"] == []
    assert not [p for p in panels(view) if p["config"].get("groupAgg")]
    assert "abc123" in json.dumps(view["spec"]["section"]["runSets"][0]["filters"])


def test_command_prints_views_and_refuses_bad_input(tmp_path, capsys):
    assert dashboard.main(["--print", "--method", "inversion"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert view["displayName"] == "affectlab: Feature map inversion" and view["entity"] == "ENTITY"
    sweep = str(EXPERIMENTS / "sweeps" / "baseline_demo.yaml")
    assert dashboard.main(["--print", "--entity", "me", "--method", "mdan", "--method", "sweep", sweep]) == 0
    assert [v["displayName"] for v in json.loads(capsys.readouterr().out)] == [
        "affectlab: MDAN", "affectlab sweep: baseline_demo"]
    assert dashboard.main(["--print"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(WORKSPACES)
    for bad in (["--print", "--method", "resnet"], ["--print", "--method", "sweep"], ["--method", "mdan"]):
        with pytest.raises(SystemExit) as exit_info:
            dashboard.main(bad)
        assert exit_info.value.code == 2
    assert "--entity is required" in capsys.readouterr().err
    not_a_sweep = tmp_path / "x.yaml"
    not_a_sweep.write_text("trainer: {max_epochs: 1}\n")
    assert dashboard.main(["--print", "--method", "sweep", str(not_a_sweep)]) == 2
    assert dashboard.main(["--print", "--method", "sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "is not a sweep file" in capsys.readouterr().err


def test_affectlab_dashboard_is_a_subcommand_of_the_one_command_line(capsys):
    from affectlab.experiments.cli import main

    assert main(["dashboard", "--print", "--method", "pruning"]) is None
    assert json.loads(capsys.readouterr().out)["displayName"] == "affectlab: Gradual global pruning"
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "--method", "sweep", "experiments/sweeps/missing.yaml", "--print"])
    assert exit_info.value.code == 2


def test_saving_again_updates_the_same_view(monkeypatch):
    from wandb_workspaces.workspaces import internal

    stored: dict[str, dict] = {}

    def get_view_dict(entity, project, name):
        if name not in stored:
            raise ValueError(f"Workspace `{name}` not found in project `{project}`")
        return stored[name]

    def upsert_view2(view):
        key = internal._internal_name_to_url_query_str(view.name)
        if view.id:
            assert stored[key]["id"] == view.id
        stored.setdefault(key, {"id": f"id{len(stored)}", "displayName": view.display_name})
        return {"upsertView": {"view": {"id": stored[key]["id"], "name": view.name}}}

    from wandb_workspaces.workspaces import interface

    monkeypatch.setattr(interface, "get_app_url", lambda api: "https://wandb.example")
    monkeypatch.setattr(interface.wandb, "Api", lambda *a, **k: None)
    monkeypatch.setattr(internal, "get_view_dict", get_view_dict)
    monkeypatch.setattr(internal, "upsert_view2", upsert_view2)
    first = dashboard.save(dashboard.method_workspace("mdan", "me", "affectlab"))
    second = dashboard.save(dashboard.method_workspace("mdan", "me", "affectlab"))
    dashboard.save(dashboard.method_workspace("pruning", "me", "affectlab"))
    assert first == second and "nw=affectlabmdan" in first
    assert sorted(stored) == ["affectlabmdan", "affectlabpruning"]


def test_a_local_sweep_trial_carries_the_swept_keys_in_its_wandb_config(tmp_path, monkeypatch):
    """What the local agent hands a trial: W&B merges it into the run config the parallel coordinates read."""
    import subprocess

    from affectlab.experiments.sweep import write_params_config
    from conftest import subprocess_env

    params = {"trainer.callbacks.init_args.step_ratio": 0.05, "trainer.callbacks.init_args.criterion": "l1",
              "trainer.callbacks.init_args.normalization": "mean"}
    env = subprocess_env(WANDB_SWEEP_PARAM_PATH=str(write_params_config(tmp_path / "p.yaml", params)))
    script = (f"import wandb; run = wandb.init(project='affectlab', dir={str(tmp_path)!r}, mode='offline', "
              "config={'lr': 0.1}); run.finish()")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120, capture_output=True)
    config = wandb_record_keys(next(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))).config
    view = dashboard.view_json(dashboard.sweep_workspace(EXPERIMENTS / "sweeps" / "pruning_fashion.yaml", "me", "p"))
    coordinates = next(p for p in panels(view) if p["viewType"] == "Parallel Coordinates Plot")
    accessors = [c["accessor"] for c in coordinates["config"]["columns"] if c["accessor"].startswith("config:")]
    # W&B addresses nested config as <top>.value.<rest>: the accessor names the nested path.
    assert {a.removeprefix("config:").replace(".value.", ".", 1) for a in accessors} == set(params) <= config


def test_the_local_agent_hands_every_trial_its_swept_keys_for_the_wandb_config(tmp_path):
    from test_sweep_agent import write_sweep

    from affectlab.experiments.cli import main
    from affectlab.experiments.sweep import sweeps_root

    file = write_sweep(tmp_path, {"model.init_args.lr": {"values": [0.1, 0.01]}, "score": {"value": 0.7}})
    main(["sweep", str(file), "--poll", "0.05"])
    trials = sorted((sweeps_root() / "stub").glob("trial-*"))
    assert len(trials) == 2
    for trial, lr in zip(trials, (0.1, 0.01), strict=True):
        handed = json.loads((trial / "stub.json").read_text())["sweep_params"]
        assert Path(handed) == (trial / "sweep_params.yaml").resolve()
        params = yaml.safe_load(Path(handed).read_text())
        assert params["model"] == {"value": {"init_args": {"lr": lr}}} and params["score"] == {"value": 0.7}


# -- checked against what the demos really log ----------------------------------------------------------

#: The demo configuration of each method, shortened: a few steps, every step logged.
SHORT = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2", "--trainer.log_every_n_steps", "1",
         "--trainer.accelerator", "cpu", "--trainer.devices", "1"]
DEMOS = {
    # MDAN's demo on EmotionROI's sample with stimuli maps, so the CAM-vs-stimuli agreement is logged too.
    "mdan": [("mdan/demo.yaml", ["--data", "affectlab.datamodules.vea.EmotionROI", "--data.init_args.with_stimuli",
                                 "true", "--trainer.max_epochs", "2", *SHORT])],
    # Warm-up of one epoch, then one pruning step judged at the second epoch.
    "pruning": [("pruning/fashion_vgg.yaml", ["--trainer.max_epochs", "2", "--trainer.callbacks.init_args.warmup_epochs",
                                              "1", "--trainer.callbacks.init_args.calibration_batches", "1", *SHORT])],
    "advae": [("advae/demo.yaml", ["--trainer.max_epochs", "1", *SHORT])],
    "inversion": [(f"inversion/{name}.yaml", ["--model.init_args.network", "tiny_vgg", *layers, *SHORT])
                  for name, layers in (("filters", ["--model.init_args.layers=[relu1_1,relu2_1]",
                                                    "--model.init_args.filters=[0,1]"]),
                                       ("random", ["--model.init_args.layers=[relu1_1]", "--model.init_args.samples=2"]),
                                       ("style", ["--model.init_args.style_layers=[relu1_1,relu2_1]",
                                                  "--model.init_args.content_layer=relu1_1"]))],
}


def _fit_demos(method: str, tmp_path: Path):
    """Fit each shortened demo in its own process (one W&B run each, as a user gets it); their keys."""
    from conftest import run_cli

    keys = None
    for i, (config, extra) in enumerate(DEMOS[method]):
        path = EXPERIMENTS / config
        if "--data" in extra:  # another data class than the config's: its sample
            at = extra.index("--data")
            cls = extra[at + 1]
            sample = write_sample(cls, tmp_path / f"data{i}")
            data = ["--data", cls, *[a for k, v in sample.items() for a in (f"--data.init_args.{k}", str(v))]]
            extra = extra[:at] + extra[at + 2:]
        else:
            data = overrides(path, tmp_path / f"data{i}")
        run_dir = tmp_path / f"run{i}"
        run_cli(["fit", "-c", str(path), *data, *extra, f"--trainer.default_root_dir={run_dir}"], cwd=tmp_path,
                OMP_NUM_THREADS="1", WANDB_DIR=str(tmp_path))
        run = logged_keys(run_dir)
        keys = run if keys is None else (keys.update(run) or keys)
    return keys


@pytest.mark.slow  # a fit per demo in its own process: 1–2.5 min each on the shared 2-core machine
@pytest.mark.parametrize("method", list(WORKSPACES))
def test_every_key_a_panel_charts_is_logged_by_the_demo(method, tmp_path, monkeypatch):
    logged = _fit_demos(method, tmp_path)
    pending = NOT_YET_LOGGED.get(method, frozenset())
    missing = []
    for section in WORKSPACES[method]:
        for panel in section.panels:
            scalars, media, regexes = keys_of(panel)
            if isinstance(panel, Line) and not panel.keys and not panel.regex:
                missing.append(f"{panel.title}: charts nothing")
            for key in scalars:
                if key not in logged.scalars and key not in pending:
                    missing.append(f"{section.name} / {panel.title}: {key}")
            for key in media:
                if key not in logged.media:
                    missing.append(f"{section.name}: media or table {key}")
            for regex in regexes:
                if not any(re.search(regex, k) for k in logged.scalars):
                    missing.append(f"{section.name} / {panel.title}: nothing matches {regex}")
            if isinstance(panel, TableLine) and panel.table in logged.media:
                columns = logged.table_columns(panel.table)
                missing += [f"{panel.title}: column {c} of {panel.table}" for c in (panel.x, panel.y) if c not in columns]
    assert not missing, "panels chart keys the demo does not log:\n" + "\n".join(missing)
    assert not pending & (logged.scalars | set(logged.media)), (
        f"now logged, move out of NOT_YET_LOGGED: {sorted(pending & logged.scalars)}")
    assert STEP in logged.scalars


def test_preview_draws_the_workspace_from_a_run_folders_own_record(tmp_path, capsys):
    import subprocess

    from affectlab.experiments.run_record import history
    from conftest import subprocess_env

    script = f"""
import numpy as np, wandb
run = wandb.init(project="affectlab", dir={str(tmp_path)!r}, mode="offline")
for step in range(3):
    run.log({{"trainer/global_step": step, "val/acc": 0.1 * step, "val/acc_l1": 0.5 + 0.1 * step, "val/acc_l2": 0.2}})
run.log({{"trainer/global_step": 3, "val/ldcam": wandb.Image(np.zeros((8, 8, 3), np.uint8))}})
run.finish()
"""
    subprocess.run([sys.executable, "-c", script], env=subprocess_env(), check=True, timeout=120, capture_output=True)
    rows = history(tmp_path)
    assert [r["val/acc"] for r in rows if "val/acc" in r] == pytest.approx([0.0, 0.1, 0.2])
    (image,) = [r["val/ldcam"] for r in rows if "val/ldcam" in r]   # one image: its path (a group: a list)
    assert image.is_file()
    keys = logged_keys(tmp_path)
    assert {"val/acc", "val/acc_l1", STEP} <= keys.scalars and keys.media == {"val/ldcam": "image-file"}
    out = tmp_path / "mdan.png"
    assert dashboard.main(["--method", "mdan", "--preview", str(tmp_path), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert dashboard.main(["--method", "mdan", "--preview", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    with pytest.raises(SystemExit):
        dashboard.main(["--preview", str(tmp_path)])   # which method's workspace?
