"""The quick profile's DAG, run by DVC in a fresh copy of the project."""
import pandas as pd
import yaml

from conftest import run
from pipeline.fileio import list_images, read_image


def download_with(project_copy, tmp_path, key: str, value):
    """`python -m stages.download sr` in a copy of the project whose params.yaml has `key` set to `value`: (the
    result, the copy)."""
    params = yaml.safe_load((project_copy / "params.yaml").read_text())
    params[key] = value
    bad = tmp_path / "bad"
    run(["cp", "-r", str(project_copy), str(bad)], tmp_path)
    (bad / "params.yaml").write_text(yaml.safe_dump(params))
    run(["rm", "-rf", "data/raw"], bad)  # left by an earlier test's repro in the shared copy
    return run(["python", "-m", "stages.download", "sr"], bad, check=False), bad


def test_bad_param_stops_stage_before_work(project_copy, tmp_path):
    result, bad = download_with(project_copy, tmp_path, "profile", "fast")
    assert result.returncode != 0
    assert "`profile`" in result.stderr
    assert not (bad / "data" / "raw").exists()


def test_repro_synthesize_writes_layout(project_copy):
    run(["dvc", "repro", "synthesize@sr", "synthesize@iqa"], project_copy)
    sets = project_copy / "data" / "sets"
    for name in ("quick_test", "quick_real", "quick_train"):
        hr, lr = list_images(sets / name / "HR"), list_images(sets / name / "LR_x4")
        assert hr and [p.name for p in hr] == [p.name for p in lr]
        for h, l in zip(hr, lr):
            hh, ll = read_image(h), read_image(l)
            assert hh.shape[0] == 4 * ll.shape[0] and hh.shape[1] == 4 * ll.shape[1]
    subs = list_images(sets / "quick_train" / "HR_sub")
    assert len(subs) > 100 and read_image(subs[0]).shape == (96, 96, 3)
    assert read_image(sets / "quick_train" / "LR_x4_sub" / subs[0].name).shape == (24, 24, 3)
    scores = pd.read_csv(project_copy / "data" / "iqa" / "quick_distortions" / "scores.csv")
    assert list(scores.columns) == ["image", "mos", "subset", "split"]
    assert len(scores) == 4 * 5 * 5 and set(scores["mos"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert all((project_copy / "data" / "iqa" / "quick_distortions" / "images" / n).is_file() for n in scores["image"])
    status = run(["dvc", "status", "-q", "download@sr", "download@iqa", "synthesize@sr", "synthesize@iqa"],
                 project_copy, check=False)
    assert status.returncode == 0, status.stdout


def test_a_bad_param_stops_the_dag_before_dvc_removes_any_output(project_copy):
    """check_params runs upstream of every stage: a value the schema refuses ends `dvc repro` with one line naming
    the key, and synthesize's previous outputs are as they were (DVC removes a stage's outputs before running it)."""
    run(["dvc", "repro", "synthesize@sr"], project_copy)
    subs = sorted(p.name for p in (project_copy / "data" / "sets" / "quick_train" / "HR_sub").iterdir())
    path = project_copy / "params.yaml"
    good = path.read_text()
    params = yaml.safe_load(good)
    params["quick"]["synthesize"]["subimage_size"] = 62
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        result = run(["dvc", "repro", "synthesize@sr"], project_copy, check=False)
    finally:
        path.write_text(good)
    assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
    assert ("params.yaml: `quick.synthesize.subimage_size` must be an integer >= 4, a multiple of 4, got 62"
            in result.stderr + result.stdout)
    assert sorted(p.name for p in (project_copy / "data" / "sets" / "quick_train" / "HR_sub").iterdir()) == subs


def test_a_bad_mirror_stops_the_download_stage_with_one_line_before_work(project_copy, tmp_path):
    result, bad = download_with(project_copy, tmp_path, "download_mirror", "ftp://mirror.example.org/sfd")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "download_mirror must be an http(s) base URL" in result.stderr
    assert not (bad / "data" / "raw").exists()
