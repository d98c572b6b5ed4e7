"""`python -m pipeline.iqa` end to end on small images with a random-weight tiny-CLIP checkpoint."""
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline import iqa
from pipeline.archs.clip_encoder import TINY_ARCH, CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.checkpoint import load_state_dict, save_state_dict
from pipeline.fileio import read_image, write_image
from pipeline.iqa import main
from pipeline.sfd_iqa import load_sfd_iqa, save_sfd_iqa

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("iqa")
    rng = np.random.default_rng(0)
    images = root / "images"
    write_image(images / "b.png", rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
    write_image(images / "a.jpg", rng.integers(0, 256, (64, 70, 3), dtype=np.uint8))
    (images / "notes.txt").write_text("not an image")
    torch.manual_seed(0)
    encoder = CLIPEncoder(TINY_ARCH, "none")
    weights = root / "sfd_iqa.safetensors"
    save_sfd_iqa(weights, encoder, FeatD(encoder.mid_channels, (32, 32, 16, 16)),
                 LearnablePromptPairs(encoder, n_ctx=8), prompt_logit_scale=100.0)
    return root, images, weights


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folder_end_to_end(setup):
    root, images, weights = setup
    out = root / "scores.csv"
    result = subprocess.run([sys.executable, "-m", "pipeline.iqa", "--input", str(images), "--output", str(out),
                             "--weights", str(weights), "--device", "cpu"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    rows = read_rows(out)
    assert [r["image"] for r in rows] == ["a.jpg", "b.png"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "notes.txt" in warnings[0]
    assert "random weights" in result.stderr
    model = load_sfd_iqa(weights)
    for row in rows:
        img = torch.from_numpy(read_image(images / row["image"])).permute(2, 0, 1)[None].float() / 255
        assert float(row["score"]) == pytest.approx(model(img, "full").item(), abs=1e-6)


def test_single_file_variant_and_baseline_without_weights(setup):
    root, images, weights = setup
    out = root / "tgd.csv"
    assert main(["--input", str(images / "b.png"), "--output", str(out), "--weights", str(weights),
                 "--variant", "tgd", "--alpha1", "0", "--alpha2", "1", "--device", "cpu"]) == 0
    rows = read_rows(out)
    img = torch.from_numpy(read_image(images / "b.png")).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        expected = load_sfd_iqa(weights).parts(img)["s_lp"].item()  # alpha1 = 0: s_aver is s_lp
    assert [r["image"] for r in rows] == ["b.png"] and float(rows[0]["score"]) == pytest.approx(expected, abs=1e-6)

    out = root / "baseline.csv"
    assert main(["--input", str(images), "--output", str(out), "--clip-arch", TINY_ARCH, "--clip-weights", "none",
                 "--device", "cpu"]) == 0
    assert len(read_rows(out)) == 2


def test_clip_position_embedding_is_clip_iqas_unless_asked(setup):
    """By default SFD-IQA's F_out has no position embedding (CLIP-IQA's); --clip-position interpolate scores with
    CLIP's table resized, and gives other scores."""
    root, images, weights = setup
    img = torch.from_numpy(read_image(images / "a.jpg")).permute(2, 0, 1)[None].float() / 255
    scores = {}
    for position in ("none", "interpolate"):
        out = root / f"{position}.csv"
        flag = [] if position == "none" else ["--clip-position", position]
        assert main(["--input", str(images / "a.jpg"), "--output", str(out), "--weights", str(weights),
                     "--device", "cpu", *flag]) == 0
        scores[position] = float(read_rows(out)[0]["score"])
        model = load_sfd_iqa(weights, clip_position=position)
        assert model.encoder.position == position
        with torch.no_grad():
            assert scores[position] == pytest.approx(model(img, "full").item(), abs=1e-6)
    assert load_sfd_iqa(weights).encoder.position == "none"
    assert abs(scores["none"] - scores["interpolate"]) > 1e-6


@pytest.mark.parametrize("case, message", [
    ("missing_input", "input not found"),
    ("missing_weights", "weights file not found"),
    ("not_weights", "not a weights-only checkpoint"),
    ("does_not_fit", "does not fit"),
    ("full_without_weights", "needs --weights"),
    ("no_images", "no readable images"),
    ("only_small_images", "1 too small (under 32 px), 1 not readable"),
    ("unknown_clip_arch", "unknown CLIP model 'foo'"),
    ("missing_clip_file", "CLIP weights file that the SFD-IQA checkpoint"),
])
def test_errors_exit_2_with_one_line(setup, tmp_path, capsys, case, message):
    _, images, weights = setup
    args = {"--input": str(images), "--output": str(tmp_path / "out.csv"), "--weights": str(weights)}
    if case == "missing_input":
        args["--input"] = str(tmp_path / "nowhere")
    elif case == "missing_weights":
        args["--weights"] = str(tmp_path / "absent.safetensors")
    elif case == "not_weights":
        (tmp_path / "junk.pth").write_text("not weights")
        args["--weights"] = str(tmp_path / "junk.pth")
    elif case == "does_not_fit":
        args["--weights"] = str(tmp_path / "other.safetensors")
        encoder = CLIPEncoder(TINY_ARCH, "none")
        lpp = LearnablePromptPairs(encoder, n_ctx=8)
        save_sfd_iqa(args["--weights"], encoder, FeatD(encoder.mid_channels, (32, 32, 16, 16)), lpp, 100.0)
        state, meta = load_state_dict(args["--weights"])
        save_state_dict(args["--weights"], state, {**meta, "n_ctx": "6"})
    elif case == "full_without_weights":
        del args["--weights"]
        args["--variant"] = "full"
    elif case in ("no_images", "only_small_images"):
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "readme.txt").write_text("text")
        if case == "only_small_images":
            write_image(tmp_path / "docs" / "icon.png", np.zeros((31, 64, 3), np.uint8))
        args["--input"] = str(tmp_path / "docs")
    elif case == "unknown_clip_arch":
        del args["--weights"]
        args.update({"--clip-arch": "foo", "--clip-weights": "none"})
    elif case == "missing_clip_file":
        args["--weights"] = str(tmp_path / "relative_clip.safetensors")
        state, meta = load_state_dict(weights)
        save_state_dict(args["--weights"], state, {**meta, "clip_weights": "data/weights/clip/absent.safetensors"})
    argv = [item for pair in args.items() for item in pair] + ["--device", "cpu"]
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "out.csv").exists()


def test_small_images_are_skipped_apart_from_unreadable_files(setup, tmp_path, capsys):
    _, images, weights = setup
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("b.png", "notes.txt"):
        shutil.copy(images / name, folder / name)
    write_image(folder / "icon.png", np.zeros((20, 40, 3), np.uint8))
    out = tmp_path / "scores.csv"
    # scores written for what could be scored; exit 1 says an image (icon.png) has none
    assert main(["--input", str(folder), "--output", str(out), "--weights", str(weights), "--device", "cpu"]) == 1
    assert [r["image"] for r in read_rows(out)] == ["b.png"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: skipped 1 file(s) that are not readable images: notes.txt",
                        "warning: skipped 1 image(s) too small (under 32 px): icon.png"]


def test_output_folder_is_refused_before_the_model_is_built(setup, tmp_path, capsys, monkeypatch):
    _, images, weights = setup
    monkeypatch.setattr(iqa, "build_model", lambda *args: pytest.fail("the model was built"))
    assert main(["--input", str(images), "--output", str(tmp_path), "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --output {tmp_path} is a folder; give the path of the CSV file to write\n"


@pytest.mark.parametrize("where", ["the input itself", "inside the input folder", "under a file"])
def test_an_output_that_would_harm_the_inputs_is_refused_before_any_model(setup, tmp_path, where):
    """`--input X.png --output X.png` replaced the user's image with the CSV; an output in the input folder joined
    the inputs; one under a file failed only after scoring. Each is one error line now, and the inputs stay."""
    _, images, weights = setup
    folder = tmp_path / "images"
    shutil.copytree(images, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    source, output, message = {
        "the input itself": (folder / "b.png", folder / "b.png", "is one of the inputs: it would be replaced"),
        "inside the input folder": (folder, folder / "scores.csv", "is inside the input folder"),
        "under a file": (folder, folder / "notes.txt" / "scores.csv", "notes.txt is a file"),
    }[where]
    result = subprocess.run([sys.executable, "-m", "pipeline.iqa", "--input", str(source), "--output", str(output),
                             "--weights", str(weights), "--device", "cpu"],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: --output: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "note: CLIP" not in result.stderr  # no model was built
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("flags, message", [
    (["--alpha1", "nan"], "--alpha1 must be a finite number >= 0, got nan"),
    (["--alpha2", "-1"], "--alpha2 must be a finite number >= 0, got -1.0"),
    (["--alpha1", "0", "--alpha2", "0"], "--alpha1 and --alpha2 must not both be 0"),
    (["--max-pixels", "0"], "--max-pixels must be an integer >= 1, got 0"),
])
def test_flags_are_checked_by_the_params_rules_before_any_work(tmp_path, flags, message):
    result = subprocess.run([sys.executable, "-m", "pipeline.iqa", "--input", str(tmp_path), "--output",
                             str(tmp_path / "out.csv"), *flags], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
