"""What the toolkit adds around the align stage: the CSV report, the summary table, and the
default number of worker processes."""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

from rich.table import Table

import align
from kws.fsutil import atomic_path


def default_jobs() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


REPORT_FIELDS = ("input", "output", "start_ms", "window_ms", "level", "status", "message")


def write_align_report(results: list[align.AlignResult], path: Path) -> None:
    """One CSV row per input, written atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(REPORT_FIELDS)
        for r in results:
            writer.writerow(
                [
                    r.input,
                    r.output,
                    "" if r.start_ms is None else f"{r.start_ms:.3f}",
                    "" if r.window_ms is None else f"{r.window_ms:g}",
                    "" if r.level is None else f"{r.level:.6f}",
                    r.status.value,
                    r.message,
                ]
            )


def align_summary(results: list[align.AlignResult], seconds: float) -> Table:
    """Files per status, wall time and throughput."""
    counts = Counter(r.status for r in results)
    table = Table(title="kws align", show_edge=False)
    table.add_column("status")
    table.add_column("files", justify="right")
    for status in align.Status:
        if counts[status]:
            table.add_row(status.value, str(counts[status]))
    table.add_row("total", str(len(results)), style="bold")
    done = counts[align.Status.ALIGNED] + counts[align.Status.PADDED]
    rate = done / seconds if seconds > 0 else 0.0
    table.add_row("written/s", f"{rate:.0f} in {seconds:.2f} s", style="dim")
    return table
