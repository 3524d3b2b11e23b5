"""A mistake a user can fix ends in one message, without a traceback, non-zero, before any data is read.

The command line runs in-process through the same wrapper as the console script
(``run_reporting_errors(main)``); one slow test runs the console script itself, with and without
``AFFECTLAB_DEBUG``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from affectlab.datamodules.vea import FI
from affectlab.experiments.cli import main
from affectlab.experiments.errors import DEBUG_ENV, run_reporting_errors
from conftest import REPO, subprocess_env

DEMO = str(REPO / "experiments" / "baseline" / "demo.yaml")


def fit_args(root, *extra: str) -> list[str]:
    return ["fit", "-c", DEMO, "--data.init_args.root", str(root), "--data.init_args.image_size", "32",
            "--data.init_args.num_workers", "0", "--trainer.accelerator", "cpu", "--trainer.logger", "false",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
            *extra]


@pytest.fixture
def data_reads(monkeypatch):
    """Records every time a DataModule starts reading its data (prepare_data or setup)."""
    calls: list[str] = []
    for hook in ("prepare_data", "setup"):
        real = getattr(FI, hook)

        def spy(self, *args, _real=real, _hook=hook, **kwargs):
            calls.append(_hook)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(FI, hook, spy)
    return calls


def run(args: list[str], capsys) -> tuple[int, list[str]]:
    code = run_reporting_errors(main, args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("affectlab: error:")]


@pytest.mark.parametrize(("extra", "expected"), [
    (["--model.init_args.backbone", "resnet7"], "unknown backbone 'resnet7'; supported: resnet18"),
    (["--data.init_args.image_size", "0"], "--data.image_size must be an integer >= 32"),
    (["--data.init_args.image_size", "7"], "--data.image_size must be an integer >= 32"),  # too small for the backbone
    (["--data.init_args.batch_size", "0"], "--data.batch_size must be an integer >= 1"),
    (["--data.init_args.num_workers", "-1"], "--data.num_workers must be an integer >= 0"),
], ids=["unknown-backbone", "image-size-0", "image-size-7", "batch-size-0", "num-workers"])
def test_invalid_values_are_one_message_before_any_data_is_read(fi_sample, capsys, data_reads, extra, expected):
    code, lines = run(fit_args(fi_sample, *extra), capsys)
    assert code == 1 and len(lines) == 1 and expected in lines[0], lines
    assert data_reads == []


def test_a_misspelled_key_is_one_line_naming_it_without_the_usage(fi_sample, capsys):
    code = run_reporting_errors(main, fit_args(fi_sample, "--model.backbon", "resnet18"))
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "affectlab: error: Option 'backbon' is not accepted (--help lists the options)"]


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    code, lines = run(["fit", "-c", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and len(lines) == 1 and "nope.yaml" in lines[0]


def test_a_missing_checkpoint_is_one_line(fi_sample, tmp_path, capsys, data_reads):
    code, lines = run(fit_args(fi_sample, "--ckpt_path", str(tmp_path / "gone.ckpt")), capsys)
    assert code == 1 and len(lines) == 1 and "gone.ckpt does not exist" in lines[0]
    assert data_reads == []


@pytest.mark.parametrize("layout", ["missing", "wrong"])
def test_a_wrong_root_or_layout_names_the_expected_layouts_without_a_traceback(tmp_path, capsys, layout):
    root = tmp_path / "FI"
    if layout == "wrong":
        (root / "photos").mkdir(parents=True)
        (root / "photos" / "a.jpg").write_bytes(b"")
    code, lines = run(fit_args(root), capsys)
    assert code == 1 and len(lines) == 1
    assert f"{root} does not look like a FI release" in lines[0]


def test_debug_shows_the_traceback(fi_sample, monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(Exception) as info:
        run_reporting_errors(main, fit_args(fi_sample, "--data.init_args.image_size", "7"))
    chain, err = [], info.value
    while err is not None:
        chain.append(str(err))
        err = err.__cause__ or err.__context__
    assert any("--data.image_size must be an integer >= 32" in text for text in chain)


def test_a_bug_keeps_its_traceback(monkeypatch):
    import affectlab.experiments.cli as cli

    def broken(*args, **kwargs):
        raise KeyError("a bug, not a user error")

    monkeypatch.setattr(cli, "AffectLabCLI", broken)
    with pytest.raises(KeyError):
        run_reporting_errors(main, ["fit"])


def test_an_unreadable_file_is_counted_once_however_many_epochs(tmp_path):
    from affectlab.datamodules.samples import write_sample

    root = Path(write_sample(FI, tmp_path / "fi", per_class=4, size=40)["root"])
    dm = FI(root=str(root), num_workers=0, batch_size=8, image_size=32, cache_index=False)
    dm.setup("fit")
    bad = dm.splits["train"][0][0]
    (root / bad).write_bytes(b"")
    for _ in range(3):  # three epochs over the training split
        for batch in dm.train_dataloader():
            dm.skip_report.add("train", batch["skipped"])
    assert dm.skip_report.counts == {"train": 1}
    assert "train: 1" in dm.skip_report.summary()


@pytest.mark.slow
def test_the_console_script_prints_one_message_and_debug_the_traceback(fi_sample, tmp_path):
    command = [sys.executable, "-m", "affectlab.experiments",
               *fit_args(fi_sample, "--data.init_args.image_size", "7")]
    plain = subprocess.run(command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines()[-1].startswith("affectlab: error: FI: --data.image_size must be")
    debug = subprocess.run(command, cwd=tmp_path, env=subprocess_env(**{DEBUG_ENV: "1"}), capture_output=True,
                           text=True, timeout=300)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
