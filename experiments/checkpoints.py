"""Checkpoints are data, never code: every load is ``weights_only=True``, local or remote (docs/reliability.md).

A Lightning checkpoint is a pickle. ``torch.load(weights_only=True)`` only rebuilds tensors and
plain Python values, so a crafted file cannot run anything; Lightning already asks for it on local
files but falls back to full unpickling for ``http(s)://`` URLs. ``SafeCheckpointIO`` wraps the
trainer's checkpoint IO so that every path (``--ckpt_path`` of fit, validate, test and predict,
local or URL) loads as weights only, and turns the failures into one ``CheckpointError`` that names
the file and what is wrong with it — and never suggests turning the protection off.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from jsonargparse import ArgumentError
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

from affectlab.experiments.errors import UserError

REMOTE_SCHEMES = ("http", "https")


class CheckpointError(UserError, ValueError):
    """A checkpoint that is missing, unreachable, not a checkpoint, or not loadable as weights only."""


def is_remote(path: Any) -> bool:
    """Whether ``path`` is a URL (any ``scheme://``, Windows drive letters aside)."""
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", str(path)))


def check_source(path: Any) -> None:
    """Refuse what cannot be a checkpoint before anything is built: a missing file, a folder, a non-http(s) URL."""
    if path is None or str(path) in ("", "last", "best", "hpc", "registry"):  # Lightning's own keywords
        return
    text = str(path)
    if is_remote(text):
        scheme = urlparse(text).scheme.lower()
        if scheme not in REMOTE_SCHEMES:
            raise CheckpointError(f"checkpoint {text}: only local files and http(s) URLs are read, not {scheme}://")
        return
    local = Path(text).expanduser()
    if local.is_dir():
        raise CheckpointError(f"checkpoint {text} is a folder: pass a .ckpt file "
                              "(runs/<experiment>/<run>/checkpoints/best-*.ckpt or last.ckpt)")
    if not local.is_file():
        raise CheckpointError(f"checkpoint {text} does not exist: pass a .ckpt file written by `affectlab fit` "
                              "(runs/<experiment>/<run>/checkpoints/best-*.ckpt or last.ckpt)")


def _reason(err: BaseException) -> str:
    """What is wrong with the file, in a few words, from the loader's error (whose advice is dropped)."""
    text = str(err)
    blocked = re.search(r"GLOBAL ([\w.]+)", text)
    if blocked:
        return (f"it asks to run or build {blocked.group(1)}, which a checkpoint of tensors and plain values "
                "never does; it was refused unread")
    if isinstance(err, (EOFError, zipfile.BadZipFile)) or "PytorchStreamReader" in text or "magic number" in text:
        return "it is not a PyTorch checkpoint (truncated, or another kind of file)"
    if isinstance(err, FileNotFoundError):
        return "it does not exist"
    if isinstance(err, OSError):  # the network, permissions
        first_line = text.strip().splitlines()[0] if text.strip() else ""
        return f"{type(err).__name__}: {first_line}" if first_line else type(err).__name__
    # Random or corrupt bytes fail anywhere in the unpickler (UnpicklingError, UnicodeDecodeError, ...).
    return "it is not a checkpoint of tensors and plain values (corrupt, or another kind of file)"


def load_url(url: str, map_location: Any = None) -> Any:
    """An http(s) checkpoint through torch.hub's cache, as weights only.

    The cached copy is named by a hash of the whole URL as well as its file name: torch.hub would
    otherwise serve ``.../run1/last.ckpt`` for ``.../run2/last.ckpt``.
    """
    import torch

    name = f"{hashlib.sha1(url.encode()).hexdigest()[:16]}-{Path(urlparse(url).path).name or 'checkpoint.ckpt'}"
    return torch.hub.load_state_dict_from_url(url, model_dir=str(Path(torch.hub.get_dir()) / "checkpoints" / "affectlab"),
                                              map_location=map_location, file_name=name, weights_only=True)


@contextmanager
def checkpoint_errors(path: Any) -> Iterator[None]:
    """Turn a failure to read ``path`` (torch, pickle, zip, network) into one ``CheckpointError``."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as err:  # whatever the bytes make the unpickler or the network raise
        if isinstance(err, ArgumentError):  # the hyperparameters it holds do not fit the config: not a load error
            raise
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {_reason(err)}") from err


class SafeCheckpointIO(CheckpointIO):
    """The trainer's checkpoint IO with every load forced to ``weights_only=True``; saving is unchanged."""

    def __init__(self, inner: CheckpointIO) -> None:
        self.inner = inner

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if weights_only is False:
            raise CheckpointError("checkpoints are only loaded as weights (tensors and plain values); "
                                  "remove weights_only: false from the command or config")
        check_source(path)
        with checkpoint_errors(path):
            if is_remote(path):
                return load_url(str(path), map_location)
            return self.inner.load_checkpoint(path, map_location=map_location, weights_only=True)

    def remove_checkpoint(self, path: Any) -> None:
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        self.inner.teardown()
