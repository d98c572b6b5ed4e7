"""Fig. 9: t-SNE of the baseline image discriminator's features vs Feat-D's, with a silhouette score for each.

The paper shows "features after the 2nd BN layer" of the ESRGAN baseline's VGG-style discriminator and "features
after the 3rd upsampling layer" of Feat-D (on CLIP's F_m1..F_m3), for 8 OST categories x 50 random images, and
reads the better clustering of Feat-D as semantic awareness. The paper gives no pooling, crop or t-SNE settings;
ours (each a param of the `tsne` section):
- every point is one crop of `crop` px (the training patch size: the features the discriminators were trained
  on; smaller images give one crop of their shorter side), at a random position drawn with the stage's seed;
- its feature map is global-average-pooled into one vector (2 * num_feat values for the image discriminator,
  Feat-D's c0 for Feat-D);
- scikit-learn's exact t-SNE (PCA init, `perplexity`, `max_iter`, random_state = seed) embeds each network's vectors in
  2-D, and the silhouette score (Euclidean) of the 2-D points, labelled by class, measures the clustering shown.
  The silhouette of the pooled features themselves is reported too: it does not depend on t-SNE's layout.
Classes are OST category folders (paper profile: one crop per image) or, without `categories`, the images of
`source` themselves (quick profile: several crops per image, a clustering check, not semantics); every image gives
`crops_per_image` crops. OST (OutdoorSceneTrain_v2) has animal, building, grass, mountain, plant, sky and water
folders; the paper's bear, cat and dog were sorted out of animal by hand, so the paper profile uses `animal` for
them. The metrics JSON records the categories used beside the paper's.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score

from pipeline.archs.clip_encoder import CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.vgg_discriminator import VGGStyleDiscriminator
from pipeline.checkpoint import CheckpointError, load_into, load_state_dict
from pipeline.fileio import atomic_path, list_images, read_image, write_json
from pipeline.sfd_iqa import load_sfd_iqa

NETWORKS = {"image_d": "Vanilla D (after its 2nd BN layer)", "featd": "Feat-D (after its 3rd upsampling layer)"}
# The OST categories of the paper's Fig. 9.
PAPER_CATEGORIES = ("bear", "building", "cat", "dog", "grass", "mountain", "sky", "water")



class TSNEError(ValueError):
    """Images or settings the t-SNE figure cannot be made from."""

def load_image_d(path: str | Path) -> VGGStyleDiscriminator:
    """The esrgan run's VGGStyleDiscriminator (eval mode), its num_feat and input_size read from the tensor shapes."""
    state, _ = load_state_dict(path)
    if "conv0_0.weight" not in state or "linear1.weight" not in state:
        raise CheckpointError(f"{path} is not a VGGStyleDiscriminator state dict (no conv0_0 / linear1 weights)")
    num_feat = state["conv0_0.weight"].shape[0]
    num_stages = sum(1 for k in state if k.startswith("conv") and k.endswith("_1.weight"))
    last_ch = num_feat * min(2 ** (num_stages - 1), 8)
    side = round((state["linear1.weight"].shape[1] / last_ch) ** 0.5)
    net = VGGStyleDiscriminator(num_feat=num_feat, input_size=side << num_stages)
    load_into(net, state)
    return net.eval()


def load_featd(path: str | Path) -> tuple[CLIPEncoder, FeatD]:
    """The CLIP encoder and trained Feat-D of an SFD-IQA checkpoint (`models/<run>/sfd_iqa.safetensors`)."""
    model = load_sfd_iqa(path)
    return model.encoder, model.featd.eval()


def find_category(root: Path, name: str) -> Path:
    """`root/name`, else the one folder called `name` (any case) below `root` (e.g. hand-sorted animal folders)."""
    if (root / name).is_dir():
        return root / name
    found = sorted(p for p in root.rglob("*") if p.is_dir() and p.name.lower() == name.lower())
    if len(found) != 1:
        folders = sorted({p.name for p in root.rglob("*") if p.is_dir()})
        raise TSNEError(f"category {name!r} must be exactly one folder below {root}, found {len(found)} "
                         f"({', '.join(map(str, found)) or 'none'}); folders there: {', '.join(folders) or 'none'}")
    return found[0]


def image_classes(cfg: dict, rng: np.random.Generator) -> list[tuple[str, list[Path]]]:
    """(label, images) per class: `images_per_class` random images of each category folder, or each image alone."""
    root = Path(cfg["source"])
    if not cfg["categories"]:
        images = list_images(root)
        if len(images) < 2:
            raise TSNEError(f"need at least 2 images in {root}, found {len(images)}")
        return [(p.stem, [p]) for p in images]
    classes = []
    for name in cfg["categories"]:
        images = list_images(find_category(root, name), recursive=True)
        if len(images) < cfg["images_per_class"]:
            raise TSNEError(f"category {name!r} has {len(images)} images, fewer than images_per_class "
                             f"({cfg['images_per_class']})")
        chosen = rng.choice(len(images), cfg["images_per_class"], replace=False)
        classes.append((name, [images[i] for i in sorted(chosen)]))
    return classes


def random_crops(img: np.ndarray, size: int, n: int, rng: np.random.Generator) -> torch.Tensor:
    """n random size x size crops (n x 3 x s x s in [0, 1]) of an H x W x 3 uint8 image; s = min(size, H, W)."""
    h, w = img.shape[:2]
    s = min(size, h, w)
    tops, lefts = rng.integers(0, h - s + 1, n), rng.integers(0, w - s + 1, n)
    crops = np.stack([img[t:t + s, x:x + s] for t, x in zip(tops, lefts)])
    return torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255)


@torch.no_grad()
def pooled_features(crops: torch.Tensor, image_d: VGGStyleDiscriminator, encoder: CLIPEncoder,
                    featd: FeatD) -> dict[str, np.ndarray]:
    """Global-average-pooled features of both networks for a batch of crops: {"image_d": N x C, "featd": N x c0}."""
    feats = encoder(crops, with_output=False)
    return {"image_d": image_d.bn2_features(crops).mean(dim=(2, 3)).cpu().numpy(),
            "featd": featd.forward_features(feats.m1, feats.m2, feats.m3).mean(dim=(2, 3)).cpu().numpy()}


def embed(features: np.ndarray, perplexity: float, max_iter: int, seed: int) -> np.ndarray:
    """2-D t-SNE embedding (N x 2) of N feature vectors, deterministic for a seed."""
    if not 0 < perplexity < len(features):
        raise TSNEError(f"perplexity ({perplexity}) must be below the number of points ({len(features)})")
    # exact gradients: for a few hundred points faster than Barnes-Hut here, and no approximation
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max_iter, init="pca", method="exact",
                random_state=seed)
    return tsne.fit_transform(features.astype(np.float64))


def silhouette(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Euclidean) of labelled points: near 1 for tight separated classes, near 0 or below for none."""
    return float(silhouette_score(points, labels, metric="euclidean"))


def plot(embeddings: dict[str, np.ndarray], scores: dict[str, float], labels: np.ndarray, class_names: list[str],
         title: str, path: str | Path) -> None:
    """Fig. 9: one scatter per network, points coloured by class, silhouette in each panel's title."""
    colours = matplotlib.colormaps["tab20" if len(class_names) > 10 else "tab10"]
    fig = Figure(figsize=(5.5 * len(embeddings), 5.2))  # no pyplot: no global figure state, no display backend
    axes = fig.subplots(1, len(embeddings), squeeze=False)[0]
    for ax, (name, points) in zip(axes, embeddings.items()):
        for k, cls in enumerate(class_names):
            sel = labels == k
            ax.scatter(points[sel, 0], points[sel, 1], s=12, color=colours(k % colours.N), label=cls)
        ax.set_title(f"{NETWORKS[name]}\nsilhouette {scores[name]:.3f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(len(class_names), 8), fontsize=8, markerscale=1.5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(class_names) - 1) // 8), 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})


def describe_weights(path: Path) -> str:
    """A weights file and, when its run wrote one beside it, what weights.json says the run trained with."""
    info = path.with_name("weights.json")
    if not info.is_file():
        return str(path)
    used = json.loads(info.read_text())
    return f"{path} ({', '.join(f'{k}: {v}' for k, v in sorted(used.items()))})"


def run_tsne(cfg: dict, seed: int, profile: str, out_png: str | Path, out_json: str | Path) -> dict:
    """Fig. 9 from the section `cfg` (one profile's merged `tsne` params): writes the figure and the metrics JSON."""
    rng = np.random.default_rng(seed)
    image_d_path, featd_path = Path(cfg["image_d"]), Path(cfg["featd"])
    image_d = load_image_d(image_d_path)
    encoder, featd = load_featd(featd_path)
    classes = image_classes(cfg, rng)
    per_image = cfg["crops_per_image"]
    features, labels = {name: [] for name in NETWORKS}, []
    for k, (_, images) in enumerate(classes):
        for path in images:
            crops = random_crops(read_image(path), cfg["crop"], per_image, rng)
            for name, f in pooled_features(crops, image_d, encoder, featd).items():
                features[name].append(f)
            labels += [k] * len(crops)
    labels = np.array(labels)
    features = {name: np.concatenate(f) for name, f in features.items()}
    embeddings = {name: embed(f, cfg["perplexity"], cfg["max_iter"], seed) for name, f in features.items()}
    scores = {name: silhouette(e, labels) for name, e in embeddings.items()}
    class_names = [label for label, _ in classes]
    random_note = " - random CLIP weights" if encoder.random_weights else ""
    plot(embeddings, scores, labels, class_names,
         f"t-SNE of pooled discriminator features, {len(labels)} crops of {len(classes)} classes "
         f"({profile} profile{random_note})", out_png)
    unit = "category folders" if cfg["categories"] else "images (one class per image)"
    result = {
        "profile": profile,
        "silhouette": scores,
        "silhouette_features": {name: silhouette(f, labels) for name, f in features.items()},
        "n_points": int(len(labels)),
        "n_classes": len(classes),
        "classes": class_names,
        "categories": cfg["categories"],  # null: one class per image
        "paper_categories": list(PAPER_CATEGORIES),
        "weights": {"image_d": describe_weights(image_d_path), "featd": describe_weights(featd_path),
                    "clip": f"{encoder.arch}, {encoder.weights_description}"},
        "source": (f"{NETWORKS['image_d']} from {image_d_path} vs {NETWORKS['featd']} from {featd_path} on CLIP "
                   f"{encoder.arch}; images: {cfg['source']} ({len(classes)} {unit}, {per_image} random crop(s) "
                   f"of {cfg['crop']} px per image); features global-average-pooled per crop; scikit-learn exact t-SNE "
                   f"(perplexity {cfg['perplexity']}, max_iter {cfg['max_iter']}, PCA init, random_state {seed}); "
                   f"silhouette of the 2-D embedding"),
    }
    write_json(out_json, result)
    return result
