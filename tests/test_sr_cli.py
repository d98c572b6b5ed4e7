"""`python -m pipeline.sr`: end to end on small images with a tiny random RRDBNet, tiling, and its error exits."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from kornia.models.rrdbnet import RRDBNet as KorniaRRDBNet
from PIL import Image
from skimage import data

from pipeline.archs.rrdbnet import RRDBNet, basicsr_to_esrgan
from pipeline.checkpoint import save_state_dict
from pipeline.fileio import read_image, write_image
from pipeline.sr import build_generator, main, upscale, upscale_image
from pipeline.tensor_image import to_tensor, to_uint8
from paper_standins import sftgan_checkpoints

# receptive field radius of this net at LR: 1 (conv_first) + 1 * 3 * 5 (RRDB) + 1 (conv_body) + ~2 (upsampling)
TINY = dict(num_feat=8, num_block=1, num_grow_ch=4)
SAFE_OVERLAP = 24
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    net = RRDBNet(**TINY).eval()
    with torch.no_grad():
        # spread the random output over [0, 1] (few pixels clipped) so uint8 comparisons mean something
        net.conv_last.weight.mul_(10)
        net.conv_last.bias.fill_(0.5)
    return net


@pytest.fixture
def weights(tmp_path, tiny_net):
    path = tmp_path / "tiny.safetensors"
    save_state_dict(path, tiny_net.state_dict())
    return path


@pytest.fixture
def lr_dir(tmp_path):
    folder = tmp_path / "lr"
    for name, img, size in (("astronaut", data.astronaut(), (32, 28)), ("chelsea", data.chelsea(), (30, 21))):
        write_image(folder / f"{name}.png", np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC)))
    return folder


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_cli_end_to_end_writes_x4_pngs(tmp_path, weights, lr_dir, tiny_net):
    out = tmp_path / "sr"
    proc = subprocess.run([sys.executable, "-m", "pipeline.sr", "--weights", weights, "--input", lr_dir,
                           "--output", out, "--device", "cpu"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "chelsea.png"]
    for name in ("astronaut", "chelsea"):
        lr, sr = read_image(lr_dir / f"{name}.png"), read_image(out / f"{name}.png")
        assert sr.shape == (lr.shape[0] * 4, lr.shape[1] * 4, 3) and sr.dtype == np.uint8
        with torch.no_grad():
            expected = tiny_net(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255)
        expected = expected[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(sr, expected)
        assert sr.std() > 10 and (sr == 255).mean() < 0.05  # not a flat or clipped image


def test_cli_single_file_and_esrgan_layout_pth(tmp_path, weights, lr_dir, tiny_net, capsys):
    old = tmp_path / "RRDB_tiny_x4.pth"
    torch.save(basicsr_to_esrgan(tiny_net.state_dict()), old)
    for w, out in ((weights, tmp_path / "a"), (old, tmp_path / "b")):
        assert run_main(capsys, "--weights", w, "--input", lr_dir / "chelsea.png", "--output", out,
                        "--device", "cpu")[0] == 0
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["chelsea.png"]
    a, b = (read_image(tmp_path / folder / "chelsea.png") for folder in ("a", "b"))
    np.testing.assert_array_equal(a, b)


def test_cli_runs_sftgan_with_its_segmentation_prior(tmp_path, lr_dir, capsys):
    _, _, weights, prior = sftgan_checkpoints(tmp_path)
    code, err = run_main(capsys, "--weights", weights, "--input", lr_dir, "--output", tmp_path / "bare")
    assert code == 2 and "needs its segmentation network's weights" in err and err.count("\n") == 1
    code, err = run_main(capsys, "--weights", weights, "--prior", prior, "--input", lr_dir, "--output",
                         tmp_path / "sr", "--device", "cpu")
    assert code == 0, err
    net = build_generator(weights, prior)
    for name in ("astronaut", "chelsea"):  # chelsea is 21 px wide: padded for the segmentation's stride
        lr, sr = read_image(lr_dir / f"{name}.png"), read_image(tmp_path / "sr" / f"{name}.png")
        assert sr.shape == (lr.shape[0] * 4, lr.shape[1] * 4, 3)
        np.testing.assert_array_equal(sr, upscale_image(net, lr))


def test_tiled_equals_whole(tiny_net):
    lr = torch.rand(1, 3, 37, 30, generator=torch.Generator().manual_seed(2))
    whole = upscale(tiny_net, lr)
    tiled = upscale(tiny_net, lr, tile=16, overlap=SAFE_OVERLAP)
    assert tiled.shape == whole.shape == (1, 3, 148, 120)
    assert (tiled - whole).abs().max() < 1e-5
    # the check can fail: without enough context the tile borders differ
    assert (upscale(tiny_net, lr, tile=16, overlap=2) - whole).abs().max() > 1 / 255


def test_a_tiled_image_never_holds_more_than_one_tile_in_float(tiny_net):
    """upscale_image with a tile: the network's outputs are one tile each (with context), the image is assembled
    in uint8 on the host, and equals the tiled tensor path's rounding."""
    img = np.random.default_rng(3).integers(0, 256, (96, 80, 3), dtype=np.uint8)
    sizes = []
    hook = tiny_net.register_forward_hook(lambda m, i, o: sizes.append(o.numel()))
    try:
        out = upscale_image(tiny_net, img, tile=16, overlap=8)
    finally:
        hook.remove()
    assert out.dtype == np.uint8 and out.shape == (384, 320, 3)
    assert len(sizes) == 30 and max(sizes) == 3 * (4 * (16 + 2 * 8)) ** 2  # one tile with its context at a time
    np.testing.assert_array_equal(out, to_uint8(upscale(tiny_net, to_tensor(img), tile=16, overlap=8)))
    np.testing.assert_array_equal(upscale_image(tiny_net, img), to_uint8(upscale(tiny_net, to_tensor(img))))


def test_cli_tiled_matches_whole_within_one_level(tmp_path, weights, lr_dir, capsys):
    common = ("--weights", weights, "--input", lr_dir / "astronaut.png", "--device", "cpu")
    assert run_main(capsys, *common, "--output", tmp_path / "whole")[0] == 0
    assert run_main(capsys, *common, "--output", tmp_path / "tiled", "--tile", 16,
                    "--tile-overlap", SAFE_OVERLAP)[0] == 0
    whole = read_image(tmp_path / "whole" / "astronaut.png").astype(int)
    tiled = read_image(tmp_path / "tiled" / "astronaut.png").astype(int)
    assert whole.shape == (112, 128, 3) and np.abs(whole - tiled).max() <= 1


class _Payload:
    def __reduce__(self):
        return print, ("unpickled",)


def test_cli_errors_exit_2_with_one_line(tmp_path, weights, lr_dir, capsys):
    text_file = tmp_path / "notes.pth"
    text_file.write_text("not a checkpoint")
    pickled = tmp_path / "pickled.pth"
    torch.save({"model": _Payload()}, pickled)
    other = tmp_path / "other.safetensors"
    save_state_dict(other, {"head.weight": torch.zeros(4, 4)})
    x2 = tmp_path / "RRDB_x2.safetensors"
    save_state_dict(x2, KorniaRRDBNet(3, 3, scale=2, **TINY).state_dict())
    cases = [
        ((weights, tmp_path / "nothing_here"), "input not found"),
        ((tmp_path / "missing.safetensors", lr_dir), "weights file not found"),
        ((text_file, lr_dir), "not a weights-only checkpoint"),
        ((pickled, lr_dir), "not a weights-only checkpoint"),
        ((other, lr_dir), "unexpected keys (1: head.weight)"),
        ((x2, lr_dir), "scale x2 is not supported, only x4"),
    ]
    for (w, source), expected in cases:
        code, err = run_main(capsys, "--weights", w, "--input", source, "--output", tmp_path / "out",
                             "--device", "cpu")
        assert code == 2, expected
        assert err.startswith("error: ") and err.count("\n") == 1 and expected in err
        assert "Traceback" not in err and "\x1b" not in err and "unpickled" not in err
    assert not (tmp_path / "out").exists()


def test_output_folder_must_differ_from_input(lr_dir, weights, capsys):
    code, err = run_main(capsys, "--weights", weights, "--input", lr_dir, "--output", lr_dir)
    assert code == 2 and "must differ" in err


def test_output_file_and_inputs_sharing_a_stem_are_refused_before_running(tmp_path, weights, lr_dir, capsys):
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"")
    code, err = run_main(capsys, "--weights", weights, "--input", lr_dir, "--output", taken)
    assert code == 2 and err == f"error: --output {taken} is a file; give a folder for the PNG outputs\n"
    write_image(lr_dir / "chelsea.jpg", read_image(lr_dir / "chelsea.png"))
    code, err = run_main(capsys, "--weights", weights, "--input", lr_dir, "--output", tmp_path / "out")
    assert code == 2 and "same output: chelsea.jpg and chelsea.png -> chelsea.png" in err
    assert not (tmp_path / "out").exists()


def test_build_generator_from_cli_weights_is_eval(weights):
    assert not build_generator(weights).training


def test_an_output_folder_under_a_file_is_refused_before_the_model(tmp_path, weights, lr_dir):
    """It failed at the first image's write, after the network was built; now one error line, nothing written."""
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file")
    proc = subprocess.run([sys.executable, "-m", "pipeline.sr", "--weights", weights, "--input", lr_dir,
                           "--output", blocker / "sr", "--device", "cpu"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: --output: ") and "results.txt is a file" in proc.stderr
    assert blocker.read_text() == "a file"


def test_a_corrupted_weights_file_is_refused_by_its_checksum(tmp_path, weights, lr_dir):
    """safetensors checks no tensor bytes: a flipped byte in the data loaded silently; the file's tensor_sha256
    (written by save_state_dict) now catches it."""
    data = bytearray(weights.read_bytes())
    data[-40] ^= 0xFF  # inside the last tensor, the header untouched
    weights.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "pipeline.sr", "--weights", weights, "--input", lr_dir,
                           "--output", tmp_path / "sr", "--device", "cpu"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "tiny.safetensors is corrupted: its tensors do not match the sha256 written with them" in proc.stderr
    assert not (tmp_path / "sr").exists()


def test_bad_images_are_reported_and_skipped_and_the_exit_status_says_so(tmp_path, weights, lr_dir):
    """The CLI stopped at the first bad image, leaving a partial set; a PNG whose header claims a huge size ended
    in a traceback. Now every good image is super-resolved, the bad ones are named, and the exit code is 1."""
    from test_fileio import huge_png
    (lr_dir / "broken.png").write_text("not a png")
    huge_png(lr_dir / "huge.png", 100_000, 100_000)
    proc = subprocess.run([sys.executable, "-m", "pipeline.sr", "--weights", weights, "--input", lr_dir,
                           "--output", tmp_path / "sr", "--device", "cpu"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in (tmp_path / "sr").iterdir()) == ["astronaut.png", "chelsea.png"]
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "skipped 2 of 4 image(s)" in warning[0]
    assert "broken.png: not a readable image" in warning[0] and "huge.png: over the limit of" in warning[0]


@pytest.mark.parametrize("flags, message", [(["--tile", "-16"], "--tile must be an integer >= 0, got -16"),
                                            (["--tile-overlap", "-1"], "--tile-overlap must be an integer >= 0")])
def test_tile_flags_are_checked_by_the_params_rules(tmp_path, flags, message):
    result = subprocess.run([sys.executable, "-m", "pipeline.sr", "--weights", "w", "--input", str(tmp_path),
                             "--output", str(tmp_path / "out"), *flags], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
