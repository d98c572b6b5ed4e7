"""Convert the paper's external IQA sets (Table 3 and 4) into one layout.

Every set becomes `<out>/images/<relative path>` (files copied unchanged) and `<out>/scores.csv` with the columns
`image` (path relative to images/), `mos`, `subset`, `split`, one row per image, sorted by image.

Readers, one per source format (each returns the rows of one scores file):
- `koniq`: KonIQ-10k's official `koniq10k_scores_and_distributions.csv`
  (`image_name,c1,...,c5,c_total,MOS,SD,MOS_zscore`). `mos` is `MOS_zscore`, the 1-100 score that pyiqa and the
  IQA literature report on (`MOS` is the raw 1-5 mean). The official train/val/test split lives in a separate file,
  subpic/koniq's `metadata/koniq10k_distributions_sets.csv` (`image_name,c1..c5,c_total,MOS,SD,set`, where that
  file's `MOS` already is the 1-100 score, so it also works as the scores file) or pyiqa's
  `meta_info_KonIQ10kDataset.csv` (`img_name,mos,std,split,...`); pass it as `split_file`. Table 4 evaluates on
  these subsets, so the split also goes into `subset`.
- `pyiqa_meta`: an NR meta CSV of pyiqa (`img_name,mos,std[,<split column>]`), used for LIVE-itW. The seven
  practice images of the LIVE Challenge study (t1.bmp ... t7.bmp) are dropped, as pyiqa's LIVEChallengeDataset
  does, leaving the 1162 images the literature reports on.
- `pipal`: the PIPAL training set, scored either by pyiqa's `meta_info_PIPALDataset.csv`
  (`hq_name,dist_name,elo_score[,official_split]`, only its `train` rows) or by the official `Train_Label/` folder
  (`A0001.txt`, lines `<name>,<elo>`).
- `ma`: Ma et al.'s SR-IQA set (chaoma99/sr-metric): a list of `<image path>,<score>` lines naming each image; the
  authors' own `mean40` .mat is recognised and refused, since nothing published ties its cells to image files.
"""
from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np

from pipeline.fileio import atomic_path, write_text

COLUMNS = ("image", "mos", "subset", "split")

# Official split names (KonIQ writes training/validation/test) -> the names scores.csv uses.
SPLIT_NAMES = {"training": "train", "train": "train", "validation": "val", "val": "val", "test": "test"}

LIVEC_PRACTICE_IMAGES = frozenset(f"t{i}.bmp" for i in range(1, 8))

# PIPAL names its distorted images `A<ref id>_<class>_<type>.bmp`; the maintainer describes the middle field as the
# distortion class (HaomingCai/PIPAL-dataset issue #13, pointing to Table 10 of arXiv:2011.15002), and the class
# order discussed there is 00 traditional SR, 01 PSNR-oriented SR, 02 SR with kernel mismatch, 03 GAN-based SR.
# YunanZhu/RecycleD's per-family lists (datasets/PIPAL_train_{TradSR,PsnrSR,KnMmSR,GANbSR,DenoSR}_pair.txt, commit
# 8db90dc) read 00-03 the same way and hold class 05 as denoising + SR. Classes 00, 01 and 03 are the subsets of
# the paper's Table 4. Other classes keep their id.
PIPAL_FAMILIES = {"00": "Trad.SR", "01": "PSNR.SR", "02": "KernelMismatch.SR", "03": "GAN.SR", "05": "Denoising.SR"}
# What the report says beside every PIPAL sub-type row: the mapping has no confirmation from PIPAL itself.
PIPAL_MAPPING_CAVEAT = (
    "PIPAL's sub-type rows rest on an unconfirmed mapping: PIPAL publishes no list of which class id in its file "
    "names (A<ref>_<class>_<type>) is which distortion family. We read 00 as Trad.SR, 01 as PSNR.SR and 03 as "
    "GAN.SR from the order that its maintainer points to (HaomingCai/PIPAL-dataset issue #13, Table 10 of "
    "arXiv:2011.15002), an answer the issue leaves open; RecycleD's per-family file lists read them the same way. "
    "The whole-set rows do not depend on it.")
PIPAL_NAME = re.compile(r"^A\d+_(\d{2})_\d{2}\.\w+$")


class IQARow(NamedTuple):
    image: str
    mos: float
    subset: str = ""
    split: str = ""


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValueError(f"scores file not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        for column in required:
            if column not in columns:
                raise ValueError(f"{path}: missing column `{column}` (has {columns})")
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def _to_float(value: str, path: Path, image: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{path}: score `{value}` of {image} is not a number") from None


def _split_name(value: str, path: Path) -> str:
    if value.lower() not in SPLIT_NAMES:
        raise ValueError(f"{path}: unknown split `{value}` (expected one of {sorted(SPLIT_NAMES)})")
    return SPLIT_NAMES[value.lower()]


def _split_column(columns) -> str | None:
    """The official-split column of a KonIQ/pyiqa meta file: `set` (subpic/koniq), `official_split` or `split`
    (pyiqa); pyiqa's random `ratio..._split_NN` columns are not official splits."""
    return next((c for c in ("set", "official_split", "split") if c in columns), None)


def read_koniq(scores_file: Path) -> list[IQARow]:
    rows = _read_csv(scores_file, ("image_name", "MOS"))
    score = "MOS_zscore" if rows and "MOS_zscore" in rows[0] else "MOS"
    split = _split_column(rows[0]) if rows else None
    out = []
    for r in rows:
        s = _split_name(r[split], scores_file) if split else ""
        out.append(IQARow(r["image_name"], _to_float(r[score], scores_file, r["image_name"]), s, s))
    return out


def read_koniq_split(split_file: Path) -> dict[str, str]:
    """Image name -> train/val/test from subpic/koniq's sets CSV or pyiqa's KonIQ meta CSV."""
    rows = _read_csv(split_file, ())
    columns = list(rows[0]) if rows else []
    name = next((c for c in ("image_name", "img_name") if c in columns), None)
    split = _split_column(columns)
    if name is None or split is None:
        raise ValueError(f"{split_file}: needs columns `image_name` (or `img_name`) and `set` "
                         f"(or `official_split`, `split`)")
    return {r[name]: _split_name(r[split], split_file) for r in rows}


def read_pyiqa_meta(scores_file: Path) -> list[IQARow]:
    rows = _read_csv(scores_file, ("img_name", "mos"))
    split = _split_column(rows[0]) if rows else None
    return [
        IQARow(r["img_name"], _to_float(r["mos"], scores_file, r["img_name"]), "",
               _split_name(r[split], scores_file) if split else "")
        for r in rows
        if PurePosixPath(r["img_name"]).name not in LIVEC_PRACTICE_IMAGES
    ]


def pipal_family(image: str) -> str:
    """The distortion family of a PIPAL distorted image, from its file name (see PIPAL_FAMILIES)."""
    match = PIPAL_NAME.match(PurePosixPath(image).name)
    if match is None:
        raise ValueError(f"PIPAL image name `{image}` does not follow A<id>_<class>_<type>.<ext>")
    return PIPAL_FAMILIES.get(match.group(1), f"class{match.group(1)}")


def read_pipal(scores_file: Path) -> list[IQARow]:
    """PIPAL's labelled training part (the distorted images of Dist_Imgs with their Elo scores), the part the paper
    evaluates in Tables 3 and 4 (data/registry.yaml, entry PIPAL).

    pyiqa's meta CSV also lists other splits in its `official_split` column; pyiqa selects rows whose value equals
    the phase (`train`, `val`, `test`) with `split_index: official_split`, its default for PIPAL (pyiqa 0.1.16:
    default_dataset_configs.yml, data/base_iqa_dataset.py `get_split`; pyiqa docs/Dataset_Preparation.md). Only
    `train` rows are kept: the others' images are not in Dist_Imgs (the 1,000 `val` rows are in Val_Dist/, as
    third-party code reading pyiqa's archive finds them). The official `Train_Label/` folder and pyiqa's older CSV
    without the column (its scripts/process_pipal.py) hold training rows only. Every row gets split `train`.
    """
    if scores_file.is_dir():  # official Train_Label/: one headerless `<name>,<elo>` file per reference image
        pairs = []
        for txt in sorted(scores_file.glob("*.txt")):
            for line in txt.read_text().splitlines():
                if line.strip():
                    name, _, score = line.partition(",")
                    pairs.append((name.strip(), _to_float(score.strip(), txt, name.strip())))
        if not pairs:
            raise ValueError(f"{scores_file}: no `<name>,<score>` lines in *.txt files")
    else:
        rows = _read_csv(scores_file, ("dist_name", "elo_score"))
        if rows and "official_split" in rows[0]:
            rows = [r for r in rows if r["official_split"] == "train"]
            if not rows:
                raise ValueError(f"{scores_file}: no rows with official_split `train`")
        pairs = [(r["dist_name"], _to_float(r["elo_score"], scores_file, r["dist_name"])) for r in rows]
    return [IQARow(name, score, pipal_family(name), "train") for name, score in pairs]


def read_ma(scores_file: Path) -> list[IQARow]:
    """Ma et al.'s SR-IQA set (CVIU 2017) from a list naming each image: `<image path>,<score>` lines, paths relative
    to the images folder, `<method>/sf<scale>/sigma<width>/<id>.png` (a leading `/` is dropped), as the third-party
    YunanZhu/RecycleD datasets/MaScoreDataset_all_pair.txt lists the set's 1,620 images.

    The authors (chaoma99/sr-metric) publish the scores as SubjectData/SubjectScore_Final_RightOrderPSNR.mat,
    variable `mean40`: 180 x 8 mean scores in index order, without image names. Their
    train_regression/train_RF_regression.m reads `mean40(:)` (column-major) beside a feature file of one row per
    image whose extraction script is not in that repository, so which image each (row, column) scores cannot be
    determined from it: that .mat is refused rather than mapped by a guess.
    """
    if not scores_file.is_file():
        raise ValueError(f"scores file not found: {scores_file}")
    if scores_file.suffix.lower() == ".mat":
        from scipy.io import loadmat

        mat = loadmat(scores_file)
        if "mean40" not in mat:
            raise ValueError(f"{scores_file}: expected the variable `mean40`, found "
                             f"{sorted(k for k in mat if not k.startswith('__'))}")
        rows, cols = np.atleast_2d(mat["mean40"]).shape
        raise ValueError(f"{scores_file}: `mean40` holds {rows} x {cols} scores without image names, and "
                         f"chaoma99/sr-metric does not say which image each cell scores; give a list of "
                         f"`<image path>,<score>` lines naming each image as the scores file")
    out = []
    for number, line in enumerate(scores_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        image, comma, score = line.rpartition(",")
        if not comma:
            raise ValueError(f"{scores_file}:{number}: expected `<image path>,<score>`, got `{line}`")
        image = image.strip().lstrip("/")
        out.append(IQARow(image, _to_float(score.strip(), scores_file, image)))
    return out


READERS = {"koniq": read_koniq, "pyiqa_meta": read_pyiqa_meta, "pipal": read_pipal, "ma": read_ma}


def _check_rows(rows: list[IQARow], images_dir: Path, scores_file: Path) -> None:
    seen, duplicates, missing = set(), [], []
    for row in rows:
        path = PurePosixPath(row.image)
        if path.is_absolute() or ".." in path.parts or not row.image:
            raise ValueError(f"{scores_file}: image path `{row.image}` must be relative to the images folder")
        if row.image in seen:
            duplicates.append(row.image)
        seen.add(row.image)
        if not (images_dir / row.image).is_file():
            missing.append(row.image)
    if not rows:
        raise ValueError(f"{scores_file}: no images listed")
    if duplicates:
        raise ValueError(f"{scores_file}: {len(duplicates)} images listed twice, e.g. {duplicates[:5]}")
    if missing:
        raise ValueError(f"{len(missing)} of {len(rows)} images listed in {scores_file} are missing from "
                         f"{images_dir}, e.g. {missing[:5]}")


def write_scores(path: Path, rows: list[IQARow]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in sorted(rows):
        writer.writerow([row.image, repr(row.mos), row.subset, row.split])
    write_text(path, buf.getvalue())


def convert_iqa_set(fmt: str, images_dir: Path, scores_file: Path, out_dir: Path,
                    split_file: Path | None = None) -> int:
    """Convert one IQA set (`fmt` in READERS) into `out_dir`; returns the number of images."""
    if fmt not in READERS:
        raise ValueError(f"unknown IQA set format `{fmt}`, expected one of {sorted(READERS)}")
    images_dir, scores_file, out_dir = Path(images_dir), Path(scores_file), Path(out_dir)
    rows = READERS[fmt](scores_file)
    if split_file is not None:
        if fmt != "koniq":
            raise ValueError(f"a split file is only read for the `koniq` format, not `{fmt}`")
        splits = read_koniq_split(Path(split_file))
        unsplit = [r.image for r in rows if r.image not in splits]
        if unsplit:
            raise ValueError(f"{split_file}: {len(unsplit)} images of {scores_file} have no split, e.g. {unsplit[:5]}")
        rows = [r._replace(subset=splits[r.image], split=splits[r.image]) for r in rows]
    _check_rows(rows, images_dir, scores_file)
    for row in rows:
        with atomic_path(out_dir / "images" / row.image) as tmp:
            shutil.copyfile(images_dir / row.image, tmp)
    write_scores(out_dir / "scores.csv", rows)
    return len(rows)
