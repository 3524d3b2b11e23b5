"""WEBEmo (Panda et al., ECCV 2018): ≈268K stock images, Parrott's hierarchy 2 → 7 → 25.

The release is two lists, ``train25.txt`` and ``test25.txt``, of ``URL LABEL`` lines (label 0–24 in
the official order of ``hierarchy.WEBEMO_LEAVES``). ``prepare_data`` fetches the images into
``images/<sha1-of-url>.<ext>`` (``datamodules/vea/download.py``); dead links are counted, listed in
``download_report.tsv`` (beside the lists, so the watched ``images/`` folder stays unchanged) and
left out of the splits. Validation is carved from train, stratified and seeded (docs/mdan.md uses the official train/test split).
"""

from __future__ import annotations

from typing import Any

from affectlab.datamodules.hierarchy import WEBEMO_LEAVES
from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.download import FetchReport, fetch_images
from affectlab.datamodules.vea.layouts import SplitFiles, URLLists, url_file_name

REPORT = "download_report.tsv"


class WEBEmo(VEADataModule):
    """WEBEmo at three levels: sentiment (2) → secondary emotion (7) → tertiary emotion (25).

    Args:
        download: fetch the images that are not on disk yet in ``prepare_data``.
        download_workers: concurrent downloads.
        download_timeout: seconds one image may take in all (connection, headers and body).
        download_max_mb: the largest answer kept, in MiB; anything that does not decode as an image
            (an HTML page, ...) is not kept either, and its reason is in ``download_report.tsv``.
        retry_dead: also retry the URLs an earlier run found dead (HTTP 4xx).
        **kwargs: see ``VEADataModule``.
    """

    benchmark = "WEBEmo"
    taxonomy_name = "webemo"
    index_order = WEBEMO_LEAVES  # label i of train25.txt / test25.txt
    layouts = (
        URLLists(files={"train": "train25.txt", "test": "test25.txt"}, image_dir="images",
                 description="the WEBEmo release: train25.txt and test25.txt with lines 'URL LABEL' "
                             "(images fetched into images/ by prepare_data)"),
        SplitFiles(),
    )

    def __init__(self, root: str = "data/WEBEmo", download: bool = True, download_workers: int = 32,
                 download_timeout: float = 15.0, download_max_mb: float = 32.0, retry_dead: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
        self.download = download
        self.download_workers = download_workers
        self.download_timeout = download_timeout
        self.download_max_mb = download_max_mb
        self.retry_dead = retry_dead

    def notes(self) -> list[str]:
        """How many train URLs are also listed for test: dropped from train, so test stays unseen."""
        layout = self.find_layout()
        if not isinstance(layout, URLLists):
            return []
        shared = layout.shared_urls(layout.urls(self.root, self.taxonomy, self.label_order))
        return [f"{len(shared)} URLs of {layout.files['train']} are also listed in {layout.files['test']}: "
                f"dropped from train"]

    def prepare_data(self) -> None:
        if self.download:
            self.fetch()

    def fetch(self, progress: bool = True) -> FetchReport | None:
        """Download every listed image that is not on disk yet; ``None`` for the split-file layout."""
        layout = self.find_layout()
        if not isinstance(layout, URLLists):
            return None
        images = self.root / layout.image_dir
        items = [(url, images / url_file_name(url))
                 for rows in layout.urls(self.root, self.taxonomy, self.label_order).values() for url, _ in rows]
        return fetch_images(items, self.root / REPORT, workers=self.download_workers, timeout=self.download_timeout,
                            retry_dead=self.retry_dead, progress=progress,
                            max_bytes=int(self.download_max_mb * (1 << 20)))
