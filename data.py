"""The two objects that flow between the nodes: CONCEPTS and CONCEPT_ATTN.
Neither imports ComfyUI or node code."""
from dataclasses import dataclass, field

import torch

from . import maths


class SelectionError(ValueError):
    """A requested layer or step was not captured; `what` says which."""

    def __init__(self, what: str, message: str):
        super().__init__(message)
        self.what = what


@dataclass(frozen=True)
class ConceptSet:
    """Concept words and one embedding per word, in the text encoder's output space.

    embeddings: [C, D] fp32 on the CPU, one row per word (the word's first token,
    or the mean of its tokens, as `pooling` says). empty_prompt: the same text
    encoder's CONDITIONING of "", the prompt with which existing images are read.
    """
    words: tuple
    embeddings: torch.Tensor = field(repr=False)
    pooling: str = "first_token"
    empty_prompt: list = field(default=None, repr=False)

    def __len__(self):
        return len(self.words)


@dataclass
class ConceptAttention:
    """What one sampling run captured: raw per-(evaluation, layer) scores on the CPU.

    scores[method] is [E, L, B, C, P]: E captured model evaluations (their sampler
    step indices in `steps`), L captured layers (`layers`), B images, C concepts,
    P = frames * height * width patches of `grid`, image-major per row.
    Only the conditional pass is recorded. A new run replaces the content.

    >>> maps = capture.maps("concept_attention", layers=(15, 16), steps=range(2, 4))
    >>> maps.shape  # [B, C, height, width] (video: [B, C, frames, height, width])
    """
    concepts: tuple
    family: str
    layers: tuple = ()
    grid: tuple = (1, 0, 0)            # (frames, height, width) in patches
    image_size: tuple = (0, 0)         # (height, width) in pixels of the decoded image
    batch_size: int = 0
    steps: tuple = ()
    sigmas: tuple = ()
    scores: dict = field(default_factory=dict)

    @property
    def captured_steps(self) -> tuple:
        return tuple(sorted(set(self.steps)))

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.scores.values())

    @classmethod
    def concatenate(cls, captures: list) -> "ConceptAttention":
        """One capture holding the evaluations of several runs (e.g. noise samples)."""
        first = captures[0]
        out = cls(concepts=first.concepts, family=first.family, layers=first.layers, grid=first.grid,
                  image_size=first.image_size, batch_size=first.batch_size)
        out.steps = tuple(s for c in captures for s in c.steps)
        out.sigmas = tuple(s for c in captures for s in c.sigmas)
        out.scores = {m: torch.cat([c.scores[m] for c in captures]) for m in first.scores}
        return out

    def replace_with(self, other: "ConceptAttention"):
        """Take over another capture's content (a re-run replaces the maps)."""
        self.__dict__.update(other.__dict__)

    def maps(self, method: str = "concept_attention", layers=None, steps=None, softmax: bool = True) -> torch.Tensor:
        """Per-concept maps [B, C, h, w] (or [B, C, f, h, w] for video): softmax over
        concepts for every (evaluation, layer), then the mean over the chosen ones.

        layers: captured layer indices to use (None: all captured);
        steps: sampler step indices to use (None: all captured).
        """
        if method not in maths.METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(maths.METHODS)}")
        if not self.steps:
            raise ValueError("nothing was captured: the sampler has not run with this capture, "
                             "or no conditional pass reached the chosen layers and timesteps")
        layer_rows = self._select(self.layers, layers, "layer")
        step_rows = self._select(self.steps, steps, "step")
        scores = self.scores[method][step_rows][:, layer_rows]
        flat = maths.reduce_scores(scores, softmax=softmax)
        frames, height, width = self.grid
        shape = (height, width) if frames == 1 else (frames, height, width)
        return flat.reshape(*flat.shape[:2], *shape)

    @staticmethod
    def _select(available: tuple, wanted, what: str) -> list:
        if wanted is None:
            return list(range(len(available)))
        wanted = set(wanted)
        missing = wanted - set(available)
        if missing:
            have = ", ".join(map(str, sorted(set(available))))
            raise SelectionError(what, f"{what}s {sorted(missing)} were not captured; captured {what}s: {have}")
        return [i for i, a in enumerate(available) if a in wanted]

    def __repr__(self):
        frames, height, width = self.grid
        return (f"ConceptAttention({self.family}, concepts={list(self.concepts)}, batch={self.batch_size}, "
                f"grid={frames}x{height}x{width}, layers={list(self.layers)}, steps={list(self.captured_steps)}, "
                f"{self.nbytes / 2**20:.1f} MiB)")


@dataclass(frozen=True)
class ConceptMaps:
    """Normalised heatmaps ready to show: maps [B, C, H, W] in [0, 1], one per
    (image, concept), with the concept words in order."""
    words: tuple
    maps: torch.Tensor = field(repr=False)
