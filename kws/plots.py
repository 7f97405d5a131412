"""Training curves and confusion matrices as PNG (matplotlib, written atomically)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kws.fsutil import atomic_path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Path) -> None:
    plt = _pyplot()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_curves(history: Sequence[Any], out: Path) -> None:
    """Loss and accuracy per epoch, training and validation."""
    plt = _pyplot()
    epochs = [h.epoch for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    ax1.plot(epochs, [h.loss for h in history], label="training")
    ax1.plot(epochs, [h.val_loss for h in history], label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.plot(epochs, [h.accuracy for h in history], label="training (augmented)")
    ax2.plot(epochs, [h.val_accuracy for h in history], label="validation")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, out)


def plot_confusion(confusion: np.ndarray, labels: Sequence[str], out: Path, *, title: str) -> None:
    """Rows: true label; columns: predicted; counts in the cells."""
    plt = _pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n), layout="constrained")
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    high = confusion.max() / 2 if confusion.size else 0
    for i in range(n):
        for j in range(n):
            if confusion[i, j]:
                ax.text(
                    j,
                    i,
                    str(confusion[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if confusion[i, j] > high else "black",
                )
    _save(fig, out)


def plot_stream_sweep(
    sweep: Sequence[Any], out: Path, *, title: str, chosen: float | None = None
) -> None:
    """The operating curve of a streaming detector: rates against the threshold, and false
    accepts per hour against the miss rate (each point one threshold); one curve per
    averaging window when the sweep has several, the ``chosen`` window's drawn bold and
    labelled with its thresholds (the others' labels would overlap)."""
    plt = _pyplot()
    windows = sorted({m.average_window_ms for m in sweep})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for window in windows:
        rows = [m for m in sweep if m.average_window_ms == window]
        thresholds = [m.threshold for m in rows]
        if len(windows) == 1:
            ax1.plot(thresholds, [m.correct_pct for m in rows], label="correct")
            ax1.plot(thresholds, [m.wrong_pct for m in rows], label="wrong word")
            ax1.plot(thresholds, [m.miss_pct for m in rows], label="missed")
        else:  # one curve per window: correct only, or the panel is unreadable
            ax1.plot(thresholds, [m.correct_pct for m in rows], label=f"correct ({window:g} ms)")
        labelled = len(windows) == 1 or window == chosen
        line = ax2.plot(
            [m.miss_pct for m in rows],
            [m.false_accepts_per_hour for m in rows],
            marker=".",
            linewidth=2.5 if labelled else 1.2,
            label=f"average over {window:g} ms",
        )
        for m in rows[:: max(1, len(rows) // 8)] if labelled else []:
            ax2.annotate(
                f"{m.threshold:.2f}",
                (m.miss_pct, m.false_accepts_per_hour),
                fontsize=8,
                color=line[0].get_color(),
            )
    ax1.set(xlabel="threshold", ylabel="% of keywords spoken", title="keywords")
    ax1.grid(alpha=0.3)
    ax1.legend()
    ax2.set(xlabel="missed keywords (%)", ylabel="false accepts per hour", title="operating curve")
    ax2.set_yscale("symlog", linthresh=1)
    ax2.grid(alpha=0.3)
    if len(windows) > 1:
        ax2.legend()
    fig.suptitle(title)
    _save(fig, out)
