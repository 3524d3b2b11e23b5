"""Checkpoints are data, never code: a crafted pickle, local or served over HTTP, is refused unread.

The crafted file's payload would create a file when unpickled; the file must never appear, and no
error may advise loading with ``weights_only=False``.
"""

from __future__ import annotations

import functools
import random
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from affectlab.experiments.checkpoints import CheckpointError, SafeCheckpointIO, load_url
from affectlab.experiments.cli import main
from affectlab.experiments.errors import run_reporting_errors
from conftest import REPO

DEMO = str(REPO / "experiments" / "baseline" / "demo.yaml")


class Payload:
    """Unpickled, it creates ``marker``: what an attacker's checkpoint would run instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder served on 127.0.0.1; torch.hub's cache kept in the test's folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def crafted(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": Payload(marker)}, path)
    assert not marker.exists()
    return path


def evaluate(root: Path, ckpt: str, capsys) -> tuple[int, str]:
    code = run_reporting_errors(main, ["test", "-c", DEMO, "--data.init_args.root", str(root),
                                       "--data.init_args.image_size", "32", "--data.init_args.num_workers", "0",
                                       "--trainer.accelerator", "cpu", "--trainer.logger", "false",
                                       "--trainer.limit_test_batches", "1", "--ckpt_path", ckpt])
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, ckpt: str) -> None:
    assert code == 1
    line = [text for text in err.splitlines() if text.startswith("affectlab: error:")]
    assert len(line) == 1 and ckpt in line[0], err
    assert "Traceback" not in err
    assert "weights_only=False" not in err and "`False`" not in err  # never advise the unsafe load


def test_a_crafted_checkpoint_from_a_url_is_refused_and_its_payload_never_runs(fi_sample, served, tmp_path, capsys):
    folder, base = served
    marker = tmp_path / "pwned"
    crafted(folder / "evil.ckpt", marker)
    code, err = evaluate(fi_sample, f"{base}/evil.ckpt", capsys)
    assert_refused(code, err, f"{base}/evil.ckpt")
    assert "refused unread" in err
    assert not marker.exists()


def test_a_crafted_local_checkpoint_is_refused_and_its_payload_never_runs(fi_sample, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = crafted(tmp_path / "evil.ckpt", marker)
    code, err = evaluate(fi_sample, str(path), capsys)
    assert_refused(code, err, str(path))
    assert not marker.exists()


@pytest.mark.parametrize(("remote", "seed"), [(False, 0), (False, 2), (False, 20), (False, 195), (True, 195)],
                         ids=["local-unpickling", "local-index", "local-key", "local-unicode", "url-unicode"])
def test_random_bytes_are_not_a_checkpoint(fi_sample, served, tmp_path, capsys, remote, seed):
    folder, base = served
    # Random bytes fail anywhere in torch's unpickler: these seeds raise UnpicklingError, IndexError,
    # KeyError and UnicodeDecodeError there (torch 2.14).
    (folder / "noise.ckpt").write_bytes(random.Random(seed).randbytes(4096))
    ckpt = f"{base}/noise.ckpt" if remote else str(folder / "noise.ckpt")
    code, err = evaluate(fi_sample, ckpt, capsys)
    assert_refused(code, err, ckpt)
    assert "not a checkpoint" in err or "not a PyTorch checkpoint" in err or "refused unread" in err


@pytest.mark.parametrize("ckpt", ["file:///etc/hostname", "ftp://127.0.0.1/x.ckpt", "/no/such/file.ckpt"])
def test_other_sources_and_missing_files_are_refused_before_anything_is_built(fi_sample, capsys, ckpt, monkeypatch):
    import affectlab.experiments.cli as cli

    built = []
    monkeypatch.setattr(cli.AffectLabCLI, "instantiate_classes", lambda self: built.append(1))
    code, err = evaluate(fi_sample, ckpt, capsys)
    assert_refused(code, err, ckpt)
    assert built == []


def test_a_checkpoint_written_by_fit_loads_from_a_url(fi_sample, served, tmp_path, capsys):
    folder, base = served
    code = run_reporting_errors(main, ["fit", "-c", DEMO, "--data.init_args.root", str(fi_sample),
                                       "--data.init_args.image_size", "32", "--data.init_args.num_workers", "0",
                                       "--trainer.accelerator", "cpu", "--trainer.logger", "false",
                                       "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                                       "--trainer.limit_val_batches", "1"])
    assert code == 0
    written = sorted((tmp_path / "runs").rglob("*.ckpt"))
    assert written
    (folder / "model.ckpt").write_bytes(written[-1].read_bytes())
    code, err = evaluate(fi_sample, f"{base}/model.ckpt", capsys)
    assert code == 0, err


def test_the_checkpoint_io_never_loads_with_pickle(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, path)
    io = SafeCheckpointIO(__import__("lightning").fabric.plugins.TorchCheckpointIO())
    assert torch.equal(io.load_checkpoint(path)["state_dict"]["w"], torch.ones(2))
    with pytest.raises(CheckpointError, match="only loaded as weights") as info:
        io.load_checkpoint(path, weights_only=False)
    assert "weights_only=False" not in str(info.value)


def test_two_urls_with_the_same_file_name_are_two_checkpoints(served):
    folder, base = served
    for run, value in (("a", 1.0), ("b", 2.0)):
        (folder / run).mkdir()
        torch.save({"state_dict": {"w": torch.tensor(value)}}, folder / run / "last.ckpt")
    assert load_url(f"{base}/a/last.ckpt")["state_dict"]["w"] == 1.0
    assert load_url(f"{base}/b/last.ckpt")["state_dict"]["w"] == 2.0  # torch.hub alone would serve a's copy
