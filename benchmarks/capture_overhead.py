"""Time and memory of ConceptAttention capture against plain KSampler.

Runs both on the same tiny Flux 1 checkpoint (ComfyUI's own Flux class, random
weights) at a few latent sizes and prints a Markdown table: seconds per run,
the capture's overhead, and the size of the CONCEPT_ATTN it keeps.

    ~/comfy/venv/bin/python benchmarks/capture_overhead.py [--steps 28] [--repeats 2] [--gpu]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests")]  # host; tiny_models
import host  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument("--sizes", default="512,1024", help="image sizes in pixels (square)")
    parser.add_argument("--gpu", action="store_true", help="run on the GPU instead of ComfyUI's --cpu mode")
    opts = parser.parse_args()
    host.prepare(cpu=not opts.gpu)

    import torch
    import nodes as comfy_nodes
    import tiny_models
    from concept_attention.data import ConceptSet
    from concept_attention.nodes.sampler import ConceptAttentionSampler

    torch.manual_seed(0)
    # Four double blocks, so the default (last four) layers are captured as on Flux 1's 19.
    config = {**tiny_models.FLUX1_CONFIG, "depth": 4, "depth_single_blocks": 2}
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_models.build_flux(Path(tmp) / "bench.safetensors", config=config)
        model = tiny_models.load_model(path, tiny_models.flux_config(config=config))
    width = tiny_models.TINY_TEXT_DIM
    concepts = ConceptSet(words=("dragon", "rock", "sky", "tree", "water"), embeddings=torch.randn(5, width))
    positive = [[torch.randn(1, 256, width), {"pooled_output": torch.randn(1, width), "guidance": 3.5}]]
    negative = [[torch.zeros(1, 256, width), {"pooled_output": torch.zeros(1, width), "guidance": 3.5}]]

    # Warm-up: the first sampling run loads the model and builds caches.
    comfy_nodes.common_ksampler(model, 0, 1, 1.0, "euler", "simple", positive, negative,
                                {"samples": torch.zeros(1, 16, 64, 64)})

    def timed(run):
        start = time.perf_counter()
        result = run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter() - start, result

    def fastest_of_each(plain_run, capture_run):
        """Alternate the two runs so that drift in machine speed hits both alike."""
        plain_times, capture_times = [], []
        for _ in range(opts.repeats):
            plain_times.append(timed(plain_run)[0])
            seconds, result = timed(capture_run)
            capture_times.append(seconds)
        return min(plain_times), min(capture_times), result

    device = "GPU" if opts.gpu else "CPU"
    print(f"ComfyUI {host.comfyui_version(host.find_comfyui())}, tiny Flux 1 (hidden 256, 4 double + 2 single blocks), "
          f"{device}, {opts.steps} euler steps, cfg 1, batch 1, 5 concepts, layers 0-3, all steps captured, "
          f"fastest of {opts.repeats}\n", flush=True)
    print("| image | tokens | KSampler s | ConceptAttention Sampler s | overhead | CONCEPT_ATTN MiB |")
    print("|---|---|---|---|---|---|")
    for size in (int(s) for s in opts.sizes.split(",")):
        latent = {"samples": torch.zeros(1, 16, size // 8, size // 8)}
        plain, captured, out = fastest_of_each(
            lambda: comfy_nodes.common_ksampler(model, 0, opts.steps, 1.0, "euler", "simple", positive, negative, latent),
            lambda: ConceptAttentionSampler.execute(model, 0, opts.steps, 1.0, "euler", "simple", positive, negative,
                                                    latent, 1.0, concepts, "default", "all"))
        capture = out.args[1]
        print(f"| {size}x{size} | {(size // 16) ** 2} | {plain:.2f} | {captured:.2f} | "
              f"{100 * (captured / plain - 1):+.0f}% | {capture.nbytes / 2**20:.1f} |", flush=True)


if __name__ == "__main__":
    main()
