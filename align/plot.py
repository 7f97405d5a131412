"""Picture of one alignment: the waveform with the chosen window shaded (matplotlib).

Out: a PNG written atomically (temporary name, then rename; removed on any error or Ctrl-C).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from align.files import AlignFileError, atomic_output

MAX_PLOT_POINTS = 200_000


def plot_alignment(
    source: Path | str, *, start_ms: float, window_ms: float, out: Path | str
) -> None:
    """Draw ``source`` (mono down-mix, decimated for long files) with the window shaded.

    Raises
    ------
    AlignFileError
        ``out`` is a folder or cannot be written.
    """
    out = Path(out)
    if out.is_dir():
        raise AlignFileError(out, "--plot needs a file name, but this is a folder")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, rate = sf.read(source, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    step = max(1, mono.size // MAX_PLOT_POINTS)
    t = np.arange(0, mono.size, step) / rate
    fig, ax = plt.subplots(figsize=(10, 3), layout="constrained")
    ax.plot(t, mono[::step], lw=0.5, color="tab:blue")
    ax.axvspan(
        start_ms / 1000,
        (start_ms + window_ms) / 1000,
        color="tab:orange",
        alpha=0.3,
        label=f"loudest {window_ms:.0f} ms at {start_ms / 1000:.3f} s",
    )
    ax.set(xlabel="time (s)", ylabel="amplitude", title=Path(source).name, ylim=(-1.05, 1.05))
    ax.legend(loc="upper right")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    except OSError as e:
        raise AlignFileError(out, f"cannot write the plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
