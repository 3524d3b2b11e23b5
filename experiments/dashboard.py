"""``affectlab dashboard``: the saved W&B workspaces that come with affectlab, built from code.

One workspace per method (the panels of ``experiments/dashboard_keys.py``) and one per sweep file
(parallel coordinates over the swept keys, the leaderboard of the optimised metric, and the mean ±
std over folds or seeds when the sweep repeats a setting). ``--print`` writes the views' JSON
without a network; otherwise each view is created, or updated in place when it exists (every view
has a fixed internal name, so running the command again never piles up copies).

    affectlab dashboard --entity ME --project affectlab                 # the four methods
    affectlab dashboard --entity ME --method mdan --method sweep experiments/sweeps/mdan_ablation.yaml
    affectlab dashboard --method pruning --print > pruning_view.json
    affectlab dashboard --method mdan --preview runs/mdan-demo/<time> --out mdan.png   # offline picture
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from affectlab.experiments.dashboard_keys import (
    REPEAT_PARAMETERS,
    RUN_NAMES,
    STEP,
    WORKSPACES,
    Line,
    Media,
    Table,
    TableLine,
)
from affectlab.experiments.errors import InvalidValue, MissingPath

METHODS = tuple(WORKSPACES)
TITLES = {"mdan": "MDAN", "pruning": "Gradual global pruning", "advae": "AD-VAE", "inversion": "Feature map inversion"}


def _panel(spec: Line | Media | Table | TableLine):
    import wandb_workspaces.reports.v2 as wr

    if isinstance(spec, Line):
        return wr.LinePlot(title=spec.title, x=STEP, y=list(spec.keys), metric_regex=spec.regex)
    if isinstance(spec, Media):
        return wr.MediaBrowser(title=spec.title, media_keys=list(spec.keys), num_columns=1)
    if isinstance(spec, Table):
        return wr.WeavePanelSummaryTable(table_name=spec.key)
    return wr.CustomChart(query={"summaryTable": {"tableKey": spec.table}}, chart_name="wandb/line/v0",
                          chart_fields={"x": spec.x, "y": spec.y}, chart_strings={"title": spec.title})


def _slug(text: str) -> str:
    """Letters and digits only: W&B view names are ``nw-<id>-v`` and ``-v`` inside the id breaks links."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def method_workspace(method: str, entity: str, project: str):
    """The saved workspace of one method: its sections and panels, runs filtered by experiment name."""
    import wandb_workspaces.workspaces as ws

    if method not in WORKSPACES:
        raise InvalidValue(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    sections = [ws.Section(name=s.name, panels=[_panel(p) for p in s.panels], is_open=s.open)
                for s in WORKSPACES[method]]
    workspace = ws.Workspace(
        entity=entity, project=project, name=f"affectlab: {TITLES[method]}", sections=sections,
        settings=ws.WorkspaceSettings(x_axis=STEP),
        runset_settings=ws.RunsetSettings(query=RUN_NAMES[method], regex_query=True),
    )
    return _named(workspace, f"affectlab{method}")


def read_sweep(path: str | Path) -> dict[str, Any]:
    """A W&B sweep file's name, metric and the parameters it varies; a clear error when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise MissingPath(f"sweep file {path} does not exist")
    spec = yaml.safe_load(path.read_text()) or {}
    metric = spec.get("metric") or {}
    if not isinstance(spec, dict) or not metric.get("name") or not isinstance(spec.get("parameters"), dict):
        raise InvalidValue(f"{path} is not a sweep file: it needs `metric: {{name: ..., goal: ...}}` and `parameters:`")
    varied = [key for key, value in spec["parameters"].items()
              if not (isinstance(value, dict) and "value" in value and len(value) == 1)]
    return {"name": spec.get("name") or path.stem, "metric": metric["name"],
            "goal": metric.get("goal", "maximize"), "parameters": varied}


def sweep_workspace(path: str | Path, entity: str, project: str, sweep_id: str | None = None):
    """The saved workspace of one sweep file.

    Runs are the sweep's trials: W&B group ``<sweep name>`` (what ``affectlab sweep`` gives every
    trial), or the sweep id given (runs of ``wandb agent``). Their config holds the swept keys as
    the sweep file names them (``model.init_args.lr``), under either agent.
    """
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    sweep = read_sweep(path)
    metric, params = sweep["metric"], sweep["parameters"]
    repeats = [p for p in params if p in REPEAT_PARAMETERS]
    settings = [p for p in params if p not in repeats]
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p)) for p in params]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(metric)))
    overview = [
        wr.ParallelCoordinatesPlot(title=f"{metric} over the swept keys", columns=columns),
        wr.ParameterImportancePlot(with_respect_to=metric),
        wr.LinePlot(title=f"{metric} per run", x=STEP, y=[metric]),
    ]
    sections = [ws.Section(name=f"Sweep {sweep['name']}: {metric}", panels=overview, is_open=True)]
    groupby = []
    if repeats:
        # Mean ± std over the repeats (folds, seeds), one group per setting of the other keys.
        groupby = [ws.Config(p) for p in settings]
        sections.append(ws.Section(name=f"Mean ± std over {', '.join(repeats)}", is_open=True, panels=[
            wr.BarPlot(title=f"{metric}: mean ± std over {', '.join(repeats)}", metrics=[wr.SummaryMetric(metric)],
                       groupby_aggfunc="mean", groupby_rangefunc="stddev", orientation="v"),
            wr.LinePlot(title=f"{metric}: mean ± std per step", x=STEP, y=[metric],
                        groupby_aggfunc="mean", groupby_rangefunc="stddev"),
        ]))
    filters = f"Sweep = '{sweep_id}'" if sweep_id else f"Group = '{sweep['name']}'"
    descending = sweep["goal"] != "minimize"
    workspace = ws.Workspace(
        entity=entity, project=project, name=f"affectlab sweep: {sweep['name']}", sections=sections,
        settings=ws.WorkspaceSettings(x_axis=STEP),
        runset_settings=ws.RunsetSettings(
            filters=filters, groupby=groupby,
            # The leaderboard: runs ranked by the optimised metric, the swept keys beside it.
            order=[ws.Ordering(ws.Summary(metric), ascending=not descending)],
            pinned_columns=[f"summary:{metric}", *[f"config:{p}" for p in params]],
        ),
    )
    return _named(workspace, f"affectlabsweep{sweep['name']}")


def _named(workspace, name: str):
    """Give the view a fixed internal name (``nw-<name>-v``) so that saving again updates it."""
    object.__setattr__(workspace, "_internal_name", f"nw-{_slug(name)}-v")
    return workspace


def view_json(workspace) -> dict[str, Any]:
    """The view as W&B stores it (display name, internal name, spec), built without a network."""
    view = workspace._to_model()
    return {"entity": view.entity, "project": view.project, "displayName": view.display_name,
            "name": view.name, "spec": json.loads(view.spec.model_dump_json(by_alias=True, exclude_none=True))}


def save(workspace) -> str:
    """Create the view, or update it when a view of this internal name exists; returns its URL."""
    from wandb_workspaces.workspaces import internal

    name = workspace._internal_name
    try:
        existing = internal.get_view_dict(workspace.entity, workspace.project, internal._internal_name_to_url_query_str(name))
        object.__setattr__(workspace, "_internal_id", existing["id"])
    except ValueError as err:
        if "not found in project" not in str(err):  # an unknown project or entity is the user's to fix
            raise
    workspace.save()
    return workspace.url


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="affectlab dashboard",
        description="Create or update affectlab's W&B workspaces (one per method, one per sweep file).")
    parser.add_argument("--entity", help="W&B entity (user or team); required unless --print")
    parser.add_argument("--project", default="affectlab", help="W&B project (default: affectlab, as the runs log)")
    parser.add_argument("--method", action="append", nargs="+", metavar="METHOD [FILE]",
                        help=f"one of {', '.join(METHODS)}, or `sweep FILE` (repeatable; default: every method)")
    parser.add_argument("--sweep-id", help="filter a sweep's runs by this W&B sweep id (runs of `wandb agent`) "
                                           "instead of the group `affectlab sweep` gives them")
    parser.add_argument("--print", action="store_true", dest="print_json",
                        help="write the views' JSON to stdout instead of saving them (no network)")
    parser.add_argument("--preview", metavar="RUN_DIR",
                        help="draw the method's workspace as this run folder fills it (no network) into --out")
    parser.add_argument("--out", default="dashboard.png", help="the PNG --preview writes (default: dashboard.png)")
    args = parser.parse_args(argv)
    if args.preview:
        if not args.method or len(args.method) != 1 or len(args.method[0]) != 1 or args.method[0][0] not in METHODS:
            parser.error(f"--preview draws one method's workspace: add --method {'|'.join(METHODS)}")
        args.targets = [(args.method[0][0], None)]
        return args
    if not args.print_json and not args.entity:
        parser.error("--entity is required to save workspaces (or use --print)")
    targets = []
    for item in args.method or [[m] for m in METHODS]:
        if item[0] == "sweep":
            if len(item) < 2:
                parser.error("--method sweep needs the sweep file: --method sweep experiments/sweeps/FILE.yaml")
            targets += [("sweep", f) for f in item[1:]]
        elif item[0] in METHODS and len(item) == 1:
            targets.append((item[0], None))
        else:
            parser.error(f"--method {' '.join(item)}: choose one of {', '.join(METHODS)}, or `sweep FILE`")
    args.targets = targets
    return args


def build(targets: list[tuple[str, str | None]], entity: str, project: str, sweep_id: str | None = None) -> list:
    return [sweep_workspace(f, entity, project, sweep_id) if kind == "sweep" else method_workspace(kind, entity, project)
            for kind, f in targets]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.preview:
        from affectlab.experiments.dashboard_preview import render

        try:
            print(render(args.targets[0][0], args.preview, args.out))
        except FileNotFoundError as err:
            print(f"affectlab dashboard: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        workspaces = build(args.targets, args.entity or "ENTITY", args.project, args.sweep_id)
    except (FileNotFoundError, ValueError) as err:
        print(f"affectlab dashboard: {err}", file=sys.stderr)
        return 2
    if args.print_json:
        views = [view_json(w) for w in workspaces]
        json.dump(views[0] if len(views) == 1 else views, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    from wandb.errors import CommError, UsageError

    for workspace in workspaces:
        try:
            print(f"{workspace.name}: {save(workspace)}")
        except (UsageError, CommError, ValueError) as err:
            print(f"affectlab dashboard: could not save {workspace.name!r} to {args.entity}/{args.project}: {err}\n"
                  "(log in with `wandb login` or set WANDB_API_KEY; --print builds the views without a network)",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
