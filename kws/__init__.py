"""kws — keyword-spotting toolkit: composes the align, features and models stages."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kws")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
