"""The one command line: ``affectlab fit|validate|test|predict -c CONFIG`` (LightningCLI).

``affectlab`` itself is ``experiments/launcher.py``, which answers ``--help``, ``--version`` and
``sweep`` without importing this module. Only wiring lives here (docs/design.md, "Wiring"):

- configs from parts: an experiment file may ``compose:`` model, data and trainer parts, which load
  before it as repeated ``-c``;
- what the model needs from the data is linked, never typed twice;
- every launch resolves its values while parsing, so ``--print_config`` shows what the run uses
  (precision, run folder, checkpoint folder, logger names and tags), and the saved ``config.yaml``
  records them; nothing passes through environment variables between the parser and the run;
- run folders never collide: ``runs/<name>/<date-time-random>/`` is created exclusively; a resume
  (``fit --ckpt_path <run>/checkpoints/...``) continues its run; ``validate``/``test``/``predict``
  write to their own folder beside the run's (``<run>.test-<id>/``);
- ``last.ckpt`` is the state at the end of the last epoch, whatever validation did;
- the data's and the model's own checks of their arguments (a wrong data root or layout, sizes, the
  backbone) run on the parsed config, before any class is built (``check_before_building``);
- evaluations refuse to run without a checkpoint unless asked (``--no_checkpoint true``), and a
  checkpoint of another module class than the config's fails with one line naming both;
- the W&B run holds the whole resolved config, tags/group/job type, and checkpoints on request.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import secrets
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from weakref import proxy

import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from affectlab.callbacks.lr_monitor import LRMonitor
from affectlab.callbacks.media import EmotionMedia
from affectlab.callbacks.predictions import PredictionsCSV
from affectlab.callbacks.rng import ResumableRNG
from affectlab.experiments import DESCRIPTION
from affectlab.experiments.checkpoints import SafeCheckpointIO, check_source, checkpoint_errors

DEFAULTS = Path(__file__).resolve().parent / "defaults"
RUNS = Path(os.environ.get("AFFECTLAB_RUNS", "runs"))
EVALUATIONS = ("validate", "test", "predict")


class UsageError(SystemExit):
    """A mistake in what was asked: exits non-zero with one line, no traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(f"affectlab: error: {message}")


# -- configs from parts ------------------------------------------------------------------------------------
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


# -- run folders ------------------------------------------------------------------------------------------
def _run_name(config: Any) -> str:
    """The ``--name`` given, else from the config files: ``<folder>-<stem>`` of the experiment file
    (``baseline-fi``), or ``<model>-<data>`` when composed from parts on the command line (``mdan-fi``)."""
    if config.get("name"):
        return str(config["name"])
    files = [Path(str(p)) for p in (config.get("config") or []) if p]
    files = [p for p in files if p.parent.name != "defaults" and p.name != "config.yaml"] or files
    if not files:
        return "run"
    last = files[-1]
    if last.name == "config.yaml" and last.parent.parent.name:  # a saved run: runs/<name>/<id>/config.yaml
        return last.parent.parent.name
    if last.parent.name in ("model", "data", "trainer"):
        stems = [next((p.stem for p in reversed(files) if p.parent.name == part), None) for part in ("model", "data")]
        return "-".join(s for s in stems if s) or last.stem
    return f"{last.parent.name}-{last.stem}" if last.parent.name else last.stem


def new_run_id() -> str:
    """Date and time to the second, then random hex: sorts by start, unique across simultaneous starts."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _launch_rank() -> int:
    """This process's rank as its launcher set it (Lightning's DDP children, torchrun, SLURM); 0 alone."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def _shared_launch_id() -> str | None:
    """The id every rank of a torchrun launch or of a SLURM job step knows without talking to the others.

    ``<job id>.<step id>`` under ``srun``: the tasks of a step share it, a requeued job gets it again
    (and resumes from Lightning's ``hpc_ckpt``), and two steps of one job never share a folder.
    """
    elastic = os.environ.get("TORCHELASTIC_RUN_ID")
    if elastic and elastic != "none":
        return elastic
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("SLURM_STEP_ID"):
        return f"{os.environ['SLURM_JOB_ID']}.{os.environ['SLURM_STEP_ID']}"
    return None


def _checkpoint_run(ckpt_path: Any) -> Path | None:
    """The run folder of a checkpoint in ``<run>/checkpoints/``, else ``None``."""
    if not ckpt_path or "://" in str(ckpt_path):
        return None
    path = Path(str(ckpt_path))
    return path.parent.parent if path.parent.name == "checkpoints" else None


def resolve_run_dir(config: Any, subcommand: str | None) -> tuple[Path, bool]:
    """Where this launch writes, and whether that folder is new (to be created exclusively).

    - ranks other than 0 of a launch use the folder rank 0 recorded (``run_dir`` on their command
      line) or the launch's shared id;
    - a ``trainer.default_root_dir`` the user set is the run folder;
    - ``fit --ckpt_path <run>/checkpoints/...`` continues that run;
    - ``validate``/``test``/``predict`` of a run's checkpoint get ``<run>.<subcommand>-<id>`` beside it;
    - anything else is a new run, ``runs/<name>/<id>``, even when started from a saved ``config.yaml``
      (its recorded ``run_dir`` is history, not a destination).
    """
    name = _run_name(config)
    if _launch_rank() > 0 and config.get("run_dir"):
        return Path(config["run_dir"]), False
    root = config["trainer"].get("default_root_dir")
    if not _filled(root, config.get("run_dir")):
        return Path(root), False  # the user's (or the sweep agent's) folder for this run
    shared = _shared_launch_id()
    ckpt_run = _checkpoint_run(config.get("ckpt_path"))
    if subcommand in EVALUATIONS:
        if ckpt_run is not None:
            return ckpt_run.parent / f"{ckpt_run.name}.{subcommand}-{shared or new_run_id()}", shared is None
        return RUNS / name / f"{shared or new_run_id()}.{subcommand}", shared is None
    if ckpt_run is not None:
        return ckpt_run, False
    return RUNS / name / (shared or new_run_id()), shared is None


def _filled(value: Any, previous: Any) -> bool:
    """Whether a value is for the CLI to fill: unset, or what it filled for the recorded run."""
    return value in (None, "") or (previous is not None and value == previous)


def resolve(config: Any, subcommand: str | None) -> bool:
    """Fill in what the run will use, in the config itself (what --print_config shows and config.yaml keeps).

    Precision (bf16-mixed on a GPU that supports it, else 32-bit), the run folder (``run_dir``,
    ``trainer.default_root_dir``), the checkpoint folder, and the loggers' folder, name, tags, group
    and job type. Values the user set are kept; values the CLI filled for a previous run (a rerun of a
    saved ``config.yaml``) are filled anew. Returns whether the run folder is a new one.
    """
    trainer = config["trainer"]
    previous = Path(config["run_dir"]) if config.get("run_dir") else None
    run_dir, new = resolve_run_dir(config, subcommand)
    config["run_dir"] = str(run_dir)
    name = _run_name(config)
    if _filled(trainer.get("default_root_dir"), str(previous) if previous else None):
        trainer["default_root_dir"] = str(run_dir)
    if trainer.get("precision") in (None, "auto"):
        gpu = torch.cuda.is_available() and trainer.get("accelerator") in ("auto", "gpu", "cuda")
        trainer["precision"] = "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"
    checkpoint = config.get("checkpoint")
    if checkpoint is not None and _filled(checkpoint.get("dirpath"), str(previous / "checkpoints") if previous else None):
        checkpoint["dirpath"] = str(run_dir / "checkpoints")
    _resolve_loggers(config, subcommand, run_dir, previous, name)
    return new


# -- checkpoints ------------------------------------------------------------------------------------------
class LastEpochCheckpoint(Callback):
    """``last.ckpt``: the state at the end of every training epoch, whatever validation did.

    Lightning's ``save_last`` writes ``last.ckpt`` alongside a monitored save, so an epoch that is
    not a new best may leave it older than the last epoch. This callback runs after the monitored
    ``ModelCheckpoint`` (``primary``) and overwrites ``last.ckpt`` at the end of every training epoch,
    after validation; it keeps ``primary.last_model_path`` pointing at it and tells the loggers, so
    W&B's ``log_model`` uploads the best and the last checkpoint alike.
    """

    def __init__(self, primary: ModelCheckpoint) -> None:
        self.primary = primary

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking or self.primary.dirpath is None:
            return
        path = os.path.join(self.primary.dirpath, f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}")
        self.primary.last_model_path = path  # before saving: the checkpoint's own state names it
        trainer.save_checkpoint(path, self.primary.save_weights_only)  # every rank calls, rank 0 writes
        for logger in trainer.loggers:
            logger.after_save_checkpoint(proxy(self.primary))


def check_checkpoint_class(config: Any, subcommand: str | None) -> None:
    """Refuse a checkpoint whose module class is not the config's (one line naming both).

    Runs while parsing, before Lightning reads the checkpoint's hyperparameters into the config
    (which would silently replace the config's model with the checkpoint's).
    """
    ckpt_path = config.get("ckpt_path")
    check_source(ckpt_path)
    if not ckpt_path or "://" in str(ckpt_path) or not Path(str(ckpt_path)).is_file():
        return
    wanted = (config.get("model") or {}).get("class_path")
    with checkpoint_errors(ckpt_path):
        hparams = torch.load(str(ckpt_path), weights_only=True, map_location="cpu").get("hyper_parameters") or {}
    found = hparams.get("_class_path")
    if wanted and found and found != wanted:
        raise UsageError(f"the checkpoint {ckpt_path} holds a {found}, but the config's model is {wanted}; "
                         f"use the config the checkpoint was trained with (its run folder's config.yaml)")


def check_before_building(config: Any) -> None:
    """The data's and the model's own cheap checks of their arguments (``check_arguments``).

    A DataModule or LightningModule may declare ``check_arguments(args)``, a classmethod given its
    parsed ``init_args``: a wrong ``--data.root`` (or one whose layout is wrong), a size no run can
    use or an unknown backbone then fails in the time the parser takes, for ``fit``, ``validate``,
    ``test`` and ``predict`` alike, instead of after the model and the trainer are built. The
    classes are the ones the parser already imported. The data is checked first.
    """
    for key in ("data", "model"):
        section = config.get(key)
        class_path = section.get("class_path") if section is not None else None
        if not class_path:
            continue
        module, name = class_path.rsplit(".", 1)
        check = getattr(getattr(importlib.import_module(module), name, None), "check_arguments", None)
        if check is not None:
            args = section.get("init_args")
            check(args.as_dict() if hasattr(args, "as_dict") else dict(args or {}))


def refuse_evaluation_without_checkpoint(config: Any, subcommand: str | None) -> None:
    """``validate``/``test``/``predict`` need a checkpoint unless the user says the weights are meant."""
    if subcommand in EVALUATIONS and not config.get("ckpt_path") and not config.get("no_checkpoint"):
        raise UsageError(f"`affectlab {subcommand}` was given no --ckpt_path; pass the checkpoint to evaluate "
                         f"(e.g. runs/<name>/<run>/checkpoints/last.ckpt), or --no_checkpoint true to "
                         f"evaluate the model as built (pretrained or untrained weights) on purpose")


# -- W&B ------------------------------------------------------------------------------------------------------
def _short_class(class_path: Any) -> str | None:
    return str(class_path).rsplit(".", 1)[-1].lower() if class_path else None


def _resolve_loggers(config: Any, subcommand: str | None, run_dir: Path, previous: Path | None, name: str) -> None:
    """Each logger's folder and name from the run; a W&B run's tags, group and job type by default.

    Defaults: group = the experiment name (every run, test and prediction of one experiment together),
    tags = [method, benchmark] (the model's and the data's class names), job type = the subcommand.
    """
    loggers = config["trainer"].get("logger")
    method = _short_class((config.get("model") or {}).get("class_path"))
    benchmark = _short_class((config.get("data") or {}).get("class_path"))
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if not (isinstance(logger, dict) or hasattr(logger, "init_args")):
            continue
        args = logger["init_args"]
        if "save_dir" in args and _filled(args.get("save_dir"), str(previous) if previous else None):
            args["save_dir"] = str(run_dir)
        if "name" in args and _filled(args.get("name"), f"{name}/{previous.name}" if previous else None):
            args["name"] = f"{name}/{run_dir.name}"
        if "WandbLogger" in str(logger.get("class_path", "")):
            if args.get("group") is None:  # W&B's own variables (the sweep agent sets them) come first
                args["group"] = os.environ.get("WANDB_RUN_GROUP") or name
            if args.get("job_type") is None:
                args["job_type"] = os.environ.get("WANDB_JOB_TYPE") or subcommand
            if args.get("tags") is None:
                args["tags"] = [t for t in (method, benchmark) if t]


class RunConfig(SaveConfigCallback):
    """Saves the resolved config as ``config.yaml`` in the run folder and puts all of it in the W&B run.

    A resumed run keeps its first ``config.yaml``; the resume's config is saved beside it as
    ``config.resume-<id>.yaml``. The W&B run config gets every key of the resolved config (trainer,
    callbacks, seed, model, data, ...) and ``config_files``, the files it was composed from.
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        log_dir = trainer.log_dir
        if log_dir and not self.already_saved and Path(log_dir, self.config_filename).exists():
            self.config_filename = f"config.resume-{new_run_id()}.yaml"
        super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        resolved = yaml.safe_load(self.parser.dump(self.config, skip_none=False))
        resolved["config_files"] = [os.fspath(p) for p in (self.config.get("config") or []) if p]
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                logger.experiment.config.update(resolved, allow_val_change=True)


# -- the CLI --------------------------------------------------------------------------------------------------
def _drop_unaccepted_checkpoint_kwargs(model: Any) -> None:
    """Forget values a checkpoint recorded for links the model class does not take.

    With ``--ckpt_path``, LightningCLI re-reads the module's hyperparameters from the checkpoint,
    which include every linked value (``image_size``, ...) even when the class has no such argument.
    """
    if model is None or not model.get("dict_kwargs") or not model.get("class_path"):
        return
    module, name = model["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    for key in [k for k in model["dict_kwargs"] if not _accepts(cls, k)]:
        del model["dict_kwargs"][key]


def _accepts(cls: type, name: str) -> bool:
    """Whether ``cls(...)`` takes ``name``, following ``**kwargs`` passed up the class hierarchy."""
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        if name in params:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return False
    return False


class AffectLabCLI(LightningCLI):
    """LightningCLI with configs from parts, data → model links, and one folder per run."""

    def __init__(self, *args: Any, relaunch_argv: bool = False, **kwargs: Any) -> None:
        self.relaunch_argv = relaunch_argv  # record the run folder in sys.argv for DDP's relaunched ranks
        super().__init__(*args, **kwargs)

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
        parser.add_argument("--run_dir", type=str | None, default=None,
                            help="the run folder, resolved by the CLI (runs/<name>/<id>); a new launch "
                                 "always gets a new one, so a saved config.yaml reruns as a new run")
        parser.add_argument("--no_checkpoint", type=bool, default=False,
                            help="validate/test/predict the model as built (pretrained or untrained weights) "
                                 "without --ckpt_path, on purpose")
        parser.add_argument("--test_after_fit", type=bool, default=False,
                            help="after fit, test the best checkpoint (by the checkpoint monitor) in the same "
                                 "run: what a cross-validation fold or a seed repeat reports")
        # What the model needs from the data is linked, never typed twice (docs/design.md, "Wiring").
        parser.link_arguments("data.taxonomy_spec", "model.init_args.taxonomy", apply_on="instantiate")
        parser.link_arguments("data.image_size", "model.init_args.image_size", apply_on="instantiate")
        parser.link_arguments("data.class_weights", "model.init_args.class_weights", apply_on="instantiate")
        parser.link_arguments("data.attributes", "model.init_args.attributes", apply_on="instantiate")
        parser.link_arguments("data.num_channels", "model.init_args.in_channels", apply_on="instantiate")

    def _subconfig(self) -> Any:
        sub = self.config.get("subcommand")
        return self.config[sub] if sub else self.config

    def parse_arguments(self, parser, args) -> None:
        """Parse, check the data's and the model's arguments and the checkpoint's class, resolve the
        run's values; then ``--print_config`` prints them."""
        args = list(sys.argv[1:] if args is None else args)
        printing = [a for a in args if a == "--print_config" or a.startswith("--print_config=")]
        super().parse_arguments(parser, [a for a in args if a not in printing])
        sub = self.config.get("subcommand")
        if not printing:  # printing a config needs no data on this machine
            check_before_building(self._subconfig())
        check_checkpoint_class(self._subconfig(), sub)
        self.new_run = resolve(self._subconfig(), sub)
        if printing:
            flags = printing[-1].split("=", 1)[1].split(",") if "=" in printing[-1] else []
            subparser = self._parser(sub) if sub else parser
            sys.stdout.write(subparser.dump(self._subconfig(), skip_none="skip_null" in flags))
            raise SystemExit(0)

    def before_instantiate_classes(self) -> None:
        config = self._subconfig()
        sub = self.config.get("subcommand")
        refuse_evaluation_without_checkpoint(config, sub)
        _drop_unaccepted_checkpoint_kwargs(config.get("model"))
        run_dir = Path(config["run_dir"])
        if self.new_run:
            for _ in range(100):  # created exclusively: two launches never share a folder
                try:
                    run_dir.mkdir(parents=True, exist_ok=False)
                    break
                except FileExistsError:
                    resolve(config, sub)  # the taken folder is the previous one: everything is filled anew
                    run_dir = Path(config["run_dir"])
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
        if self.relaunch_argv and _launch_rank() == 0:
            sys.argv.append(f"--run_dir={run_dir}")  # DDP's relaunched ranks parse the same command line

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        trainer = super().instantiate_trainer(**kwargs)
        trainer.strategy.checkpoint_io = SafeCheckpointIO(trainer.strategy.checkpoint_io)
        primary = trainer.checkpoint_callback
        if primary is not None and primary.save_last:
            primary.save_last = False  # LastEpochCheckpoint writes last.ckpt (the config keeps save_last)
            trainer.callbacks.append(LastEpochCheckpoint(primary))
        return trainer

    def _write_metrics(self) -> None:
        if self.trainer.is_global_zero:
            metrics = {k: float(v) for k, v in self.trainer.callback_metrics.items() if v.numel() == 1}
            path = Path(self.trainer.default_root_dir) / "metrics.json"
            path.write_text(json.dumps(metrics, indent=1, sort_keys=True))

    def after_validate(self) -> None:
        self._write_metrics()

    def after_test(self) -> None:
        self._write_metrics()

    # -- checkpoints load as weights only, from every source (experiments/checkpoints.py) ------------
    def _parse_ckpt_path(self) -> None:
        config = self.config.get(self.config.get("subcommand") or "", None)
        path = config.get("ckpt_path") if config is not None else None
        check_source(path)
        with checkpoint_errors(path):  # Lightning reads the hyperparameters here (weights only)
            super()._parse_ckpt_path()


    def after_fit(self) -> None:
        """``--test_after_fit``: the test split, once, with the checkpoint validation chose (never by test)."""
        if not self.config[self.subcommand].get("test_after_fit"):
            return
        checkpoint = self.trainer.checkpoint_callback
        best = getattr(checkpoint, "best_model_path", "") if checkpoint is not None else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)


def main(args: list[str] | None = None, run: bool = True) -> AffectLabCLI | None:
    """Run the CLI on ``args`` (default: the command line); returns it for inspection.

    ``affectlab sweep FILE ...`` goes to the local sweep agent (``experiments/sweep.py``),
    ``affectlab dashboard ...`` to the W&B workspaces (``experiments/dashboard.py``).
    """
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] == "sweep":
        from affectlab.experiments.sweep import main as sweep_main

        code = sweep_main(argv[1:])
        if code:
            raise SystemExit(code)
        return None
    if argv and argv[0] == "dashboard":
        from affectlab.experiments.dashboard import main as dashboard_main

        code = dashboard_main(argv[1:])
        if code:
            raise SystemExit(code)
        return None
    argv = expand_compositions(argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    # Epoch metrics come from torchmetrics, which already reduce across ranks.
    warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")
    # Lightning calling a torch pytree API that torch deprecates: nothing a run can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # The arguments are the command line with its compositions expanded, never a second source.
    warnings.filterwarnings("ignore", message=".*LightningCLI's args parameter is intended to run from within Python.*")
    os.environ.setdefault("WANDB_SILENT", "true")
    torch.set_float32_matmul_precision("high")
    return AffectLabCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=RunConfig,
        # exit_on_error False: errors reach the console as exceptions, one message, no usage dump.
        parser_kwargs={"description": DESCRIPTION, "prog": "affectlab", "exit_on_error": False,
                       **{sub: {"default_config_files": [str(DEFAULTS / "trainer.yaml"), str(DEFAULTS / "logger.yaml")],
                                "exit_on_error": False} for sub in ("fit", "validate", "test", "predict")}},
        args=argv,
        run=run,
        auto_configure_optimizers=False,
        relaunch_argv=args is None,
    )


if __name__ == "__main__":  # the command itself is experiments/launcher.py
    main()
