"""Score images with SFD-IQA (Eq. 8-10): no reference image, no training on IQA data.

    python -m pipeline.iqa --input IMAGE_OR_FOLDER --output CSV [--weights FILE] [--variant full|baseline|featd|tgd]
                           [--alpha1 0.5 --alpha2 0.5] [--clip-arch ARCH] [--clip-weights openai|none|FILE]
                           [--max-pixels N] [--device cpu|cuda]

`--weights` is an SFD-IQA checkpoint (Feat-D + LPP weights, saved after SFD training); it names the CLIP model they
were trained on. Without it only `--variant baseline` exists: CLIP with the fixed prompts "Good photo." /
"Bad photo." (CLIP-IQA with one prompt pair), which needs real CLIP weights, `openai` by default (open_clip
downloads them, or reads its Hugging Face cache) or a local file. The variant defaults to `full` with
`--weights` and to `baseline` without. Scores lie in [0, 1], higher is better.

Writes a CSV `image,score` (image = file name), atomically. Files of a folder that are not readable images, and
images with a side under 32 px (too small for CLIP), are skipped and named in one warning each; the exit code is
then 1 if any of them was an image file (its score is missing). Problems with the arguments print one `error:` line
and exit with code 2.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.archs.clip_encoder import MIN_SIZE, PAPER_ARCH, CLIPEncoder
from pipeline.checkpoint import CheckpointError
from pipeline.fileio import IMAGE_SUFFIXES, ImageError, output_problem, read_image, write_text
from pipeline.param_schema import CLIP_POSITIONS, COUNT, WEIGHT, flag_problem
from pipeline.sfd_iqa import SFDIQA, VARIANTS, load_sfd_iqa
from pipeline.tensor_image import to_tensor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.iqa", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument("--output", required=True, help="CSV file to write (image,score)")
    parser.add_argument("--weights", help="SFD-IQA checkpoint (.safetensors with Feat-D and LPP weights)")
    parser.add_argument("--variant", choices=VARIANTS,
                        help="full = Eq. 10; baseline/featd/tgd = Table 4's ablations (default: full with --weights, "
                             "baseline without)")
    parser.add_argument("--alpha1", type=float, default=0.5, help="Eq. 9 weight of the fixed prompts' score s_o")
    parser.add_argument("--alpha2", type=float, default=0.5, help="Eq. 9 weight of the LPP's score s_lp")
    parser.add_argument("--clip-arch", help=f"CLIP model without --weights (default {PAPER_ARCH})")
    parser.add_argument("--clip-weights",
                        help="openai, none (random) or a file (default: the checkpoint's, or openai without --weights)")
    parser.add_argument("--clip-position", choices=CLIP_POSITIONS, default="none",
                        help="CLIP's attention-pool position embedding: none (CLIP-IQA's, default) or interpolate "
                             "(CLIP's 7x7 table resized to the image)")
    parser.add_argument("--max-pixels", type=int, default=1024 * 1024,
                        help="larger images are scored in tiles (map) and resized (global feature)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    problem = flag_problem({"--alpha1": args.alpha1, "--alpha2": args.alpha2, "--max-pixels": args.max_pixels},
                           {"--alpha1": WEIGHT, "--alpha2": WEIGHT, "--max-pixels": COUNT})
    if problem or not args.alpha1 + args.alpha2 > 0:
        parser.error(problem or "--alpha1 and --alpha2 must not both be 0 (Eq. 9 would score every image alike)")
    return args


def build_model(args: argparse.Namespace, variant: str) -> SFDIQA:
    """The scorer the arguments describe; CheckpointError/ValueError for weights or options that do not work."""
    kwargs = {"alpha1": args.alpha1, "alpha2": args.alpha2, "max_pixels": args.max_pixels}
    if args.weights:
        if args.clip_arch:
            raise ValueError("--clip-arch applies only without --weights (the checkpoint names its CLIP model)")
        return load_sfd_iqa(args.weights, clip_weights=args.clip_weights, clip_position=args.clip_position, **kwargs)
    if variant != "baseline":
        raise ValueError(f"--variant {variant} needs --weights (an SFD-IQA checkpoint with the trained Feat-D and "
                         f"LPP); without it only --variant baseline can be computed")
    return SFDIQA(CLIPEncoder(args.clip_arch or PAPER_ARCH, args.clip_weights or "openai", args.clip_position),
                  **kwargs)


def main(argv: list[str] | None = None) -> int:
    """CLI entry; returns the exit code."""
    args = parse_args(argv)

    def fail(message: str) -> int:
        print(f"error: {message.splitlines()[0]}", file=sys.stderr)
        return 2

    source, output = Path(args.input), Path(args.output)
    if not source.exists():
        return fail(f"input not found: {source}")
    if output.is_dir():
        return fail(f"--output {output} is a folder; give the path of the CSV file to write")
    paths = sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir() else [source]
    if not paths:
        return fail(f"no files in {source}")
    problem = output_problem([output], paths, source if source.is_dir() else None)
    if problem:
        return fail(f"--output: {problem}")
    if args.device == "cuda" and not torch.cuda.is_available():
        return fail("--device cuda requested but CUDA is not available")
    variant = args.variant or ("full" if args.weights else "baseline")
    try:
        model = build_model(args, variant).to(args.device)
    except (CheckpointError, ValueError) as e:
        return fail(str(e))
    if model.encoder.random_weights:
        print(f"note: CLIP has random weights ({model.encoder.weights_description}): the scores test the code, they "
              f"do not measure quality", file=sys.stderr)

    rows, unreadable, too_small = [], [], []
    for path in tqdm(paths, desc="SFD-IQA", unit="img"):
        try:
            img = read_image(path)
        except ImageError:  # not an image, or over the pixel limit: reported and skipped
            unreadable.append(path.name)
            continue
        if min(img.shape[:2]) < MIN_SIZE:
            too_small.append(path.name)
            continue
        x = to_tensor(img, args.device)
        with torch.inference_mode():
            rows.append((path.name, model(x, variant).item()))
    if unreadable:
        print(f"warning: skipped {len(unreadable)} file(s) that are not readable images: {', '.join(unreadable)}",
              file=sys.stderr)
    if too_small:
        print(f"warning: skipped {len(too_small)} image(s) too small (under {MIN_SIZE} px): {', '.join(too_small)}",
              file=sys.stderr)
    if not rows:
        if too_small:
            return fail(f"no image in {source} can be scored: {len(too_small)} too small (under {MIN_SIZE} px), "
                        f"{len(unreadable)} not readable")
        return fail(f"no readable images in {source}")

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("image", "score"))
    writer.writerows((name, f"{score:.6f}") for name, score in rows)
    write_text(output, buf.getvalue())
    bad_images = [n for n in unreadable if Path(n).suffix.lower() in IMAGE_SUFFIXES] + too_small
    return 1 if bad_images else 0  # the scores are written; 1 says some images could not be scored


if __name__ == "__main__":
    sys.exit(main())
