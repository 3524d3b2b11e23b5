"""``make demo``: write the sample set if missing, train on it on the CPU, say where everything is.

Trains MDAN (``experiments/mdan/demo.yaml``) when it is present, else the flat baseline
(``experiments/baseline/demo.yaml``). Extra arguments are passed to the CLI unchanged, e.g.
``python -m affectlab.experiments.demo --trainer.max_epochs 2``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from affectlab.datamodules.samples import ensure_sample
from affectlab.experiments.cli import main as cli_main

HERE = Path(__file__).resolve().parent
SAMPLE = Path("data/sample_fi")


def demo_config() -> Path:
    mdan = HERE / "mdan" / "demo.yaml"
    return mdan if mdan.exists() else HERE / "baseline" / "demo.yaml"


def main(argv: list[str] | None = None) -> dict[str, float]:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = Path(ensure_sample("FI", SAMPLE, per_class=40, size=64)["root"])
    config = demo_config()
    print(f"sample set: {root.resolve()} (FI layout, 8 classes)\nconfig: {config}")
    cli = cli_main(["fit", "-c", str(config), "--data.init_args.root", str(root), *argv])
    trainer = cli.trainer
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/acc")}
    chance = 1 / len(cli.model.taxonomy.leaves)
    run = Path(trainer.default_root_dir)
    print("\n== affectlab demo ==")
    for key in sorted(metrics):
        print(f"  {key:<16} {metrics[key]:.3f}")
    print(f"  chance (finest level) {chance:.3f}")
    print(f"run folder:  {run}")
    print(f"checkpoint:  {trainer.checkpoint_callback.best_model_path or trainer.checkpoint_callback.last_model_path}")
    print(f"config:      {run / 'config.yaml'}")
    for logger in trainer.loggers:
        if hasattr(logger, "experiment") and hasattr(logger.experiment, "dir"):
            print(f"W&B (offline): {Path(logger.experiment.dir).parent}  — upload with `wandb sync`")
    return metrics


if __name__ == "__main__":
    main()
