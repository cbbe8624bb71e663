"""Bytes that the ConceptAttention Viewer node sends to the page per run (budget: 2 MB
for a 1024x1024 image with 8 concepts).

The payload holds the picture (JPEG) and one 8-bit tile sheet (PNG) per view: all
steps and layers, each captured step, each captured layer. Its size depends on the
number of views and on how well the maps compress, so this builds captures with the
extension's own Recorder at the real shapes, with two kinds of scores: random
(the worst case for PNG; real maps are never this noisy) and smooth (a blob per
concept that drifts a little over steps and layers, as real maps do). The picture is
the bundled demo scene scaled to the image size, and, as a bound, random noise.

    ~/comfy/venv/bin/python -m benchmarks.viewer_payload [--size 1024] [--steps 28] [--concepts 8]
"""
import argparse
from pathlib import Path

from harness import host

ROOT = Path(__file__).resolve().parents[1]

BUDGET_MB = 2
# (family module name, model, its joint-attention blocks)
MODELS = [("Flux 1", "Flux 1 dev", 19), ("SD3", "SD3.5 large", 38)]


def smooth_scores(concepts: int, side: int, seed: int = 0):
    """scores(step, layer): each concept peaks at its own point, which moves a little
    with the step and the layer."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(concepts, 2, generator=generator) * side
    axis = torch.arange(side, dtype=torch.float32)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")

    def scores(step, layer):
        drift = torch.tensor([step, layer], dtype=torch.float32) * 0.3
        centre = centres + drift
        distance = (ys[None] - centre[:, 0, None, None]) ** 2 + (xs[None] - centre[:, 1, None, None]) ** 2
        return (-distance / (2 * (side / 6) ** 2) * 4).reshape(1, concepts, -1)

    return scores


def pictures(kind: str, size: int):
    import numpy as np
    import torch
    from PIL import Image

    if kind == "random noise":
        return torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(0))
    scene = Image.open(ROOT / "demo" / "scene.png").convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(scene, dtype=np.float32) / 255)[None]


def data_url_bytes(url: str) -> int:
    return len(url.encode())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--concepts", type=int, default=8)
    opts = parser.parse_args()
    host.prepare()
    import json

    from concept_attention import hooks
    from concept_attention.analysis.data import KEEP_SUMS
    from concept_attention.analysis.viewer_data import payload
    from harness import synthetic

    families = {family.name: family for family in hooks.FAMILIES}
    side = opts.size // 16
    grid = (1, side, side)
    print(f"{opts.size}x{opts.size} px ({side}x{side} patches), {opts.steps} steps, {opts.concepts} concepts, "
          f"batch 1; MB (10^6 bytes) of the node's UI output as JSON (budget {BUDGET_MB} MB)")
    print("| model | default layers | views | maps | picture | maps (MB) | picture (MB) | total (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model, blocks in MODELS:
        family = families[name]
        for maps_kind in ("smooth", "random"):
            scores = smooth_scores(opts.concepts, side) if maps_kind == "smooth" else None
            capture = synthetic.capture(family, blocks, grid, opts.steps, opts.concepts, KEEP_SUMS, scores,
                                        image_size=(opts.size, opts.size))
            for picture_kind in ("demo scene", "random noise"):
                data = payload(capture, pictures(picture_kind, opts.size), "concept_attention")
                total = len(json.dumps(data).encode()) / 1e6
                maps = sum(map(data_url_bytes, data["maps"])) / 1e6
                picture = sum(map(data_url_bytes, data["pictures"])) / 1e6
                layers = capture.layers
                print(f"| {model} | {layers[0]}-{layers[-1]} ({len(layers)}) | {len(data['views'])} | {maps_kind} | "
                      f"{picture_kind} | {maps:.2f} | {picture:.2f} | {total:.2f} |")


if __name__ == "__main__":
    main()
