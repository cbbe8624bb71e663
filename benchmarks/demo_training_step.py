"""Seconds per demo-model training step (DiT forward and backward, batch 32, the T5
trained too or not), in fp32 and under bf16 autocast: whether this CPU's matrix units
make bf16 pay (demo/train.py trains under bf16 autocast).

    ~/comfy/venv/bin/python -m benchmarks.demo_training_step [--steps 6] [--threads 2]
"""
import argparse
import contextlib
import time

import torch

from harness import host


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    opts = parser.parse_args()
    host.prepare()
    host.load_extension()
    from concept_attention.demo import model as demo_model
    from concept_attention.demo import train

    torch.set_num_threads(opts.threads)
    dm = train.new_flux(0)
    clip = demo_model.build_clip(train.TEXT_CONFIG, demo_model.DEFAULT_DIR / "text_encoder.safetensors")
    ids = train.caption_token_ids(clip, ["a red circle and a blue square on grass"] * opts.batch)
    x = torch.randn(opts.batch, 16, 16, 16)
    sigma, y = torch.rand(opts.batch), torch.zeros(opts.batch, train.TEXT_DIM)
    print(f"| precision | text encoder | s per step (batch {opts.batch}, {opts.threads} threads) |\n|---|---|---|")
    for name, autocast in (("fp32", contextlib.nullcontext), ("bf16 autocast",
                                                              lambda: torch.autocast("cpu", dtype=torch.bfloat16))):
        for train_text in (False, True):
            for p in train.t5_of(clip).parameters():
                p.requires_grad_(train_text)
            times = []
            for _ in range(opts.steps + 1):
                started = time.perf_counter()
                with contextlib.nullcontext() if train_text else torch.no_grad():
                    context = train.t5_forward(clip, ids)
                with autocast():
                    out = train.flux_forward(dm, x, sigma, context, y)
                out.float().square().mean().backward()
                dm.zero_grad(set_to_none=True)
                times.append(time.perf_counter() - started)
            median = sorted(times[1:])[len(times[1:]) // 2]
            print(f"| {name} | {'trained' if train_text else 'frozen'} | {median:.3f} |", flush=True)


if __name__ == "__main__":
    main()
