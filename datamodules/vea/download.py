"""Fetching a URL-list release (WEBEmo) onto disk: concurrent, resumable, honest about dead links.

WEBEmo ships only ``URL LABEL`` lists; many of its 268K stock-photo URLs are dead. ``fetch_images``
downloads with a thread pool (the work is network-bound), skips files already on disk (resume),
writes each image to a temporary name and renames it into place (an interrupted run never leaves
a half-written file under a final name), gives up on a URL after ``timeout`` seconds, and lists
every failure in a tab-separated report. HTTP 4xx answers are *dead* links and are not retried
on the next run (unless ``retry_dead``); timeouts and connection errors are retried.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

log = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (affectlab dataset fetcher)"
CHUNK = 1 << 16


@dataclass
class FetchReport:
    """What a download run did; ``failed`` maps URL → reason (``"dead: HTTP 404"``, ``"timeout"``)."""

    downloaded: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def dead(self) -> list[str]:
        return [url for url, why in self.failed.items() if why.startswith("dead")]

    def summary(self) -> str:
        return (f"{self.downloaded} downloaded, {self.skipped} already there, {len(self.failed)} failed "
                f"({len(self.dead)} dead links)")


def read_report(path: Path) -> dict[str, str]:
    """URL → reason from a previous run's report (empty when there is none)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "\t" in line:
            url, why = line.split("\t", 1)
            out[url] = why
    return out


def write_report(path: Path, failed: dict[str, str]) -> None:
    """The report, atomically: ``URL<TAB>reason`` per failed URL, sorted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    lines = ["# url\treason (dead = HTTP 4xx, not retried; others are retried on the next run)"]
    lines += [f"{url}\t{why}" for url, why in sorted(failed.items())]
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def fetch_one(url: str, dest: Path, timeout: float) -> str | None:
    """Download ``url`` to ``dest`` through a temporary file; ``None`` on success, else the reason.

    ``timeout`` bounds the connection and every read, so a server that stalls mid-answer fails
    the URL instead of the whole run.
    """
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
            while chunk := response.read(CHUNK):
                out.write(chunk)
        if tmp.stat().st_size == 0:
            return "empty answer"
        os.replace(tmp, dest)
        return None
    except urllib.error.HTTPError as err:
        return f"dead: HTTP {err.code}" if 400 <= err.code < 500 else f"HTTP {err.code}"
    except TimeoutError:
        return "timeout"
    except urllib.error.URLError as err:
        return "timeout" if isinstance(err.reason, (TimeoutError, socket.timeout)) else f"error: {err.reason}"
    except (OSError, ValueError) as err:  # connection reset, malformed URL, full disk
        return f"error: {err}"
    finally:
        tmp.unlink(missing_ok=True)


def fetch_images(items: Sequence[tuple[str, Path]], report: Path, workers: int = 16, timeout: float = 10.0,
                 retry_dead: bool = False, progress: bool = True) -> FetchReport:
    """Fetch every ``(url, destination)`` not yet on disk, concurrently; write the failures to ``report``.

    Returns the counts of this run. Destinations already present are skipped without a request;
    URLs the previous report marked dead are skipped too (and stay in the report) unless
    ``retry_dead``.
    """
    previous = read_report(report)
    result = FetchReport()
    todo: dict[str, Path] = {}
    present: dict[Path, set[str]] = {}  # one listing per folder instead of a stat per file
    for url, dest in items:
        if url in todo:
            continue
        if dest.parent not in present:
            present[dest.parent] = set(os.listdir(dest.parent)) if dest.parent.is_dir() else set()
        if dest.name in present[dest.parent]:
            result.skipped += 1
        elif not retry_dead and previous.get(url, "").startswith("dead"):
            result.failed[url] = previous[url]
        else:
            todo[url] = dest
    for folder in {dest.parent for dest in todo.values()}:
        folder.mkdir(parents=True, exist_ok=True)
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
                tqdm(total=len(todo), desc="downloading images", unit="img", disable=not progress) as bar:
            futures = {pool.submit(fetch_one, url, dest, timeout): url for url, dest in todo.items()}
            for future in as_completed(futures):
                url = futures[future]
                why = future.result()
                if why is None:
                    result.downloaded += 1
                else:
                    result.failed[url] = why
                bar.update(1)
                bar.set_postfix(failed=len(result.failed), refresh=False)
    write_report(report, result.failed)
    log.info("image download: %s; failures listed in %s", result.summary(), report)
    return result
