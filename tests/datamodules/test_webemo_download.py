"""WEBEmo's prepare_data against a local HTTP server: images, dead links, a stalled server, then resume."""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from affectlab.datamodules.samples.pictures import class_image
from affectlab.datamodules.vea import WEBEmo
from affectlab.datamodules.vea.download import read_report
from affectlab.datamodules.vea.layouts import url_file_name

STALL_SECONDS = 8.0
TIMEOUT = 3.0  # generous: the test machine may be busy; the stall outlasts it anyway


def jpeg(label: int) -> bytes:
    buffer = io.BytesIO()
    class_image(label, np.random.default_rng(label), 32, n_classes=25).save(buffer, format="JPEG")
    return buffer.getvalue()


BODIES = {label: jpeg(label) for label in range(25)}


class Server:
    """Serves ``/ok/<label>_<i>.jpg``, answers 404 under ``/dead/``, and stalls on ``/slow/`` until healed."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.stall = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outer.hits.append(self.path)
                if self.path.startswith("/dead/"):
                    self.send_error(404)
                    return
                if self.path.startswith("/slow/") and outer.stall:
                    time.sleep(STALL_SECONDS)  # longer than the client's timeout
                body = BODIES[int(self.path.rsplit("/", 1)[1].split("_")[0])]
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:
                pass  # the stalled answer lands on a socket the client already closed: expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def write_lists(root: Path, base: str) -> dict[str, list[str]]:
    """train25.txt / test25.txt in the release form 'URL LABEL'; returns the URLs by kind."""
    urls = {"ok": [f"{base}/ok/{label}_{i}.jpg" for label in range(25) for i in range(2)],
            "dead": [f"{base}/dead/{label}_0.jpg" for label in (3, 7, 11)],
            "slow": [f"{base}/slow/5_0.jpg"]}
    train = [u for u in urls["ok"] if u.endswith("_0.jpg")] + urls["dead"] + urls["slow"]
    test = [u for u in urls["ok"] if u.endswith("_1.jpg")]
    label = lambda u: u.rsplit("/", 1)[1].split("_")[0]  # noqa: E731
    root.mkdir(parents=True, exist_ok=True)
    (root / "train25.txt").write_text("".join(f"{u} {label(u)}\n" for u in train))
    (root / "test25.txt").write_text("".join(f"{u} {label(u)}\n" for u in test))
    return urls


def test_download_counts_dead_links_survives_a_stall_and_resumes(tmp_path, server):
    root = tmp_path / "WEBEmo"
    urls = write_lists(root, server.url)
    dm = WEBEmo(root=str(root), download_workers=8, download_timeout=TIMEOUT, num_workers=0, cache_index=False)

    start = time.perf_counter()
    first = dm.fetch(progress=False)
    assert time.perf_counter() - start < STALL_SECONDS  # the stall costs one timeout, not the run
    assert first.downloaded == 50 and first.skipped == 0
    assert sorted(first.dead) == sorted(urls["dead"])
    assert first.failed[urls["slow"][0]] == "timeout"
    report = read_report(root / "download_report.tsv")
    assert set(report) == set(urls["dead"]) | set(urls["slow"])
    images = root / "images"
    assert sorted(p.name for p in images.iterdir()) == sorted(url_file_name(u) for u in urls["ok"])  # no partial files

    dm.setup("fit")  # dead and stalled links are missing: counted, left out of the splits
    assert sum(len(v) for v in dm.missing.values()) == 4
    assert sum(len(v) for v in dm.splits.values()) == 50

    server.hits.clear()
    server.stall = False
    second = WEBEmo(root=str(root), download_workers=8, download_timeout=TIMEOUT, cache_index=False)
    second.prepare_data()
    assert server.hits == ["/slow/5_0.jpg"]  # resume: nothing already there, no known-dead link is asked again
    assert (images / url_file_name(urls["slow"][0])).stat().st_size > 0
    assert set(read_report(root / "download_report.tsv")) == set(urls["dead"])

    server.hits.clear()
    third = WEBEmo(root=str(root), retry_dead=True, download_timeout=TIMEOUT)
    result = third.fetch(progress=False)
    assert sorted(server.hits) == sorted(u.removeprefix(server.url) for u in urls["dead"])
    assert result.skipped == 51 and len(result.dead) == 3


def test_an_interrupted_download_leaves_no_file_under_the_final_name(tmp_path, server, monkeypatch):
    from affectlab.datamodules.vea import download

    dest = tmp_path / "x.jpg"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(download.os, "replace", broken_replace)
    why = download.fetch_one(f"{server.url}/ok/1_0.jpg", dest, timeout=2)
    assert why.startswith("error") and not dest.exists() and list(tmp_path.iterdir()) == []


def test_stable_file_names():
    assert url_file_name("http://a/b/c.PNG?x=1") == url_file_name("http://a/b/c.PNG?x=1")
    assert url_file_name("http://a/b/c.PNG?x=1").endswith(".png")
    assert url_file_name("http://a/b/photo").endswith(".jpg")
    assert url_file_name("http://a/1.jpg") != url_file_name("http://a/2.jpg")
