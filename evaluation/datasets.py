"""Dataset readers: files the user already has (never downloaded), and the demo model's
procedural scenes. Each reader gives its samples by index, so that shards are index
ranges; a file that is missing, truncated or malformed raises DatasetError naming the
file and what is wrong.

A Sample's label holds class indices: 0 background, VOID (255) for pixels to leave out,
and for each class present its index in the reader's `class_names`.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import VOID

# PASCAL VOC's 21 label indices, as words a text encoder reads (the folder names joined
# words: diningtable, pottedplant, tvmonitor).
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "dining table", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa", "train",
               "tv monitor")


class DatasetError(ValueError):
    """A dataset file that cannot be read as its format; the message names it."""


@dataclass(frozen=True)
class Sample:
    id: str
    image: np.ndarray          # uint8 [H, W, 3]
    label: np.ndarray          # uint8 [H, W]: 0 background, class indices, VOID
    classes: tuple             # the label indices of the classes present, ascending


class ImageNetSegmentation:
    """gtsegs_ijcv.mat: MATLAB v7.3 (HDF5) with /value/img, /value/gt, /value/id and
    /value/target, one object reference per image. An image is stored as (3, W, H), a
    mask as (W, H) of 0/1 inside a 1x1 cell, ids and WordNet ids as UTF-16 arrays.
    class_names: {WordNet id: word}, e.g. the reference's data/imagenet_class_map.json."""
    KEYS = ("img", "gt", "id", "target")

    def __init__(self, path, class_names: dict):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such file (ImageNet-Segmentation's gtsegs_ijcv.mat)")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as e:
            raise DatasetError(f"{self.path}: not an HDF5 (MATLAB v7.3) file, or truncated: {e}") from None
        missing = [f"/value/{key}" for key in self.KEYS if f"value/{key}" not in self.file]
        if missing:
            raise DatasetError(f"{self.path}: has no {', '.join(missing)}; gtsegs_ijcv.mat holds /value/img, "
                               "/value/gt, /value/id and /value/target")
        counts = {key: self.file[f"value/{key}"].shape[0] for key in self.KEYS}
        if len(set(counts.values())) != 1:
            raise DatasetError(f"{self.path}: /value/img, gt, id and target hold different counts: {counts}")
        self.count = counts["img"]
        self.class_names = dict(class_names)

    def __len__(self):
        return self.count

    def _dereference(self, key: str, index: int):
        try:
            return self.file[self.file[f"value/{key}"][index, 0]]
        except (KeyError, ValueError, OSError) as e:
            raise DatasetError(f"{self.path}: /value/{key} entry {index} cannot be read: {e}") from None

    def _text(self, key: str, index: int) -> str:
        return "".join(chr(c) for c in np.asarray(self._dereference(key, index)).ravel())

    def class_name(self, index: int) -> str:
        wordnet_id = self._text("target", index)
        if wordnet_id not in self.class_names:
            raise DatasetError(f"{self.path}: image {index}'s class {wordnet_id} is not in the class names given "
                               "(--class-names: a JSON of WordNet id -> word)")
        return self.class_names[wordnet_id]

    def sample(self, index: int) -> Sample:
        import h5py

        image = np.asarray(self._dereference("img", index)).transpose(2, 1, 0)
        cell = self._dereference("gt", index)        # a 1x1 cell holding a reference to the mask
        if h5py.check_dtype(ref=cell.dtype) is None:
            raise DatasetError(f"{self.path}: /value/gt entry {index} is not a cell (a reference to its mask)")
        mask = np.asarray(self.file[cell[0, 0]])
        if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[1::-1]:
            raise DatasetError(f"{self.path}: image {index} is {image.shape} with a {mask.shape} mask; expected "
                               "(3, W, H) and (W, H)")
        label = (mask.T != 0).astype(np.uint8)
        return Sample(self._text("id", index), image.astype(np.uint8), label, (1,))


def read_class_names(path) -> dict:
    path = Path(path)
    try:
        names = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file (--class-names)") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: not JSON: {e}") from None
    if not isinstance(names, dict) or not all(isinstance(v, str) and v.strip() for v in names.values()):
        raise DatasetError(f"{path}: expected a JSON object of class id -> word")
    return names


class PascalVOC:
    """VOCdevkit/VOC2012: JPEGImages/<id>.jpg, SegmentationClass/<id>.png (palette
    indices: 0 background, 1-20 the classes, 255 void) and
    ImageSets/Segmentation/val.txt. class_names: VOC_CLASSES unless given (index -> word)."""

    def __init__(self, root, class_names: dict = None):
        root = Path(root)
        self.root = root / "VOC2012" if (root / "VOC2012").is_dir() else root
        self.split = self.root / "ImageSets" / "Segmentation" / "val.txt"
        if not self.split.is_file():
            raise DatasetError(f"{self.split}: no such file; give the VOCdevkit folder (or its VOC2012 folder), which "
                               "holds ImageSets/Segmentation/val.txt, JPEGImages and SegmentationClass")
        self.ids = [line.strip() for line in self.split.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise DatasetError(f"{self.split}: lists no image")
        self.class_names = {i: name for i, name in enumerate(VOC_CLASSES)}
        self.class_names.update({int(k): v for k, v in (class_names or {}).items()})

    def __len__(self):
        return len(self.ids)

    def class_name(self, index: int) -> str:
        return self.class_names[index]

    def sample(self, index: int) -> Sample:
        image_id = self.ids[index]
        paths = {"image": self.root / "JPEGImages" / f"{image_id}.jpg",
                 "label": self.root / "SegmentationClass" / f"{image_id}.png"}
        for what, path in paths.items():
            if not path.is_file():
                raise DatasetError(f"{path}: no such file (the {what} of {image_id}, listed in {self.split})")
        image, label_image = (_open_image(paths[what]) for what in ("image", "label"))
        if label_image.mode != "P":
            raise DatasetError(f"{paths['label']}: a {label_image.mode} image; VOC labels are palette (P) PNGs")
        image, label = np.asarray(image.convert("RGB")), np.asarray(label_image).astype(np.uint8)
        if label.shape != image.shape[:2]:
            raise DatasetError(f"{paths['label']}: {label.shape[1]}x{label.shape[0]}, but its image is "
                               f"{image.shape[1]}x{image.shape[0]}")
        classes = tuple(int(c) for c in np.unique(label) if c not in (0, VOID))
        unknown = [c for c in classes if c not in self.class_names]
        if unknown:
            raise DatasetError(f"{paths['label']}: label indices {unknown} are not VOC classes (0-20, 255 void)")
        return Sample(image_id, image, label, classes)


def _open_image(path):
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
        return image
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read as an image: {e}") from None


class DemoScenes:
    """The demo model's held-out procedural scenes (concept_attention.demo.scenes), with
    exact masks. Classes: `task` "shape" or "colour": the objects' words (the background 0);
    "background": the scene's background word (the objects 0). For the localization
    benchmark and the tests."""
    TASKS = ("shape", "colour", "background")

    def __init__(self, count: int, task: str = "shape"):
        from concept_attention.demo import scenes

        if task not in self.TASKS:
            raise DatasetError(f"the demo scenes have no task {task!r}; one of {', '.join(self.TASKS)}")
        self.scenes = scenes
        self.seeds = scenes.EVAL_SEEDS[:count]
        self.words = {"colour": tuple(scenes.COLOURS), "shape": scenes.SHAPES, "background": scenes.BACKGROUNDS}[task]
        self.task = task
        self.class_names = {0: "background" if task != "background" else "objects",
                            **{i + 1: word for i, word in enumerate(self.words)}}
        self.index = {word: i for i, word in self.class_names.items()}

    def __len__(self):
        return len(self.seeds)

    def class_name(self, index: int) -> str:
        return self.class_names[index]

    def sample(self, index: int) -> Sample:
        scene = self.scenes.make_scene(self.seeds[index])
        label = np.zeros(scene.label_map.shape, dtype=np.uint8)
        if self.task == "background":
            label[scene.background.mask] = self.index[scene.background.name]
        for obj in scene.objects if self.task != "background" else ():
            label[obj.mask] = self.index[obj.colour if self.task == "colour" else obj.shape]
        classes = tuple(sorted(int(c) for c in np.unique(label) if c))
        return Sample(f"scene{self.seeds[index]}", (scene.image * 255).round().astype(np.uint8), label, classes)


DATASETS = ("imagenet-seg", "voc", "voc-multi", "demo-shape", "demo-colour", "demo-background")


def open_dataset(name: str, path=None, class_names=None, demo_count: int = 200):
    """A reader of dataset `name` (DATASETS) at `path`; class_names: a JSON file of class id -> word."""
    names = read_class_names(class_names) if class_names else None
    if name == "imagenet-seg":
        if names is None:
            raise DatasetError("ImageNet-Segmentation names its classes by WordNet id: give --class-names, a JSON "
                               "of WordNet id -> word (the reference repository's data/imagenet_class_map.json)")
        return ImageNetSegmentation(path, names)
    if name in ("voc", "voc-multi"):
        return PascalVOC(path, names)
    if name.startswith("demo-"):
        return DemoScenes(demo_count, name.split("-", 1)[1])
    raise DatasetError(f"unknown dataset {name!r}; one of {', '.join(DATASETS)}")
