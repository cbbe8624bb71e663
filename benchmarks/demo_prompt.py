"""The demo prompt against the picture it makes: is every concept where a person sees it?

For candidate prompts and concept lists, over several seeds, the demo model generates
through the ConceptAttention Sampler at the nodes' defaults (as `make demo`); each
concept's argmax region (Concept Heatmaps's argmax mask) is compared with the
generated image's own segmentation, and Concept Report's area shares with the true
shares. The segmentation is read from the picture: each named colour's pixels (the
nearest palette colour, as demo/train.py --evaluate judges images); a shape word owns
the pixels of its object's colour; the background word owns the rest.

    ~/comfy/venv/bin/python -m benchmarks.demo_prompt [--seeds 8] [--model DIR]
    ~/comfy/venv/bin/python -m benchmarks.demo_prompt --prompt "a red circle on grass" --concepts "circle, grass"
"""
import argparse
import json
import time

import numpy as np
import torch

from harness import host

# (prompt, concepts): the earlier demo (colour and shape words of one object compete for
# it), two objects by colour, one object and its background by shape or by colour.
CANDIDATES = (
    ("a red circle and a blue square on grass", "red, blue, circle, square, grass"),
    ("a red circle and a blue square on grass", "red, blue, grass"),
    ("a red heart and a yellow star in the sky", "red, yellow, sky"),
    ("a red circle on grass", "circle, grass"),
    ("a red circle on grass", "red, grass"),
    ("a yellow star in the sky", "star, sky"),
    ("a yellow star in the sky", "yellow, sky"),
    ("a purple heart on grass", "heart, grass"),
    ("an orange triangle in the sky", "triangle, sky"),
    ("a red triangle on a wooden floor", "triangle, floor"),
)
IOU_TARGET = 0.5
SHARE_TARGET = 0.10


def truth(image: np.ndarray, prompt: str, words: list) -> dict:
    """{word: bool mask [H, W]} from the picture: object words by their object's colour,
    the background word the pixels of no named colour."""
    from concept_attention.demo import scenes, train

    background = next(b for b in scenes.BACKGROUNDS if scenes.BACKGROUND_PHRASES[b] in prompt)
    said = prompt.split()
    objects = [(said[i], said[i + 1]) for i in range(len(said) - 1) if said[i] in scenes.COLOURS
               and said[i + 1] in scenes.SHAPES]
    masks = train.colour_masks(image, background)
    colour_of = {word: colour for colour, shape in objects for word in (colour, shape)}
    regions = {word: masks[colour_of[word]] for word in words if word in colour_of}
    objects_mask = np.any([masks[colour] for colour, _ in objects], axis=0)
    regions.update({word: ~objects_mask for word in words if word == background})
    missing = [w for w in words if w not in regions]
    if missing:
        raise SystemExit(f"{missing}: not a word of the prompt {prompt!r}")
    return regions


def measure(model, clip, vae, prompt: str, concepts: str, seed: int) -> dict:
    """One generation through the nodes; per concept: IoU of its argmax region with the
    truth, its Concept Report area share and the true share."""
    from concept_attention.demo.train import conditioning
    from concept_attention.nodes.aggregate import HeatmapAggregate
    from concept_attention.nodes.encode import ConceptEncode
    from concept_attention.nodes.report import ConceptReport
    from concept_attention.nodes.sampler import ConceptAttentionSampler

    encoded = ConceptEncode.execute(clip, concepts).args[0]
    latent = {"samples": torch.zeros(1, 16, 16, 16)}
    sampled, capture = ConceptAttentionSampler.execute(model, seed, 20, 4.0, "euler", "simple",
                                                       conditioning(clip, prompt), conditioning(clip, ""), latent,
                                                       1.0, encoded, "default", "all").args
    with torch.no_grad():
        image = vae.decode(sampled["samples"]).float()[0].numpy()
    argmax = HeatmapAggregate.execute(capture, "all", "all", "concept_attention", "per_concept", "image",
                                      "plasma").args[2].bool().numpy()                  # [C, H, W]
    shares = {entry["concept"]: entry["area_share"]
              for entry in json.loads(ConceptReport.execute(capture).args[1])["items"][0]["concepts"]}
    words = list(encoded.words)
    regions = truth(image, prompt, words)
    out = {}
    for c, word in enumerate(words):
        real = regions[word]
        iou = float((argmax[c] & real).sum() / max(1, (argmax[c] | real).sum()))
        out[word] = {"iou": iou, "share": shares[word], "true_share": float(real.mean())}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds 0..N-1 of each candidate")
    parser.add_argument("--model", help="a demo model's folder (default: the shipped one)")
    parser.add_argument("--prompt", help="one prompt instead of the candidates (with --concepts)")
    parser.add_argument("--concepts", help="its comma-separated concepts")
    opts = parser.parse_args()
    host.prepare()
    host.load_extension()
    from evaluation.models import load_demo_model

    model, clip, vae = load_demo_model(opts.model)
    candidates = [(opts.prompt, opts.concepts)] if opts.prompt else CANDIDATES
    started = time.monotonic()
    print(f"{opts.seeds} seeds each; a seed passes when every concept's argmax region has IoU >= {IOU_TARGET} with "
          f"its region and every area share is within {SHARE_TARGET:.0%} of the true share\n")
    print("| prompt | concepts | IoU per concept (mean over seeds) | worst share error | seeds passing | "
          "passing seeds |\n|---|---|---|---|---|---|")
    for prompt, concepts in candidates:
        runs = [measure(model, clip, vae, prompt, concepts, seed) for seed in range(opts.seeds)]
        words = list(runs[0])
        ious = {w: np.mean([r[w]["iou"] for r in runs]) for w in words}
        errors = [max(abs(r[w]["share"] - r[w]["true_share"]) for w in words) for r in runs]
        passing = [seed for seed, (r, error) in enumerate(zip(runs, errors))
                   if all(r[w]["iou"] >= IOU_TARGET for w in words) and error <= SHARE_TARGET]
        print(f"| {prompt} | {concepts} | " + ", ".join(f"{w} {ious[w]:.2f}" for w in words)
              + f" | {max(errors):.0%} | {len(passing)}/{opts.seeds} | {passing} |", flush=True)
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
