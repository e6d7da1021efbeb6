"""Download CMU-MOSI / CMU-MOSEI computational sequences into the raw layout, robustly.

`python -m pipeline download mosi|mosei data/raw/<dataset> [--mirror URL] [--retries N] [--timeout S]`

Each file is streamed to `<name>.part` with retries and exponential backoff; a retry resumes with an HTTP
Range request, or restarts from zero when the server ignores Range (200 instead of 206). The file is renamed
to its final name only when complete (size equals Content-Length) and readable as a computational sequence,
so a later stage never takes a truncated file as complete. The CMU server is often down: on failure the
command exits non-zero with one message naming the URL and the exact paths where manually obtained files go;
files already there (downloaded before, or placed by hand) are kept and recorded.

Outputs besides the four `.csd` files: `folds.json` (the SDK's standard folds), `manifest.json` (file name ->
sha256, the contract shared with `synthesize`) and `sources.json` (file name -> url, size, sha256).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

from pipeline.data.csd import CSD
from pipeline.data.folds import standard_folds, write_folds
from pipeline.errors import ConfigError, DataError
from pipeline.io import sha256sum, write_json
from pipeline.layout import FOLDS, FRAME_FILES, LABELS, MANIFEST, WORDS

log = logging.getLogger(__name__)

_HOST = "http://immortal.multicomp.cs.cmu.edu"
# The published URLs, as listed by the CMU SDK's current master (CMU-MultiComp-Lab/CMU-MultimodalSDK,
# standard_datasets/CMU_MOSI/cmu_mosi.py and CMU_MOSEI/cmu_mosei.py). The package-index SDK 0.0.6 names
# older files for MOSI's FACET 4.1 (CMU_MOSI_VisualFacet_4.1.csd) and MOSEI's labels (sentiment only); we
# follow master, whose MOSEI label file has 7 columns with sentiment in column 0 (the aligner reads column 0).
SOURCES: dict[str, dict[str, str]] = {
    "mosi": {
        WORDS: f"{_HOST}/CMU-MOSI/language/CMU_MOSI_TimestampedWords.csd",
        FRAME_FILES["audio"]: f"{_HOST}/CMU-MOSI/acoustic/CMU_MOSI_COVAREP.csd",
        FRAME_FILES["visual"]: f"{_HOST}/CMU-MOSI/visual/CMU_MOSI_Visual_Facet_41.csd",
        LABELS: f"{_HOST}/CMU-MOSI/labels/CMU_MOSI_Opinion_Labels.csd",
    },
    "mosei": {
        WORDS: f"{_HOST}/CMU-MOSEI/language/CMU_MOSEI_TimestampedWords.csd",
        FRAME_FILES["audio"]: f"{_HOST}/CMU-MOSEI/acoustic/CMU_MOSEI_COVAREP.csd",
        FRAME_FILES["visual"]: f"{_HOST}/CMU-MOSEI/visual/CMU_MOSEI_VisualFacet42.csd",
        LABELS: f"{_HOST}/CMU-MOSEI/labels/CMU_MOSEI_Labels.csd",
    },
}
MIRROR_ENV = "HYCON_MIRROR"
CHUNK = 1 << 16  # bytes per write; a dropped connection loses at most the chunk in flight


class _Attempt(Exception):
    """One failed attempt that a retry may fix (connection dropped, server error, short body)."""


class _Fatal(Exception):
    """A failure that retrying cannot fix (HTTP 4xx, or content that is not a computational sequence)."""


def mirror_url(url: str, mirror: str | None) -> str:
    """Replace the scheme and host of `url` with the `mirror` base URL (which may carry a path prefix)."""
    if not mirror:
        return url
    return mirror.rstrip("/") + urlsplit(url).path


def _total_from_content_range(value: str | None) -> int | None:
    """The total size in a Content-Range header (`bytes a-b/total` or `bytes */total`), if known."""
    match = re.search(r"/(\d+)\s*$", value or "")
    return int(match.group(1)) if match else None


def _attempt(session: requests.Session, url: str, part: Path, timeout: float) -> None:
    """One GET of `url` into `part`, resuming from its current size; raise _Attempt/_Fatal on failure."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with session.get(url, stream=True, timeout=timeout, headers=headers) as response:
            if response.status_code == 416:  # nothing left to fetch: complete, or stale beyond the end
                if _total_from_content_range(response.headers.get("Content-Range")) == offset:
                    return
                part.unlink()
                raise _Attempt("stale partial file (HTTP 416); restarting from zero")
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                raise _Fatal(f"HTTP {response.status_code} {response.reason}")
            if response.status_code >= 400:
                raise _Attempt(f"HTTP {response.status_code} {response.reason}")
            if response.status_code == 206:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {offset}-"):
                    part.unlink()
                    raise _Attempt(f"server resumed at '{content_range}', not at byte {offset}; restarting")
                total = _total_from_content_range(content_range)
            else:  # 200: the server sent the whole file (it ignored Range, or none was asked): start over
                offset = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length is not None else None
            with (
                open(part, "ab" if offset else "wb") as handle,
                tqdm(
                    total=total, initial=offset, unit="B", unit_scale=True, desc=part.stem, disable=None
                ) as bar,
            ):
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as err:
        raise _Attempt(f"{type(err).__name__}: {err}") from err
    size = part.stat().st_size
    if total is not None and size != total:
        raise _Attempt(f"incomplete body: {size} of {total} bytes")


def fetch(
    url: str,
    target: Path,
    *,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    session: requests.Session | None = None,
) -> None:
    """Download `url` to `target` via `target.part`: retries with backoff, resume, CSD check, then rename.

    Raises DataError naming the URL on failure; the `.part` file stays for a later resume (unless its content
    is not a computational sequence), and `target` is never written incomplete.
    """
    part = target.with_name(target.name + ".part")
    session = session or requests.Session()
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            log.warning("%s: attempt %d failed (%s); retrying in %.1fs", url, attempt, reason, delay)
            time.sleep(delay)
        try:
            _attempt(session, url, part, timeout)
            break
        except _Attempt as err:
            reason = str(err)
        except _Fatal as err:
            raise DataError(f"could not download {url}: {err}") from err
    else:
        raise DataError(f"could not download {url} after {retries + 1} attempts: {reason}")
    try:
        _check_csd(part)
    except DataError as err:
        part.unlink()
        raise DataError(f"downloaded {url}, but it is not a computational sequence ({err})") from err
    os.replace(part, target)


def _check_csd(path: Path) -> None:
    """Raise DataError unless `path` opens as a computational sequence whose first entry is well formed."""
    with CSD(path) as seq:
        if not len(seq):
            raise DataError(f"{path}: contains no videos")
        seq[seq.videos()[0]]


def _placement_help(dataset: str, out_dir: Path) -> str:
    """Where manually obtained files go, by exact path, and from which published file each comes."""
    files = ", ".join(
        f"{out_dir / name} (from {url.rsplit('/', 1)[-1]})" for name, url in SOURCES[dataset].items()
    )
    return (
        f"To continue without the server, place the manually obtained files at: {files}; then run "
        f"`python -m pipeline download {dataset} {out_dir}` again (files already there are kept)."
    )


def download(
    dataset: str,
    out_dir: str | os.PathLike,
    *,
    mirror: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> dict[str, dict]:
    """Fetch `dataset`'s four sequences into `out_dir`, write folds and checksums; return the sources record.

    A file already present is kept: without a download when it matches the manifest, otherwise (placed by
    hand) after checking that it opens as a computational sequence.
    """
    if dataset not in SOURCES:
        raise DataError(f"unknown dataset '{dataset}': choose one of {sorted(SOURCES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path, sources_path = out / MANIFEST, out / "sources.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    sources = json.loads(sources_path.read_text()) if sources_path.is_file() else {}
    session = requests.Session()
    for name, published in SOURCES[dataset].items():
        url, target = mirror_url(published, mirror), out / name
        if target.is_file():
            digest = sha256sum(target)
            if manifest.get(name) == digest:
                log.info("%s: already complete (sha256 matches the manifest), skipped", target)
                continue
            try:
                _check_csd(target)
            except DataError as err:
                raise DataError(f"{target} exists but is not a usable computational sequence: {err}") from err
            log.warning("%s: present but not from a recorded download; kept as placed by hand", target)
            url = "manual"
        else:
            log.info("downloading %s -> %s", url, target)
            try:
                fetch(url, target, retries=retries, timeout=timeout, backoff=backoff, session=session)
            except DataError as err:
                raise DataError(f"{err}. {_placement_help(dataset, out)}") from err
            digest = sha256sum(target)
        manifest[name] = digest
        sources[name] = {"url": url, "size": target.stat().st_size, "sha256": digest}
        write_json(manifest_path, manifest)  # after every file, so a rerun skips what is complete
        write_json(sources_path, sources)
    write_folds(out / FOLDS, standard_folds(dataset))
    manifest[FOLDS] = sha256sum(out / FOLDS)
    write_json(manifest_path, manifest)
    return sources


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI: `download mosi|mosei OUT_DIR [--mirror URL] [--retries N] [--timeout S]`."""
    parser.add_argument("dataset", choices=sorted(SOURCES), help="which CMU dataset")
    parser.add_argument("out_dir", type=Path, help="output folder, e.g. data/raw/mosi")
    parser.add_argument(
        "--mirror",
        default=None,
        help=f"base URL replacing the CMU host, path kept (default: ${MIRROR_ENV} if set)",
    )
    parser.add_argument("--retries", type=int, default=3, help="retries per file after the first attempt")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server")


def run(args: argparse.Namespace) -> None:
    """Download, then log the recorded files."""
    if args.retries < 0 or args.timeout <= 0:
        raise ConfigError(f"--retries must be >= 0 and --timeout > 0, got {args.retries} and {args.timeout}")
    mirror = args.mirror or os.environ.get(MIRROR_ENV) or None
    sources = download(args.dataset, args.out_dir, mirror=mirror, retries=args.retries, timeout=args.timeout)
    for name, record in sources.items():
        log.info("%s: %d bytes, sha256 %s, from %s", name, record["size"], record["sha256"], record["url"])
