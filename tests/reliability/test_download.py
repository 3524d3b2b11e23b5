"""The WEBEmo downloader trusts nothing it is given: a local HTTP server on 127.0.0.1 serves each case.

http(s) only (a ``file://`` URL and a redirect to one are refused), a size cap, a payload kept
only when it decodes as an image (an HTML page is a failure, with its reason in the report), a
deadline on the whole download (a server that trickles its answer cannot hold a worker), and the
report written under ``runs/`` when the release is read-only.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from affectlab.datamodules.vea import WEBEmo, download
from affectlab.datamodules.vea.download import fallback_report_path, fetch_images, read_report
from affectlab.datamodules.vea.layouts import url_file_name

DEADLINE = 2.0  # seconds per download
CAP = 64 << 10  # bytes


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = png()
HTML = b"<!doctype html><html><body><h1>Photo not found</h1></body></html>"


class Server:
    """One path per case: an image, an HTML page, a huge body (declared and not), a trickle, a redirect."""

    def __init__(self) -> None:
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler) -> None:  # noqa: N802,N805 (http.server's naming)
                self.hits.append(handler.path)
                case = handler.path.split("/")[1]
                if case == "image":
                    self._send(handler, IMAGE, "image/png")
                elif case == "html":
                    self._send(handler, HTML, "text/html; charset=utf-8")
                elif case == "huge":  # declared: refused from the headers
                    handler.send_response(200)
                    handler.send_header("Content-Type", "image/jpeg")
                    handler.send_header("Content-Length", str(256 << 20))
                    handler.end_headers()
                    handler.wfile.write(b"\xff\xd8" + b"\0" * (CAP * 2))
                elif case == "endless":  # undeclared: cut off while reading
                    handler.send_response(200)
                    handler.send_header("Content-Type", "image/jpeg")
                    handler.end_headers()
                    chunk = b"\0" * (16 << 10)
                    for _ in range(4096):
                        handler.wfile.write(chunk)
                elif case == "trickle":  # a byte every 0.2 s: every read is quick, the download never ends
                    handler.send_response(200)
                    handler.send_header("Content-Type", "image/png")
                    handler.send_header("Content-Length", str(len(IMAGE)))
                    handler.end_headers()
                    for byte in IMAGE:
                        handler.wfile.write(bytes([byte]))
                        handler.wfile.flush()
                        time.sleep(0.2)
                elif case == "to-file":
                    handler.send_response(302)
                    handler.send_header("Location", "file:///etc/hostname")
                    handler.end_headers()
                else:
                    handler.send_error(404)

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # answers cut off by the client land on closed sockets: expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def _send(handler, body: bytes, content_type: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


@contextmanager
def read_only(root: Path, monkeypatch):
    """``root`` and its ``images/`` read-only; as the superuser (who ignores modes) writes there are refused too."""
    folders = [root / "images", root]
    for path in folders:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:
        inside = lambda p: Path(p).resolve().is_relative_to(root.resolve())  # noqa: E731
        real_access, real_write = os.access, download.write_report
        monkeypatch.setattr(download.os, "access",
                            lambda p, mode, **kw: False if mode & os.W_OK and inside(p) else real_access(p, mode, **kw))

        def write_report(path, failed):
            if inside(path):
                raise PermissionError(13, "Read-only file system", str(path))
            return real_write(path, failed)

        monkeypatch.setattr(download, "write_report", write_report)
    try:
        yield
    finally:
        for path in reversed(folders):
            path.chmod(stat.S_IRWXU)


def fetch(tmp_path: Path, urls: list[str]):
    images = tmp_path / "images"
    items = [(u, images / url_file_name(u)) for u in urls]
    start = time.perf_counter()
    result = fetch_images(items, tmp_path / "download_report.tsv", workers=4, timeout=DEADLINE, progress=False,
                          max_bytes=CAP)
    return result, time.perf_counter() - start, images


def test_only_a_decodable_image_is_kept_and_every_other_answer_is_a_failure_with_its_reason(tmp_path, server):
    urls = {case: f"{server.url}/{case}/x.jpg" for case in ("image", "html", "huge", "endless", "to-file")}
    urls["file"] = "file:///etc/hostname"
    result, _, images = fetch(tmp_path, list(urls.values()))

    assert result.downloaded == 1
    assert sorted(p.name for p in images.iterdir()) == [url_file_name(urls["image"])]  # nothing else, no .part files
    report = read_report(tmp_path / "download_report.tsv")
    assert set(report) == set(urls.values()) - {urls["image"]}
    assert report[urls["html"]].startswith("dead: not an image (text/html")
    assert report[urls["huge"]].startswith("too large")
    assert report[urls["endless"]].startswith("too large")
    assert report[urls["file"]].startswith("dead: not an http(s) URL")
    assert report[urls["to-file"]].startswith("dead: redirected to a non-http(s) URL")
    assert "/file:" not in "".join(server.hits)  # the file URL itself never became a request


def test_a_trickling_server_is_cut_off_at_the_download_deadline(tmp_path, server):
    url = f"{server.url}/trickle/x.png"  # its whole answer would take len(IMAGE) * 0.2 s
    assert len(IMAGE) * 0.2 > 5 * DEADLINE
    result, elapsed, images = fetch(tmp_path, [url])

    assert result.failed == {url: "timeout"}
    assert elapsed < DEADLINE + 2.0  # the deadline, not the per-read timeout, bounds it
    assert not any(images.iterdir())


def test_a_read_only_release_writes_its_report_under_runs(tmp_path, server, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("AFFECTLAB_RUNS", str(runs))
    root = tmp_path / "WEBEmo"
    (root / "images").mkdir(parents=True)
    present = f"{server.url}/image/0.png"
    (root / "images" / url_file_name(present)).write_bytes(IMAGE)
    dead = f"{server.url}/gone/1.jpg"
    (root / "train25.txt").write_text(f"{present} 0\n{dead} 1\n")
    (root / "test25.txt").write_text(f"{present} 0\n")
    with read_only(root, monkeypatch):
        result = WEBEmo(root=str(root), download_timeout=DEADLINE, num_workers=0, cache_index=False).fetch(progress=False)
        assert result.skipped == 2  # listed in both files
        assert result.failed == {dead: f"not fetched: {root / 'images'} is not writable"}
        assert result.report == fallback_report_path(root / "download_report.tsv")
        assert result.report.is_relative_to(runs) and read_report(result.report) == result.failed
        assert not (root / "download_report.tsv").exists()
        assert server.hits.count("/gone/1.jpg") == 0  # nothing is asked that could not be stored


def test_a_read_only_release_with_every_image_present_needs_no_write(tmp_path, server, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_RUNS", str(tmp_path / "runs"))
    root = tmp_path / "WEBEmo"
    (root / "images").mkdir(parents=True)
    url = f"{server.url}/image/0.png"
    (root / "images" / url_file_name(url)).write_bytes(IMAGE)
    (root / "train25.txt").write_text(f"{url} 0\n")
    (root / "test25.txt").write_text(f"{url} 0\n")
    with read_only(root, monkeypatch):
        result = WEBEmo(root=str(root), num_workers=0, cache_index=False).fetch(progress=False)
        assert result.skipped == 2 and result.failed == {} and result.downloaded == 0  # listed in both files
        assert not (root / "download_report.tsv").exists()
