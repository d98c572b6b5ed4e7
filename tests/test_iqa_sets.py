"""The IQA converters on tiny stand-ins written in the official layouts of KonIQ-10k, LIVE-itW, PIPAL and Ma's set."""
import csv

import numpy as np
import pytest
from scipy.io import savemat

from pipeline.data.iqa_sets import convert_iqa_set, pipal_family
from pipeline.fileio import write_image


def _images(folder, names, seed=0):
    rng = np.random.default_rng(seed)
    for name in names:
        write_image(folder / name, rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))


def _read_scores(out):
    with open(out / "scores.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_koniq_official_scores_with_split_file(tmp_path):
    images = tmp_path / "1024x768"
    names = ["826373.jpg", "10004473376.jpg", "10007357496.jpg"]
    _images(images, names)
    (tmp_path / "koniq10k_scores_and_distributions.csv").write_text(
        '"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"\n'
        '"10004473376.jpg",0,0,25,73,7,105,3.828571429,0.527277894,77.38362069\n'
        '"10007357496.jpg",0,3,45,47,1,96,3.479166667,0.580003025,68.72857143\n'
        '"826373.jpg",1,10,50,30,9,100,3.36,0.8,60.5\n')
    (tmp_path / "koniq10k_distributions_sets.csv").write_text(
        "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set\n"
        "10004473376.jpg,0.0,0.0,0.24,0.70,0.07,105,77.38362069,0.53,training\n"
        "10007357496.jpg,0.0,0.03,0.47,0.49,0.01,96,68.72857143,0.58,test\n"
        "826373.jpg,0.01,0.1,0.5,0.3,0.09,100,60.5,0.8,validation\n")
    out = tmp_path / "out"
    n = convert_iqa_set("koniq", images, tmp_path / "koniq10k_scores_and_distributions.csv", out,
                        split_file=tmp_path / "koniq10k_distributions_sets.csv")
    assert n == 3
    rows = _read_scores(out)
    assert list(rows[0]) == ["image", "mos", "subset", "split"]
    assert [r["image"] for r in rows] == sorted(names)
    by_name = {r["image"]: r for r in rows}
    assert float(by_name["10004473376.jpg"]["mos"]) == pytest.approx(77.38362069)  # MOS_zscore, not MOS
    assert {k: (r["split"], r["subset"]) for k, r in by_name.items()} == {
        "10004473376.jpg": ("train", "train"), "10007357496.jpg": ("test", "test"), "826373.jpg": ("val", "val")}
    for name in names:
        assert (out / "images" / name).read_bytes() == (images / name).read_bytes()


def test_koniq_sets_file_alone_gives_scores_and_split(tmp_path):
    _images(tmp_path / "img", ["a.jpg", "b.jpg"])
    (tmp_path / "sets.csv").write_text("image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set\n"
                                       "b.jpg,0,0,0,1,0,100,80.5,0.5,test\n"
                                       "a.jpg,0,1,0,0,0,100,20.25,0.5,training\n")
    assert convert_iqa_set("koniq", tmp_path / "img", tmp_path / "sets.csv", tmp_path / "out") == 2
    rows = _read_scores(tmp_path / "out")
    assert [(r["image"], float(r["mos"]), r["split"]) for r in rows] == [("a.jpg", 20.25, "train"),
                                                                         ("b.jpg", 80.5, "test")]


def test_missing_column_names_file_and_column(tmp_path):
    (tmp_path / "scores.csv").write_text("image_name,MOS_zscore\na.jpg,50\n")
    with pytest.raises(ValueError, match=r"scores\.csv: missing column `MOS`"):
        convert_iqa_set("koniq", tmp_path, tmp_path / "scores.csv", tmp_path / "out")
    with pytest.raises(ValueError, match="scores file not found"):
        convert_iqa_set("koniq", tmp_path, tmp_path / "nope.csv", tmp_path / "out")


def test_split_file_must_cover_every_image(tmp_path):
    _images(tmp_path / "img", ["a.jpg", "b.jpg"])
    (tmp_path / "scores.csv").write_text("image_name,MOS,MOS_zscore\na.jpg,3,50\nb.jpg,4,70\n")
    (tmp_path / "split.csv").write_text("img_name,mos,std,split\na.jpg,50,1,training\n")
    with pytest.raises(ValueError, match=r"1 images .* have no split, e\.g\. \['b\.jpg'\]"):
        convert_iqa_set("koniq", tmp_path / "img", tmp_path / "scores.csv", tmp_path / "out",
                        split_file=tmp_path / "split.csv")


def test_livec_pyiqa_meta_drops_the_practice_images(tmp_path):
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["100.bmp", "10.bmp", "3.bmp"]
    _images(tmp_path / "LIVEC", names)
    lines = ["img_name,mos,std"] + [f"{n},{i + 1.5},9.0" for i, n in enumerate(names)]
    (tmp_path / "meta_info_LIVEChallengeDataset.csv").write_text("\n".join(lines) + "\n")
    n = convert_iqa_set("pyiqa_meta", tmp_path / "LIVEC", tmp_path / "meta_info_LIVEChallengeDataset.csv",
                        tmp_path / "out")
    assert n == 3
    rows = _read_scores(tmp_path / "out")
    assert [(r["image"], float(r["mos"]), r["subset"], r["split"]) for r in rows] == [
        ("10.bmp", 9.5, "", ""), ("100.bmp", 8.5, "", ""), ("3.bmp", 10.5, "", "")]
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == ["10.bmp", "100.bmp", "3.bmp"]


def test_pipal_families_from_pyiqa_meta_and_official_labels(tmp_path):
    names = ["A0001_00_03.bmp", "A0001_01_15.bmp", "A0001_03_23.bmp", "A0002_06_26.bmp"]
    _images(tmp_path / "Dist_Imgs", names)
    (tmp_path / "meta_info_PIPALDataset.csv").write_text(
        "hq_name,dist_name,elo_score\n" + "".join(f"{n[:5]}.bmp,{n},{1400.0 + i}\n" for i, n in enumerate(names)))
    labels = tmp_path / "Train_Label"
    labels.mkdir()
    (labels / "A0001.txt").write_text("".join(f"{n},{1400.0 + i}\n" for i, n in enumerate(names[:3])))
    (labels / "A0002.txt").write_text(f"{names[3]},1403.0\n")
    for scores, out in ((tmp_path / "meta_info_PIPALDataset.csv", tmp_path / "a"), (labels, tmp_path / "b")):
        assert convert_iqa_set("pipal", tmp_path / "Dist_Imgs", scores, out) == 4
        rows = _read_scores(out)
        assert [(r["image"], float(r["mos"]), r["subset"]) for r in rows] == [
            ("A0001_00_03.bmp", 1400.0, "Trad.SR"), ("A0001_01_15.bmp", 1401.0, "PSNR.SR"),
            ("A0001_03_23.bmp", 1402.0, "GAN.SR"), ("A0002_06_26.bmp", 1403.0, "class06")]
    with pytest.raises(ValueError, match="does not follow"):
        pipal_family("ref.bmp")


def test_ma_mat_pairs_names_and_scores_in_matlab_order(tmp_path):
    names = np.array([["img1_m1.png", "img1_m2.png"], ["img2_m1.png", "img2_m2.png"]], dtype=object)
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    _images(tmp_path / "SR", list(names.ravel()))
    savemat(tmp_path / "scores.mat", {"img_names": names, "mos": scores, "note": "Ma et al. 2017"})
    assert convert_iqa_set("ma", tmp_path / "SR", tmp_path / "scores.mat", tmp_path / "out") == 4
    rows = _read_scores(tmp_path / "out")
    assert {r["image"]: float(r["mos"]) for r in rows} == {
        "img1_m1.png": 1.0, "img1_m2.png": 2.0, "img2_m1.png": 3.0, "img2_m2.png": 4.0}


def test_ma_mat_without_names_is_an_error(tmp_path):
    savemat(tmp_path / "SubjectScore.mat", {"mean40": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"SubjectScore\.mat: expected one variable of image names"):
        convert_iqa_set("ma", tmp_path, tmp_path / "SubjectScore.mat", tmp_path / "out")


def test_missing_images_are_listed_and_nothing_is_written(tmp_path):
    _images(tmp_path / "img", ["a.bmp"])
    (tmp_path / "meta.csv").write_text("img_name,mos\na.bmp,1\nb.bmp,2\nc.bmp,3\n")
    with pytest.raises(ValueError, match=r"2 of 3 images .* e\.g\. \['b\.bmp', 'c\.bmp'\]"):
        convert_iqa_set("pyiqa_meta", tmp_path / "img", tmp_path / "meta.csv", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_format_and_misplaced_split_file(tmp_path):
    with pytest.raises(ValueError, match="unknown IQA set format"):
        convert_iqa_set("tid2013", tmp_path, tmp_path / "x.csv", tmp_path / "out")
    _images(tmp_path / "img", ["a.bmp"])
    (tmp_path / "meta.csv").write_text("img_name,mos\na.bmp,1\n")
    with pytest.raises(ValueError, match="only read for the `koniq` format"):
        convert_iqa_set("pyiqa_meta", tmp_path / "img", tmp_path / "meta.csv", tmp_path / "out",
                        split_file=tmp_path / "meta.csv")
