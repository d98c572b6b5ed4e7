"""Zoomed crops of restored images side by side, one row per image, for the report's visual comparisons.

The crop is chosen reproducibly: the `size` x `size` window (on a grid of half-window steps) where two of the
row's images differ most in mean absolute value, so that the panel shows where the methods disagree. Each crop is
labelled with its method and its PSNR (dB, RGB) against the row's reference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.fileio import atomic_path


def most_different_window(a: np.ndarray, b: np.ndarray, size: int) -> tuple[int, int]:
    """(y, x) of the `size` px window where images `a` and `b` (H x W x 3) differ most; ties: the first."""
    h, w = a.shape[:2]
    size = min(size, h, w)
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64)).mean(axis=2)
    step = max(1, size // 2)
    starts = [(y, x) for y in range(0, h - size + 1, step) for x in range(0, w - size + 1, step)]
    scores = [diff[y:y + size, x:x + size].mean() for y, x in starts]
    return starts[int(np.argmax(scores))]


def psnr_rgb(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def crop_panel(rows: list[tuple[str, dict[str, np.ndarray], tuple[str, str]]], reference: str, size: int,
               out: Path) -> None:
    """A PNG of one row per (title, {label: image}, compare): every image's crop at the window where the row's two
    images labelled `compare` differ most, titled with its label and PSNR to the row's image labelled `reference`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(images) for _, images, _ in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(2.2 * columns, 2.5 * len(rows)), squeeze=False)
    for row, (title, images, compare) in zip(axes, rows):
        y, x = most_different_window(images[compare[0]], images[compare[1]], size)
        side = min(size, *images[reference].shape[:2])
        for ax, (label, img) in zip(row, images.items()):
            crop = img[y:y + side, x:x + side]
            ax.imshow(crop, interpolation="nearest")
            truth = images[reference][y:y + side, x:x + side]
            score = "" if label == reference else f"\n{psnr_rgb(crop, truth):.2f} dB"
            ax.set_title(f"{label}{score}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[len(images):]:
            ax.axis("off")
        row[0].set_ylabel(f"{title}\n({x}, {y}) +{side}px", fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
