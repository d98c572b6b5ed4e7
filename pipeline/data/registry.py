"""Load and validate `data/registry.yaml`, the list of every dataset and weight file the pipeline can fetch.

An entry is either downloadable (`files:`, a list of files with mirrors, checksum, size and archive type) or
manual (`manual:`, a page the user downloads from by hand). Datasets land in a folder under `data/raw/` and say
which evaluation/training sets they hold under `provides:`; weights land in one file under `data/weights/`.
The header of `data/registry.yaml` documents every field.
"""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import yaml

KINDS = ("dataset", "weights")
ARCHIVES = ("zip", "tar", "tgz", "none")
TARGET_ROOTS = {"dataset": "data/raw", "weights": "data/weights"}
# Datasets are fetched in groups, one download stage each, into data/raw/<group>/ (see params.yaml `download`).
DATASET_GROUPS = ("sr", "real_pairs", "iqa", "restore")
# Weights in data/weights/<folder>/: what the training stages read, and what only evaluation reads.
WEIGHTS_GROUPS = {"train_weights": "train", "eval_weights": "eval"}
IQA_FORMATS = ("koniq", "pyiqa_meta", "ma", "pipal")
# Real pairs: the HR folder and the role suffixes the dataset's file names carry (required; optional: the LR
# folder when it is not the HR one, and a glob inside hr).
REAL_PAIR_KEYS = {"hr", "hr_suffix", "lr_suffix"}
IQA_KEYS = {"images", "scores", "format"}
# Restoration pairs (Table 5): the upstream layouts that pipeline/data/restoration.py reads (its LAYOUTS).
RESTORATION_FORMATS = ("rain100l", "gopro")
# Hex digits a checksum value must have: sha256-prefix is the first digits of a sha256 (torchvision/BasicSR
# file names carry the first 8); git-sha1 is the blob id git gives a file, which a repository's tree states.
CHECKSUM_DIGITS = {"sha256": (64, 64), "md5": (32, 32), "sha256-prefix": (8, 63), "git-sha1": (40, 40)}
# Publishers whose servers state a file's digest, read by the downloader when the registry pins none (or only a
# sha256-prefix): the host the registry URL must be on, and the URL path that marks a file as theirs.
# Hugging Face: `resolve` URLs of model, dataset and space repos; GitHub: release assets.
PUBLISHERS = {
    "huggingface": ("huggingface.co", re.compile(r"/(?:datasets/|spaces/)?[^/]+/[^/]+/resolve/[^/]+/.+")),
    "github-release": ("github.com", re.compile(
        r"/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/download/(?P<tag>[^/]+)/(?P<name>[^/]+)")),
}
ENTRY_FIELDS = ("kind", "description", "licence", "target", "layout")


def load_registry(path: str | os.PathLike = "data/registry.yaml") -> dict[str, dict]:
    """Read the registry and validate every entry; raise ValueError naming the entry and field at fault."""
    registry = yaml.safe_load(Path(path).read_text())
    if not isinstance(registry, dict) or not registry:
        raise ValueError(f"{path}: expected a non-empty mapping of entry name -> entry")
    for name, entry in registry.items():
        validate_entry(name, entry)
    return registry


def validate_entry(name: str, entry: dict) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"registry entry '{name}': expected a mapping, got {type(entry).__name__}")

    def fail(field, problem):
        raise ValueError(f"registry entry '{name}': field '{field}' {problem}")

    def under(prefix):
        return lambda field, problem: fail(f"{prefix}.{field}" if field else prefix, problem)

    for field in ENTRY_FIELDS:
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            fail(field, "is missing or not a non-empty string")
    kind = entry["kind"]
    if kind not in KINDS:
        fail("kind", f"must be one of {KINDS}, got {kind!r}")
    root = TARGET_ROOTS[kind]
    if not _is_relative_inside(entry["target"]) or not entry["target"].startswith(root + "/"):
        fail("target", f"must be a relative path inside {root}/, got {entry['target']!r}")
    parts = PurePosixPath(entry["target"]).parts
    if kind == "dataset" and (len(parts) != 4 or parts[2] not in DATASET_GROUPS):
        fail("target", f"must be {root}/<group>/<folder> with a group of {DATASET_GROUPS}, got {entry['target']!r}")
    if kind == "weights" and (len(parts) < 4 or parts[2] not in WEIGHTS_GROUPS.values()):
        fail("target", f"must lie in {root}/{{{','.join(WEIGHTS_GROUPS.values())}}}/, got {entry['target']!r}")

    if ("files" in entry) == ("manual" in entry):
        fail("files", "exactly one of 'files' (downloadable) or 'manual' (placed by hand) is required")
    if "files" in entry:
        files = entry["files"]
        if not isinstance(files, list) or not files:
            fail("files", "must be a non-empty list")
        for i, spec in enumerate(files):
            _validate_file(spec, under(f"files[{i}]"))
        if kind == "weights" and (len(files) != 1 or files[0]["archive"] != "none"):
            fail("files", "of a weights entry must be exactly one file with archive: none")
    else:
        _validate_manual(entry["manual"], kind, under("manual"))

    if kind == "weights":
        if "provides" in entry:
            fail("provides", "belongs to datasets only")
    else:
        _validate_provides(entry.get("provides"), under("provides"))


def _validate_file(spec, fail) -> None:
    if not isinstance(spec, dict):
        fail("", "must be a mapping")
    urls = spec.get("urls")
    if not isinstance(urls, list) or not urls:
        fail("urls", "must be a non-empty list of https URLs")
    for url in urls:
        if not isinstance(url, str) or not url.startswith("https://"):
            fail("urls", f"must be https URLs, got {url!r}")
    if spec.get("archive") not in ARCHIVES:
        fail("archive", f"must be one of {ARCHIVES}, got {spec.get('archive')!r}")
    size = spec.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        fail("size", f"must be a positive integer number of bytes or null, got {size!r}")
    name = spec.get("filename")
    if name is not None and (not isinstance(name, str) or "/" in name or name in ("", ".", "..")):
        fail("filename", f"must be a plain file name, got {name!r}")
    _validate_checksum(spec.get("checksum"), fail, urls)


def _validate_checksum(checksum, fail, urls=None) -> None:
    """`urls`: the file's URLs; None for a manual entry's checksum, which has no publisher to ask."""
    if not isinstance(checksum, dict):
        fail("checksum", "must be a mapping with 'algorithm' and 'value'")
    algorithm, value = checksum.get("algorithm"), checksum.get("value")
    if algorithm not in CHECKSUM_DIGITS:
        fail("checksum.algorithm", f"must be one of {tuple(CHECKSUM_DIGITS)}, got {algorithm!r}")
    if "published" in checksum:
        _validate_published(checksum["published"], value is None or algorithm == "sha256-prefix", urls, fail)
    if value is None:
        # An unpinned file is allowed only when the registry says why, or where its digest is published; without
        # a digest the downloader refuses it.
        if "published" not in checksum and (not isinstance(checksum.get("note"), str) or not checksum["note"].strip()):
            fail("checksum.note", "must explain why the value is null (e.g. 'none published upstream'), unless "
                                  "'published' names who states the digest")
        return
    low, high = CHECKSUM_DIGITS[algorithm]
    if not isinstance(value, str) or not re.fullmatch(rf"[0-9a-f]{{{low},{high}}}", value):
        fail("checksum.value", f"must be {low}..{high} lower-case hex digits for {algorithm}, got {value!r}")


def _validate_published(publisher, consulted, urls, fail) -> None:
    if publisher not in PUBLISHERS:
        fail("checksum.published", f"must be one of {tuple(PUBLISHERS)}, got {publisher!r}")
    if urls is None:
        fail("checksum.published", "applies to downloadable files only (a manual entry has no URL to ask)")
    if not consulted:
        # A full pinned digest is what the file is held to; a publisher beside it would never be asked.
        fail("checksum.published", "is only read while the value is null or a sha256-prefix; drop it")
    host, path = PUBLISHERS[publisher]
    if not any(urlparse(u).hostname == host and path.fullmatch(urlparse(u).path) for u in urls):
        fail("checksum.published", f"needs one of the file's URLs to be a {publisher} file on {host}, got {urls}")


def _validate_manual(manual, kind, fail) -> None:
    if not isinstance(manual, dict):
        fail("", "must be a mapping with 'page' and 'instructions'")
    if not isinstance(manual.get("page"), str) or not manual["page"].startswith("https://"):
        fail("page", f"must be an https URL, got {manual.get('page')!r}")
    if not isinstance(manual.get("instructions"), str) or not manual["instructions"].strip():
        fail("instructions", "must say what to download and how to arrange it")
    if "checksum" in manual:
        if kind != "weights":
            fail("checksum", "is only checked for single-file (weights) entries")
        _validate_checksum(manual["checksum"], fail)


def _validate_provides(provides, fail) -> None:
    if not isinstance(provides, dict) or not provides:
        fail("", "must map set names to paths inside the target")
    for set_name, value in provides.items():
        if isinstance(value, str):
            paths = [value]
        elif isinstance(value, dict) and {"hr", "format"} <= set(value):
            if not set(value) <= {"format", "hr", "lr"}:
                fail(set_name, f"restoration pairs need format, hr[, lr], got {sorted(value)}")
            if value["format"] not in RESTORATION_FORMATS:
                fail(f"{set_name}.format", f"must be one of {RESTORATION_FORMATS}, got {value['format']!r}")
            paths = [v for k, v in value.items() if k != "format"]
        elif isinstance(value, dict) and "hr" in value:
            if not REAL_PAIR_KEYS <= set(value) <= REAL_PAIR_KEYS | {"lr", "pattern"}:
                fail(set_name, f"real pairs need hr, hr_suffix, lr_suffix[, lr][, pattern], got {sorted(value)}")
            for key in ("hr_suffix", "lr_suffix"):
                if not isinstance(value[key], str) or not re.fullmatch(r"[\w.-]+", value[key]):
                    fail(f"{set_name}.{key}", f"must be a file-name suffix such as _HR, got {value[key]!r}")
            paths = [v for k, v in value.items() if k not in ("hr_suffix", "lr_suffix")]
        elif isinstance(value, dict) and IQA_KEYS <= set(value) <= IQA_KEYS | {"split"}:
            if value["format"] not in IQA_FORMATS:
                fail(f"{set_name}.format", f"must be one of {IQA_FORMATS}, got {value['format']!r}")
            paths = [v for k, v in value.items() if k != "format"]
        else:
            fail(set_name, "must be a path, {hr, hr_suffix, lr_suffix[, lr][, pattern]}, {format, hr[, lr]} or "
                           "{images, scores, format[, split]}")
        for p in paths:
            if not isinstance(p, str) or not _is_relative_inside(p):
                fail(set_name, f"paths must be relative and stay inside the target, got {p!r}")


def group_folder(group: str) -> Path:
    """The folder a download group fills: data/raw/<group> for datasets, data/weights/<folder> for weights."""
    if group in DATASET_GROUPS:
        return Path(TARGET_ROOTS["dataset"]) / group
    return Path(TARGET_ROOTS["weights"]) / WEIGHTS_GROUPS[group]


def entry_group(entry: dict) -> str:
    """The download group of an entry: the folder below data/raw/ that holds a dataset, or the weights group of
    the folder below data/weights/."""
    folder = PurePosixPath(entry["target"]).parts[2]
    return folder if entry["kind"] == "dataset" else {v: k for k, v in WEIGHTS_GROUPS.items()}[folder]


def provided_paths(entry: dict) -> list[str]:
    """Every path or glob pattern that an entry's `provides:` promises, relative to its target."""
    paths = []
    for value in entry["provides"].values():
        if isinstance(value, str):
            paths.append(value)
        elif "hr" in value:
            paths += [value["hr"]] + ([value["lr"]] if "lr" in value else [])
            if "pattern" in value:
                paths.append(f"{value['hr']}/{value['pattern']}")
        else:
            paths += [v for k, v in value.items() if k != "format"]
    return paths


def _is_relative_inside(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts and "\\" not in path and ":" not in path
