"""A CONCEPT_ATTN filled by the extension's own Recorder from scores of the real shapes,
for the benchmarks whose numbers depend on shapes and values, not on model weights."""
import math

import torch

from concept_attention import maths
from concept_attention.data import ConceptSet
from concept_attention.hooks.capture import CaptureSpec, ModelCall, Recorder


def capture(family, blocks: int, grid: tuple, steps: int, concepts: int, keep: str, scores=None,
            image_size=None):
    """family: a hooks module (its default layers for `blocks` blocks); grid: (frames,
    height, width) in patches; scores(step, layer) -> [1, concepts, patches] (default:
    standard normal values)."""
    scores = scores or (lambda step, layer: torch.randn(1, concepts, math.prod(grid)))
    words = tuple(f"concept{i}" for i in range(concepts))
    spec = CaptureSpec(concepts=ConceptSet(words=words, embeddings=torch.zeros(concepts, 1)), family=family.NAME,
                       layers=family.default_layers(blocks), keep=keep)
    sigmas = torch.linspace(1, 0, steps + 1)
    recorder = Recorder(spec, sigmas)
    for step in range(steps):
        call = ModelCall(spec, torch.tensor([0]), grid, image_size or (grid[1] * 16, grid[2] * 16))
        for layer in spec.layers:
            for method in maths.METHODS:
                call.scores[method].append(scores(step, layer))
        recorder.add(call, step, float(sigmas[step]), chunks=1)
    return recorder.finish()
