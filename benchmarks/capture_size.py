"""Size of CONCEPT_ATTN at each family's default layers, for both `keep` modes.

The stored size depends on the evaluations, layers, images, concepts and patches,
not on the model's width, so this feeds the extension's own Recorder one model call
per step with scores of the real shapes (random values) and prints what it keeps.

    ~/comfy/venv/bin/python benchmarks/capture_size.py [--size 1024] [--steps 28] [--concepts 5]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import host  # noqa: E402

# (family module name, model, its joint-attention blocks, latent pixels per patch side)
MODELS = [
    ("flux", "Flux 1 dev / schnell", 19, 16),
    ("flux2", "Flux 2 dev", 8, 16),
    ("sd3", "SD3 medium", 24, 16),
    ("sd3", "SD3.5 medium", 24, 16),
    ("sd3", "SD3.5 large", 38, 16),
]
BUDGET_MB = 64


def stored_bytes(family, blocks, patches, steps, concepts, keep) -> int:
    import torch

    from concept_attention import maths
    from concept_attention.data import ConceptSet
    from concept_attention.hooks.capture import CaptureSpec, ModelCall, Recorder

    words = tuple(f"concept{i}" for i in range(concepts))
    spec = CaptureSpec(concepts=ConceptSet(words=words, embeddings=torch.zeros(concepts, 1)), family=family.NAME,
                       layers=family.default_layers(blocks), keep=keep)
    sigmas = torch.linspace(1, 0, steps + 1)
    recorder = Recorder(spec, sigmas)
    side = int(patches ** 0.5)
    for step in range(steps):
        call = ModelCall(spec, torch.tensor([0]), (1, side, side), (side * 16, side * 16))
        for _ in spec.layers:
            for method in maths.METHODS:
                call.scores[method].append(torch.randn(1, concepts, patches))
        recorder.add(call, step, float(sigmas[step]), chunks=1)
    return recorder.finish().nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--concepts", type=int, default=5)
    opts = parser.parse_args()
    host.prepare()
    from concept_attention import hooks
    from concept_attention.data import KEEP_ALL, KEEP_SUMS

    families = {module.__name__.rsplit(".", 1)[-1]: module for module in hooks.FAMILIES}
    print(f"{opts.size}x{opts.size} px, {opts.steps} steps, {opts.concepts} concepts, batch 1, both methods; "
          f"MiB (budget at the defaults: {BUDGET_MB} MB)")
    print(f"| model | default layers | patches | {KEEP_SUMS} | {KEEP_ALL} |")
    print("|---|---|---|---|---|")
    for module, model, blocks, pixels in MODELS:
        family = families[module]
        patches = (opts.size // pixels) ** 2
        sizes = [stored_bytes(family, blocks, patches, opts.steps, opts.concepts, keep) / 2**20
                 for keep in (KEEP_SUMS, KEEP_ALL)]
        layers = family.default_layers(blocks)
        print(f"| {model} | {layers[0]}-{layers[-1]} ({len(layers)}) | {patches} | {sizes[0]:.1f} | {sizes[1]:.1f} |")


if __name__ == "__main__":
    main()
