"""``affectlab-data stats`` and the W&B data table."""

from __future__ import annotations

from unittest import mock

import yaml
from lightning.pytorch.loggers import WandbLogger

from affectlab.callbacks.data_stats import DataStatsTable
from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.stats import COLUMNS, main, stats_rows
from affectlab.datamodules.vea import FI, EmotionROI


def test_stats_prints_counts_unreadable_and_taxonomy(tmp_path, capsys):
    write_sample(FI, tmp_path / "fi", per_class=4, size=32, bad_files=True)
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({"model": {"class_path": "x"},
                                      "data": {"class_path": "affectlab.datamodules.vea.FI", "init_args": {"root": "elsewhere"}}}))
    assert main(["stats", "-c", str(config), "--data.root", str(tmp_path / "fi")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split() == list(COLUMNS)
    totals = [line for line in lines if line.startswith("  ") and "images," in line]
    assert sum(int(t.split(":")[1].split()[0]) for t in totals) == 8 * 4 + 7
    assert sum(int(t.split(",")[1].split()[0]) for t in totals) == 2  # zero-byte and garbage
    assert "taxonomy mikels: sentiment (2) → emotion (8)" in out
    assert "positive: amusement, awe, contentment, excitement" in out


def test_stats_rows_count_missing_per_class(tmp_path):
    write_sample(EmotionROI, tmp_path)
    (tmp_path / "images" / "fear" / "7.jpg").unlink()
    dm = EmotionROI(root=str(tmp_path), num_workers=0)
    rows = stats_rows(dm, decode=False, progress=False)
    fear_test = next(r for r in rows if r[0] == "test" and r[2] == "fear")
    assert fear_test[3:] == ["negative", 1, None, 1]
    assert sum(r[4] for r in rows) == 47


def test_config_overrides_reach_the_datamodule(tmp_path, capsys):
    write_sample(EmotionROI, tmp_path / "roi")
    main(["stats", "-c", "experiments/baseline/emotionroi.yaml", f"--data.root={tmp_path / 'roi'}",
          "--data.seed", "3", "--no-decode"])
    out = capsys.readouterr().out
    assert out.startswith(f"EmotionROI at {tmp_path / 'roi'}") and "taxonomy ekman" in out


def test_callback_logs_the_table_to_wandb_when_a_fit_starts(fi_sample):
    dm = FI(root=str(fi_sample), num_workers=0)
    dm.setup("fit")
    wandb = mock.MagicMock(spec=WandbLogger)
    trainer = mock.MagicMock(loggers=[wandb], datamodule=dm)
    DataStatsTable().on_fit_start(trainer, None)
    kwargs = wandb.log_table.call_args.kwargs
    assert kwargs["key"] == "data/stats" and kwargs["columns"] == list(COLUMNS)
    assert sum(row[4] for row in kwargs["data"]) == 96 and len(kwargs["data"]) == 3 * 8


def test_callback_is_a_no_op_without_wandb(fi_sample):
    dm = mock.MagicMock()
    trainer = mock.MagicMock(loggers=[], datamodule=dm)
    DataStatsTable().on_fit_start(trainer, None)
    dm.setup.assert_not_called()
