"""Size of CONCEPT_ATTN at each family's default layers, for both `keep` modes (images,
and CogVideoX, HunyuanVideo and Wan video).

The stored size depends on the evaluations, layers, images, concepts and patches,
not on the model's width, so this feeds the extension's own Recorder one model call
per step with scores of the real shapes (random values) and prints what it keeps.

    ~/comfy/venv/bin/python -m benchmarks.capture_size [--size 1024] [--steps 28] [--concepts 5]

Image models sample --steps steps, or as many as ComfyUI's own template for them. Only
the sizes are measured; the full `every_step_and_layer` rows of the video models
allocate that much memory (several GB) for a moment.
"""
import argparse

from harness import host

# (family name, model, its joint-attention blocks, pixels per patch side, steps: None for
# --steps, else those of ComfyUI's own template for the model)
IMAGE_MODELS = [
    ("Flux 1", "Flux 1 dev / schnell", 19, 16, None),
    ("Flux 2", "Flux 2 dev", 8, 16, None),
    ("SD3", "SD3 medium", 24, 16, None),
    ("SD3", "SD3.5 medium", 24, 16, None),
    ("SD3", "SD3.5 large", 38, 16, None),
    ("Qwen-Image", "Qwen-Image 2512", 60, 16, 50),
    ("Qwen-Image", "Qwen-Image-Edit 2511", 60, 16, 40),
    ("Chroma", "Chroma1-HD", 19, 16, 26),
    ("Chroma", "Chroma1 Radiance (pixels, 16-pixel patches)", 19, 16, 30),
    ("Z-Image", "Z-Image Turbo", 30, 16, 8),
]
# (family name, model, blocks, token grid (frames, height, width), what it is), 50 steps as
# the CogVideoX reference's example. CogVideoX at its own resolutions: 1.0: 49 frames at
# 480x720 are 13 latent frames of 60x90, patches of 2x2; 1.5: 81 frames at 768x1360 are 21
# latent frames (22 after padding to pairs) of 96x170, patches of 2x2x2. HunyuanVideo 1.0:
# 129 frames at 720x1280 are 33 latent frames of 90x160, patches of 2x2, 20 double blocks;
# 1.5: 121 frames at 480x848 are 31 latent frames of 30x53 (16 pixels per latent pixel),
# patches of 1x1, 54 double blocks. Wan (its one method, cross-attention, every block by
# default): 81 frames at 480x832 are 21 latent frames of 60x104, patches of 2x2; the 2.2 5B's
# 121 frames at 704x1280 are 31 latent frames of 44x80 (16 pixels per latent pixel). Wan's
# templates sample 20 steps; 50 here is an upper bound.
VIDEO_MODELS = [
    ("CogVideoX", "CogVideoX 2b", 30, (13, 30, 45), "49 frames, 480x720"),
    ("CogVideoX", "CogVideoX 5b", 42, (13, 30, 45), "49 frames, 480x720"),
    ("CogVideoX", "CogVideoX 1.5 5b", 42, (11, 48, 85), "81 frames, 768x1360"),
    ("HunyuanVideo", "HunyuanVideo 1.0", 20, (33, 45, 80), "129 frames, 720x1280"),
    ("HunyuanVideo", "HunyuanVideo 1.5", 54, (31, 30, 53), "121 frames, 480x848"),
    ("Wan", "Wan 2.1 1.3B (cross-attention)", 30, (21, 30, 52), "81 frames, 480x832"),
    ("Wan", "Wan 2.1 / 2.2 14B (cross-attention)", 40, (21, 30, 52), "81 frames, 480x832"),
    ("Wan", "Wan 2.2 5B (cross-attention)", 30, (31, 22, 40), "121 frames, 704x1280"),
]
VIDEO_STEPS = 50
IMAGE_BUDGET_MB, VIDEO_BUDGET_MB = 64, 256


def stored_bytes(family, blocks, grid, steps, concepts, keep) -> int:
    from harness import synthetic

    return synthetic.capture(family, blocks, grid, steps, concepts, keep).nbytes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--concepts", type=int, default=5)
    opts = parser.parse_args()
    host.prepare()
    from concept_attention import hooks
    from concept_attention.analysis.data import KEEP_ALL, KEEP_SUMS

    families = {family.name: family for family in hooks.FAMILIES}
    print(f"{opts.size}x{opts.size} px, {opts.concepts} concepts, batch 1, concept attention "
          "(the cross-attention baseline, when recorded too, doubles these); "
          f"MiB (budget at the defaults: {IMAGE_BUDGET_MB} MB)")
    print(f"| model | steps | default layers | patches | {KEEP_SUMS} | {KEEP_ALL} |")
    print("|---|---|---|---|---|---|")
    for name, model, blocks, pixels, steps in IMAGE_MODELS:
        side = opts.size // pixels
        if name not in families:
            print(f"| {model} | {hooks.UNAVAILABLE[name]} |" + " |" * 4)
            continue
        _row(families[name], model, blocks, (1, side, side), steps or opts.steps, opts.concepts, steps_column=True)
    print(f"\nvideo, {VIDEO_STEPS} steps, {opts.concepts} concepts, batch 1, concept attention; MiB "
          f"(budget at the defaults: {VIDEO_BUDGET_MB} MB)")
    print(f"| model | video | default layers | patches (frames x h x w) | {KEEP_SUMS} | {KEEP_ALL} |")
    print("|---|---|---|---|---|---|")
    for name, model, blocks, grid, video in VIDEO_MODELS:
        if name not in families:
            print(f"| {model} | {video} | {hooks.UNAVAILABLE[name]} |" + " |" * 3)
            continue
        _row(families[name], model, blocks, grid, VIDEO_STEPS, opts.concepts, video)


def _row(family, model, blocks, grid, steps, concepts, video=None, steps_column=False):
    from concept_attention.analysis.data import KEEP_ALL, KEEP_SUMS

    sizes = [stored_bytes(family, blocks, grid, steps, concepts, keep) / 2**20 for keep in (KEEP_SUMS, KEEP_ALL)]
    layers = family.default_layers(blocks)
    patches = grid[1] * grid[2] if video is None else "x".join(map(str, grid))
    first = f"| {model} |" + (f" {video} |" if video else "") + (f" {steps} |" if steps_column else "")
    print(f"{first} {layers[0]}-{layers[-1]} ({len(layers)}) | {patches} | {sizes[0]:.1f} | {sizes[1]:.1f} |")


if __name__ == "__main__":
    main()
