"""The wandb-osh preset: the logging process of an offline run asks the login-node watcher to sync it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from affectlab.callbacks.live_sync import LiveWandbSync


def _trainer(rank_zero: bool = True):
    return SimpleNamespace(is_global_zero=rank_zero, sanity_checking=False)


def test_an_offline_run_asks_for_a_sync_after_validation_and_at_the_end(tmp_path):
    import wandb

    commands = tmp_path / "osh"
    callback = LiveWandbSync(communication_dir=commands)
    callback.on_validation_epoch_end(_trainer(), None)
    assert not list(commands.iterdir()), "no W&B run: nothing to sync"
    run = wandb.init(project="affectlab", dir=str(tmp_path), mode="offline")
    try:
        callback.on_validation_epoch_end(_trainer(rank_zero=False), None)
        assert not list(commands.iterdir()), "only the process that logs asks"
        callback.on_validation_epoch_end(_trainer(), None)
        (command,) = commands.glob("*.command")
        assert Path(command.read_text()) == Path(run.dir).parent.resolve()   # the offline-run-* folder
        command.unlink()
        callback.on_fit_end(_trainer(), None)
        assert len(list(commands.glob("*.command"))) == 1
    finally:
        run.finish()
