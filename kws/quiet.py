"""Silencing C and C++ libraries that print to the process's stderr (TensorFlow's start-up
banner, LiteRT's delegate line, TFLM's failed allocations while an arena is searched, the
quantiser's summary): those lines are not for users. Python exceptions still carry errors."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
