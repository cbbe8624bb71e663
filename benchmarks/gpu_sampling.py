"""Sampling time and peak VRAM with and without the capture, at full size on a GPU.

Builds each full architecture from ComfyUI's own classes with random bf16 weights
(weight values do not change the cost; filled on the GPU, then loaded by ComfyUI as a
checkpoint would be), then times KSampler and
the ConceptAttention Sampler with the same inputs (interleaved, medians of
--repeats) and reads the CUDA allocator's peak above what was in use before each run:
- Flux 1 dev: 19 double + 38 single blocks, 1024x1024, 28 steps, guidance 3.5, cfg 1,
  layers 15-18 (the default);
- SD3.5 large: 38 joint blocks, 1024x1024, 28 steps, cfg 4.5, every layer (the default);
- Qwen-Image: 60 blocks, 1024x1024, --steps steps, cfg 4 (its template's), the default layers;
- Chroma: 19 double + 38 single blocks, 1024x1024, --steps steps, cfg 3.5, the default layers;
- Z-Image Turbo: 30 layers and 2 + 2 refiner layers, 1024x1024, 8 steps, cfg 1 (its template's);
- CogVideoX 5b: 42 blocks, 49 frames at 480x720, cfg 6, every layer (the default),
  --video-steps steps (10: its 50 would take minutes per run; the cost per step is the same).
5 concepts, all steps captured, the default keep, batch 1, attention as ComfyUI picks it.

Run it from a ComfyUI environment on a machine with an NVIDIA GPU (about 40 GB of
GPU memory for Flux 1 dev):

    python -m benchmarks.gpu_sampling [--models flux1,sd35_large,qwen_image,chroma,z_image,cogvideox_5b] [--repeats 2]
    python -m benchmarks.gpu_sampling --device cpu --scale 0.05 --steps 2 --video-steps 2   # a check of the script
"""
import argparse
import time

from benchmarks import block_overhead
from harness import host

CONCEPTS = 5


def full_models(scale: float, steps: int, video_steps: int) -> dict:
    """name -> (what, unet_config at full depth, block list, latent shape, text tokens, text width,
    pooled width, steps, cfg, layers)."""
    table = block_overhead.families(scale)
    flux, _, flux_latent, flux_tokens, flux_text, flux_pooled, _ = table["flux1"]
    sd3, _, sd3_latent, sd3_tokens, sd3_text, sd3_pooled, _ = table["sd35_large"]
    cog, _, cog_latent, cog_tokens, cog_text, _, _ = table["cogvideox_5b"]
    qwen, _, qwen_latent, qwen_tokens, qwen_text, _, _ = table["qwen_image"]
    chroma, _, chroma_latent, chroma_tokens, chroma_text, _, _ = table["chroma"]
    z_image, _, z_latent, z_tokens, z_text, _, _ = table["z_image"]
    return {
        "qwen_image": ("Qwen-Image, 1024x1024", block_overhead.with_blocks(qwen, 60), "transformer_blocks", qwen_latent,
                       qwen_tokens, qwen_text, None, steps, 4.0, "default"),
        "chroma": ("Chroma, 1024x1024", {**block_overhead.with_blocks(chroma, 19), "depth_single_blocks": 38},
                   "double_blocks", chroma_latent, chroma_tokens, chroma_text, None, steps, 3.5, "default"),
        "z_image": ("Z-Image Turbo, 1024x1024", {**block_overhead.with_blocks(z_image, 30), "n_refiner_layers": 2},
                    "layers", z_latent, z_tokens, z_text, None, 8, 1.0, "default"),
        "flux1": ("Flux 1 dev, 1024x1024", {**block_overhead.with_blocks(flux, 19), "depth_single_blocks": 38},
                  "double_blocks", flux_latent, flux_tokens, flux_text, flux_pooled, steps, 1.0, "15,16,17,18"),
        "sd35_large": ("SD3.5 large, 1024x1024", sd3, "joint_blocks", sd3_latent, sd3_tokens, sd3_text, sd3_pooled,
                       steps, 4.5, "default"),
        "cogvideox_5b": ("CogVideoX 5b, 49 frames 480x720", block_overhead.with_blocks(cog, 42), "blocks", cog_latent,
                         cog_tokens, cog_text, None, video_steps, 6.0, "default"),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="flux1,sd35_large,qwen_image,chroma,z_image,cogvideox_5b")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, interleaved; medians count")
    parser.add_argument("--steps", type=int, default=28, help="sampling steps of the image models")
    parser.add_argument("--video-steps", type=int, default=10, help="sampling steps of CogVideoX")
    parser.add_argument("--device", default="cuda", help="cuda; cpu only to check the script (with --scale)")
    parser.add_argument("--scale", type=float, default=1.0, help="width and image scale (1: the real models)")
    opts = parser.parse_args()
    host.prepare(cpu=opts.device == "cpu")

    import comfy.ldm.modules.attention
    import comfy.model_management
    import torch

    from benchmarks import measure
    from concept_attention import hooks
    from concept_attention.analysis.data import ConceptSet

    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here; this benchmark is for a GPU machine (--device cpu --scale 0.05 checks it)")
    card = torch.cuda.get_device_name() if opts.device.startswith("cuda") else "CPU"
    print(f"ComfyUI {host.comfyui_version(host.find_comfyui())}, {card}, torch {torch.__version__}, bf16, "
          f"{comfy.ldm.modules.attention.optimized_attention.__name__}, euler, batch 1, {CONCEPTS} concepts, "
          f"all steps captured, medians of {opts.repeats} interleaved runs, {time.strftime('%Y-%m-%d')}\n", flush=True)
    print("| model | steps, cfg | layers | KSampler s | ConceptAttention Sampler s | extra time "
          "| peak VRAM MiB, KSampler | peak VRAM MiB, capture | extra MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    table = full_models(opts.scale, opts.steps, opts.video_steps)
    for name in opts.models.split(","):
        what, unet_config, blocks, latent_shape, tokens, text_width, pooled_width, steps, cfg, layers = table[name]
        if name == "cogvideox_5b" and "CogVideoX" in hooks.UNAVAILABLE:
            print(f"| {what} | {hooks.UNAVAILABLE['CogVideoX']} |" + " |" * 7)
            continue
        model = block_overhead.build(unet_config, blocks, kept=None, device=opts.device)
        positive, negative, latent = block_overhead.sampling_inputs(tokens, text_width, pooled_width, latent_shape)
        concepts = ConceptSet(words=tuple(f"concept{i}" for i in range(CONCEPTS)),
                              embeddings=torch.randn(CONCEPTS, text_width))

        result = measure.ksampler_against_capture(model, steps, cfg, positive, negative, latent, concepts, layers,
                                                  opts.repeats, opts.device)
        captured = result["capture"].layers
        span = f"{captured[0]}-{captured[-1]}" if captured == tuple(range(captured[0], captured[-1] + 1)) else captured
        print(f"| {what} | {steps}, {cfg:g} | {span} | "
              f"{measure.comparison_cells(result)} |", flush=True)
        del model
        comfy.model_management.unload_all_models()
        comfy.model_management.soft_empty_cache()


if __name__ == "__main__":
    main()
