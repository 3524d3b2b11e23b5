"""What a run really logged, read back from its own files without a network.

An offline W&B run keeps everything it logged in ``<run folder>/wandb/offline-run-*/run-<id>.wandb``:
a LevelDB-style log (32 KiB blocks of checksummed, possibly fragmented records) whose records are
W&B's ``Record`` protocol buffers. :func:`logged_keys` reads its history records and says which
keys were logged and, for media, of which type (``images/separated``, ``table-file``, ...). The
run folder's ``metrics.json`` (``affectlab.callbacks.metrics_file``), when there, adds its scalars.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from affectlab.experiments.errors import InvalidValue

_FILE_HEADER = struct.Struct("<4sHB")   # b":W&B", magic 0xBEE1, version
_RECORD_HEADER = struct.Struct("<IHB")  # checksum, length, type
_BLOCK = 32768
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(path: Path) -> Iterator[bytes]:
    """The whole records of one ``.wandb`` file, fragments joined; an unfinished tail is dropped."""
    data = Path(path).read_bytes()
    ident, magic, _ = _FILE_HEADER.unpack_from(data, 0) if len(data) >= _FILE_HEADER.size else (b"", 0, 0)
    if ident != b":W&B" or magic != 0xBEE1:
        raise InvalidValue(f"{path} is not a W&B run record (no ':W&B' header)")
    pos, pending = _FILE_HEADER.size, b""
    while pos + _RECORD_HEADER.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD_HEADER.size:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = _RECORD_HEADER.unpack_from(data, pos)
        chunk = data[pos + _RECORD_HEADER.size: pos + _RECORD_HEADER.size + length]
        pos += _RECORD_HEADER.size + length
        if len(chunk) < length:
            break
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        else:  # zero padding at the end of a block
            pos += _BLOCK - pos % _BLOCK if pos % _BLOCK else 0


@dataclass
class LoggedKeys:
    """Keys a run logged: ``scalars`` (numbers, any step), ``media`` (key → W&B type), ``config``
    (the config's leaf paths, dotted) and ``files`` (media key → its newest file in the run)."""

    scalars: set[str] = field(default_factory=set)
    media: dict[str, str] = field(default_factory=dict)
    config: set[str] = field(default_factory=set)
    files: dict[str, Path] = field(default_factory=dict)

    def __contains__(self, key: str) -> bool:
        return key in self.scalars or key in self.media

    def update(self, other: LoggedKeys) -> None:
        self.scalars |= other.scalars
        self.media.update(other.media)
        self.config |= other.config
        self.files.update(other.files)

    def table_columns(self, key: str) -> list[str]:
        """The columns of the newest version of a logged ``wandb.Table``."""
        if key not in self.files:
            raise KeyError(f"no table {key!r} was logged")
        return list(json.loads(self.files[key].read_text())["columns"])


def _dotted(name: str, value: object) -> list[str]:
    """A config entry's leaf paths: ``{"model": {"init_args": {"lr": 1}}}`` → ``model.init_args.lr``."""
    if isinstance(value, dict) and value:
        return [path for key, sub in value.items() for path in _dotted(f"{name}.{key}", sub)]
    return [name]


def wandb_record_keys(path: str | Path) -> LoggedKeys:
    """The history (and config) keys of one offline run record ``run-<id>.wandb``."""
    from wandb.proto import wandb_internal_pb2 as pb

    keys, path_of_record = LoggedKeys(), Path(path)
    for payload in _payloads(path_of_record):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            for item in record.history.item:
                path = [item.key] if item.key else list(item.nested_key)
                if len(path) >= 2 and path[-1] in ("_type", "path"):  # one field of a media value
                    value = json.loads(item.value_json)
                    if path[-1] == "_type":
                        keys.media["/".join(path[:-1])] = value
                    else:
                        keys.files["/".join(path[:-1])] = Path(path_of_record).parent / "files" / value
                    continue
                value = json.loads(item.value_json)
                if isinstance(value, dict) and "_type" in value:
                    keys.media["/".join(path)] = value["_type"]
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    keys.scalars.add("/".join(path))
        elif kind in ("config", "run"):
            items = record.config.update if kind == "config" else record.run.config.update
            for item in items:
                name = item.key or ".".join(item.nested_key)
                if not name.startswith("_"):
                    keys.config |= set(_dotted(name, json.loads(item.value_json)))
    keys.scalars = {k for k in keys.scalars if not any(k.startswith(f"{m}/") for m in keys.media)}
    return keys


def run_records(run_dir: str | Path) -> list[Path]:
    """The offline W&B run records under a run folder (one per process that logged)."""
    return sorted(Path(run_dir).glob("wandb/offline-run-*/run-*.wandb"))


def logged_keys(run_dir: str | Path) -> LoggedKeys:
    """Every key a run folder's W&B records and ``metrics.json`` hold."""
    run_dir = Path(run_dir)
    keys = LoggedKeys()
    for record in run_records(run_dir):
        keys.update(wandb_record_keys(record))
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        payload = json.loads(metrics.read_text())
        for entry in [*payload.get("history", []), payload.get("final") or {}]:
            keys.scalars |= {k for k, v in entry.items() if isinstance(v, (int, float))}
    return keys


def history(run_dir: str | Path) -> list[dict[str, object]]:
    """A run folder's logged history, one dict per ``log`` call: scalars as numbers, images and
    tables as the absolute paths of their files (a list for an image group)."""
    from wandb.proto import wandb_internal_pb2 as pb

    rows: list[dict[str, object]] = []
    for path in run_records(run_dir):
        files = path.parent / "files"
        for payload in _payloads(path):
            record = pb.Record()
            record.ParseFromString(payload)
            if record.WhichOneof("record_type") != "history":
                continue
            row: dict[str, object] = {}
            for item in record.history.item:
                parts = [item.key] if item.key else list(item.nested_key)
                value = json.loads(item.value_json)
                if len(parts) >= 2 and parts[-1] == "path":
                    row["/".join(parts[:-1])] = files / value
                elif len(parts) >= 2 and parts[-1] == "filenames":
                    row["/".join(parts[:-1])] = [files / v for v in value]
                elif len(parts) == 1 and isinstance(value, (int, float)) and not isinstance(value, bool):
                    row[parts[0]] = value
            rows.append(row)
    return rows
