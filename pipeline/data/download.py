"""Make one registry entry present and verified on disk: download, check, extract, mark.

Downloads stream into `data/downloads/<entry>/<file>.part`, resume with an HTTP Range request after an
interruption and become `<file>` once complete. A file's URLs are tried in order, first `<mirror>/<entry>/<file>`
when a user-wide mirror is set (`mirror_base`), and every copy is held to the same checksum: a mismatching copy
is deleted and the next URL tried. Where the registry pins no digest (or only a sha256-prefix) and names the
file's publisher, the digest is read from the publisher itself, never from a mirror: Hugging Face's answer to a
request for the file (`X-Linked-Etag`, the sha256 of an LFS file; else the `ETag`, the git blob sha1 of a small
file) or GitHub's releases API (`assets[].digest`). A file with no digest to check is kept but refused until the
user pins the sha256 printed in the error. Archives are extracted into a hidden folder beside the target,
refusing any member that would land outside it, and renamed into place in one step together with a marker
(`.verified.json`) that records the checksums; the next run finds the marker and touches no network.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple
from urllib.parse import quote, unquote, urlparse

from tqdm import tqdm

from pipeline.data.registry import PUBLISHERS, provided_paths
from pipeline.fileio import atomic_path, usual_mode, write_json

DOWNLOADS = "data/downloads"
MARKER = ".verified.json"
CHUNK = 1 << 20
TIMEOUT_S = 60  # per read: a server that sends nothing for this long is cut off
# A server that trickles (under STALL_BYTES in STALL_WINDOW_S seconds) is cut off too; the .part is kept, so a later
# try resumes it. The per-read timeout alone lets one byte a minute keep a download alive for years.
STALL_WINDOW_S = 60
STALL_BYTES = 64 << 10
# An archive may expand to at most this many times its own size: image archives barely compress (DIV2K's zip of
# PNGs ~1x, a tgz of BMPs a few times), a zip bomb thousands of times.
MAX_EXPANSION = 20
# Tries per mirror; a try that made progress (the .part grew) earns another one, resuming where it stopped.
RESUME_ATTEMPTS = 5
USER_AGENT = "sfd-reproduction-downloader/1.0"
# A user-wide mirror laid out as data/downloads/ (<mirror>/<entry>/<file>), for users behind a proxy, like
# HF_ENDPOINT; the download stage's `download_mirror` param overrides it.
MIRROR_ENV = "SFD_DOWNLOAD_MIRROR"
# "Get a release by tag name" lists each asset's `digest` ("sha256:<hex>", GitHub changelog 2025-06-03); a module
# constant so that tests can serve the API from 127.0.0.1.
GITHUB_API = "https://api.github.com"


class DownloadError(RuntimeError):
    """Base of the errors below; their messages tell the user what to do, so print them without a traceback."""


class MissingSourceError(DownloadError):
    """A source could not be reached or is not in place; the message says where to put it by hand."""


class ChecksumError(DownloadError):
    """A file's size or checksum does not match the registry, or the registry has no checksum to check."""


class UnpinnedChecksumError(ChecksumError):
    """The registry has no checksum for a file; the message gives the downloaded copy's, to pin if trusted."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder."""


class MirrorError(DownloadError):
    """The user-wide mirror setting is not an http(s) base URL."""


class _Interrupted(Exception):
    """The server closed the connection before the whole file arrived."""


class _NoDigest(Exception):
    """The publisher could not be asked, or stated no digest for the file."""


class _Expected(NamedTuple):
    """What a file is held to: (algorithm, value, where it is stated) checks; `missing` says why there are none."""
    checks: list[tuple[str, str, str]]
    missing: str


def mirror_base(param: str | None) -> str | None:
    """The user-wide mirror: the `download_mirror` param, else $SFD_DOWNLOAD_MIRROR, else None.

    An empty string means no mirror, so the param can switch off one set in the environment. Raises MirrorError
    for anything but an http(s) base URL.
    """
    value = param if param is not None else os.environ.get(MIRROR_ENV)
    if not value:
        return None
    url = urlparse(value)
    if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
        origin = "params.yaml download_mirror" if param is not None else f"${MIRROR_ENV}"
        raise MirrorError(f"{origin} must be an http(s) base URL such as https://mirror.example.org/sfd "
                          f"(files are fetched from <mirror>/<entry>/<file>), got {value!r}")
    return value.rstrip("/")


def fetch(name: str, entry: dict, project_root: Path, progress: bool = True, mirror: str | None = None) -> Path:
    """Make `entry` present and verified at `project_root / entry['target']` and return that path.

    `mirror` (see `mirror_base`) is tried before each file's own URLs, as `<mirror>/<name>/<file name>`.
    """
    root = Path(project_root)
    target = root / entry["target"]
    if "manual" in entry:
        return _fetch_manual(name, entry, target)
    if entry["kind"] == "weights":
        return _fetch_weights(name, entry, root, target, progress, mirror)
    return _fetch_dataset(name, entry, root, target, progress, mirror)


# --- entry kinds -----------------------------------------------------------------------------------------

def _fetch_weights(name: str, entry: dict, root: Path, target: Path, progress: bool, mirror: str | None) -> Path:
    spec = entry["files"][0]
    if _file_marker_ok(target, [spec["checksum"]]):
        return target
    where = _where(name, 0)
    if target.exists():
        # Placed by hand, or a crash between the move and the marker: check it but never delete it.
        _verify(target, spec, _expected(spec), where, delete_on_mismatch=False)
    else:
        local = _obtain(name, spec, where, root, progress, mirror)
        _move_atomic(local, target)
    _write_file_marker(target, [spec["checksum"]])
    return target


def _fetch_dataset(name: str, entry: dict, root: Path, target: Path, progress: bool, mirror: str | None) -> Path:
    pins = _pins([spec["checksum"] for spec in entry["files"]])
    marker = _read_json(target / MARKER)
    if marker is not None and marker.get("pins") == pins:
        return target
    if target.exists() and marker is None:
        raise MissingSourceError(
            f"'{name}': {target} exists but was not made by the downloader (no {MARKER} inside), so it is "
            f"neither trusted nor overwritten. Move it away or delete it and run again; to use your own copy, "
            f"place the archive(s) in {_download_dir(root, name)}/ instead.")
    locals_, unpinned = [], []
    for i, spec in enumerate(entry["files"]):
        try:
            locals_.append(_obtain(name, spec, _where(name, i), root, progress, mirror))
        except UnpinnedChecksumError as e:  # fetch the other files too, so one run lists every pin to make
            unpinned.append(str(e))
    if unpinned:
        raise UnpinnedChecksumError("\n".join(unpinned))

    for pattern in (f".{target.name}.partial-*", f".{target.name}.old-*"):
        for stale in target.parent.glob(pattern):
            shutil.rmtree(stale)  # left by a crash; hidden, so never mistaken for a finished folder
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    tmp.chmod(usual_mode(0o777))
    try:
        for spec, local in zip(entry["files"], locals_):
            if spec["archive"] == "none":
                shutil.copyfile(local, tmp / local.name)
            else:
                _extract(local, spec["archive"], tmp)
        _check_provides(name, entry, tmp)
        write_json(tmp / MARKER, {"entry": name, "pins": pins})
        _replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    for local in locals_:
        local.unlink()  # extracted and verified: the archive is no longer needed
    return target


def _fetch_manual(name: str, entry: dict, target: Path) -> Path:
    manual = entry["manual"]
    if entry["kind"] == "weights":
        missing = [] if target.is_file() else [target.name]
    else:
        missing = [p for p in provided_paths(entry) if not _exists(target, p)]
    if missing:
        raise MissingSourceError(
            f"'{name}' cannot be downloaded by script; it must be placed by hand.\n"
            f"  get it from: {manual['page']}\n  {manual['instructions'].strip()}\n"
            f"  put it in:   {target if entry['kind'] == 'dataset' else target.parent}\n"
            f"  missing:     {', '.join(missing)}")
    checksum = manual.get("checksum")
    if checksum is not None and checksum["value"] is not None and not _file_marker_ok(target, [checksum]):
        _verify(target, {}, _expected({"checksum": checksum}), f"entry '{name}', manual", delete_on_mismatch=False)
        _write_file_marker(target, [checksum])
    return target


# --- download --------------------------------------------------------------------------------------------

def _obtain(name: str, spec: dict, where: str, root: Path, progress: bool, mirror: str | None) -> Path:
    """The verified local copy of one registry file, downloading it if it is not already there."""
    local = _download_dir(root, name) / file_name(spec)
    expected = _expected(spec)
    if local.exists():  # placed by hand, or kept from an earlier run
        _verify(local, spec, expected, where, delete_on_mismatch=True)
    else:
        _download(_urls(name, spec, mirror), local, spec.get("size"), progress, name,
                  verify=lambda: _verify(local, spec, expected, where, delete_on_mismatch=True))
    return local


def _urls(name: str, spec: dict, mirror: str | None) -> list[str]:
    if mirror is None:
        return spec["urls"]
    return [f"{mirror.rstrip('/')}/{quote(name)}/{quote(file_name(spec))}"] + spec["urls"]


def _download(urls: list[str], dest: Path, size: int | None, progress: bool, name: str,
              verify: Callable[[], None]) -> None:
    """Download `dest` from the first of `urls` whose copy passes `verify` (which deletes a copy that fails)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures, mismatched = [], False
    for url in urls:
        for _ in range(RESUME_ATTEMPTS):
            before = _size(part)
            try:
                _stream(url, part, size, progress, name)
                os.replace(part, dest)
            except (_Interrupted, http.client.HTTPException, OSError) as e:  # URLError is an OSError
                failure = f"{url}: {_reason(e)}"
                if _size(part) <= before:
                    break  # no progress on this mirror: try the next one
                continue
            try:
                verify()
                return
            except UnpinnedChecksumError:
                raise  # nothing to check against: the next URL could not do better
            except ChecksumError as e:  # a wrong copy (deleted by verify): try the next URL
                failure, mismatched = f"{url}: {e}", True
                break
        failures.append(failure)
    listing = "\n  ".join(failures)
    if mismatched:
        raise ChecksumError(f"'{name}': no URL gave a copy of {dest.name} that matches its checksum.\n  {listing}")
    kept = f" The partial download {part} is kept; the next run resumes it." if part.exists() else ""
    raise MissingSourceError(
        f"'{name}': could not download {dest.name}.\n  {listing}\n"
        f"  Download it by hand and place it at {dest}; the next run verifies and installs it without "
        f"downloading.{kept}")


def _stream(url: str, part: Path, size: int | None, progress: bool, name: str) -> None:
    """Append the rest of `url` to `part` (or restart it if the server ignores Range); raise if cut short."""
    have = _size(part)
    if size is not None and have >= size:
        if have == size:
            return
        part.unlink()
        have = 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:
            raise
        if e.headers.get("Content-Range") == f"bytes */{have}":
            return  # the .part already holds the whole file
        part.unlink()  # the .part is longer than the file: start over
        return _stream(url, part, size, progress, name)
    with response:
        resumed = bool(have) and response.status == 206 and _range_start(response) == have
        if response.status == 206 and not resumed:
            part.unlink()
            raise _Interrupted(f"asked for bytes {have}- but got {response.headers.get('Content-Range')}")
        if not resumed:
            have = 0  # a 200 answer to a Range request: the server ignored it, start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=name, disable=not progress) as bar:
            window_start, window_bytes = time.monotonic(), 0
            while chunk := response.read1(CHUNK):  # what has arrived, so a trickle is seen as one
                f.write(chunk)
                bar.update(len(chunk))
                window_bytes += len(chunk)
                if time.monotonic() - window_start >= STALL_WINDOW_S:
                    if window_bytes < STALL_BYTES:
                        raise _Interrupted(f"stalled: {window_bytes} bytes in the last {STALL_WINDOW_S} s")
                    window_start, window_bytes = time.monotonic(), 0
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"connection closed after {got} of {total} bytes")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _range_start(response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def file_name(spec: dict) -> str:
    """The name a registry file is saved and mirrored under: `filename`, else its first URL's last component."""
    return spec.get("filename") or PurePosixPath(urlparse(spec["urls"][0]).path).name


def _download_dir(root: Path, name: str) -> Path:
    return root / DOWNLOADS / name


# --- verification ----------------------------------------------------------------------------------------

def _expected(spec: dict) -> _Expected:
    """The checks a file is held to: the registry's pin, and the digest its publisher states where one is named.

    The publisher is asked only where the registry pins no full digest (null, or a sha256-prefix the full sha256
    strengthens); when it cannot be asked, the pin alone stays, or nothing (and the file is refused).
    """
    checksum = spec["checksum"]
    checks = [] if checksum["value"] is None else [(checksum["algorithm"], checksum["value"], "data/registry.yaml")]
    missing = checksum.get("note", "")
    if "published" in checksum:
        try:
            checks.append(_published_digest(checksum["published"], spec["urls"]))
        except _NoDigest as e:
            missing = str(e)
    return _Expected(checks, missing)


def _published_digest(publisher: str, urls: list[str]) -> tuple[str, str, str]:
    """(algorithm, hex digest, where it was read) from the first of the registry's URLs the publisher serves.

    Only the registry's own URLs are asked (the registry checks their host), never the user's mirror: a copy
    cannot vouch for itself.
    """
    failures = []
    for url in urls:
        match = PUBLISHERS[publisher][1].fullmatch(urlparse(url).path)
        if match is None:
            continue
        try:
            return _hf_digest(url) if publisher == "huggingface" else _github_digest(match)
        except (_NoDigest, OSError, http.client.HTTPException, ValueError) as e:  # ValueError: bad JSON
            failures.append(f"{url}: {_reason(e)}")
    raise _NoDigest(f"no digest could be read from {publisher}: {'; '.join(failures) or 'none of its URLs'}")


def _hf_digest(url: str) -> tuple[str, str, str]:
    # huggingface_hub's get_hf_file_metadata does the same: HEAD, X-Linked-Etag (an LFS file's sha256, on the
    # redirect to the CDN) or else ETag, which for a file kept in git itself is its git blob sha1.
    status, headers = _head(url)
    linked = _etag(headers.get("X-Linked-Etag"))
    if re.fullmatch(r"[0-9a-f]{64}", linked):
        return "sha256", linked, f"X-Linked-Etag of {url}"
    etag = _etag(headers.get("ETag"))
    if status == 200 and re.fullmatch(r"[0-9a-f]{40}", etag):
        return "git-sha1", etag, f"ETag of {url}"
    raise _NoDigest(f"HTTP {status} without an X-Linked-Etag sha256 or a git blob ETag")


def _github_digest(match: re.Match) -> tuple[str, str, str]:
    api = f"{GITHUB_API}/repos/{match['owner']}/{match['repo']}/releases/tags/{match['tag']}"
    asset = unquote(match["name"])
    request = urllib.request.Request(api, headers={"Accept": "application/vnd.github+json", "User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        release = json.load(response)
    assets = release.get("assets") if isinstance(release, dict) else None
    for item in assets if isinstance(assets, list) else []:
        if isinstance(item, dict) and item.get("name") == asset:
            digest = item.get("digest") or ""
            if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                return "sha256", digest.removeprefix("sha256:"), f"{api}, assets[].digest"
            raise _NoDigest(f"{api} states no sha256 digest for {asset}")  # GitHub may have none for old assets
    raise _NoDigest(f"{api} lists no asset named {asset}")


class _KeepRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # an LFS file's digest is on Hugging Face's redirect, not on the CDN's answer


def _head(url: str):
    """Status and headers of a HEAD request for `url`, redirects not followed."""
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
    try:
        with urllib.request.build_opener(_KeepRedirect).open(request, timeout=TIMEOUT_S) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400:
            return e.code, e.headers
        raise


def _etag(value: str | None) -> str:
    return (value or "").removeprefix("W/").strip('"')  # a weak or a strong ETag, as huggingface_hub reads it


def _reason(e: Exception):
    return e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", e)


def _verify(path: Path, spec: dict, expected: _Expected, where: str, delete_on_mismatch: bool) -> None:
    """Check the size and every expected digest; a mismatching download is deleted, never kept."""
    size = spec.get("size")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        _reject(path, where, f"size is {actual_size} bytes, the registry says {size}", delete_on_mismatch)
    if not expected.checks:
        sha256 = file_digests(path, ["sha256"])["sha256"]
        raise UnpinnedChecksumError(
            f"{where}: there is no checksum to check {path.name} against ({expected.missing}), so it is not "
            f"used unverified.\n  The copy at {path} has sha256 {sha256}.\n  If you trust it, pin it in "
            f"data/registry.yaml under {where}: set checksum to {{algorithm: sha256, value: {sha256}}}, then "
            f"run again (the file is kept, no download needed).")
    digests = file_digests(path, [algorithm for algorithm, _, _ in expected.checks])
    for algorithm, value, source in expected.checks:
        actual = digests[_hash_of(algorithm)]
        if not (actual.startswith(value) if algorithm == "sha256-prefix" else actual == value):
            _reject(path, where, f"{algorithm} {value} expected ({source}), the file has {actual}",
                    delete_on_mismatch)


def _reject(path: Path, where: str, problem: str, delete: bool) -> None:
    if delete:
        path.unlink()
    action = "the file was deleted" if delete else "remove or replace it"
    raise ChecksumError(f"{where}: {path} does not match its checksum: {problem}; {action}.")


def _hash_of(algorithm: str) -> str:
    return "sha256" if algorithm == "sha256-prefix" else algorithm


def file_digests(path: Path, algorithms: list[str]) -> dict[str, str]:
    """Hex digests of a file in one read, by hash (sha256, md5, or git-sha1: the id git gives the file)."""
    size = path.stat().st_size
    hashes = {name: hashlib.sha1(b"blob %d\0" % size) if name == "git-sha1" else hashlib.new(name)
              for name in {_hash_of(a) for a in algorithms}}
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            for h in hashes.values():
                h.update(block)
    return {name: h.hexdigest() for name, h in hashes.items()}


def _where(name: str, index: int) -> str:
    return f"entry '{name}', files[{index}]"


def _pins(checksums: list[dict]) -> list[list]:
    return [[c["algorithm"], c["value"]] for c in checksums]


def _file_marker(target: Path) -> Path:
    return target.with_name(f".{target.name}{MARKER}")


def _file_marker_ok(target: Path, checksums: list[dict]) -> bool:
    marker = _read_json(_file_marker(target))
    if marker is None or not target.is_file() or marker.get("pins") != _pins(checksums):
        return False
    st = target.stat()
    return marker.get("size") == st.st_size and marker.get("mtime_ns") == st.st_mtime_ns


def _write_file_marker(target: Path, checksums: list[dict]) -> None:
    st = target.stat()
    write_json(_file_marker(target), {"pins": _pins(checksums), "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# --- extraction ------------------------------------------------------------------------------------------

def _extract(archive: Path, kind: str, dest: Path) -> None:
    """Extract into `dest` after checking every member; one unsafe member refuses the whole archive."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            _check_expansion(archive, sum(info.file_size for info in zf.infolist()))
            for info in zf.infolist():
                _check_member(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is a symbolic link")
            zf.extractall(dest)
        return
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        _check_expansion(archive, sum(member.size for member in members))
        for member in members:
            _check_member(archive, member.name)
            try:
                tarfile.data_filter(member, str(dest))  # links pointing outside, device files, ...
            except tarfile.FilterError as e:
                raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} refused: {e}") from e
        tf.extractall(dest, members=members, filter="data")


def _check_expansion(archive: Path, total: int) -> None:
    limit = MAX_EXPANSION * archive.stat().st_size
    if total > limit:
        raise UnsafeArchiveError(f"{archive.name}: its members add up to {total} bytes, over {MAX_EXPANSION} times "
                                 f"the archive's size ({limit} bytes); refused")


def _check_member(archive: Path, name: str) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} would be written outside the target folder")


def _check_provides(name: str, entry: dict, folder: Path) -> None:
    missing = [p for p in provided_paths(entry) if not _exists(folder, p)]
    if missing:
        top = sorted(p.name for p in folder.iterdir() if p.name != MARKER)
        raise MissingSourceError(
            f"'{name}': the verified archive(s) do not contain {', '.join(missing)} (top level holds: "
            f"{', '.join(top) or 'nothing'}). Fix 'provides' of this entry in data/registry.yaml; the verified "
            f"download is kept, so the next run downloads nothing.")


def _exists(folder: Path, pattern: str) -> bool:
    if any(c in pattern for c in "*?["):
        return next(folder.glob(pattern), None) is not None
    return (folder / pattern).exists()


# --- atomic placement ------------------------------------------------------------------------------------

def _replace_dir(tmp: Path, target: Path) -> None:
    """Rename a finished folder onto `target`; an older verified copy is moved aside first, then deleted."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old)


def _move_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError:  # another file system: copy under a temporary name, then rename
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        src.unlink()
