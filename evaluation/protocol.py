"""The paper's segmentation protocol for one image, with the extension's own nodes:
Concept Encode for the concepts and the caption, ConceptAttention Encode Image for
the maps (one noised forward pass, or several noise samples), then the metrics.

Every choice is a field of Protocol; PROTOCOLS holds the paper's values per dataset.
One reading of an image serves every Variant (a method, its layers, softmax or not), so
that comparing methods costs one forward pass per image.
"""
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics

RANDOM = "random"      # a Variant's method: uniform random maps, the floor a method must beat


@dataclass(frozen=True)
class Variant:
    """One way of turning a capture into maps: a row of the summary table."""
    method: str = "concept_attention"      # or "cross_attention", or RANDOM
    layers: tuple = None                   # captured layers to average (None: those the capture read)
    softmax: bool = True                   # the paper's softmax over concepts per (step, layer)
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.method


@dataclass(frozen=True)
class Protocol:
    task: str                              # "binary" (a map per class present), "multiclass" (argmax) or "both"
    background_concepts: tuple             # concepts read beside the classes (distractors)
    image_size: int                        # the model reads the image resized to this square (bicubic)
    label_size: int = None                 # labels (PIL nearest) and maps (torch nearest) at this square; None: the map's grid
    noise_level: float = 0.5               # Encode Image's noise level
    noise_samples: int = 1
    layers: str = "default"                # the layers Encode Image captures
    blur: float = 0.0                      # Gaussian sigma at the map's grid before the mask (0: none)
    mask: str = "mean"                     # binary: "mean" (the map above its mean) or "argmax" (the class wins)
    variants: tuple = (Variant("concept_attention"), Variant("cross_attention"))
    caption: str = "a {}"                  # the prompt: the classes present joined by " and a "
    single_class: bool = False             # skip images with more than one class (VOC single-class)
    seed: int = 0                          # image i is noised with seed + i

    def settings(self) -> dict:
        return {**asdict(self), "variants": [asdict(v) for v in self.variants]}


IMAGENET_BACKGROUNDS = ("background", "floor", "tree", "person", "grass", "face")
VOC_BACKGROUNDS = ("background", "floor", "grass", "tree", "sky")
DEMO_BACKGROUNDS = ("sky", "grass", "floor")      # demo/scenes.py BACKGROUNDS
# The reference's runs (see docs/evaluation.md): ImageNet-Segmentation read at 1024 px (512
# upsampled), scored at 224, 5 noise samples at the middle of the schedule, a blur of the map,
# mean threshold; VOC scored at 224 with the argmax over the concepts, later in the schedule.
PROTOCOLS = {
    "imagenet-seg": Protocol("binary", IMAGENET_BACKGROUNDS, image_size=1024, label_size=224, noise_level=0.5,
                             noise_samples=5, blur=1.0, mask="mean"),
    "voc": Protocol("binary", VOC_BACKGROUNDS, image_size=1024, label_size=224, noise_level=0.25, mask="argmax",
                    single_class=True),
    "voc-multi": Protocol("multiclass", VOC_BACKGROUNDS, image_size=1024, label_size=None, noise_level=0.25),
    # The demo model's scenes: 128 px, its own background words as the other concepts.
    **{f"demo-{task}": Protocol("binary", DEMO_BACKGROUNDS, image_size=128, label_size=128)
       for task in ("shape", "colour", "background")},
}


@dataclass
class Reading:
    """What one image gave: its rows and its maps at the grid ({variant: [C, h, w]}, the
    concepts in the order of its rows' `concepts`), or why it was skipped."""
    rows: list = field(default_factory=list)
    maps: dict = field(default_factory=dict)
    skipped: str = ""


def caption_of(protocol: Protocol, names: list) -> str:
    return protocol.caption.format(" and a ".join(names))


def concept_words(protocol: Protocol, names: list) -> list:
    """The classes present, then the background concepts that are not among them."""
    return list(dict.fromkeys([*names, *protocol.background_concepts]))


def read(models, dataset, index: int, protocol: Protocol) -> Reading:
    """Read image `index` of `dataset` with `models` (model, clip, vae) and score every
    variant. A sample the protocol leaves out, or one whose words or files cannot be read,
    is a Reading with `skipped` saying why."""
    from concept_attention.analysis import maths
    from concept_attention.analysis.errors import NodeInputError

    from .datasets import DatasetError

    try:
        sample = dataset.sample(index)
    except DatasetError as e:
        return Reading(skipped=str(e))
    base = {"index": index, "id": sample.id}
    if not sample.classes:
        return Reading(skipped=f"{sample.id}: no class in its label")
    if protocol.single_class and len(sample.classes) > 1:
        return Reading(skipped=f"{sample.id}: {len(sample.classes)} classes (the single-class subset keeps one)")
    names = [dataset.class_name(c) for c in sample.classes]
    started = time.perf_counter()
    try:
        capture, words = _capture(models, sample, names, protocol, index)
    except NodeInputError as e:
        return Reading(skipped=f"{sample.id}: {e}")
    seconds = time.perf_counter() - started
    rows, maps = [], {}
    # A concept that names one of the dataset's classes predicts it; the background concepts predict 0.
    class_of = {name: label_index for label_index, name in dataset.class_names.items()}
    concept_class = [class_of.get(word, 0) for word in words]
    # Scored at the label size, else at the map's grid; the label resized once for every variant.
    size = (protocol.label_size,) * 2 if protocol.label_size else tuple(capture.grid[-2:])
    label = _label_at(sample.label, size)
    for variant in protocol.variants:
        grid = _maps(capture, variant, index)
        if grid is None:
            continue
        if protocol.blur:
            grid = maths.blur(grid, protocol.blur)
        maps[variant.label] = grid
        common = {**base, "variant": variant.label, "concepts": words, "seconds": round(seconds, 4)}
        if protocol.task in ("binary", "both"):
            for class_index, name in zip(sample.classes, names):
                counts = _binary(grid, words.index(name), label, class_index, size, protocol.mask)
                rows.append({**common, "task": "binary", "class": name, **counts})
        if protocol.task in ("multiclass", "both"):
            counts = _multiclass(grid, concept_class, label, max(dataset.class_names) + 1, size)
            rows.append({**common, "task": "multiclass", "classes": names, **counts})
    return Reading(rows=rows, maps=maps)


def _maps(capture, variant: Variant, index: int):
    """[C, h, w] maps of one variant (None where the capture has not its method)."""
    if variant.method == RANDOM:
        shape = capture.maps(capture.methods[0])[0].shape
        return torch.rand(shape, generator=torch.Generator().manual_seed(index))
    if variant.method not in capture.methods:
        return None
    return capture.maps(variant.method, layers=variant.layers, softmax=variant.softmax)[0].float()


def _capture(models, sample, names, protocol, index):
    from PIL import Image

    from concept_attention.analysis import maths
    from concept_attention.analysis.data import KEEP_ALL, KEEP_SUMS
    from concept_attention.nodes.encode import ConceptEncode
    from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage

    model, clip, vae = models
    words = concept_words(protocol, names)
    concepts = ConceptEncode.execute(clip, ", ".join(words)).args[0]
    positive = clip.encode_from_tokens_scheduled(clip.tokenize(caption_of(protocol, names)))
    resized = Image.fromarray(sample.image).resize((protocol.image_size, protocol.image_size), Image.BICUBIC)
    image = torch.from_numpy(np.asarray(resized).astype(np.float32) / 255)[None]
    keep = KEEP_SUMS if all(v.softmax for v in protocol.variants) else KEEP_ALL
    baseline = any(v.method == maths.CROSS_ATTENTION for v in protocol.variants)
    capture = ConceptAttentionEncodeImage.execute(model, vae, image, concepts, protocol.noise_level,
                                                  protocol.noise_samples, protocol.seed + index, protocol.layers, keep,
                                                  positive=positive, cross_attention_baseline=baseline).args[0]
    return capture, words


def _label_at(label: np.ndarray, size: tuple) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.fromarray(label).resize((size[1], size[0]), Image.NEAREST))


def _upsample(grid: torch.Tensor, size: tuple) -> np.ndarray:
    """A [h, w] map to `size` with torch's nearest rule (the reference's)."""
    return F.interpolate(grid[None, None].float(), size=size, mode="nearest")[0, 0].numpy()


def _binary(grid, concept: int, label, class_index, size, mask_rule) -> dict:
    """One class's counts: the map of `concept` against `label` (at `size`) == class_index."""
    class_map = grid[concept]
    if mask_rule == "mean":
        mask = class_map > class_map.mean()
    else:
        mask = grid.argmax(dim=0) == concept
    low, high = class_map.min(), class_map.max()
    soft = (class_map - low) / (high - low).clamp_min(1e-12)
    target = np.where(label == metrics.VOID, metrics.VOID, (label == class_index).astype(np.uint8))
    return metrics.binary_counts(_upsample(mask, size) > 0.5, _upsample(soft, size), target)


def _multiclass(grid, concept_class: list, label, classes: int, size) -> dict:
    predicted = torch.tensor(concept_class)[grid.argmax(dim=0)]
    return metrics.multiclass_counts(_upsample(predicted, size).astype(np.int64), label, classes)

