"""The one command line: ``affectlab fit|validate|test|predict -c CONFIG`` (LightningCLI), and ``affectlab sweep``.

Only wiring lives here: experiment files compose model, data and trainer parts (``compose:``);
what the model needs from the data is linked, never typed twice; every
run gets its own folder ``runs/<name>/<timestamp>/`` holding the resolved ``config.yaml``,
``checkpoints/``, the W&B run and ``predictions.csv``; W&B stays offline unless the user opts in.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from affectlab.callbacks.lr_monitor import LRMonitor
from affectlab.callbacks.media import EmotionMedia
from affectlab.callbacks.predictions import PredictionsCSV
from affectlab.callbacks.rng import ResumableRNG

DEFAULTS = Path(__file__).resolve().parent / "defaults"
RUNS = Path(os.environ.get("AFFECTLAB_RUNS", "runs"))


def _run_name(config: Any) -> str:
    """The ``--name`` given, else the last config file's folder and stem (``baseline-fi``)."""
    if config.get("name"):
        return str(config["name"])
    files = [str(p) for p in (config.get("config") or []) if p]
    for path in reversed(files):
        p = Path(path)
        if p.parent.name not in ("defaults", ""):
            return f"{p.parent.name}-{p.stem}"
    return "run"


def _run_dir(config: Any) -> Path:
    """A run folder shared by every process of one launch.

    Resuming reuses the checkpoint's run folder. Processes started by Lightning's DDP launcher
    inherit ``AFFECTLAB_RUN_DIR`` from rank 0; SLURM and torchrun launches share the job or
    rendezvous id.
    """
    if os.environ.get("AFFECTLAB_RUN_DIR"):
        return Path(os.environ["AFFECTLAB_RUN_DIR"])
    ckpt = config.get("ckpt_path")
    if ckpt and Path(str(ckpt)).parent.name == "checkpoints":
        return Path(str(ckpt)).parent.parent
    run_id = os.environ.get("SLURM_JOB_ID") or (
        os.environ.get("TORCHELASTIC_RUN_ID") if os.environ.get("TORCHELASTIC_RUN_ID") not in (None, "none") else None
    ) or time.strftime("%Y%m%d-%H%M%S")
    return RUNS / _run_name(config) / run_id


PART_FOLDERS = ("model", "data", "trainer", "defaults")


def _compose_list(path: Path) -> list[Path]:
    """The part files an experiment file names under ``compose:``, resolved against its folder."""
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []  # the parser reports what is wrong with the file itself
    parts = spec.get("compose") if isinstance(spec, dict) else None
    if not parts:
        return []
    if isinstance(parts, str):
        parts = [parts]
    resolved = [(path.parent / str(part)).resolve() for part in parts]
    missing = [str(part) for part in resolved if not part.is_file()]
    if missing:
        raise SystemExit(f"error: {path} composes missing file(s): {', '.join(missing)}")
    return resolved


def expand_compositions(argv: list[str]) -> list[str]:
    """Put the parts of every composed experiment file before it, as repeated ``-c``.

    ``-c experiments/mdan/fi.yaml`` whose file says ``compose: [../model/mdan.yaml, ../data/fi.yaml,
    ../trainer/paper.yaml]`` becomes ``-c .../model/mdan.yaml -c .../data/fi.yaml -c .../trainer/paper.yaml
    -c experiments/mdan/fi.yaml``: the parts load in order and the file's own keys override them
    (docs/design.md, "Configs from parts"). Parts may compose parts.
    """

    def expand(path: Path, seen: tuple[Path, ...]) -> list[str]:
        if path.resolve() in seen:
            raise SystemExit(f"error: {path} composes itself")
        out: list[str] = []
        parts = _compose_list(path)
        for part in parts:
            out += expand(part, (*seen, path.resolve()))
        # The relative names are spent once loaded: the saved config.yaml, rerun from the run folder,
        # must not look for them there (the files used are listed under `config`).
        return [*out, "-c", str(path), *(["--compose", "null"] if parts else [])]

    result: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-c", "--config") and i + 1 < len(argv):
            result += expand(Path(argv[i + 1]), ())
            i += 2
            continue
        if arg.startswith("--config="):
            result += expand(Path(arg.split("=", 1)[1]), ())
        else:
            result.append(arg)
        i += 1
    return result


def composed(path: str | Path) -> dict[str, Any]:
    """The experiment file with its parts merged in (dicts merged key by key, later wins)."""

    def merge(base: dict, top: dict) -> dict:
        out = dict(base)
        for key, value in top.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    args = expand_compositions(["-c", str(path)])
    spec: dict[str, Any] = {}
    for file in (args[i + 1] for i, a in enumerate(args[:-1]) if a == "-c"):
        spec = merge(spec, yaml.safe_load(Path(file).read_text()) or {})
    spec.pop("compose", None)
    return spec


def _drop_unaccepted_checkpoint_kwargs(model: Any) -> None:
    """Forget values a checkpoint recorded for links the model class does not take.

    With ``--ckpt_path``, LightningCLI re-reads the module's hyperparameters from the checkpoint,
    which include every linked value (``image_size``, ...) even when the class has no such argument.
    """
    if model is None or not model.get("dict_kwargs") or not model.get("class_path"):
        return
    module, name = model["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    accepted: set[str] = set()
    for klass in cls.__mro__:  # follow **kwargs up to the base that finally takes them (EmotionTask)
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        accepted |= {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    else:  # **kwargs all the way up: anything may be taken
        return
    for key in [k for k in model["dict_kwargs"] if k not in accepted]:
        del model["dict_kwargs"][key]


class AffectLabCLI(LightningCLI):
    """LightningCLI with data → model links and one folder per run."""

    def add_arguments_to_parser(self, parser) -> None:
        # Forced callbacks (configured by top-level keys): best/last checkpoints by a validation metric,
        # the LR monitor, predictions.csv for `predict`, confusion matrices and prediction grids, and
        # the RNG states in checkpoints (exact resume).
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LRMonitor, "lr_monitor")
        parser.add_lightning_class_args(PredictionsCSV, "predictions")
        parser.add_lightning_class_args(EmotionMedia, "media")
        parser.add_lightning_class_args(ResumableRNG, "rng")
        parser.add_argument("--compose", type=list[str] | None, default=None,
                            help="part files an experiment file is composed of, loaded before it "
                                 "(written in the file; see docs/design.md, 'Configs from parts')")
        parser.add_argument("--name", type=str | None, default=None,
                            help="run name (default: the experiment file's folder and stem)")
        parser.add_argument("--test_after_fit", type=bool, default=False,
                            help="after fit, test the best checkpoint (by the checkpoint monitor) in the same "
                                 "run: what a cross-validation fold or a seed repeat reports")
        # What the model needs from the data is linked, never typed twice (docs/design.md, "Wiring").
        parser.link_arguments("data.taxonomy_spec", "model.init_args.taxonomy", apply_on="instantiate")
        parser.link_arguments("data.image_size", "model.init_args.image_size", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.init_args.class_weights", apply_on="instantiate")
        parser.link_arguments("data.attributes", "model.init_args.attributes", apply_on="instantiate")
        parser.link_arguments("data.num_channels", "model.init_args.in_channels", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        _drop_unaccepted_checkpoint_kwargs(config.get("model"))
        trainer = config["trainer"]
        run_dir = _run_dir(config)
        os.environ["AFFECTLAB_RUN_DIR"] = str(run_dir)  # inherited by DDP's re-launched ranks
        if not trainer.get("default_root_dir"):
            trainer["default_root_dir"] = str(run_dir)
        run_dir = Path(trainer["default_root_dir"])
        # bf16-mixed on a GPU that supports it, 32-bit elsewhere, unless the config says otherwise.
        if trainer.get("precision") in (None, "auto"):
            gpu = torch.cuda.is_available() and trainer.get("accelerator") in ("auto", "gpu", "cuda")
            trainer["precision"] = "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"
        loggers = trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if isinstance(logger, dict) or hasattr(logger, "init_args"):
                args = logger["init_args"]
                if "save_dir" in args and not args.get("save_dir"):
                    args["save_dir"] = str(run_dir)
                if "name" in args and not args.get("name"):
                    args["name"] = f"{_run_name(config)}/{run_dir.name}"
        if config.get("checkpoint") is not None and not config["checkpoint"].get("dirpath"):
            config["checkpoint"]["dirpath"] = str(run_dir / "checkpoints")


    def after_fit(self) -> None:
        """``--test_after_fit``: the test split, once, with the checkpoint validation chose (never by test)."""
        if not self.config[self.subcommand].get("test_after_fit"):
            return
        checkpoint = self.trainer.checkpoint_callback
        best = getattr(checkpoint, "best_model_path", "") if checkpoint is not None else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)


def main(args: list[str] | None = None, run: bool = True) -> AffectLabCLI | None:
    """Run the CLI on ``args`` (default: the command line); returns it for inspection.

    ``affectlab sweep FILE ...`` goes to the local sweep agent (``experiments/sweep.py``).
    """
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] == "sweep":
        from affectlab.experiments.sweep import main as sweep_main

        code = sweep_main(argv[1:])
        if code:
            raise SystemExit(code)
        return None
    argv = expand_compositions(argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    # Epoch metrics come from torchmetrics, which already reduce across ranks.
    warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")
    # Lightning calling a torch pytree API that torch deprecates: nothing a run can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    os.environ.setdefault("WANDB_SILENT", "true")
    torch.set_float32_matmul_precision("high")
    return AffectLabCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={sub: {"default_config_files": [str(DEFAULTS / "trainer.yaml"), str(DEFAULTS / "logger.yaml")]}
                       for sub in ("fit", "validate", "test", "predict")},
        args=argv,
        run=run,
        auto_configure_optimizers=False,
    )


def console() -> None:
    """Entry point of the ``affectlab`` console script and ``python -m affectlab.experiments``."""
    main()


if __name__ == "__main__":
    console()
