"""PNG grids of inversion results: a labelled figure and the plain pixels next to it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import save_image  # noqa: E402

Cell = tuple[torch.Tensor | None, str]   # 3×H×W uint8 (None: empty) and its title


def save_grid(rows: list[list[Cell]], path: str | Path, row_labels: list[str] | None = None, title: str = "") -> Path:
    """Save ``rows`` of images as ``path`` (labelled) and ``<stem>_pixels.png`` (no labels, exact pixels)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.8 * n_cols + 0.6, 2.1 * n_rows + 0.5), squeeze=False)
    blank = None
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            image, label = row[c] if c < len(row) else (None, "")
            if image is None:
                ax.axis("off")
                continue
            blank = torch.zeros_like(image)
            ax.imshow(image.permute(1, 2, 0).numpy())
            ax.set_title(label, fontsize=8)
        if row_labels and row_labels[r]:
            axes[r][0].set_ylabel(row_labels[r], fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    flat = [(row[c][0] if c < len(row) and row[c][0] is not None else blank) for row in rows for c in range(n_cols)]
    save_image(torch.stack(flat).float() / 255.0, path.with_name(f"{path.stem}_pixels.png"), nrow=n_cols, padding=2)
    return path
