"""Whole sampling runs with and without the capture: each family's tiny checkpoint and
the bundled demo model, KSampler against the ConceptAttention Sampler with the same
inputs: seconds, peak memory and the size of the CONCEPT_ATTN kept.

Tiny checkpoints are ComfyUI's own model classes at toy widths (the tests' models), so
their blocks are cheap and the capture's fixed costs per block weigh far more than at
real width (benchmarks/block_overhead.py measures that); the demo model runs as its
example workflow does. Runs interleaved, medians of --repeats. Peak memory: of torch's
tensors, above what was in use when the run began (measure.PeakMemory: on the CPU from
the profiler's allocation records, on a GPU the CUDA allocator's peak).

    ~/comfy/venv/bin/python -m benchmarks.capture_overhead [--repeats 3] [--models flux1,sd3,flux2,cogvideox,demo] [--gpu]
"""
import argparse
import tempfile
import time
from pathlib import Path

from harness import host

ROOT = Path(__file__).resolve().parents[1]

CONCEPTS = ("dragon", "rock", "sky", "tree", "water")


def tiny_models_to_run(directory: Path) -> dict:
    """name -> (what, load() -> model, harness (tests/sampling.py), latent size, steps)."""
    from harness import sampling, tiny_models

    flux1 = {**tiny_models.FLUX1_CONFIG, "depth": 4}     # the default layers are its last four, as Flux 1's 15-18
    return {
        "flux1": ("Flux 1 (hidden 256, 4 double + 2 single blocks)",
                  lambda: tiny_models.load_model(tiny_models.build_flux(directory / "flux1.safetensors", config=flux1),
                                                 tiny_models.flux_config(config=flux1), expect="Flux"),
                  sampling.FLUX1, (64, 64), 28),
        "sd3": ("SD3 (hidden 128, 2 joint blocks)",
                lambda: tiny_models.load_with_stock_loader(tiny_models.build_sd3(directory / "sd3.safetensors"),
                                                           expect="SD3"),
                sampling.SD3, (64, 64), 28),
        "flux2": ("Flux 2 (hidden 256, 3 double + 2 single blocks)",
                  lambda: tiny_models.load_model(
                      tiny_models.build_flux(directory / "flux2.safetensors", config=tiny_models.FLUX2_CONFIG),
                      tiny_models.flux_config(True, tiny_models.FLUX2_CONFIG), expect="Flux2"),
                  sampling.FLUX2, (32, 32), 28),
        "cogvideox": ("CogVideoX 5b-like (hidden 192, 3 blocks), 9 frames 256x384",
                      lambda: tiny_models.load_with_stock_loader(
                          tiny_models.build_cogvideox(directory / "cogvideox.safetensors"), expect="CogVideoX_T2V"),
                      sampling.COGVIDEOX, (3, 32, 48), 28),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, interleaved; medians count")
    parser.add_argument("--models", default="flux1,sd3,flux2,cogvideox,demo")
    parser.add_argument("--gpu", action="store_true", help="run on the GPU instead of ComfyUI's --cpu mode")
    opts = parser.parse_args()
    host.prepare(cpu=not opts.gpu)

    import nodes as comfy_nodes
    import torch

    from benchmarks import measure
    from concept_attention import hooks
    from concept_attention.demo import model as demo_model
    from concept_attention.nodes.encode import ConceptEncode

    device = "cuda" if opts.gpu else "cpu"
    print(f"ComfyUI {host.comfyui_version(host.find_comfyui())}, {'GPU' if opts.gpu else 'CPU'}"
          f" ({torch.cuda.get_device_name() if opts.gpu else f'{torch.get_num_threads()} threads'}), euler, batch 1, "
          f"default layers, all steps captured, the default keep, medians of {opts.repeats} interleaved runs, "
          f"{time.strftime('%Y-%m-%d')}\n", flush=True)
    print("| model | latent | steps, cfg | concepts | KSampler s | ConceptAttention Sampler s | extra time "
          "| peak MiB, KSampler | peak MiB, capture | extra MiB | CONCEPT_ATTN MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        tiny = tiny_models_to_run(Path(scratch))
        for name in opts.models.split(","):
            if name == "cogvideox" and "CogVideoX" in hooks.UNAVAILABLE:
                print(f"| {name} | {hooks.UNAVAILABLE['CogVideoX']} |" + " |" * 9)
                continue
            if name == "demo":
                model, clip, _ = demo_model.load_demo()
                size = demo_model.load_config()["latent_size"]
                what, latent, steps, cfg = "demo model (the demo workflow)", {"samples": torch.zeros(1, 16, size, size)}, 20, 4.0
                positive = comfy_nodes.CLIPTextEncode().encode(clip, "a red circle and a blue square on grass")[0]
                negative = comfy_nodes.CLIPTextEncode().encode(clip, "")[0]
                concepts = ConceptEncode.execute(clip, "red, blue, circle, square, grass").args[0]
            else:
                what, load, harness, size, steps = tiny[name]
                model, cfg = load(), 1.0
                latent, positive, negative = harness.latent(1, *size), harness.conditioning(1), harness.conditioning(2)
                concepts = harness.concepts(CONCEPTS)

            result = measure.ksampler_against_capture(model, steps, cfg, positive, negative, latent, concepts,
                                                      "default", opts.repeats, device)
            print(f"| {what} | {'x'.join(map(str, latent['samples'].shape[2:]))} | {steps}, {cfg:g} | "
                  f"{len(concepts.words)} | {measure.comparison_cells(result)} | "
                  f"{result['capture'].nbytes / 2**20:.2f} |", flush=True)


if __name__ == "__main__":
    main()
