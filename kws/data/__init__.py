"""Speech Commands (or any folder of keyword recordings): download, index, augment, batch."""

from kws.data.augment import AugmentConfig, NoiseBank, augment_clips, spec_augment
from kws.data.download import ARCHIVES, Archive, DownloadError, archive_for, download_and_extract
from kws.data.index import (
    BACKGROUND_NOISE,
    LABEL_SILENCE,
    LABEL_UNKNOWN,
    SPLITS,
    DataError,
    DataIndex,
    Example,
    IndexOptions,
    build_index,
    speaker_of,
    which_set,
)
from kws.data.source import (
    SplitClips,
    TrainingBatches,
    default_cache_dir,
    fixed_features,
    load_noise,
    load_split,
)

__all__ = [
    "ARCHIVES",
    "BACKGROUND_NOISE",
    "LABEL_SILENCE",
    "LABEL_UNKNOWN",
    "SPLITS",
    "Archive",
    "AugmentConfig",
    "DataError",
    "DataIndex",
    "DownloadError",
    "Example",
    "IndexOptions",
    "NoiseBank",
    "SplitClips",
    "TrainingBatches",
    "archive_for",
    "augment_clips",
    "build_index",
    "default_cache_dir",
    "download_and_extract",
    "fixed_features",
    "load_noise",
    "load_split",
    "speaker_of",
    "spec_augment",
    "which_set",
]
