"""`kws data download` end to end against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import io
import random
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kws.cli import app
from kws.data import Archive, DownloadError, download_and_extract
from kws.data import download as dl

runner = CliRunner()


def make_archive(
    path: Path, members: dict[str, bytes], *, links: dict[str, str] | None = None
) -> bytes:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return path.read_bytes()


class Server:
    """Serves one file with Range support; can drop the first connection mid-file,
    corrupt a byte or ignore Range."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.drop_first_after: int | None = None
        self.corrupt_at: int | None = None
        self.ignore_range = False
        self.no_length = False  # no Content-Length: the body ends when the connection does
        self.requests: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                data = bytearray(server.payload)
                if server.corrupt_at is not None:
                    data[server.corrupt_at] ^= 0xFF
                rng = self.headers.get("Range")
                server.requests.append(rng)
                start = 0
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = bytes(data[start:])
                if not server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.drop_first_after is not None and len(server.requests) == 1:
                    self.wfile.write(body[: server.drop_first_after])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # drop the connection mid-file
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/sc.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def dataset(tmp_path: Path) -> Iterator[tuple[Server, Archive]]:
    rng = random.Random(7)
    members = {f"yes/{i:08x}_nohash_0.wav": rng.randbytes(20_000) for i in range(8)}
    members["_background_noise_/white.wav"] = b"n" * 1000
    payload = make_archive(tmp_path / "src.tar.gz", members)
    server = Server(payload)
    archive = Archive("sc.tar.gz", server.url, len(payload), hashlib.sha256(payload).hexdigest())
    yield server, archive
    server.close()


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "RETRY_PAUSE_S", 0.0)


def test_download_verify_extract_and_idempotent(
    tmp_path: Path, dataset: tuple[Server, Archive]
) -> None:
    server, archive = dataset
    folder, did = download_and_extract(archive, tmp_path / "data")
    assert did and folder == tmp_path / "data" / "sc"
    assert (folder / "yes" / "00000003_nohash_0.wav").read_bytes() == random.Random(7).randbytes(
        20_000 * 4
    )[60_000:]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["sc"]  # archive removed
    requests = len(server.requests)
    folder, did = download_and_extract(archive, tmp_path / "data")
    assert not did and len(server.requests) == requests  # second run: nothing fetched


def test_dropped_connection_resumes_with_range(
    tmp_path: Path, dataset: tuple[Server, Archive]
) -> None:
    server, archive = dataset
    server.drop_first_after = 5000
    folder, _ = download_and_extract(archive, tmp_path / "data")
    assert server.requests[0] is None and server.requests[1] == "bytes=5000-"
    assert (folder / "yes" / "00000007_nohash_0.wav").exists()


def test_server_ignoring_range_restarts(tmp_path: Path, dataset: tuple[Server, Archive]) -> None:
    server, archive = dataset
    server.ignore_range = True
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sc.tar.gz.part").write_bytes(server.payload[:3000])
    folder, _ = download_and_extract(archive, tmp_path / "data")
    assert server.requests == ["bytes=3000-"]
    assert (folder / "yes" / "00000000_nohash_0.wav").exists()


def test_corrupted_byte_is_refused_and_removed(
    tmp_path: Path, dataset: tuple[Server, Archive]
) -> None:
    server, archive = dataset
    server.corrupt_at = 1234
    with pytest.raises(DownloadError, match="does not match the published"):
        download_and_extract(archive, tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize(
    ("members", "links", "message"),
    [
        ({"../evil.wav": b"x"}, None, "unsafe path"),
        ({"/etc/evil.wav": b"x"}, None, "unsafe path"),
        ({"yes/a.wav": b"x"}, {"yes/link": "../../outside"}, "link leaving the folder"),
    ],
)
def test_unsafe_archives_are_refused(
    tmp_path: Path, members: dict[str, bytes], links: dict[str, str] | None, message: str
) -> None:
    payload = make_archive(tmp_path / "bad.tar.gz", members, links=links)
    server = Server(payload)
    try:
        archive = Archive(
            "bad.tar.gz", server.url, len(payload), hashlib.sha256(payload).hexdigest()
        )
        with pytest.raises(DownloadError, match=message):
            download_and_extract(archive, tmp_path / "data")
    finally:
        server.close()
    assert not (tmp_path / "data" / "bad").exists()
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".bad")]
    assert not (tmp_path / "evil.wav").exists()


def test_cli_with_mirror_url_and_sha(tmp_path: Path, dataset: tuple[Server, Archive]) -> None:
    server, archive = dataset
    args = [
        "data",
        "download",
        "--dest",
        str(tmp_path / "d"),
        "--url",
        server.url,
        "--sha256",
        archive.sha256,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "SHA-256 verified" in result.output
    assert (tmp_path / "d" / "speech_commands_v0.02" / "yes").is_dir()
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "nothing to do" in again.output
    bad = runner.invoke(
        app, ["data", "download", "--dest", str(tmp_path / "e"), "--url", server.url]
    )
    assert (
        bad.exit_code == 2
        and "the published size of speech_commands_v0.02.tar.gz is 2428923189" in bad.output
    )
    unpublished = runner.invoke(
        app, ["data", "download", "--dest", str(tmp_path / "f"), "--version", "v0.01", "--test-set"]
    )
    assert unpublished.exit_code == 2 and "no published SHA-256" in unpublished.output


def test_unreachable_server_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    archive = Archive("x.tar.gz", "http://127.0.0.1:9/x.tar.gz", None, "0" * 64)
    with pytest.raises(DownloadError, match="gave up after 5 retries"):
        download_and_extract(archive, tmp_path / "data")
    assert not (tmp_path / "data").exists()  # nothing fetched, no empty folder left


def test_a_short_body_without_length_is_resumed(
    tmp_path: Path, dataset: tuple[Server, Archive]
) -> None:
    """With no Content-Length a dropped connection looks like the end of the file; the
    published size tells it apart, and the rest is fetched with Range."""
    server, archive = dataset
    server.no_length, server.drop_first_after = True, 5000
    folder, _ = download_and_extract(archive, tmp_path / "data")
    assert server.requests[:2] == [None, "bytes=5000-"]
    assert (folder / "yes" / "00000007_nohash_0.wav").exists()


def test_a_folder_not_written_by_download_is_never_replaced(
    tmp_path: Path, dataset: tuple[Server, Archive]
) -> None:
    server, archive = dataset
    mine = tmp_path / "data" / "sc" / "mywords" / "take1.wav"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"precious")
    with pytest.raises(DownloadError, match="was not written by `kws data download`"):
        download_and_extract(archive, tmp_path / "data")
    assert mine.read_bytes() == b"precious" and server.requests == []  # refused before fetching
    # a folder it did write (marker) is replaced by a newer download; no marker is ever missing
    folder, _ = download_and_extract(archive, tmp_path / "fresh")
    assert (folder / dl.MARKER).exists()


def test_a_local_write_error_is_not_retried(
    tmp_path: Path, dataset: tuple[Server, Archive]
) -> None:
    server, archive = dataset
    (tmp_path / "data" / "sc.tar.gz.part").mkdir(parents=True)  # cannot be opened for writing
    with pytest.raises(DownloadError, match=r"sc\.tar\.gz\.part: cannot write"):
        download_and_extract(archive, tmp_path / "data")
    assert len(server.requests) == 1  # no retries: it is not the network


def test_url_and_dest_are_checked_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="'notaurl' is not an http"):
        dl.archive_for("v0.02", test_set=False, url="notaurl")
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(
        app,
        ["data", "download", "--dest", str(tmp_path / "afile"), "--url", "http://127.0.0.1:9/x"],
    )
    assert result.exit_code == 2 and "afile: is a file, not a folder" in result.output
