"""pipeline.onnx_export: the exported graph computes what the torch network does, at sizes it was not traced at."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from pipeline.archs.nafnet import NAFNet
from pipeline.archs.rrdbnet import RRDBNet
from pipeline.archs.swinir import SwinIR
from pipeline.checkpoint import save_state_dict
from pipeline.onnx_export import main
from pipeline.sr import build_generator
from paper_standins import sftgan_checkpoints

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("net", [RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
                                 SwinIR(img_size=16, embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                                        mlp_ratio=2.0, num_feat=8),
                                 NAFNet(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1])],
                         ids=["rrdbnet", "swinir", "nafnet"])
def test_onnx_output_equals_torch_within_one_level(tmp_path, net):
    torch.manual_seed(0)
    weights = tmp_path / "generator.safetensors"
    save_state_dict(weights, net.state_dict())
    out = tmp_path / "model.onnx"
    result = subprocess.run([sys.executable, "-m", "pipeline.onnx_export", "--weights", str(weights), "--output",
                             str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    reference = build_generator(weights)
    for h, w in ((20, 28), (37, 45)):  # not the traced 64 x 64, nor multiples of NAFNet's padding
        x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h))
        (got,) = session.run(["output"], {"input": x.numpy()})
        with torch.no_grad():
            expected = reference(x).numpy()
        assert got.shape == expected.shape == (2, 3, h * reference.scale, w * reference.scale)
        assert np.abs(got - expected).max() < 1 / 255


def test_a_file_that_is_no_generator_is_one_line(tmp_path):
    save_state_dict(tmp_path / "other.safetensors", {"conv.weight": torch.zeros(1)})
    result = subprocess.run([sys.executable, "-m", "pipeline.onnx_export", "--weights",
                             str(tmp_path / "other.safetensors"), "--output", str(tmp_path / "m.onnx")],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "fits none of RRDBNet" in result.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_sftgan_is_refused_with_the_reason(tmp_path, capsys):
    weights = sftgan_checkpoints(tmp_path)[2]
    assert main(["--weights", str(weights), "--output", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SFTGAN is not exported" in err and not (tmp_path / "m.onnx").exists()
