"""The floor under a carrying block's cost: reading its text-stream weights once.

A block the concept stream passes through runs the concepts through the block's
text-stream layers (modulation, q/k/v, output projection, MLP; CogVideoX: the
layers its text and video share). With a few concept rows these products are bound
by reading the weights from memory, whatever the number of concepts. This times each
such Linear layer of one block at real width (ComfyUI's classes, random bf16 weights,
built as in block_overhead.py) on 1, 5 and 20 rows: what no capture that runs the
concepts beside the model, rather than inside its own products, can go below.

    ~/comfy/venv/bin/python -m benchmarks.weight_reads [--repeats 15]
"""
import argparse
import statistics
import time

from harness import host

# The block's modules whose weights the concept stream reads (Flux 2 modulates once per model call).
TEXT_STREAM = {"flux1": ("txt_mod", "txt_attn", "txt_mlp"), "sd35_large": ("context_block",),
               "flux2": ("txt_attn", "txt_mlp"),
               "cogvideox_5b": ("norm1", "q", "k", "v", "attn_out", "norm2", "ff_proj", "ff_out")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    opts = parser.parse_args()
    host.prepare()

    import torch

    from benchmarks import block_overhead

    print(f"CPU ({torch.get_num_threads()} threads), bf16, medians of {opts.repeats}, {time.strftime('%Y-%m-%d')}\n")
    print("| family | text-stream weights per block MB | " + " | ".join(f"{c} concepts ms" for c in
                                                                      block_overhead.CONCEPT_COUNTS) + " |")
    print("|---|---|" + "---|" * len(block_overhead.CONCEPT_COUNTS))
    for name, (unet_config, blocks, *_) in block_overhead.families(1.0).items():
        block = getattr(block_overhead.build(unet_config, blocks, kept=1).model.diffusion_model, blocks)[0]
        linears = [m for part in TEXT_STREAM[name] for m in getattr(block, part).modules()
                   if isinstance(m, torch.nn.Linear)]
        megabytes = sum(p.numel() * p.element_size() for m in linears for p in m.parameters()) / 1e6
        cells = []
        for count in block_overhead.CONCEPT_COUNTS:
            inputs = [torch.randn(1, count, m.in_features, dtype=torch.bfloat16) for m in linears]
            times = []
            with torch.no_grad():
                for _ in range(opts.repeats + 1):        # the first run warms up
                    start = time.perf_counter()
                    for module, x in zip(linears, inputs):
                        module(x)
                    times.append(time.perf_counter() - start)
            cells.append(f"{1000 * statistics.median(times[1:]):.0f}")
        print(f"| {name} | {megabytes:.0f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
