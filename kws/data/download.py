"""Download and unpack the Speech Commands archives: resumable, verified, safe, atomic.

In: an archive name (version, train or test set), a destination folder, optionally a mirror
URL. Out: ``DEST/<archive stem>/`` with the extracted dataset, and a marker file recording
what was verified. A second run finds the marker and does nothing.

- Streamed to ``DEST/<archive>.part``; an interrupted download resumes from the bytes already
  there with an HTTP Range request (a server that ignores Range restarts from 0).
- Size and SHA-256 are pinned in code and verified before anything is extracted; a mismatch
  deletes the partial file and raises.
- Extraction refuses absolute paths, ``..``, links that leave the folder, and device files;
  it goes to a temporary folder that is renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kws.fsutil import check_output_folder, file_sha256

__all__ = ["ARCHIVES", "Archive", "DownloadError", "archive_for", "download_and_extract"]

CHUNK_BYTES = 1 << 20
RETRIES = 5
RETRY_PAUSE_S = 1.0
TIMEOUT_S = 60.0
MARKER = ".kws-download.json"


class DownloadError(Exception):
    """A download or extraction failed; nothing partial was left in the dataset folder."""


@dataclass(frozen=True)
class Archive:
    """One published archive: where it is and what it must hash to."""

    name: str  # file name, e.g. speech_commands_v0.02.tar.gz
    url: str
    size: int | None  # bytes; None where no published value exists
    sha256: str | None

    @property
    def stem(self) -> str:
        return self.name.removesuffix(".tar.gz")


BASE_URL = "http://download.tensorflow.org/data/"
# Sizes and SHA-256 of v0.02 as published in tensorflow-datasets'
# datasets/speech_commands/checksums.tsv; v0.01's SHA-256 as pinned by torchaudio (its size
# and the v0.01 test set's checksum are not published there: pass --sha256 to pin them).
ARCHIVES: dict[tuple[str, bool], Archive] = {
    ("v0.02", False): Archive(
        "speech_commands_v0.02.tar.gz",
        BASE_URL + "speech_commands_v0.02.tar.gz",
        2_428_923_189,
        "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
    ),
    ("v0.02", True): Archive(
        "speech_commands_test_set_v0.02.tar.gz",
        BASE_URL + "speech_commands_test_set_v0.02.tar.gz",
        112_563_277,
        "cc2a00c1147c2254e9be3fa0f779d8c17421dc349b86366567a8edfa9acd51df",
    ),
    ("v0.01", False): Archive(
        "speech_commands_v0.01.tar.gz",
        BASE_URL + "speech_commands_v0.01.tar.gz",
        None,
        "743935421bb51cccdb6bdd152e04c5c70274e935c82119ad7faeec31780d811d",
    ),
    ("v0.01", True): Archive(
        "speech_commands_test_set_v0.01.tar.gz",
        BASE_URL + "speech_commands_test_set_v0.01.tar.gz",
        None,
        None,
    ),
}


def archive_for(
    version: str, *, test_set: bool, url: str | None = None, sha256: str | None = None
) -> Archive:
    """The pinned archive, with an optional mirror URL or checksum override."""
    try:
        archive = ARCHIVES[(version, test_set)]
    except KeyError:
        versions = sorted({v for v, _ in ARCHIVES})
        raise DownloadError(f"unknown version {version!r}; choose one of {versions}") from None
    if sha256 is not None:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower()):
            raise DownloadError(f"--sha256 must be 64 hex digits, got {sha256!r}")
        archive = Archive(archive.name, archive.url, None, sha256.lower())  # size unknown too
    if archive.sha256 is None:
        raise DownloadError(
            f"{archive.name} has no published SHA-256 to verify against; pass --sha256 to pin it"
        )
    if url is not None:
        if urllib.parse.urlparse(url).scheme not in ("http", "https", "ftp", "file"):
            raise DownloadError(f"--url {url!r} is not an http(s), ftp or file URL")
        archive = Archive(archive.name, url, archive.size, archive.sha256)
    return archive


Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


@contextlib.contextmanager
def _local(part: Path, have: int) -> Iterator[None]:
    """A failure to write ``part`` (read-only folder, disk full) is not a network problem:
    no retry, and the message names the file."""
    try:
        yield
    except OSError as e:
        raise DownloadError(
            f"{part}: cannot write ({e.strerror or e}); {have} bytes are kept there, "
            "rerun to resume once it can be written"
        ) from None


def _fetch(archive: Archive, part: Path, progress: Progress | None) -> None:
    """Fill ``part`` with the whole archive, resuming and retrying after dropped connections."""
    failures = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if archive.size is not None and have >= archive.size:
            return
        request = urllib.request.Request(archive.url, headers={"User-Agent": "kws"})
        if have:
            request.add_header("Range", f"bytes={have}-")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                if have and response.status != 206:  # server ignored the Range: start over
                    have = 0
                length = response.headers.get("Content-Length")
                offered = have + int(length) if length else None
                if archive.size is not None and offered is not None and offered != archive.size:
                    raise DownloadError(
                        f"{archive.url}: the server offers {offered} bytes, the published size "
                        f"of {archive.name} is {archive.size}; is --url the right archive?"
                    )
                total = archive.size or offered
                with _local(part, have), part.open("ab" if have else "wb") as out:
                    while chunk := response.read(CHUNK_BYTES):
                        with _local(part, have):
                            out.write(chunk)
                        have += len(chunk)
                        if progress is not None:
                            progress(have, total)
                if total is not None and have < total:  # closed early, with or without a length
                    raise ConnectionError(f"connection closed after {have} of {total} bytes")
                return
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to send: the file is complete
                return
            raise DownloadError(f"{archive.url}: HTTP {e.code} {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:  # dropped connection, timeout, reset
            failures += 1
            if failures > RETRIES:
                raise DownloadError(
                    f"{archive.url}: {e}; gave up after {RETRIES} retries "
                    f"({part.stat().st_size if part.exists() else 0} bytes kept in {part}: "
                    "rerun to resume)"
                ) from None
            time.sleep(RETRY_PAUSE_S * failures)


def _verify(archive: Archive, part: Path) -> None:
    size = part.stat().st_size
    if archive.size is not None and size != archive.size:
        part.unlink()
        raise DownloadError(
            f"{archive.name}: got {size} bytes, expected {archive.size}; the partial file was "
            "removed, rerun to download again"
        )
    got = file_sha256(part)
    if got != archive.sha256:
        part.unlink()
        raise DownloadError(
            f"{archive.name}: SHA-256 {got} does not match the published "
            f"{archive.sha256}; the corrupt file was removed, rerun to download again"
        )


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise DownloadError(f"unsafe path in archive: {member.name!r}")
    if member.isdev() or member.isfifo():
        raise DownloadError(f"device or pipe in archive: {member.name!r}")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = name.parent if member.issym() else PurePosixPath()
        resolved = os.path.normpath(root / base / target)
        if target.is_absolute() or not resolved.startswith(str(root) + os.sep):
            raise DownloadError(
                f"link leaving the folder in archive: {member.name!r} -> {member.linkname!r}"
            )


def _extract(archive_path: Path, dest: Path, marker: str, progress: Progress | None) -> None:
    tmp = dest.with_name(f".{dest.name}.extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive_path, "r:*") as tar:
            members = tar.getmembers()
            root = tmp.resolve()
            for member in members:
                _check_member(member, root)
            for i, member in enumerate(members, 1):
                tar.extract(member, tmp, filter="data")  # refuses what escapes the folder
                if progress is not None:
                    progress(i, len(members))
        (tmp / MARKER).write_text(marker)  # in place before the folder is: never without it
        if dest.exists():
            shutil.rmtree(dest)  # an older download (checked by the caller: it has a marker)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def download_and_extract(
    archive: Archive,
    dest: Path | str,
    *,
    keep_archive: bool = False,
    on_download: Progress | None = None,
    on_extract: Progress | None = None,
) -> tuple[Path, bool]:
    """Make ``dest/<stem>/`` hold the verified, extracted archive.

    Returns (folder, whether anything was done). Idempotent: a folder whose marker records
    the same SHA-256 is left alone.
    """
    dest = Path(dest)
    target = dest / archive.stem
    marker = target / MARKER
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()).get("sha256") == archive.sha256:
            return target, False
    if target.exists() and not marker.exists():
        raise DownloadError(
            f"{target}: exists and was not written by `kws data download` (no {MARKER}); "
            "move it away or choose another --dest, so nothing of yours is replaced"
        )
    check_output_folder(dest)  # before fetching, not after
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / f"{archive.name}.part"
    complete = dest / archive.name
    if not complete.exists():
        try:
            _fetch(archive, part, on_download)
        except BaseException:
            if created and not any(dest.iterdir()):  # nothing fetched: leave no empty folder
                dest.rmdir()
            raise
        _verify(archive, part)
        os.replace(part, complete)
    else:
        _verify(archive, complete)
    record = {"archive": archive.name, "sha256": archive.sha256, "url": archive.url}
    try:
        _extract(complete, target, json.dumps(record, indent=2), on_extract)
    except (tarfile.TarError, EOFError, OSError) as e:
        problem = " ".join(str(e).split())  # tarfile's multi-line "- method gz: ..." on one line
        raise DownloadError(f"{complete}: cannot extract ({problem})") from None
    except DownloadError as e:
        raise DownloadError(f"{complete}: {e}") from None
    if not keep_archive:
        complete.unlink()
    return target, True
