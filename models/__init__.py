"""Stage 3 — convolutional keyword models (Keras builders, one architecture per file).

The registry is filled by the model issue; this package never imports `kws`.
"""

from collections.abc import Callable
from typing import Any

MODELS: dict[str, Callable[..., Any]] = {}
