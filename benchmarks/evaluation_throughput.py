"""Throughput of the segmentation evaluation (`python -m evaluation`) on the demo model,
and what the capture costs per image against the same forward pass without it.

1. The command on the demo scenes with 1 worker (this process, 2 torch threads) and with
   2 Ray actors (1 thread each): wall time, images per second, and the seconds per image
   that Encode Image took (from the rows).
2. Per image, medians over the images: Encode Image with the capture (both methods, and
   ConceptAttention alone) against the pass it wraps without the capture (the VAE's
   encoding and one model evaluation at the noise level, on the unpatched model).

    ~/comfy/venv/bin/python -m benchmarks.evaluation_throughput [--images 48]
"""
import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from harness import host


def command_run(images: int, workers: int, threads: int) -> dict:
    from evaluation.__main__ import main as evaluate

    out = Path(tempfile.mkdtemp(prefix="evaluation_throughput_"))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):        # its table: the same for both runs
        code = evaluate(["--dataset", "demo-shape", "--demo", "--limit", str(images), "--shard-size", "8",
                         "--noise-samples", "1", "--workers", str(workers), "--threads", str(threads),
                         "--no-progress", "--out", str(out)])
    wall = time.perf_counter() - started
    summary = json.loads((out / "summary.json").read_text())
    return {"code": code, "wall": wall, "per_image": summary["seconds_per_image"], "read": summary["read"]}


def per_image_costs(images: int) -> dict:
    """Median seconds per image of Encode Image (both methods; ConceptAttention only) and
    of the same VAE encoding and model evaluation without the capture."""
    import comfy.sample
    import comfy.samplers
    import numpy as np
    import torch

    from concept_attention.nodes.encode import ConceptEncode
    from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
    from evaluation.datasets import DemoScenes
    from evaluation.models import load_demo_model
    from evaluation.protocol import DEMO_BACKGROUNDS

    model, clip, vae = load_demo_model()
    scenes = DemoScenes(images, "shape")
    times = {"capture, both methods": [], "capture, ConceptAttention only": [], "the same pass, no capture": []}
    for index in range(images):
        sample = scenes.sample(index)
        names = [scenes.class_name(c) for c in sample.classes]
        concepts = ConceptEncode.execute(clip, ", ".join(dict.fromkeys([*names, *DEMO_BACKGROUNDS]))).args[0]
        positive = clip.encode_from_tokens_scheduled(clip.tokenize("a " + " and a ".join(names)))
        image = torch.from_numpy(sample.image.astype(np.float32) / 255)[None]
        for name, baseline in (("capture, both methods", True), ("capture, ConceptAttention only", False)):
            started = time.perf_counter()
            ConceptAttentionEncodeImage.execute(model, vae, image, concepts, 0.5, 1, index, "default",
                                                positive=positive, cross_attention_baseline=baseline)
            times[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        latent = vae.encode(image)
        guider = comfy.samplers.CFGGuider(model)
        guider.inner_set_conds({"positive": positive})
        guider.set_cfg(1.0)
        guider.sample(comfy.sample.prepare_noise(latent, index), latent, comfy.samplers.sampler_object("euler"),
                      torch.tensor([0.5, 0.0]), disable_pbar=True, seed=index)
        times["the same pass, no capture"].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    opts = parser.parse_args()
    host.prepare()
    import torch

    print(f"ComfyUI {host.comfyui_version(host.find_comfyui())}, CPU, {torch.get_num_threads()} threads, demo model, "
          f"demo-shape scenes (128 px), {opts.images} images, {time.strftime('%Y-%m-%d')}\n")
    print("| run | wall s (model loads included) | images / s | Encode Image s per image |")
    print("|---|---|---|---|")
    for name, workers, threads in (("1 worker, 2 threads", 1, 2), ("2 Ray workers, 1 thread each", 2, 1)):
        result = command_run(opts.images, workers, threads)
        print(f"| {name} | {result['wall']:.1f} | {result['read'] / result['wall']:.2f} | {result['per_image']:.3f} |",
              flush=True)
    costs = per_image_costs(min(opts.images, 24))
    plain = costs["the same pass, no capture"]
    print("\n| per image (median) | seconds | against no capture |\n|---|---|---|")
    for name, seconds in costs.items():
        print(f"| {name} | {seconds:.3f} | {100 * (seconds / plain - 1):+.0f}% |")


if __name__ == "__main__":
    main()
