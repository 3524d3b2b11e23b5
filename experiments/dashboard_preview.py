"""An offline picture of a method's W&B workspace, drawn from one run folder's own W&B record.

``affectlab dashboard --method mdan --preview runs/mdan-demo/<time> --out mdan.png`` draws every
panel of the workspace (``experiments/dashboard_keys.py``) as W&B would show that run: line plots
against the global step, the newest image of a media panel, the first rows of a table. A panel the
run has no data for says so, which is also how a missing key shows in W&B.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from affectlab.experiments.dashboard_keys import STEP, WORKSPACES, Line, Media, Table, TableLine
from affectlab.experiments.errors import InvalidValue, MissingPath
from affectlab.experiments.run_record import history

COLUMNS = 3


def _series(rows: list[dict], panel: Line) -> dict[str, tuple[list[float], list[float]]]:
    names = sorted({k for r in rows for k in r if (k in panel.keys or (panel.regex and re.search(panel.regex, k)))
                    and isinstance(r[k], (int, float))}, key=lambda k: (k not in panel.keys, k))
    series = {}
    for name in names[:12]:  # a legend beyond a dozen lines is unreadable (per-class accuracy)
        points = [(r.get(STEP, i), r[name]) for i, r in enumerate(rows) if name in r]
        series[name] = ([p[0] for p in points], [p[1] for p in points])
    return series


def _newest(rows: list[dict], key: str):
    for row in reversed(rows):
        if key in row:
            value = row[key]
            return value[0] if isinstance(value, list) else value
    return None


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=8, color="0.45", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _draw(ax, panel, rows: list[dict]) -> None:
    import matplotlib.image as mpimg

    if isinstance(panel, Line):
        ax.set_title(panel.title, fontsize=8)
        series = _series(rows, panel)
        if not series:
            _empty(ax, "not logged by this run\n" + ", ".join(panel.keys or [panel.regex or ""]))
            return
        for name, (x, y) in series.items():
            ax.plot(x, y, marker="o" if len(x) < 12 else None, markersize=3, linewidth=1.2, label=name)
        ax.set_xlabel(STEP, fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="best")
        ax.grid(alpha=0.3)
    elif isinstance(panel, Media):
        key = panel.keys[0]
        ax.set_title(f"{panel.title}\n{key}", fontsize=8)
        path = _newest(rows, key)
        if path is None or not Path(path).is_file():
            _empty(ax, f"not logged by this run\n{key}")
            return
        ax.imshow(mpimg.imread(str(path)))
        ax.axis("off")
    else:
        key = panel.key if isinstance(panel, Table) else panel.table
        ax.set_title(panel.title if isinstance(panel, TableLine) else f"table {key}", fontsize=8)
        path = _newest(rows, key)
        if path is None or not Path(path).is_file():
            _empty(ax, f"not logged by this run\n{key}")
            return
        table = json.loads(Path(path).read_text())
        columns, data = table["columns"], table["data"]
        if isinstance(panel, TableLine):
            x, y = columns.index(panel.x), columns.index(panel.y)
            ax.plot([r[x] for r in data], [r[y] for r in data], "o-")
            ax.set_xlabel(panel.x, fontsize=7)
            ax.set_ylabel(panel.y, fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            return
        ax.axis("off")
        shown = [[str(c)[:14] for c in row[:7]] for row in data[:8]]
        grid = ax.table(cellText=shown, colLabels=[str(c)[:14] for c in columns[:7]], loc="center", fontsize=6)
        grid.auto_set_font_size(False)
        grid.set_fontsize(6)


def render(method: str, run_dir: str | Path, out: str | Path) -> Path:
    """Draw ``method``'s workspace as ``run_dir`` fills it into the PNG ``out``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if method not in WORKSPACES:
        raise InvalidValue(f"unknown method {method!r}; choose from {', '.join(WORKSPACES)}")
    rows = history(run_dir)
    if not rows:
        raise MissingPath(f"{run_dir} holds no W&B run record (wandb/offline-run-*/run-*.wandb)")
    sections = [s for s in WORKSPACES[method] if s.open]
    layout = [(s, s.panels[i:i + COLUMNS]) for s in sections for i in range(0, len(s.panels), COLUMNS)]
    height = 3.1 * len(layout)
    fig = plt.figure(figsize=(4.2 * COLUMNS, height))
    grid = fig.add_gridspec(len(layout), COLUMNS, hspace=0.75, wspace=0.3, top=1 - 1.3 / height, bottom=0.4 / height)
    shown = set()
    for r, (section, panels) in enumerate(layout):
        for c, panel in enumerate(panels):
            ax = fig.add_subplot(grid[r, c])
            _draw(ax, panel, rows)
            if section.name not in shown:
                shown.add(section.name)
                ax.annotate(f"▾ {section.name}", (0, 1), xytext=(0, 34), xycoords="axes fraction",
                            textcoords="offset points", fontsize=10, fontweight="bold", va="bottom")
    closed = [s.name for s in WORKSPACES[method] if not s.open]
    title = f"affectlab: {method} workspace, one run ({Path(run_dir).parent.name}/{Path(run_dir).name})"
    if closed:
        title += f"\ncollapsed sections: {', '.join(closed)}"
    fig.suptitle(title, fontsize=11, y=1 - 0.05 / height)  # above the first section's name
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return out
