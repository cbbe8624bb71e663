"""A CONCEPT_ATTN filled by the extension's own Recorder from given scores, with no
model: for tests of what the nodes make of known maps, and for the benchmarks whose
numbers depend on shapes and values, not on model weights."""
import math

import torch

from concept_attention.analysis.data import KEEP_SUMS, ConceptSet
from concept_attention.hooks.call import LatentLayout
from concept_attention.hooks.capture import CaptureSpec, Recorder


def capture(family, blocks: int, grid: tuple, steps: int, concepts: int, keep: str, scores=None,
            image_size=None):
    """family: a hooks.family.Family (its default layers for `blocks` blocks); grid: (frames,
    height, width) in patches; scores(step, layer) -> [1, concepts, patches] (default:
    standard normal values)."""
    scores = scores or (lambda step, layer: torch.randn(1, concepts, math.prod(grid)))
    words = tuple(f"concept{i}" for i in range(concepts))
    return record(words, family.name, family.default_layers(blocks), grid, steps, keep, scores, image_size)


def planted(maps, words, layers=(0,), steps=1, keep=KEEP_SUMS, image_size=None, family="Flux 1", **video):
    """A capture whose maps are `maps(step, layer)` exactly: [B, C, h, w] (video:
    [B, C, F, h, w]) probabilities over the concepts, recorded as their logarithms, so
    that the softmax over concepts gives them back."""
    def scores(step, layer):
        chosen = maps(step, layer)
        return chosen.clamp_min(1e-30).log().flatten(2)
    sample = maps(0, layers[0])
    grid = tuple(sample.shape[2:]) if sample.ndim == 5 else (1, *sample.shape[2:])
    return record(tuple(words), family, tuple(layers), grid, steps, keep, scores, image_size, **video)


def record(words, family_name, layers, grid, steps, keep, scores, image_size=None, video_frames=1,
           frames_per_latent=1, latents_per_token=1):
    spec = CaptureSpec(concepts=ConceptSet(words=words, embeddings=torch.zeros(len(words), 1)), family=family_name,
                       layers=layers, keep=keep)
    sigmas = torch.linspace(1, 0, steps + 1)
    recorder = Recorder(spec, sigmas)
    for step in range(steps):
        layout = LatentLayout(grid, image_size or (grid[1] * 16, grid[2] * 16), video_frames, frames_per_latent,
                              latents_per_token)
        recorded = {method: [scores(step, layer) for layer in spec.layers] for method in spec.methods}
        recorder.add(recorded, list(spec.layers), layout, step, float(sigmas[step]), chunks=1)
    return recorder.finish()
