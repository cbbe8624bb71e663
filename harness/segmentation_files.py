"""Small datasets in the real file formats, written from demo scenes with exact masks, so
that the evaluation command can be run end to end here (no real dataset can be):
ImageNet-Segmentation's gtsegs_ijcv.mat (MATLAB v7.3: HDF5 behind a 512-byte header,
object references into /#refs#) and a PASCAL VOC 2012 folder (JPEGs, palette PNG labels,
ImageSets/Segmentation/val.txt)."""
import json
from pathlib import Path

import numpy as np

VOID = 255


def demo_samples(count: int, task: str = "shape"):
    """(id, image uint8 [H, W, 3], label [H, W] with the object pixels 1 + the word's index
    in the demo's words, background 0, word per object)."""
    from evaluation.datasets import DemoScenes

    scenes = DemoScenes(count, task)
    return [scenes.sample(i) for i in range(count)], scenes.class_names


def write_imagenet_segmentation(path, samples, class_names: dict, drop=()) -> Path:
    """A gtsegs_ijcv.mat of `samples` (each a binary task: its first class's pixels are the
    mask; its WordNet id is "n" + the class index), and the class-name JSON beside it.
    drop: keys of /value to leave out (a malformed file)."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        columns = {key: [] for key in ("img", "gt", "id", "target")}
        for i, sample in enumerate(samples):
            image = refs.create_dataset(f"img{i}", data=sample.image.transpose(2, 1, 0))
            mask = refs.create_dataset(f"mask{i}", data=(sample.label == sample.classes[0]).astype(np.uint8).T)
            cell = refs.create_dataset(f"gt{i}", data=np.array([[mask.ref]], dtype=h5py.ref_dtype))
            ids = refs.create_dataset(f"id{i}", data=np.array([[ord(c)] for c in sample.id], dtype=np.uint16))
            target = refs.create_dataset(f"target{i}", data=np.array([[ord(c)] for c in f"n{sample.classes[0]:08d}"],
                                                                      dtype=np.uint16))
            for key, dataset in (("img", image), ("gt", cell), ("id", ids), ("target", target)):
                columns[key].append(dataset.ref)
        for key, column in columns.items():
            if key not in drop:
                f.create_dataset(f"value/{key}", data=np.array(column, dtype=h5py.ref_dtype).reshape(-1, 1))
    with open(path, "r+b") as f:          # MATLAB's header text, as a v7.3 file begins
        f.write(b"MATLAB 7.3 MAT-file, written by the tests".ljust(116))
    names = path.with_name("class_names.json")
    names.write_text(json.dumps({f"n{index:08d}": word for index, word in class_names.items() if index}))
    return path


def write_voc(root, samples, unlabelled=(), with_split=True) -> Path:
    """A VOCdevkit/VOC2012 folder of `samples`; `unlabelled`: ids whose label PNG is left out."""
    from PIL import Image

    voc = Path(root) / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    palette = [value for index in range(256) for value in (index * 37 % 256, index * 91 % 256, index * 53 % 256)]
    for sample in samples:
        Image.fromarray(sample.image).save(voc / "JPEGImages" / f"{sample.id}.jpg", quality=100, subsampling=0)
        if sample.id not in unlabelled:
            label = Image.frombytes("P", sample.label.shape[::-1], np.ascontiguousarray(sample.label).tobytes())
            label.putpalette(palette)
            label.save(voc / "SegmentationClass" / f"{sample.id}.png")
    if with_split:
        (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("".join(f"{s.id}\n" for s in samples))
    return Path(root)
