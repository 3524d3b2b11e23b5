"""A mistake a user can fix ends in one message, without a traceback, non-zero, before any data is read.

The command line runs in-process through the same wrapper as the console script
(``run_reporting_errors(main)``); one slow test runs the console script itself, with and without
``AFFECTLAB_DEBUG``.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest

from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.vea import FI
from affectlab.experiments.cli import main
from affectlab.experiments.errors import DEBUG_ENV, InvalidValue, run_reporting_errors
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
def test_invalid_values_are_one_message_before_anything_is_built(fi_sample, capsys, data_reads, built, extra,
                                                                  expected):
    code, lines = run(fit_args(fi_sample, *extra), capsys)
    assert code == 1 and len(lines) == 1 and expected in lines[0], lines
    assert data_reads == [] and built == []  # found in the parsed config


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


@pytest.fixture
def built(monkeypatch):
    """Records every DataModule, model and backbone built (none may be for a wrong root)."""
    import affectlab.modules.backbones as backbones
    from affectlab.modules.classifier import EmotionClassifier

    calls: list[str] = []
    for name, owner in (("data", FI), ("model", EmotionClassifier)):
        real = owner.__init__

        @functools.wraps(real)  # the parser reads the wrapped signature
        def spy(self, *args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(owner, "__init__", spy)
    real_backbone = backbones.build_torchvision

    def backbone(*args, **kwargs):
        calls.append("backbone")
        return real_backbone(*args, **kwargs)

    monkeypatch.setattr(backbones, "build_torchvision", backbone)
    return calls


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
@pytest.mark.parametrize("layout", ["missing", "wrong"])
def test_a_wrong_root_or_layout_names_the_expected_layouts_before_anything_is_built(tmp_path, capsys, built, layout,
                                                                                    subcommand):
    root = tmp_path / "FI"
    if layout == "wrong":
        (root / "photos").mkdir(parents=True)
        (root / "photos" / "a.jpg").write_bytes(b"")
    args = fit_args(root, *([] if subcommand == "fit" else ["--no_checkpoint", "true"]))
    code, lines = run([subcommand, *args[1:]], capsys)
    assert code == 1 and len(lines) == 1
    assert f"{root} does not look like a FI release" in lines[0]
    assert built == []  # reported from the parsed config: no DataModule, model or backbone was built
    assert not (tmp_path / "runs").exists()  # nor a run folder


def test_the_spy_sees_what_a_good_root_builds(fi_sample, built):
    main(fit_args(fi_sample)[1:], run=False)
    assert built == ["data", "model", "backbone"]


def test_the_early_check_lists_no_image_and_accepts_what_the_reader_reads(fi_sample, tmp_path, monkeypatch):
    import affectlab.datamodules.vea.layouts as layouts
    from affectlab.datamodules.fashion_mnist import DEBIAN_DIR, FashionMNIST, FashionMNISTError

    def walk(*args, **kwargs):
        raise AssertionError("the early check must not list the images")

    monkeypatch.setattr(layouts, "relative_images", walk)
    FI.check_arguments({"root": str(fi_sample), "batch_size": 2, "num_workers": 0, "image_size": 32})
    if DEBIAN_DIR.is_dir():  # the Debian package is found whatever the root
        FashionMNIST.check_arguments({"root": str(tmp_path / "nowhere")})
    else:
        with pytest.raises(FashionMNISTError):
            FashionMNIST.check_arguments({"root": str(tmp_path / "nowhere")})
    write_sample(FashionMNIST, tmp_path / "fmnist")  # torchvision's layout
    FashionMNIST.check_arguments({"root": str(tmp_path / "fmnist")})


def test_an_error_that_is_not_a_user_error_keeps_its_traceback(fi_sample, monkeypatch, capsys):
    def internal(cls, args):
        raise ValueError("an internal check, not the user's")

    monkeypatch.setattr(FI, "check_arguments", classmethod(internal))
    with pytest.raises(ValueError, match="an internal check"):
        run_reporting_errors(main, fit_args(fi_sample))
    assert "affectlab: error:" not in capsys.readouterr().err


def test_a_bug_while_handling_a_user_error_keeps_its_traceback(fi_sample, monkeypatch):
    def buggy(cls, args):
        try:
            raise InvalidValue("the user's mistake")
        except InvalidValue:
            raise KeyError("a bug in the handler")  # noqa: B904 (its context is the user's error, on purpose)

    monkeypatch.setattr(FI, "check_arguments", classmethod(buggy))
    with pytest.raises(KeyError):
        run_reporting_errors(main, fit_args(fi_sample))


@pytest.mark.parametrize(("args", "status", "expected"), [
    (["stats", "-c", "nope.yaml"], 1, "the config file nope.yaml does not exist"),
    (["stats", "-c", "experiments/baseline/fi.yaml", "--data.root", "{tmp}/FI"], 1, "does not look like a FI release"),
    (["stats", "-c", "experiments/baseline/fi.yaml", "--data.rooot", "{tmp}"], 1, "FI takes no argument rooot"),
    (["stats", "-c", "experiments/baseline/fi.yaml", "--model.x", "1"], 2, "unrecognised argument --model.x"),
    (["shrink", "{tmp}/FI", "{tmp}/FI-512"], 1, "the release folder"),
    (["shrink"], 2, "the following arguments are required: src, dst"),
], ids=["missing-config", "wrong-root", "misspelled-key", "not-data", "shrink-missing", "shrink-usage"])
def test_affectlab_data_reports_user_errors_in_one_line(tmp_path, capsys, monkeypatch, args, status, expected):
    from affectlab.datamodules.stats import main as data_main

    monkeypatch.chdir(REPO)
    code = data_main([a.replace("{tmp}", str(tmp_path)) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("affectlab-data")]
    assert code == status and "Traceback" not in err
    assert len(lines) == 1 and ": error: " in lines[0] and expected in lines[0], err


def test_affectlab_data_shows_the_traceback_with_debug(tmp_path, monkeypatch):
    from affectlab.datamodules.stats import main as data_main

    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data_main(["shrink", str(tmp_path / "FI"), str(tmp_path / "FI-512")])


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


def test_the_wrapper_passes_the_commands_own_exit_status_on():
    assert run_reporting_errors(lambda: 3) == 3  # e.g. `affectlab` alone prints its help and exits 2
    assert run_reporting_errors(lambda: None) == 0


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
