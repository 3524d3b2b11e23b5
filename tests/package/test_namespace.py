"""The installed package is one namespace, and every doc the code cites exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import affectlab

REPO = Path(__file__).resolve().parents[2]
GENERIC = ("modules", "callbacks", "experiments", "datamodules")


def test_version_is_exposed():
    assert re.fullmatch(r"\d+\.\d+\.\d+", affectlab.__version__)


def test_nothing_generic_is_importable_from_the_installed_package(tmp_path):
    # Run outside the repository so its folders are not on the path as the current directory.
    code = ("import importlib.util, affectlab.modules.mdan, affectlab.callbacks.pruning, "
            "affectlab.datamodules.vea, affectlab.experiments\n"
            f"print([n for n in {GENERIC!r} if importlib.util.find_spec(n) is not None])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_config_names_namespaced_classes():
    bare = re.compile(r"class_path:\s*(modules|callbacks|datamodules|experiments)\.")
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "experiments").rglob("*.yaml") if bare.search(p.read_text())]
    assert offenders == []


def _cited_docs() -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    sources = [p for folder in ("affectlab", "experiments", "modules", "datamodules", "callbacks", "benchmarks", "docs")
               for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".yaml", ".md", ".sh")]
    sources.append(REPO / "README.md")
    for path in sources:
        for ref in re.findall(r"docs/[\w./-]+\.md", path.read_text()):
            cited.setdefault(ref, []).append(str(path.relative_to(REPO)))
    return cited


def test_every_cited_doc_exists():
    cited = _cited_docs()
    assert "docs/mdan.md" in cited  # the scan itself finds citations
    missing = {ref: where for ref, where in cited.items() if not (REPO / ref).is_file()}
    assert missing == {}


def test_no_citation_of_notes_outside_the_repository():
    pattern = re.compile(r"(PAPERS|DESIGN|DATASETS|STYLE)\.md|\.\./shared/")
    offenders = [str(p.relative_to(REPO)) for folder in ("affectlab", "experiments", "modules", "datamodules",
                                                         "callbacks", "benchmarks", "tests", "docs")
                 for p in (REPO / folder).rglob("*") if p.suffix in (".py", ".yaml", ".md")
                 and p.name != "test_namespace.py" and pattern.search(p.read_text())]
    if pattern.search((REPO / "README.md").read_text()):
        offenders.append("README.md")
    assert offenders == []


def _import_graph() -> dict[str, set[str]]:
    """Which affectlab module imports which (at any depth of the file, lazy imports included)."""
    import ast

    folders = {"affectlab": REPO / "affectlab", **{f"affectlab.{n}": REPO / n for n in GENERIC}}
    modules: dict[str, Path] = {}
    for package, folder in folders.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def test_no_two_modules_import_each_other():
    graph = _import_graph()
    assert "affectlab.datamodules.celeba" in graph and graph["affectlab.datamodules.celeba"]  # the scan sees imports
    mutual = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets if a in graph.get(b, ())})
    assert mutual == []


SAMPLES = "affectlab.datamodules.samples"


def _in_samples(module: str) -> bool:
    return module == SAMPLES or module.startswith(SAMPLES + ".")


def test_only_the_demo_imports_the_sample_writers():
    """Readers hold reading code only: the fake releases are written by ``datamodules/samples/``, which
    imports the readers and is imported by no installed module but ``make demo``'s."""
    graph = _import_graph()
    assert any(_in_samples(t) for t in graph["affectlab.experiments.demo"])  # the scan sees the demo's import
    assert "affectlab.datamodules.vea.base" in graph[f"{SAMPLES}.vea"]  # ... and the writers' of the readers
    offenders = sorted(name for name, targets in graph.items()
                       if not _in_samples(name) and name != "affectlab.experiments.demo" and any(map(_in_samples, targets)))
    assert offenders == []
