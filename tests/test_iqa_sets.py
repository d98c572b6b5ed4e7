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


def test_pipal_keeps_the_official_training_split_only(tmp_path):
    """pyiqa's merged meta CSV: `official_split` train rows (Dist_Imgs) and val rows whose images are elsewhere."""
    train = ["A0001_00_03.bmp", "A0001_03_23.bmp"]
    _images(tmp_path / "Dist_Imgs", train)  # A0005_10_00.bmp is a val image (Val_Dist/): absent here
    (tmp_path / "meta_info_PIPALDataset.csv").write_text(
        "hq_name,dist_name,elo_score,official_split\n"
        "A0001.bmp,A0001_00_03.bmp,1450.5,train\n"
        "A0005.bmp,A0005_10_00.bmp,1390.25,val\n"
        "A0001.bmp,A0001_03_23.bmp,1502.0,train\n")
    assert convert_iqa_set("pipal", tmp_path / "Dist_Imgs", tmp_path / "meta_info_PIPALDataset.csv",
                           tmp_path / "out") == 2
    rows = _read_scores(tmp_path / "out")
    assert [(r["image"], float(r["mos"]), r["subset"], r["split"]) for r in rows] == [
        ("A0001_00_03.bmp", 1450.5, "Trad.SR", "train"), ("A0001_03_23.bmp", 1502.0, "GAN.SR", "train")]
    (tmp_path / "val_only.csv").write_text("hq_name,dist_name,elo_score,official_split\n"
                                           "A0005.bmp,A0005_10_00.bmp,1390.25,val\n")
    with pytest.raises(ValueError, match=r"val_only\.csv: no rows with official_split `train`"):
        convert_iqa_set("pipal", tmp_path / "Dist_Imgs", tmp_path / "val_only.csv", tmp_path / "out2")


# Ma et al.'s images as the third-party list YunanZhu/RecycleD datasets/MaScoreDataset_all_pair.txt names them.
MA_IMAGES = ["Bicubic/sf2/sigma0.8/187058.png", "Bicubic/sf8/sigma2.0/49024.png", "SRCNN/sf4/sigma1.2/130066.png"]


def test_ma_authors_mat_is_refused_for_want_of_image_names(tmp_path):
    """The upstream SubjectData/SubjectScore_Final_RightOrderPSNR.mat: mean40, 180 x 8, in index order."""
    _images(tmp_path / "images", MA_IMAGES)
    mat = tmp_path / "SubjectData" / "SubjectScore_Final_RightOrderPSNR.mat"
    mat.parent.mkdir()
    savemat(mat, {"mean40": np.random.default_rng(0).uniform(0, 10, (180, 8))})
    with pytest.raises(ValueError, match=r"RightOrderPSNR\.mat: `mean40` holds 180 x 8 scores without image names"):
        convert_iqa_set("ma", tmp_path / "images", mat, tmp_path / "out")
    savemat(tmp_path / "other.mat", {"mos": np.ones((3, 2))})
    with pytest.raises(ValueError, match=r"other\.mat: expected the variable `mean40`, found \['mos'\]"):
        convert_iqa_set("ma", tmp_path / "images", tmp_path / "other.mat", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ma_scores_list_names_each_image(tmp_path):
    _images(tmp_path / "images", MA_IMAGES)
    (tmp_path / "MaScoreDataset_all_pair.txt").write_text(
        "/Bicubic/sf2/sigma0.8/187058.png,7.65\n/Bicubic/sf8/sigma2.0/49024.png,3.325\n"
        "/SRCNN/sf4/sigma1.2/130066.png,5.1\n")
    assert convert_iqa_set("ma", tmp_path / "images", tmp_path / "MaScoreDataset_all_pair.txt", tmp_path / "out") == 3
    rows = _read_scores(tmp_path / "out")
    assert {r["image"]: float(r["mos"]) for r in rows} == {
        "Bicubic/sf2/sigma0.8/187058.png": 7.65, "Bicubic/sf8/sigma2.0/49024.png": 3.325,
        "SRCNN/sf4/sigma1.2/130066.png": 5.1}
    assert (tmp_path / "out" / "images" / "SRCNN/sf4/sigma1.2/130066.png").is_file()
    (tmp_path / "bad.txt").write_text("/Bicubic/sf2/sigma0.8/187058.png 7.65\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: expected `<image path>,<score>`"):
        convert_iqa_set("ma", tmp_path / "images", tmp_path / "bad.txt", tmp_path / "out2")


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
