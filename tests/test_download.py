"""The downloader against a real local HTTP server (127.0.0.1, a thread): resume, restart, failure, skip."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.data.csd import Sequence, write_csd
from pipeline.data.download import SOURCES, download, mirror_url
from pipeline.data.folds import load_folds, standard_folds
from pipeline.errors import DataError
from pipeline.io import sha256sum

NAMES = ("words.csd", "covarep.csd", "facet.csd", "labels.csd")
FRAMES = 1500  # COVAREP: 444 kB, several download chunks, so a dropped transfer leaves a partial file
PATHS = {name: urlsplit(url).path for name, url in SOURCES["mosi"].items()}


class Handler(BaseHTTPRequestHandler):
    """Serves `server.files`, honouring Range unless told to ignore it; can fail or drop a transfer."""

    server: FileServer

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        asked = self.headers.get("Range")
        srv.log.append((self.path, asked))
        if self.path in srv.fail:
            self.send_error(500, "broken on purpose")
            return
        if self.path not in srv.files:
            self.send_error(404)
            return
        body = srv.files[self.path]
        start = int(re.fullmatch(r"bytes=(\d+)-", asked).group(1)) if asked and not srv.ignore_range else 0
        if start >= len(body) > 0 and asked:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if self.path in srv.drop_once:  # send half, then hang up: the client sees a short body
            srv.drop_once.discard(self.path)
            payload = payload[: len(payload) // 2]
        self.wfile.write(payload)


class FileServer(ThreadingHTTPServer):
    """A local HTTP server with per-test behaviour switches and a request log."""

    def __init__(self, files: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = files
        self.log: list[tuple[str, str | None]] = []
        self.fail: set[str] = set()
        self.drop_once: set[str] = set()
        self.ignore_range = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests_for(self, name: str) -> list[str | None]:
        """Range headers of the requests for one file, in order."""
        return [asked for path, asked in self.log if path == PATHS[name]]


@pytest.fixture(scope="module")
def bodies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Small, valid computational sequences to serve, keyed by file name."""
    folder = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    out = {}
    for name, dim in zip(NAMES, (1, 74, 47, 1), strict=True):
        features = rng.standard_normal((FRAMES, dim)).astype(np.float32)
        intervals = np.stack([np.arange(FRAMES) / 100, np.arange(1, FRAMES + 1) / 100], axis=1)
        write_csd(folder / name, name.split(".")[0], {"vid": Sequence(features, intervals)}, {"n": "test"})
        out[name] = (folder / name).read_bytes()
    return out


@pytest.fixture
def server(bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # never route the local server through a proxy
    monkeypatch.delenv("HYCON_MIRROR", raising=False)
    srv = FileServer({PATHS[name]: body for name, body in bodies.items()})
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def fetch_all(out: Path, srv: FileServer, retries: int = 2) -> dict:
    return download("mosi", out, mirror=srv.url, retries=retries, timeout=5, backoff=0)


def assert_complete(out: Path, bodies: dict[str, bytes]) -> None:
    """Every final file equals what was served; nothing partial remains."""
    for name in NAMES:
        assert (out / name).read_bytes() == bodies[name], name
    assert not list(out.glob("*.part"))


def test_mirror_url_keeps_path() -> None:
    url = "http://immortal.multicomp.cs.cmu.edu/CMU-MOSI/labels/CMU_MOSI_Opinion_Labels.csd"
    assert mirror_url(url, None) == url
    assert mirror_url(url, "https://mirror.example.org/cmu/") == (
        "https://mirror.example.org/cmu/CMU-MOSI/labels/CMU_MOSI_Opinion_Labels.csd"
    )


def test_full_download(tmp_path: Path, server: FileServer, bodies: dict[str, bytes]) -> None:
    sources = fetch_all(tmp_path, server)
    assert_complete(tmp_path, bodies)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == {name: sha256sum(tmp_path / name) for name in (*NAMES, "folds.json")}
    for name in NAMES:
        assert sources[name] == {
            "url": server.url + PATHS[name],  # the mirror replaced the host and kept the path
            "size": len(bodies[name]),
            "sha256": manifest[name],
        }
        assert server.requests_for(name) == [None]
    assert json.loads((tmp_path / "sources.json").read_text()) == sources
    assert load_folds(tmp_path / "folds.json") == standard_folds("mosi")


def test_resume_after_dropped_connection(
    tmp_path: Path, server: FileServer, bodies: dict[str, bytes]
) -> None:
    server.drop_once.add(PATHS["covarep.csd"])
    fetch_all(tmp_path, server)
    assert_complete(tmp_path, bodies)
    first, second = server.requests_for("covarep.csd")
    assert first is None
    # resumed from the bytes kept before the drop (whole chunks, at most the half that was sent)
    kept = int(re.fullmatch(r"bytes=(\d+)-", second).group(1))
    assert 0 < kept <= len(bodies["covarep.csd"]) // 2


def test_clean_restart_when_range_ignored(
    tmp_path: Path, server: FileServer, bodies: dict[str, bytes]
) -> None:
    stale = b"stale bytes from an earlier, different transfer"
    (tmp_path / "facet.csd.part").write_bytes(stale)
    server.ignore_range = True
    fetch_all(tmp_path, server)
    assert_complete(tmp_path, bodies)  # the 200 body replaced the stale prefix instead of being appended
    assert server.requests_for("facet.csd") == [f"bytes={len(stale)}-"]


def test_complete_part_file_is_finished_without_refetch(
    tmp_path: Path, server: FileServer, bodies: dict[str, bytes]
) -> None:
    # a crash between the last byte and the rename: the server answers 416 and the part is taken as is
    (tmp_path / "words.csd.part").write_bytes(bodies["words.csd"])
    fetch_all(tmp_path, server)
    assert_complete(tmp_path, bodies)
    assert server.requests_for("words.csd") == [f"bytes={len(bodies['words.csd'])}-"]


def test_server_error_names_url_and_target_and_leaves_no_final_file(
    tmp_path: Path, server: FileServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.fail.add(PATHS["labels.csd"])
    out = tmp_path / "raw" / "mosi"
    code = main(["download", "mosi", str(out), "--mirror", server.url, "--retries", "0", "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1  # one clear message
    assert server.url + PATHS["labels.csd"] in err and "HTTP 500" in err
    for name in NAMES:
        assert str(out / name) in err  # the exact place for manually obtained files
    assert not (out / "labels.csd").exists()
    assert not (out / "folds.json").exists()
    # the files that did complete are recorded, so a rerun skips them
    assert set(json.loads((out / "manifest.json").read_text())) == {"words.csd", "covarep.csd", "facet.csd"}


def test_retries_then_fails(tmp_path: Path, server: FileServer) -> None:
    server.fail.add(PATHS["words.csd"])
    with pytest.raises(DataError, match="after 3 attempts: HTTP 500"):
        fetch_all(tmp_path, server, retries=2)
    assert len(server.requests_for("words.csd")) == 3
    assert not (tmp_path / "words.csd").exists()


def test_not_found_is_not_retried(tmp_path: Path, server: FileServer) -> None:
    del server.files[PATHS["words.csd"]]
    with pytest.raises(DataError, match="HTTP 404"):
        fetch_all(tmp_path, server, retries=2)
    assert len(server.requests_for("words.csd")) == 1


def test_offline_names_url(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port with nobody listening: connection refused, as offline
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DataError) as err:
        download("mosi", tmp_path, mirror=f"http://127.0.0.1:{port}", retries=1, timeout=2, backoff=0)
    message = str(err.value)
    assert f"http://127.0.0.1:{port}{PATHS['words.csd']}" in message and "ConnectionError" in message
    assert str(tmp_path / "words.csd") in message
    assert not any(tmp_path.glob("*.csd"))


def test_non_csd_content_is_rejected(tmp_path: Path, server: FileServer) -> None:
    server.files[PATHS["words.csd"]] = b"<html>maintenance page</html>"
    with pytest.raises(DataError, match="not a computational sequence"):
        fetch_all(tmp_path, server)
    assert not (tmp_path / "words.csd").exists() and not (tmp_path / "words.csd.part").exists()


def test_complete_files_are_skipped(tmp_path: Path, server: FileServer, bodies: dict[str, bytes]) -> None:
    fetch_all(tmp_path, server)
    server.log.clear()
    fetch_all(tmp_path, server)
    assert server.log == []
    assert_complete(tmp_path, bodies)


def test_files_placed_by_hand_are_kept(tmp_path: Path, server: FileServer, bodies: dict[str, bytes]) -> None:
    (tmp_path / "covarep.csd").write_bytes(bodies["covarep.csd"])
    sources = fetch_all(tmp_path, server)
    assert server.requests_for("covarep.csd") == []
    assert sources["covarep.csd"]["url"] == "manual"
    (tmp_path / "facet.csd").write_bytes(b"truncated")
    with pytest.raises(DataError, match=r"facet\.csd exists but is not a usable computational sequence"):
        fetch_all(tmp_path, server)


def test_mirror_from_environment(
    tmp_path: Path, server: FileServer, bodies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYCON_MIRROR", server.url)
    assert main(["download", "mosi", str(tmp_path), "--timeout", "5"]) == 0
    assert_complete(tmp_path, bodies)
    assert len(server.log) == len(NAMES)
