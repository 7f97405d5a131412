"""Generated non-keyword clips written to a folder: the negatives of `kws train --negatives`,
to listen to, to check, and to train on as ``--extra-unknown``.

In: a keyword dataset folder, the keywords, how many clips, which kinds
(`kws.data.augment.NEGATIVE_KINDS`: onsets, codas, reversed words, splices, consonant
swaps, consonants borrowed from other words), a seed. Only clips of the training split are
cut up (its keywords, and for a borrow its other words): never the validation or testing
speakers, so a model trained on the result is still measured on speakers it has not heard.
Out: ``OUT/<kind>/<n>_<word>[_<word>].wav`` (16-bit, the feature spec's sample rate; ``n``
numbers the clip, the words are those it was cut from) and
``OUT/negatives.json``, what made them. A clip is made as `kws train --negatives` makes it,
scaled to a maximum of 1 like the decoded clips; it is written scaled into [-1, 1] (its
negative side may reach below -1) and decoding scales it back.

Clip ``n`` is drawn from its own generator, seeded by (seed, n): a rerun writes only the
clips that are missing and gives the same files as one uninterrupted run, and a larger
``count`` adds to a folder. Each file is written atomically, so an interrupted run leaves no
half-written clip. The folder is a cache of one recipe: data (by content), keywords, kinds,
seed, feature spec and the generating code are recorded, and a folder made with any other
recipe is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import features
from kws.data.augment import (
    BORROW_KINDS,
    DEFAULT_NEGATIVE_KINDS,
    NEGATIVE_KINDS,
    check_negative_kinds,
    keyword_negative,
)
from kws.data.index import DataError, IndexOptions, build_index
from kws.data.source import FIRST_WORD_ID, code_digest, load_split
from kws.fsutil import atomic_path
from kws.runs import write_json

__all__ = ["NegativesReport", "make_negatives"]

FORMAT = "kws.Negatives/1"
MANIFEST = "negatives.json"
_NUMBERED = re.compile(r"^(\d+)_.*\.wav$")


@dataclass(frozen=True)
class NegativesReport:
    """What a `make_negatives` call found and wrote."""

    out: Path
    written: int  # clips made by this call
    kept: int  # clips numbered below the count that were already there
    per_kind: dict[str, int]  # every clip in the folder, by kind (a smaller count removes none)
    source_clips: int  # keyword clips of the training split they were cut from


def _existing(out: Path) -> dict[int, Path]:
    """The numbered clips already in ``out`` (one sub-folder per kind)."""
    found: dict[int, Path] = {}
    for kind in NEGATIVE_KINDS:
        folder = out / kind
        if folder.is_dir():
            for f in folder.iterdir():
                m = _NUMBERED.match(f.name)
                if m:
                    found[int(m.group(1))] = f
    return found


def _code_digest() -> str:
    """The code that makes the clips: the cached clips' code and this module."""
    h = hashlib.sha256(code_digest().encode() + Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def _check_recipe(out: Path, recipe: dict[str, Any]) -> None:
    """Refuse a folder whose clips were made by another recipe (or is not a negatives
    folder but has files in it)."""
    path = out / MANIFEST
    if not path.exists():
        if out.exists() and any(out.iterdir()):
            raise DataError(f"{out}: not empty and not a kws negatives folder (no {MANIFEST})")
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable ({e})") from None
    differs = [k for k in recipe if saved.get(k) != recipe[k]]
    if differs:
        raise DataError(
            f"{out} holds negatives made with other settings ({', '.join(differs)}); "
            "choose another --out (or delete it)"
        )


def make_negatives(
    data_dir: Path,
    *,
    words: Sequence[str],
    out: Path,
    count: int,
    kinds: Sequence[str] = DEFAULT_NEGATIVE_KINDS,
    seed: int = 0,
    options: IndexOptions | None = None,
    spec: features.FeatureSpec | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> NegativesReport:
    """Write ``count`` generated negatives to ``out``; see the module docstring."""
    import soundfile as sf

    if count < 1:
        raise DataError(f"--count must be >= 1, got {count}")
    if seed < 0:
        raise DataError(f"--seed must be >= 0, got {seed}")
    kinds = check_negative_kinds(kinds, what="--kinds")
    spec = spec or features.preset(features.DEFAULT_PRESET)
    out = Path(out)
    index = build_index(data_dir, words=list(words), options=options or IndexOptions())
    training = load_split(index, "training", spec=spec, cache_dir=cache_dir)
    keyword = training.labels >= FIRST_WORD_ID
    if not keyword.any():
        raise DataError(f"{data_dir}: no keyword clips in the training split to cut up")
    clips, labels = training.clips[keyword], training.labels[keyword]
    words = training.words[keyword]
    other = training.other_words
    donors, donor_words = training.clips[other], training.words[other]
    recipe = {
        "format": FORMAT,
        "data_fingerprint": training.fingerprint,
        "words": list(index.labels[FIRST_WORD_ID:]),
        "kinds": list(kinds),
        "seed": seed,
        "spec": spec.digest(),
        "code": _code_digest(),
    }
    _check_recipe(out, recipe)
    out.mkdir(parents=True, exist_ok=True)
    existing = _existing(out)
    manifest = {**recipe, "data_dir": str(Path(data_dir).resolve())}
    write_json(out / MANIFEST, manifest)  # first: an interrupted folder is still one recipe's
    normalize = spec.clip_norm is features.ClipNorm.MAX
    kept = sum(n in existing for n in range(count))
    written = 0
    for n in range(count):
        if n not in existing:
            made = keyword_negative(
                clips, labels, rng=np.random.default_rng([seed, n]),
                sample_rate_hz=spec.sample_rate_hz, normalize=normalize, kinds=kinds,
                words=words, donors=donors, donor_words=donor_words,
            )  # fmt: skip
            names = [str(words[made.host])]
            if made.kind in BORROW_KINDS:
                names.append(str(donor_words[made.donor]))
            elif made.donor is not None:
                names.append(str(words[made.donor]))
            path = out / made.kind / f"{n:06d}_{'_'.join(names)}.wav"
            path.parent.mkdir(exist_ok=True)
            # a clip scaled to a maximum of 1 may go below -1: scale it into [-1, 1] to write
            # it (reading it back scales it to a maximum of 1 again)
            clip = made.clip / max(1.0, float(np.abs(made.clip).max()))
            with atomic_path(path) as tmp:
                sf.write(tmp, clip, spec.sample_rate_hz, subtype="PCM_16", format="WAV")
            existing[n] = path
            written += 1
        if progress is not None:
            progress(n + 1, count)
    per_kind = Counter(path.parent.name for path in existing.values())
    write_json(out / MANIFEST, {**manifest, "clips": len(existing)})
    return NegativesReport(
        out=out,
        written=written,
        kept=kept,
        per_kind=dict(sorted(per_kind.items())),
        source_clips=int(keyword.sum()),
    )
