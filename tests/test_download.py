"""pipeline.data.download against a local HTTP server on 127.0.0.1 that supports Range and can cut transfers."""
import copy
import hashlib
import http.server
import io
import json
import os
import re
import stat
import tarfile
import threading
import time
import zipfile

import pytest

from pipeline.data import download
from pipeline.data.download import (ChecksumError, MirrorError, MissingSourceError, UnpinnedChecksumError,
                                    UnsafeArchiveError, fetch, mirror_base)
from pipeline.data.registry import validate_entry

PAYLOAD = bytes(range(256)) * 64  # 16 KiB, so a cut after 5000 bytes leaves a real partial file


class FileServer:
    """Serves `files` (path -> bytes); records (path, Range header) per request; can cut or ignore Range.

    HEAD requests, as a publisher's digest lookup makes them, are answered from `head` (path -> (status,
    headers); 404 otherwise) and recorded in `heads`.
    """

    def __init__(self):
        self.files, self.requests, self.cut_first = {}, [], {}
        self.head, self.heads = {}, []
        self.trickle = {}  # path -> seconds between 16-byte pieces (at most 2 s of them), then the connection ends
        self.ignore_range = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):
                path = self.path.lstrip("/")
                server.heads.append(path)
                status, headers = server.head.get(path, (404, {}))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                path, rng = self.path.lstrip("/"), self.headers.get("Range")
                server.requests.append((path, rng))
                if path not in server.files:
                    self.send_error(404)
                    return
                data, start = server.files[path], 0
                if rng and not server.ignore_range:
                    start = int(re.match(r"bytes=(\d+)-", rng).group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in server.trickle:
                    delay = server.trickle[path]
                    for i in range(0, min(len(body), 16 * int(2 / delay)), 16):
                        try:
                            self.wfile.write(body[i:i + 16])
                            self.wfile.flush()
                        except OSError:  # the client gave up on the trickle
                            return
                        time.sleep(delay)
                    return
                self.wfile.write(body[:server.cut_first.pop(path, len(body))])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.httpd.server_port}/{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def weights_entry(url, data, value="pinned"):
    value = sha256(data) if value == "pinned" else value
    checksum = {"algorithm": "sha256", "value": value, "note": "none published upstream"}
    return {"kind": "weights", "description": "d", "licence": "l", "layout": "l",
            "target": "data/weights/net.pth",
            "files": [{"urls": [url], "size": len(data), "archive": "none", "checksum": checksum}]}


def dataset_entry(url, data, archive, provides):
    return {"kind": "dataset", "description": "d", "licence": "l", "layout": "l", "target": "data/raw/set",
            "files": [{"urls": [url], "size": len(data), "archive": archive,
                       "checksum": {"algorithm": "sha256", "value": sha256(data)}}],
            "provides": provides}


def make_zip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def make_tar(members, symlinks=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
        for name, link in symlinks:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, link
            tf.addfile(info)
    return buf.getvalue()


def all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_weights_download_verified_and_moved_into_place(server, tmp_path):
    server.files["net.pth"] = PAYLOAD
    path = fetch("net", weights_entry(server.url("net.pth"), PAYLOAD), tmp_path, progress=False)
    assert path == tmp_path / "data/weights/net.pth"
    assert path.read_bytes() == PAYLOAD
    assert not any((tmp_path / "data/downloads").rglob("*.pth*"))  # moved, not copied; no .part left


def test_already_verified_makes_no_request(server, tmp_path):
    server.files["net.pth"] = PAYLOAD
    server.files["set.zip"] = archive = make_zip({"imgs/a.png": b"png-bytes"})
    weights = weights_entry(server.url("net.pth"), PAYLOAD)
    dataset = dataset_entry(server.url("set.zip"), archive, "zip", {"S": "imgs"})
    fetch("net", weights, tmp_path, progress=False)
    target = fetch("set", dataset, tmp_path, progress=False)
    assert (target / "imgs/a.png").read_bytes() == b"png-bytes"
    server.requests.clear()
    assert fetch("net", weights, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert fetch("set", dataset, tmp_path, progress=False) == target
    assert server.requests == []


def test_cut_connection_is_resumed_by_the_next_fetch(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RESUME_ATTEMPTS", 1)
    server.files["net.pth"] = PAYLOAD
    server.cut_first["net.pth"] = 5000
    entry = weights_entry(server.url("net.pth"), PAYLOAD)
    with pytest.raises(MissingSourceError, match="resumes"):
        fetch("net", entry, tmp_path, progress=False)
    part = tmp_path / "data/downloads/net/net.pth.part"
    assert part.read_bytes() == PAYLOAD[:5000]

    path = fetch("net", entry, tmp_path, progress=False)
    assert server.requests == [("net.pth", None), ("net.pth", "bytes=5000-")]
    assert path.read_bytes() == PAYLOAD
    assert not part.exists()


def test_a_trickling_server_is_cut_off_and_the_next_fetch_resumes(server, tmp_path, monkeypatch):
    """A server that sends a little now and then never trips the per-read timeout; the stall rule cuts it."""
    monkeypatch.setattr(download, "STALL_WINDOW_S", 0.3)
    monkeypatch.setattr(download, "STALL_BYTES", 4096)
    monkeypatch.setattr(download, "RESUME_ATTEMPTS", 1)
    server.files["net.pth"] = PAYLOAD
    server.trickle["net.pth"] = 0.02  # 16 bytes every 20 ms: 800 B/s
    entry = weights_entry(server.url("net.pth"), PAYLOAD)
    with pytest.raises(MissingSourceError, match=r"(?s)stalled: \d+ bytes in the last 0.3 s.*resumes it"):
        fetch("net", entry, tmp_path, progress=False)
    part = tmp_path / "data/downloads/net/net.pth.part"
    got = part.stat().st_size
    assert 0 < got < 4096 and part.read_bytes() == PAYLOAD[:got]  # kept for the next try

    del server.trickle["net.pth"]
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1] == ("net.pth", f"bytes={got}-")


def test_an_archive_expanding_past_the_bound_is_refused(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("imgs/a.png", bytes(4 << 20))  # 4 MiB of zeros deflate to a few KiB
    bomb = buf.getvalue()
    assert len(bomb) * download.MAX_EXPANSION < 4 << 20
    server.files["set.zip"] = bomb
    with pytest.raises(UnsafeArchiveError, match=f"over {download.MAX_EXPANSION} times the archive's size"):
        fetch("set", dataset_entry(server.url("set.zip"), bomb, "zip", {"S": "imgs"}), tmp_path, progress=False)
    assert not (tmp_path / "data/raw/set").exists()


def test_cut_connection_is_resumed_within_one_fetch(server, tmp_path):
    server.files["net.pth"] = PAYLOAD
    server.cut_first["net.pth"] = 7000
    path = fetch("net", weights_entry(server.url("net.pth"), PAYLOAD), tmp_path, progress=False)
    assert server.requests == [("net.pth", None), ("net.pth", "bytes=7000-")]
    assert path.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    server.files["net.pth"] = PAYLOAD
    server.cut_first["net.pth"] = 3000
    path = fetch("net", weights_entry(server.url("net.pth"), PAYLOAD), tmp_path, progress=False)
    assert server.requests[1] == ("net.pth", "bytes=3000-")  # asked to resume, got the whole file again
    assert path.read_bytes() == PAYLOAD


def test_mirrors_are_tried_in_order(server, tmp_path):
    server.files["mirror2/net.pth"] = PAYLOAD
    entry = weights_entry(server.url("mirror1/net.pth"), PAYLOAD)
    entry["files"][0]["urls"].append(server.url("mirror2/net.pth"))
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["mirror1/net.pth", "mirror2/net.pth"]


def test_a_wrong_copy_is_deleted_and_the_next_url_tried(server, tmp_path):
    server.files["stale/net.pth"], server.files["good/net.pth"] = PAYLOAD[::-1], PAYLOAD
    entry = weights_entry(server.url("stale/net.pth"), PAYLOAD)
    entry["files"][0]["urls"].append(server.url("good/net.pth"))
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["stale/net.pth", "good/net.pth"]
    assert all_files(tmp_path) == ["data/weights/.net.pth.verified.json", "data/weights/net.pth"]


def test_no_matching_copy_is_a_checksum_error_naming_every_url(server, tmp_path):
    server.files["stale/net.pth"] = PAYLOAD[::-1]
    entry = weights_entry(server.url("stale/net.pth"), PAYLOAD)
    entry["files"][0]["urls"].append(server.url("gone/net.pth"))
    with pytest.raises(ChecksumError) as err:
        fetch("net", entry, tmp_path, progress=False)
    message = str(err.value)
    assert server.url("stale/net.pth") in message and "does not match" in message
    assert server.url("gone/net.pth") in message and "404" in message
    assert all_files(tmp_path) == []


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    server.files["net.pth"] = PAYLOAD
    entry = weights_entry(server.url("net.pth"), PAYLOAD, value="0" * 64)
    with pytest.raises(ChecksumError, match="does not match"):
        fetch("net", entry, tmp_path, progress=False)
    assert all_files(tmp_path) == []


def test_size_mismatch_leaves_no_file(server, tmp_path):
    server.files["set.zip"] = archive = make_zip({"imgs/a.png": b"x"})
    entry = dataset_entry(server.url("set.zip"), archive, "zip", {"S": "imgs"})
    entry["files"][0]["size"] += 1
    with pytest.raises(ChecksumError, match="size"):
        fetch("set", entry, tmp_path, progress=False)
    assert all_files(tmp_path) == []


def test_unpinned_checksum_is_refused_until_pinned(server, tmp_path):
    server.files["net.pth"] = PAYLOAD
    entry = weights_entry(server.url("net.pth"), PAYLOAD, value=None)
    with pytest.raises(ChecksumError) as err:
        fetch("net", entry, tmp_path, progress=False)
    assert sha256(PAYLOAD) in str(err.value) and "data/registry.yaml" in str(err.value)
    assert not (tmp_path / "data/weights/net.pth").exists()

    entry["files"][0]["checksum"]["value"] = sha256(PAYLOAD)  # what the user pins
    server.requests.clear()
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests == []  # the refused download was kept


def test_every_unpinned_file_of_a_dataset_is_listed_in_one_run(server, tmp_path):
    archive, meta = make_zip({"IMGS/a.png": b"png"}), b"img_name,mos\na.png,3.5\n"
    server.files["set.zip"], server.files["meta.csv"] = archive, meta
    entry = dataset_entry(server.url("set.zip"), archive, "zip", {"S": "IMGS"})
    entry["files"][0]["checksum"] = {"algorithm": "sha256", "value": None, "note": "none published"}
    entry["files"].append({"urls": [server.url("meta.csv")], "size": None, "archive": "none",
                           "checksum": {"algorithm": "sha256", "value": None, "note": "none published"}})
    with pytest.raises(UnpinnedChecksumError) as err:
        fetch("set", entry, tmp_path, progress=False)
    assert sha256(archive) in str(err.value) and sha256(meta) in str(err.value)
    assert not (tmp_path / "data/raw/set").exists()

    for spec, data in zip(entry["files"], (archive, meta)):
        spec["checksum"]["value"] = sha256(data)
    server.requests.clear()
    assert all_files(fetch("set", entry, tmp_path, progress=False)) == [".verified.json", "IMGS/a.png", "meta.csv"]
    assert server.requests == []


def test_dataset_folder_has_the_usual_mode_and_crash_leftovers_go(server, tmp_path):
    server.files["set.zip"] = archive = make_zip({"IMGS/a.png": b"png"})
    entry = dataset_entry(server.url("set.zip"), archive, "zip", {"S": "IMGS"})
    leftover = tmp_path / "data/raw/.set.old-123"  # a crash between the two renames of a replacement
    (leftover / "IMGS").mkdir(parents=True)
    umask = os.umask(0o022)
    try:
        target = fetch("set", entry, tmp_path, progress=False)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # mkdtemp's private 0700 would hide the set from others
    assert not leftover.exists()


@pytest.mark.parametrize("kind, archive", [
    ("zip", make_zip({"ok.txt": b"ok", "../evil": b"evil"})),
    ("tar", make_tar({"ok.txt": b"ok", "../evil": b"evil"})),
    ("tar", make_tar({"ok.txt": b"ok", "/tmp/evil": b"evil"})),
    ("tar", make_tar({"ok.txt": b"ok"}, symlinks=[("link", "../../../evil")])),
])
def test_archive_member_outside_target_is_refused(server, tmp_path, kind, archive):
    server.files["set.bin"] = archive
    entry = dataset_entry(server.url("set.bin"), archive, kind, {"S": "ok.txt"})
    with pytest.raises(UnsafeArchiveError):
        fetch("set", entry, tmp_path, progress=False)
    assert all_files(tmp_path) == ["data/downloads/set/set.bin"]  # nothing extracted anywhere
    assert [p.name for p in (tmp_path / "data/raw").iterdir()] == []


def test_tgz_with_plain_file_is_combined_into_one_folder(server, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("IMGS/a.bmp")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bmp"))
    meta = b"img_name,mos\na.bmp,3.5\n"
    server.files["imgs.tgz"], server.files["meta.csv"] = buf.getvalue(), meta
    entry = dataset_entry(server.url("imgs.tgz"), buf.getvalue(), "tgz",
                          {"S": {"images": "IMGS", "scores": "meta.csv", "format": "pyiqa_meta"}})
    entry["files"].append({"urls": [server.url("meta.csv")], "size": None, "archive": "none",
                           "checksum": {"algorithm": "md5", "value": hashlib.md5(meta).hexdigest()}})
    target = fetch("set", entry, tmp_path, progress=False)
    assert all_files(target) == [".verified.json", "IMGS/a.bmp", "meta.csv"]
    assert list((tmp_path / "data/downloads/set").iterdir()) == []


def test_missing_provided_path_keeps_the_verified_download(server, tmp_path):
    server.files["set.zip"] = archive = make_zip({"other/a.png": b"x"})
    entry = dataset_entry(server.url("set.zip"), archive, "zip", {"S": "imgs"})
    with pytest.raises(MissingSourceError, match="other"):
        fetch("set", entry, tmp_path, progress=False)
    assert not (tmp_path / "data/raw/set").exists()
    entry["provides"] = {"S": "other"}
    server.requests.clear()
    assert (fetch("set", entry, tmp_path, progress=False) / "other/a.png").exists()
    assert server.requests == []


def test_unreachable_source_names_url_and_where_to_place_it(server, tmp_path):
    entry = weights_entry(server.url("missing.pth"), PAYLOAD)
    with pytest.raises(MissingSourceError) as err:
        fetch("net", entry, tmp_path, progress=False)
    message = str(err.value)
    assert server.url("missing.pth") in message and "404" in message
    assert str(tmp_path / "data/downloads/net/missing.pth") in message


def test_file_placed_by_hand_is_verified_without_network(server, tmp_path):
    entry = weights_entry(server.url("net.pth"), PAYLOAD)
    placed = tmp_path / "data/downloads/net/net.pth"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(PAYLOAD)
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests == []


def test_foreign_dataset_folder_is_not_overwritten(server, tmp_path):
    (tmp_path / "data/raw/set").mkdir(parents=True)
    (tmp_path / "data/raw/set/mine.txt").write_text("keep")
    entry = dataset_entry(server.url("set.zip"), b"", "zip", {"S": "imgs"})
    with pytest.raises(MissingSourceError, match="not made by the downloader"):
        fetch("set", entry, tmp_path, progress=False)
    assert (tmp_path / "data/raw/set/mine.txt").read_text() == "keep"
    assert server.requests == []


MANUAL = {"kind": "dataset", "description": "d", "licence": "l", "layout": "l", "target": "data/raw/Real",
          "manual": {"page": "https://example.org/real", "instructions": "Extract the tarball here."},
          "provides": {"Real": {"hr": "Test", "pattern": "*/4/*"}}}


def test_manual_source_missing_names_page_and_folder(tmp_path):
    with pytest.raises(MissingSourceError) as err:
        fetch("real", copy.deepcopy(MANUAL), tmp_path, progress=False)
    message = str(err.value)
    assert "https://example.org/real" in message and str(tmp_path / "data/raw/Real") in message
    assert "Test/*/4/*" in message


def test_manual_source_in_place_is_accepted(tmp_path):
    folder = tmp_path / "data/raw/Real/Test/Canon/4"
    folder.mkdir(parents=True)
    (folder / "a_HR.png").write_bytes(b"h")
    (folder / "a_LR4.png").write_bytes(b"l")
    assert fetch("real", copy.deepcopy(MANUAL), tmp_path, progress=False) == tmp_path / "data/raw/Real"


# --- digests stated by the publisher ----------------------------------------------------------------------

HF_PATH = "datasets/o/r/resolve/main/net.pth"
GH_PATH = "o/r/releases/download/v1/net.pth"
GH_API_PATH = "api/repos/o/r/releases/tags/v1"


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_a_file_pinned_by_its_git_blob_id_is_verified(server, tmp_path):
    """A file kept in a git repository is pinned by the blob id its tree states (dipIQ's .mat files)."""
    server.files["net.mat"] = PAYLOAD
    entry = weights_entry(server.url("net.mat"), PAYLOAD)
    entry["files"][0]["checksum"] = {"algorithm": "git-sha1", "value": git_sha1(PAYLOAD), "source": "a tree"}
    validate_entry("net", {**entry, "target": "data/weights/eval/net.mat",  # as data/registry.yaml may state it
                           "files": [{**entry["files"][0], "urls": ["https://example.org/net.mat"]}]})
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD
    entry["files"][0]["checksum"]["value"] = git_sha1(PAYLOAD + b"!")
    with pytest.raises(ChecksumError, match="git-sha1"):
        fetch("net", entry, tmp_path / "other", progress=False)
    assert all_files(tmp_path / "other") == []


def published_entry(url, data, publisher, prefix=None):
    entry = weights_entry(url, data)
    entry["files"][0]["checksum"] = {"algorithm": "sha256-prefix" if prefix else "sha256", "value": prefix,
                                     "published": publisher}
    return entry


def github_release(server, monkeypatch, digest):
    monkeypatch.setattr(download, "GITHUB_API", server.url("api"))
    asset = {"name": "net.pth", "digest": digest, "browser_download_url": server.url(GH_PATH)}
    server.files[GH_API_PATH] = json.dumps({"tag_name": "v1", "assets": [asset]}).encode()


@pytest.mark.parametrize("headers", [
    {"X-Linked-Etag": f'"{sha256(PAYLOAD)}"', "ETag": '"a-pointer-file-etag"'},  # LFS: on the redirect
    {"ETag": f'"{git_sha1(PAYLOAD)}"'},  # a small file kept in git: its blob id
    {"ETag": f'W/"{git_sha1(PAYLOAD)}"'},
])
def test_hugging_face_digest_verifies_an_unpinned_file(server, tmp_path, headers):
    server.files[HF_PATH] = PAYLOAD
    server.head[HF_PATH] = (302 if "X-Linked-Etag" in headers else 200, headers)
    path = fetch("net", published_entry(server.url(HF_PATH), PAYLOAD, "huggingface"), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.heads == [HF_PATH]


def test_github_release_digest_verifies_an_unpinned_file(server, tmp_path, monkeypatch):
    server.files[GH_PATH] = PAYLOAD
    github_release(server, monkeypatch, f"sha256:{sha256(PAYLOAD)}")
    path = fetch("net", published_entry(server.url(GH_PATH), PAYLOAD, "github-release"), tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == [GH_API_PATH, GH_PATH]


@pytest.mark.parametrize("publisher", ["huggingface-lfs", "huggingface-git", "github-release"])
def test_a_file_unlike_its_published_digest_is_deleted(server, tmp_path, monkeypatch, publisher):
    other = PAYLOAD[::-1]
    if publisher == "github-release":
        url = server.url(GH_PATH)
        github_release(server, monkeypatch, f"sha256:{sha256(other)}")
    else:
        url = server.url(HF_PATH)
        server.head[HF_PATH] = ((302, {"X-Linked-Etag": f'"{sha256(other)}"'}) if publisher == "huggingface-lfs"
                                else (200, {"ETag": f'"{git_sha1(other)}"'}))
    server.files[GH_PATH] = server.files[HF_PATH] = PAYLOAD
    entry = published_entry(url, PAYLOAD, publisher.removesuffix("-lfs").removesuffix("-git"))
    with pytest.raises(ChecksumError, match="does not match") as err:
        fetch("net", entry, tmp_path, progress=False)
    assert not isinstance(err.value, UnpinnedChecksumError)
    assert all_files(tmp_path) == []


@pytest.mark.parametrize("publisher, answer", [
    ("huggingface", None),  # HEAD 404: the publisher cannot be asked
    ("huggingface", (302, {"Location": "https://cdn.example/x"})),  # a redirect without X-Linked-Etag
    ("github-release", None),  # the API answers 404
    ("github-release", ""),  # the asset has no digest
])
def test_a_publisher_without_a_digest_falls_back_to_trust_on_first_use(server, tmp_path, monkeypatch,
                                                                         publisher, answer):
    if publisher == "huggingface":
        url = server.url(HF_PATH)
        if answer is not None:
            server.head[HF_PATH] = answer
    else:
        url = server.url(GH_PATH)
        monkeypatch.setattr(download, "GITHUB_API", server.url("api"))
        if answer is not None:
            github_release(server, monkeypatch, answer or None)
    server.files[HF_PATH] = server.files[GH_PATH] = PAYLOAD
    entry = published_entry(url, PAYLOAD, publisher)
    with pytest.raises(UnpinnedChecksumError, match="no digest could be read") as err:
        fetch("net", entry, tmp_path, progress=False)
    assert sha256(PAYLOAD) in str(err.value)
    assert (tmp_path / "data/downloads/net/net.pth").read_bytes() == PAYLOAD  # kept, for the user to pin

    entry["files"][0]["checksum"] = {"algorithm": "sha256", "value": sha256(PAYLOAD)}
    server.requests.clear()
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD
    assert server.requests == []


def test_a_pinned_prefix_is_completed_by_the_published_digest(server, tmp_path, monkeypatch):
    server.files[GH_PATH] = PAYLOAD
    entry = published_entry(server.url(GH_PATH), PAYLOAD, "github-release", prefix=sha256(PAYLOAD)[:8])
    github_release(server, monkeypatch, f"sha256:{sha256(PAYLOAD[::-1])}")  # the prefix alone would pass
    with pytest.raises(ChecksumError, match="published|assets"):
        fetch("net", entry, tmp_path, progress=False)
    assert all_files(tmp_path) == []

    del server.files[GH_API_PATH]  # the publisher unreachable: the pinned prefix still holds
    assert fetch("net", entry, tmp_path, progress=False).read_bytes() == PAYLOAD


# --- the user-wide mirror ---------------------------------------------------------------------------------

def test_mirror_is_tried_first_and_serves_an_entry_whose_own_url_is_dead(server, tmp_path):
    server.files["mirror/net/net.pth"] = PAYLOAD
    entry = weights_entry(server.url("dead/net.pth"), PAYLOAD)
    path = fetch("net", entry, tmp_path, progress=False, mirror=server.url("mirror"))
    assert path.read_bytes() == PAYLOAD
    assert server.requests == [("mirror/net/net.pth", None)]


def test_a_wrong_mirror_copy_is_rejected_and_the_entry_url_used(server, tmp_path):
    # The mirror behaves like Hugging Face and vouches for its own copy; only the publisher's URL is asked.
    server.files["mirror/net/net.pth"], server.files[HF_PATH] = PAYLOAD[::-1], PAYLOAD
    server.head["mirror/net/net.pth"] = (302, {"X-Linked-Etag": f'"{sha256(PAYLOAD[::-1])}"'})
    server.head[HF_PATH] = (302, {"X-Linked-Etag": f'"{sha256(PAYLOAD)}"'})
    entry = published_entry(server.url(HF_PATH), PAYLOAD, "huggingface")
    assert fetch("net", entry, tmp_path, progress=False, mirror=server.url("mirror")).read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["mirror/net/net.pth", HF_PATH]
    assert server.heads == [HF_PATH]


def test_mirror_setting_param_before_environment(monkeypatch):
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    assert mirror_base(None) is None
    monkeypatch.setenv(download.MIRROR_ENV, "http://env.example/sfd/")
    assert mirror_base(None) == "http://env.example/sfd"
    assert mirror_base("https://param.example") == "https://param.example"
    assert mirror_base("") is None  # the param switches the environment's mirror off
    with pytest.raises(MirrorError, match="download_mirror"):
        mirror_base("ftp://param.example")
    monkeypatch.setenv(download.MIRROR_ENV, "mirror.example")
    with pytest.raises(MirrorError, match=download.MIRROR_ENV):
        mirror_base(None)
