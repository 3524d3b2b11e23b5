"""Fetching a URL-list release (WEBEmo) onto disk: concurrent, resumable, honest about dead links.

WEBEmo ships only ``URL LABEL`` lists; many of its 268K stock-photo URLs are dead. ``fetch_images``
downloads with a thread pool (the work is network-bound), skips files already on disk (resume),
writes each image to a temporary name and renames it into place (an interrupted run never leaves
a half-written file under a final name), gives up on a URL after ``timeout`` seconds, and lists
every failure in a tab-separated report. HTTP 4xx answers are *dead* links and are not retried
on the next run (unless ``retry_dead``); timeouts and connection errors are retried.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (affectlab dataset fetcher)"
CHUNK = 1 << 16
SCHEMES = ("http", "https")
#: The largest answer kept (a WEBEmo stock photo is well under 1 MiB).
MAX_BYTES = 32 << 20


@dataclass
class FetchReport:
    """What a download run did; ``failed`` maps URL → reason (``"dead: HTTP 404"``, ``"timeout"``)."""

    downloaded: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    #: where the failures were written (beside the lists, or under runs/ when that folder is read-only)
    report: Path | None = None

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


class _Deadline:
    """A wall-clock limit on one download: when it passes, the download's sockets are shut down.

    A socket timeout bounds each read, not the download: a server that trickles a byte at a time
    (or its headers) would hold a worker for ever. The connections register their socket here.
    """

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                self._shut(sock)

    def left(self) -> float:
        return self.end - time.monotonic()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


_current = threading.local()  # the deadline of the download running on this thread


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _current.deadline.watch(self.sock)


class _TLSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _current.deadline.watch(self.sock)


class _HTTP(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_Connection, req)


class _HTTPS(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_TLSConnection, req, context=self._context)


class _Refused(Exception):
    """A URL or an answer that is never fetched or kept; the message is the report's reason."""


class _HTTPOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme.lower() not in SCHEMES:
            raise _Refused(f"dead: redirected to a non-http(s) URL ({urlsplit(newurl).scheme}://)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HTTP, _HTTPS, _HTTPOnlyRedirects)


def _check_image(path: Path, content_type: str) -> None:
    """Refuse a payload that is not an image (an HTML error page, a script, ...) before it counts."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.verify()
    except Exception as err:  # UnidentifiedImageError, SyntaxError from broken headers, bombs
        kind = content_type.split(";")[0].strip() or "unknown content"
        raise _Refused(f"dead: not an image ({kind}; {type(err).__name__})") from None


def fetch_one(url: str, dest: Path, timeout: float, max_bytes: int = MAX_BYTES) -> str | None:
    """Download ``url`` to ``dest`` through a temporary file; ``None`` on success, else the reason.

    Only http(s) URLs are asked (redirects included); ``timeout`` is the whole download's deadline
    (connection, headers and body together); an answer over ``max_bytes`` is dropped as soon as it
    is known to be; the payload must decode as an image, or it is not kept.
    """
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        return f"dead: not an http(s) URL ({scheme or 'no scheme'})"
    deadline = _current.deadline = _Deadline(timeout)
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with _OPENER.open(request, timeout=timeout) as response, open(tmp, "wb") as out:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                return f"too large ({int(declared)} bytes; the limit is {max_bytes})"
            size = 0
            while chunk := response.read1(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    return f"too large (over {max_bytes} bytes)"
                out.write(chunk)
                if deadline.left() <= 0:
                    return "timeout"
            content_type = response.headers.get("Content-Type", "")
        if deadline.expired:
            return "timeout"
        if size == 0:
            return "empty answer"
        _check_image(tmp, content_type)
        os.replace(tmp, dest)
        return None
    except _Refused as err:
        return str(err)
    except urllib.error.HTTPError as err:
        if 300 <= err.code < 400:  # urllib refuses redirects to other schemes itself
            target = urlsplit((err.headers or {}).get("Location", "")).scheme or "no"
            return f"dead: redirected to a non-http(s) URL ({target}://)"
        return f"dead: HTTP {err.code}" if 400 <= err.code < 500 else f"HTTP {err.code}"
    except TimeoutError:
        return "timeout"
    except urllib.error.URLError as err:
        if isinstance(err.reason, _Refused):
            return str(err.reason)
        return "timeout" if isinstance(err.reason, (TimeoutError, socket.timeout)) or deadline.expired \
            else f"error: {err.reason}"
    except (OSError, ValueError, http.client.HTTPException) as err:  # reset, malformed URL, full disk
        return "timeout" if deadline.expired else f"error: {err}"
    finally:
        deadline.cancel()
        tmp.unlink(missing_ok=True)


def fallback_report_path(report: Path) -> Path:
    """Where the report goes when its folder is read-only: ``$AFFECTLAB_RUNS/.download_reports/<root hash>/``."""
    key = hashlib.sha1(str(report.resolve()).encode()).hexdigest()[:16]
    return Path(os.environ.get("AFFECTLAB_RUNS", "runs")) / ".download_reports" / key / report.name


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (or in its nearest existing parent, which will hold it)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK | os.X_OK)


def fetch_images(items: Sequence[tuple[str, Path]], report: Path, workers: int = 16, timeout: float = 10.0,
                 retry_dead: bool = False, progress: bool = True, max_bytes: int = MAX_BYTES) -> FetchReport:
    """Fetch every ``(url, destination)`` not yet on disk, concurrently; write the failures to ``report``.

    Returns the counts of this run. Destinations already present are skipped without a request;
    URLs the previous report marked dead are skipped too (and stay in the report) unless
    ``retry_dead``. ``timeout`` is each download's deadline, ``max_bytes`` its size limit. When
    the report's folder is read-only, the report is read from and written to
    ``fallback_report_path(report)``; when an image folder is read-only, its missing images are
    reported as not fetched, without a request.
    """
    fallback = fallback_report_path(report)
    previous = read_report(report) if report.exists() or not fallback.exists() else read_report(fallback)
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
        if not _writable(folder):
            log.warning("image download: %s is not writable; its missing images are not fetched", folder)
            for url in [u for u, d in todo.items() if d.parent == folder]:
                result.failed[url] = f"not fetched: {folder} is not writable"
                del todo[url]
            continue
        folder.mkdir(parents=True, exist_ok=True)
    if todo:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
                tqdm(total=len(todo), desc="downloading images", unit="img", disable=not progress) as bar:
            futures = {pool.submit(fetch_one, url, dest, timeout, max_bytes): url for url, dest in todo.items()}
            for future in as_completed(futures):
                url = futures[future]
                why = future.result()
                if why is None:
                    result.downloaded += 1
                else:
                    result.failed[url] = why
                bar.update(1)
                bar.set_postfix(failed=len(result.failed), refresh=False)
    result.report = report
    if result.failed != previous or not (report.exists() or fallback.exists()):
        try:
            write_report(report, result.failed)
        except OSError:  # a read-only release: the report goes under runs/
            result.report = fallback
            write_report(fallback, result.failed)
    elif not report.exists():
        result.report = fallback
    log.info("image download: %s; failures listed in %s", result.summary(), result.report)
    return result
