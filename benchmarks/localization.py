"""Localization benchmark on the demo model: the paper's Tables 1-3 on our scenes, through
the segmentation evaluation's runner (evaluation/, the same code path as ImageNet-
Segmentation and PASCAL VOC; the demo scenes are one more dataset reader).

Held-out procedural scenes (demo/scenes.py EVAL_SEEDS) with exact masks are read with
ConceptAttention Encode Image (noised to a level, one forward pass with the concepts) and
scored with the paper's metrics (docs/evaluation.md: sums over the dataset):
- binary segmentation (as ImageNet-Segmentation): each object's colour word, each
  object's shape word, and the scene's background word, the map above its mean against
  the word's mask: pixel accuracy, mIoU (the word and the rest), mAP;
- multi-class segmentation (as PASCAL VOC multi-class): the argmax over the concepts
  against the label map, the background words meaning the background: accuracy, mIoU.
Every colour (or shape) word and every background word is a concept of every reading, so
distractors are always present. One reading per scene and task serves every method and
layer ablation; each noise level reads the scenes again.

    ~/comfy/venv/bin/python -m benchmarks.localization [--scenes 200] [--noise 0.5] [--model DIR] [--out DIR]
"""
import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from harness import host

NOISE_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)
TASKS = {"colour": "both", "shape": "both", "background": "binary"}


def demo_layers(model_directory=None) -> tuple:
    """(the demo model's default layers, its double-block count), from its config."""
    from concept_attention.demo.model import load_config

    config = load_config(model_directory)
    return tuple(config["default_layers"]), config["dit"]["depth"]


def method_variants(default_layers) -> list:
    from evaluation.protocol import RANDOM, Variant

    return [Variant("concept_attention", default_layers, name="ConceptAttention (output space, softmax)"),
            Variant("concept_attention", None, name="ConceptAttention, all layers"),
            Variant("cross_attention", default_layers, name="Cross-attention baseline (softmax)"),
            Variant("concept_attention", default_layers, softmax=False, name="Output space, no softmax"),
            Variant("cross_attention", default_layers, softmax=False, name="Cross-attention, no softmax"),
            Variant(RANDOM, name="Random maps")]


def layer_variants(method, layer_count) -> list:
    from evaluation.protocol import Variant

    chosen = [(layer,) for layer in range(layer_count)] + [tuple(range(layer_count))[-2:]]
    return [Variant(method, layers, name=f"{method} {','.join(map(str, layers))}") for layers in chosen]


def measure(task: str, noise: float, variants: list, scenes: int, model_directory, out: Path) -> dict:
    """The summary tables of one reading of the scenes for the demo dataset `task`."""
    import torch

    from concept_attention.demo import scenes as demo_scenes
    from evaluation.protocol import DEMO_BACKGROUNDS, PROTOCOLS
    from evaluation.runner import Job, run

    words = {"colour": tuple(demo_scenes.COLOURS), "shape": demo_scenes.SHAPES, "background": ()}[task]
    protocol = replace(PROTOCOLS[f"demo-{task}"], task=TASKS[task], background_concepts=(*words, *DEMO_BACKGROUNDS),
                       noise_level=noise, layers="all", variants=tuple(variants))
    job = Job({"name": f"demo-{task}", "demo_count": scenes}, {"demo": True, "demo_folder": model_directory},
              protocol, scenes, shard_size=50, threads=torch.get_num_threads())
    return run(job, out / f"{task}-t{noise:g}-{len(variants)}-variants", progress=False)["tables"]


def row(name, tables: dict) -> str:
    """One row: binary colour, shape and background words, multi-class colour and shape."""
    def triple(s):
        return f"{100 * s['accuracy']:.1f} / {100 * s['miou']:.1f} / {100 * s['map']:.1f}"

    def pair(s):
        return f"{100 * s['accuracy']:.1f} / {100 * s['miou']:.1f}"

    return (f"| {name} | {triple(tables['colour']['binary'][name])} | {triple(tables['shape']['binary'][name])} "
            f"| {triple(tables['background']['binary'][name])} | {pair(tables['colour']['multiclass'][name])} "
            f"| {pair(tables['shape']['multiclass'][name])} |")


HEADER = ("| {} | colour words: acc / mIoU / mAP | shape words: acc / mIoU / mAP "
          "| background words: acc / mIoU / mAP "
          "| colour multi-class: acc / mIoU | shape multi-class: acc / mIoU |\n|---|---|---|---|---|---|")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200, help="held-out scenes to read")
    parser.add_argument("--noise", type=float, default=0.5, help="noise level of the method and layer tables")
    parser.add_argument("--model", help="a demo model's folder (default: the shipped one, demo/weights)")
    parser.add_argument("--out", type=Path, help="keep the rows here (a rerun resumes); default: a temporary folder")
    opts = parser.parse_args()
    host.prepare()
    started = time.monotonic()
    out = opts.out or Path(tempfile.mkdtemp(prefix="localization_"))
    default_layers, layer_count = demo_layers(opts.model)
    variants = [*method_variants(default_layers), *layer_variants("concept_attention", layer_count),
                *layer_variants("cross_attention", layer_count)]
    tables = {task: measure(task, opts.noise, variants, opts.scenes, opts.model, out) for task in TASKS}
    print(f"{opts.scenes} held-out scenes, demo model with {layer_count} double blocks, default layers "
          f"{list(default_layers)}; the paper's metrics (docs/evaluation.md), percentages; rows in {out}\n")
    print(f"Methods (noise level t = {opts.noise}):\n")
    print(HEADER.format("method"))
    for variant in method_variants(default_layers):
        print(row(variant.name, tables))
    for name, method in (("ConceptAttention", "concept_attention"), ("Cross-attention baseline", "cross_attention")):
        print(f"\n{name} by layer (t = {opts.noise}):\n")
        print(HEADER.format("double blocks"))
        for variant in layer_variants(method, layer_count):
            print(row(variant.name, tables))
    print("\nConceptAttention by noise level (default layers):\n")
    print(HEADER.format("t"))
    default = method_variants(default_layers)[:1]
    for noise in NOISE_LEVELS:
        by_noise = tables if noise == opts.noise else {task: measure(task, noise, default, opts.scenes, opts.model, out)
                                                       for task in TASKS}
        print(row(default[0].name, by_noise).replace(f"| {default[0].name} |", f"| {noise:.1f} |", 1), flush=True)
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
