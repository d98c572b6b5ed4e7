"""data/registry.yaml is complete and valid; pipeline.data.registry rejects malformed entries by field."""
import copy
import re
from pathlib import Path

import pytest
import yaml

from pipeline.data.registry import entry_group, load_registry, provided_paths, validate_entry

REGISTRY = Path(__file__).resolve().parents[1] / "data/registry.yaml"

SETS = ["DIV2K_train", "DIV2K100", "Flickr2K", "OST", "Set5", "Set14", "B100", "Urban100", "RealSR", "DRealSR",
        "PIPAL", "KonIQ-10k", "LIVE-itW", "Ma", "Rain100L_train", "Rain100L", "GoPro_train", "GoPro"]
WEIGHT_FILES = ["vgg19-dcbb9e9d.pth", "LPIPS_v0.1_alex-df73285e.pth", "alexnet-owt-7be5be79.pth",
                "DISTS_weights-f5e65c96.pth", "vgg16-397923af.pth", "niqe_modelparameters.mat",
                "RRDB_PSNR_x4.pth", "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
                "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth", "RealESRGAN_x4plus.pth", "RealESRNet_x4plus.pth",
                "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth", "NAFNet-GoPro-width32.pth", "BSRGAN.pth",
                "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth", "net_g_DF2K_RRDB+LDL.pth",
                "net_g_RealESRGAN+LDL.pth", "net_g_esrgan_x4_dual_former.pth"]


@pytest.fixture(scope="module")
def registry():
    return load_registry(REGISTRY)


def test_every_paper_set_is_provided_once(registry):
    names = [s for e in registry.values() if e["kind"] == "dataset" for s in e["provides"]]
    assert sorted(names) == sorted(SETS)


def test_every_weight_file_is_listed(registry):
    targets = {Path(e["target"]).name for e in registry.values() if e["kind"] == "weights"}
    assert set(WEIGHT_FILES) <= targets
    assert any(t.endswith(".safetensors") for t in targets)  # the CLIP RN50 weights for open_clip


def test_targets_are_distinct(registry):
    targets = [e["target"] for e in registry.values()]
    assert len(targets) == len(set(targets))


def test_pinned_checksums_cite_their_source(registry):
    for name, entry in registry.items():
        for spec in entry.get("files", []):
            if spec["checksum"]["value"] is not None:
                assert spec["checksum"].get("source"), name


def test_files_whose_publisher_states_a_digest_are_checked_against_it(registry):
    # Every Hugging Face resolve URL and GitHub release asset without a full pinned digest names its publisher,
    # so that trust on first use is left to the files nobody publishes a digest for.
    for name, entry in registry.items():
        for spec in entry.get("files", []):
            checksum = spec["checksum"]
            if checksum["value"] is None or checksum["algorithm"] == "sha256-prefix":
                first = spec["urls"][0]
                if re.match(r"https://huggingface\.co/.+/resolve/", first):
                    assert checksum.get("published") == "huggingface", name
                elif re.match(r"https://github\.com/[^/]+/[^/]+/releases/download/", first):
                    assert checksum.get("published") == "github-release", name


def test_public_esrgan_is_the_basicsr_release_asset(registry):
    esrgan = registry["esrgan_rrdb_esrgan_x4"]
    assert esrgan["target"] == "data/weights/eval/generators/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"
    assert esrgan["files"][0]["checksum"] == {"algorithm": "sha256-prefix", "value": "ff704c30",
                                              "source": "BasicSR file name (sha256[:8])",
                                              "published": "github-release"}


# the public comparison models of Tables 1-2 beyond ESRGAN and Real-ESRGAN: entry -> (external name, table, where
# the file comes from: a GitHub release asset, or the Google Drive folder a manual entry names)
LDL_DRIVE = "https://drive.google.com/drive/folders/1RGTTs9f9qIBmS-7aGzADks78H65ls-r4"  # LDL experiments/README.md
COMPARISON_MODELS = {
    "bsrgan_x4": ("BSRGAN-public", "table2", "https://github.com/cszn/KAIR/releases/download/v1.0/BSRGAN.pth"),
    "realswinir_m_x4": ("RealSwinIR-public", "table2", "https://github.com/JingyunLiang/SwinIR/releases/download/v0.0/"
                                                       "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth"),
    "ldl_rrdb_df2k_x4": ("LDL-public", "table1", LDL_DRIVE),
    "ldl_realesrgan_x4": ("LDL-public", "table2", LDL_DRIVE),
    "dualformer_esrgan_x4": ("DualFormer-public", "table1",
                             "https://drive.google.com/drive/folders/1iGS32Qux9mr4SJt2Zb7XTv4Xq6zLEy6I"),
}


def test_comparison_models_are_fetched_and_evaluated_by_the_paper_profile(registry):
    paper = yaml.safe_load((REGISTRY.parents[1] / "params.yaml").read_text())["paper"]
    fetched = paper["download"]["groups"]["eval_weights"]["entries"]
    external = {e["weights"]: (e["name"], e["table"]) for e in paper["eval_sr"]["external"]}
    for name, (model, table, source) in COMPARISON_MODELS.items():
        entry = registry[name]
        assert name in fetched and external[entry["target"]] == (model, table), name
        if "files" in entry:
            assert entry["files"][0]["urls"] == [source], name
            checksum = entry["files"][0]["checksum"]
            assert checksum == {"algorithm": "sha256", "value": None, "published": "github-release"}, name
        else:
            assert source in entry["manual"]["instructions"] and entry["target"] in entry["manual"]["instructions"]


def test_sr_sets_are_folders_and_real_pairs_are_globs(registry):
    provides = {s: v for e in registry.values() if e["kind"] == "dataset" for s, v in e["provides"].items()}
    assert provides["Set5"] == "benchmark/Set5/HR"
    assert provides["DIV2K100"] == "DIV2K_valid_HR"
    assert provides["OST"] == "OutdoorSceneTrain_v2"  # the training images only, not OutdoorSceneTest300 / OutdoorSeg
    # each dataset's own file-name suffixes: RealSR V3 Canon_001_HR / _LR4 side by side, DRealSR HR _x4 / LR _x1
    assert provides["RealSR"] == {"hr": "RealSR(V3)", "pattern": "*/Test/4/*", "hr_suffix": "_HR", "lr_suffix": "_LR4"}
    assert provides["DRealSR"] == {"hr": "Test_x4/test_HR", "lr": "Test_x4/test_LR", "hr_suffix": "_x4",
                                   "lr_suffix": "_x1"}
    assert provided_paths({"provides": {"X": provides["DRealSR"]}}) == ["Test_x4/test_HR", "Test_x4/test_LR"]
    assert provides["KonIQ-10k"]["format"] == "koniq"
    assert provided_paths({"provides": {"X": provides["PIPAL"]}}) == [provides["PIPAL"]["images"],
                                                                       provides["PIPAL"]["scores"]]


VALID = {"kind": "dataset", "description": "d", "licence": "l", "layout": "l", "target": "data/raw/sr/x",
         "files": [{"urls": ["https://example.org/x.zip"], "size": 10, "archive": "zip",
                    "checksum": {"algorithm": "md5", "value": "0" * 32, "source": "s"}}],
         "provides": {"X": "imgs", "Y": {"images": "i", "scores": "s.csv", "format": "koniq"}}}


def test_valid_entry_passes():
    validate_entry("x", copy.deepcopy(VALID))


def _set(entry, dotted, value):
    keys = dotted.split(".")
    for key in keys[:-1]:
        entry = entry[int(key)] if isinstance(entry, list) else entry[key]
    if value is KeyError:
        del entry[keys[-1]]
    else:
        entry[keys[-1]] = value


@pytest.mark.parametrize("where, value, field", [
    ("description", KeyError, "description"),
    ("kind", "model", "kind"),
    ("target", "data/raw/../../etc", "target"),
    ("target", "data/weights/x", "target"),
    ("target", "data/raw/x", "target"),          # a dataset lies in a group's folder, data/raw/<group>/<name>
    ("target", "data/raw/other/x", "target"),
    ("files.0.urls", ["http://example.org/x.zip"], "files[0].urls"),
    ("files.0.urls", [], "files[0].urls"),
    ("files.0.archive", "rar", "files[0].archive"),
    ("files.0.size", -1, "files[0].size"),
    ("files.0.checksum.algorithm", "crc32", "files[0].checksum.algorithm"),
    ("files.0.checksum.value", "abc", "files[0].checksum.value"),
    ("files.0.checksum.value", None, "files[0].checksum.note"),
    ("manual", {"page": "https://example.org", "instructions": "i"}, "files"),
    ("provides", {"X": "../outside"}, "provides.X"),
    ("provides", {"X": {"images": "i", "scores": "s", "format": "mos"}}, "provides.X.format"),
    ("provides", {"X": {"hr": "HR", "lr": "LR"}}, "provides.X"),  # real pairs without their suffixes
    ("provides", {"X": {"hr": "HR", "hr_suffix": "_HR", "lr_suffix": "x/4"}}, "provides.X.lr_suffix"),
    ("provides", {}, "provides"),
])
def test_malformed_entry_is_rejected_naming_the_field(where, value, field):
    entry = copy.deepcopy(VALID)
    _set(entry, where, value)
    with pytest.raises(ValueError, match=rf"'bad': field '{re.escape(field)}'"):
        validate_entry("bad", entry)


PUBLISHED = {"kind": "weights", "description": "d", "licence": "l", "layout": "l", "target": "data/weights/eval/x.pth",
             "files": [{"urls": ["https://huggingface.co/o/r/resolve/main/x.pth",
                                 "https://github.com/o/r/releases/download/v1/x.pth"],
                        "size": None, "archive": "none",
                        "checksum": {"algorithm": "sha256", "value": None, "published": "huggingface"}}]}


@pytest.mark.parametrize("checksum", [
    {"algorithm": "sha256", "value": None, "published": "huggingface"},  # no note needed: the digest is asked
    {"algorithm": "sha256", "value": None, "published": "github-release"},
    {"algorithm": "sha256-prefix", "value": "0123abcd", "source": "s", "published": "huggingface"},
])
def test_published_checksum_passes(checksum):
    entry = copy.deepcopy(PUBLISHED)
    entry["files"][0]["checksum"] = checksum
    validate_entry("p", entry)


@pytest.mark.parametrize("checksum, urls, problem", [
    ({"published": "gitlab"}, None, "must be one of"),
    ({"algorithm": "md5", "value": "0" * 32, "source": "s"}, None, "only read while the value is null"),
    ({}, ["https://hf-mirror.com/o/r/resolve/main/x.pth"], "huggingface file on huggingface.co"),
    ({}, ["https://huggingface.co/o/r/blob/main/x.pth"], "huggingface file on huggingface.co"),
    ({"published": "github-release"}, ["https://github.com/o/r/archive/v1.zip"], "github.com"),
])
def test_published_checksum_is_rejected_naming_the_field(checksum, urls, problem):
    entry = copy.deepcopy(PUBLISHED)
    entry["files"][0]["checksum"].update(checksum)
    if urls is not None:
        entry["files"][0]["urls"] = urls
    with pytest.raises(ValueError, match=rf"'p': field 'files\[0\]\.checksum\.published' .*{re.escape(problem)}"):
        validate_entry("p", entry)


def test_manual_checksum_cannot_name_a_publisher():
    entry = {k: v for k, v in PUBLISHED.items() if k != "files"}
    entry["manual"] = {"page": "https://example.org", "instructions": "i",
                       "checksum": {"algorithm": "sha256", "value": None, "published": "huggingface"}}
    with pytest.raises(ValueError, match=r"field 'manual\.checksum\.published' applies to downloadable files"):
        validate_entry("m", entry)


def test_weights_entry_must_be_one_plain_file():
    entry = copy.deepcopy(VALID)
    entry.update(kind="weights", target="data/weights/eval/x.pth")
    del entry["provides"]
    with pytest.raises(ValueError, match="field 'files'"):
        validate_entry("w", entry)


def test_load_registry_reports_entry_name(tmp_path):
    bad = copy.deepcopy(VALID)
    bad["files"][0]["urls"] = ["ftp://example.org/x.zip"]
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"good": VALID, "broken": bad}))
    with pytest.raises(ValueError, match="registry entry 'broken': field 'files\\[0\\].urls'"):
        load_registry(path)


def test_every_weights_file_the_paper_profile_reads_is_downloaded_by_it(registry):
    params = yaml.safe_load((REGISTRY.parents[1] / "params.yaml").read_text())
    fetched = {registry[name]["target"] for group in params["paper"]["download"]["groups"].values()
               for name in group["entries"]}

    def paths(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from paths(v)
        elif isinstance(node, list):
            for v in node:
                yield from paths(v)
        elif isinstance(node, str) and node.startswith("data/weights/"):
            yield node

    read = set(paths({k: v for k, v in params.items() if k != "download"}))
    assert "data/weights/train/generators/001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth" in read
    # a file that is a target or lies in one, or a folder holding targets (DualFormer's experiment folders)
    assert {p for p in read if not any(p == t or p.startswith(t.rstrip("/") + "/") or t.startswith(p + "/")
                                       for t in fetched)} == set()


def test_weights_lie_in_the_folder_of_their_group_and_groups_follow_targets(registry):
    """A weights file outside data/weights/{train,eval}/ is refused; every entry's group is its target's folder."""
    entry = {**copy.deepcopy(PUBLISHED), "target": "data/weights/x.pth"}
    with pytest.raises(ValueError, match="field 'target'"):
        validate_entry("w", entry)
    assert entry_group(registry["DRealSR"]) == "real_pairs" and entry_group(registry["vgg19"]) == "train_weights"
    assert entry_group(registry["lpips_alex"]) == "eval_weights"
