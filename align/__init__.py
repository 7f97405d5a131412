"""Stage 1 — the loudest-window aligner.

In a recording of one spoken word the word is the loudest sustained part: slide a window of
the wanted length over |x| and keep the window with the largest sum (running sum, O(n)).
NumPy and soundfile only; never imports TensorFlow.
"""

from align.batch import AUDIO_SUFFIXES, AlignInputError, Job, align_jobs, plan_jobs
from align.core import AlignParameterError, LoudestWindowScanner, loudest_window, window_sums
from align.files import (
    DEFAULT_MIN_LEVEL,
    DEFAULT_WINDOW_MS,
    AlignFileError,
    AlignOptions,
    AlignResult,
    OutputFormat,
    Pad,
    Status,
    align_file,
)

__all__ = [
    "AUDIO_SUFFIXES",
    "DEFAULT_MIN_LEVEL",
    "DEFAULT_WINDOW_MS",
    "AlignFileError",
    "AlignInputError",
    "AlignOptions",
    "AlignParameterError",
    "AlignResult",
    "Job",
    "LoudestWindowScanner",
    "OutputFormat",
    "Pad",
    "Status",
    "align_file",
    "align_jobs",
    "loudest_window",
    "plan_jobs",
    "window_sums",
]
