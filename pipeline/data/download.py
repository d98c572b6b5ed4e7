"""Make one registry entry present and verified on disk: download, check, extract, mark.

Downloads stream into `data/downloads/<entry>/<file>.part`, resume with an HTTP Range request after an
interruption and become `<file>` once complete. A file is used only after its size and checksum match the
registry: a mismatch deletes it, and a file whose registry checksum is null is kept but refused until the user
pins the sha256 printed in the error. Archives are extracted into a hidden folder beside the target, refusing
any member that would land outside it, and renamed into place in one step together with a marker
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
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from tqdm import tqdm

from pipeline.data.registry import provided_paths
from pipeline.fileio import atomic_path, usual_mode, write_json

DOWNLOADS = "data/downloads"
MARKER = ".verified.json"
CHUNK = 1 << 20
TIMEOUT_S = 60
# Tries per mirror; a try that made progress (the .part grew) earns another one, resuming where it stopped.
RESUME_ATTEMPTS = 5
USER_AGENT = "sfd-reproduction-downloader/1.0"


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


class _Interrupted(Exception):
    """The server closed the connection before the whole file arrived."""


def fetch(name: str, entry: dict, project_root: Path, progress: bool = True) -> Path:
    """Make `entry` present and verified at `project_root / entry['target']` and return that path."""
    root = Path(project_root)
    target = root / entry["target"]
    if "manual" in entry:
        return _fetch_manual(name, entry, target)
    if entry["kind"] == "weights":
        return _fetch_weights(name, entry, root, target, progress)
    return _fetch_dataset(name, entry, root, target, progress)


# --- entry kinds -----------------------------------------------------------------------------------------

def _fetch_weights(name: str, entry: dict, root: Path, target: Path, progress: bool) -> Path:
    spec = entry["files"][0]
    if _file_marker_ok(target, [spec["checksum"]]):
        return target
    where = _where(name, 0)
    if target.exists():
        # Placed by hand, or a crash between the move and the marker: check it but never delete it.
        _verify(target, spec, where, delete_on_mismatch=False)
    else:
        local = _obtain(name, spec, where, root, progress)
        _move_atomic(local, target)
    _write_file_marker(target, [spec["checksum"]])
    return target


def _fetch_dataset(name: str, entry: dict, root: Path, target: Path, progress: bool) -> Path:
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
            locals_.append(_obtain(name, spec, _where(name, i), root, progress))
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
        _verify(target, {"checksum": checksum}, f"entry '{name}', manual", delete_on_mismatch=False)
        _write_file_marker(target, [checksum])
    return target


# --- download --------------------------------------------------------------------------------------------

def _obtain(name: str, spec: dict, where: str, root: Path, progress: bool) -> Path:
    """The verified local copy of one registry file, downloading it if it is not already there."""
    local = _download_dir(root, name) / _file_name(spec)
    if not local.exists():
        _download(spec["urls"], local, spec.get("size"), progress, name)
    _verify(local, spec, where, delete_on_mismatch=True)
    return local


def _download(urls: list[str], dest: Path, size: int | None, progress: bool, name: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        for _ in range(RESUME_ATTEMPTS):
            before = _size(part)
            try:
                _stream(url, part, size, progress, name)
                os.replace(part, dest)
                return
            except (_Interrupted, http.client.HTTPException, OSError) as e:  # URLError is an OSError
                reason = e if isinstance(e, urllib.error.HTTPError) else getattr(e, "reason", e)
                failure = f"{url}: {reason}"
                if _size(part) <= before:
                    break  # no progress on this mirror: try the next one
        failures.append(failure)
    kept = f" The partial download {part} is kept; the next run resumes it." if part.exists() else ""
    raise MissingSourceError(
        f"'{name}': could not download {dest.name}.\n  " + "\n  ".join(failures) + "\n"
        f"  Download it by hand and place it at {dest}; the next run verifies and installs it without "
        f"network.{kept}")


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
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"connection closed after {got} of {total} bytes")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _range_start(response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _file_name(spec: dict) -> str:
    return spec.get("filename") or PurePosixPath(urlparse(spec["urls"][0]).path).name


def _download_dir(root: Path, name: str) -> Path:
    return root / DOWNLOADS / name


# --- verification ----------------------------------------------------------------------------------------

def _verify(path: Path, spec: dict, where: str, delete_on_mismatch: bool) -> None:
    """Check size and checksum against the registry; a mismatching download is deleted, never kept."""
    size = spec.get("size")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        _reject(path, where, f"size is {actual_size} bytes, the registry says {size}", delete_on_mismatch)
    digests = _digests(path)
    algorithm, value = spec["checksum"]["algorithm"], spec["checksum"]["value"]
    if value is None:
        raise UnpinnedChecksumError(
            f"{where}: no checksum is published for {path.name} ({spec['checksum']['note']}), so it is not "
            f"used unverified.\n  The copy at {path} has sha256 {digests['sha256']}.\n  If you trust it, pin "
            f"it in data/registry.yaml under {where}: set checksum to "
            f"{{algorithm: sha256, value: {digests['sha256']}}}, then run again (the file is kept, no download "
            f"needed).")
    actual = digests["md5" if algorithm == "md5" else "sha256"]
    if not (actual.startswith(value) if algorithm == "sha256-prefix" else actual == value):
        _reject(path, where, f"{algorithm} {value} expected, the file has {actual}", delete_on_mismatch)


def _reject(path: Path, where: str, problem: str, delete: bool) -> None:
    if delete:
        path.unlink()
    action = "the file was deleted" if delete else "remove or replace it"
    raise ChecksumError(f"{where}: {path} does not match data/registry.yaml: {problem}; {action}.")


def _digests(path: Path) -> dict[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            sha256.update(block)
            md5.update(block)
    return {"sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


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
            for info in zf.infolist():
                _check_member(archive, info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UnsafeArchiveError(f"{archive.name}: member {info.filename!r} is a symbolic link")
            zf.extractall(dest)
        return
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        for member in members:
            _check_member(archive, member.name)
            try:
                tarfile.data_filter(member, str(dest))  # links pointing outside, device files, ...
            except tarfile.FilterError as e:
                raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} refused: {e}") from e
        tf.extractall(dest, members=members, filter="data")


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
            f"download is kept, so the next run needs no network.")


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
