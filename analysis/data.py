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
    family: the model family whose text encoder made them (None: an encoder no
    family knows); encoder: what encoded them, in words. text_position: where a
    one-token word alone sits in its own conditioning, text_length tokens long;
    families whose text tokens carry positions (Flux 2) give every concept that one.
    """
    words: tuple
    embeddings: torch.Tensor = field(repr=False)
    pooling: str = "first_token"
    empty_prompt: list = field(default=None, repr=False)
    family: str = None
    encoder: str = ""
    text_position: int = 0     # default: a bare one-token word, no template
    text_length: int = 1

    def __len__(self):
        return len(self.words)


# What a capture keeps (CaptureSpec.keep, the capture nodes' `keep` input).
KEEP_SUMS = "per_step_and_per_layer"
KEEP_ALL = "every_step_and_layer"


class MapsError(ValueError):
    """The capture holds no usable maps for this choice: it failed, or its values are not finite."""


def capture_failed(error: str) -> str:
    return (f"the capture failed during sampling, so there are no maps ({error}). The image was sampled as it would "
            "be without ConceptAttention. If this keeps happening, please report it with this message")


NOTHING_CAPTURED = ("nothing was captured: the sampler has not run with this capture, or no conditional pass "
                    "reached the chosen layers and timesteps")
KEEPS = (KEEP_SUMS, KEEP_ALL)


@dataclass
class ConceptAttention:
    """What one sampling run captured, on the CPU, in one of two forms (`keep`):

    KEEP_SUMS: for each method, the softmax-over-concepts maps summed two ways:
      step_sums[method] [E, B, C, P], per evaluation summed over the captured layers;
      layer_sums[method] [L, B, C, P], per layer summed over the evaluations.
      A subset of steps or of layers can be chosen later, not both at once.
    KEEP_ALL: scores[method] [E, L, B, C, P], the raw scores of every (evaluation,
      layer): any subsets, and maps without the softmax.
    E captured model evaluations (their sampler step indices in `steps`), L captured
    layers (`layers`), B images, C concepts, P = frames * height * width patches of
    `grid`. Only the conditional pass is recorded. A new run replaces the content.

    >>> maps = capture.maps("concept_attention", layers=(15, 16))
    >>> maps.shape  # [B, C, height, width] (video: [B, C, frames, height, width])
    """
    concepts: tuple
    family: str
    layers: tuple = ()
    keep: str = KEEP_SUMS
    grid: tuple = (1, 0, 0)            # (frames, height, width) in patches
    image_size: tuple = (0, 0)         # (height, width) in pixels of the decoded image
    video_frames: int = 1              # frames of the decoded video (1: an image)
    frames_per_latent: int = 1         # decoded frames per latent frame after the first (CogVideoX: 4)
    latents_per_token: int = 1         # latent frames per token frame (CogVideoX 1.5: 2)
    batch_size: int = 0
    steps: tuple = ()
    sigmas: tuple = ()
    schedule: tuple = ()               # the sampling run's noise levels, first to last (the final one included)
    step_sums: dict = field(default_factory=dict)
    layer_sums: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    error: str = ""                    # why the capture stopped, when it failed during sampling
    nonfinite_steps: tuple = ()        # steps whose scores held NaN or infinite values

    @property
    def is_video(self) -> bool:
        return self.video_frames > 1 or self.grid[0] > 1

    def token_frame_of(self) -> torch.Tensor:
        """For every decoded frame, the token frame its maps come from: the VAE decodes
        latent frame 0 to frame 0 alone and each later latent frame to
        `frames_per_latent` frames; a token frame covers `latents_per_token` latent
        frames. [video_frames] indices."""
        return maths.token_frames(self.video_frames, self.frames_per_latent, self.latents_per_token, self.grid[0])

    def token_frame_ranges(self) -> list:
        """(first, last) decoded frames of each token frame (None where a token frame
        shows in no decoded frame); [(0, 0)] for an image."""
        if not self.is_video:
            return [(0, 0)]
        of = self.token_frame_of().tolist()
        return [(of.index(f), len(of) - 1 - of[::-1].index(f)) if f in of else None for f in range(self.grid[0])]

    def sigma_of(self, step: int) -> float:
        """The noise level at which a captured step was evaluated (its first evaluation)."""
        return self.sigmas[self.steps.index(step)]

    @property
    def methods(self) -> tuple:
        """The maths.METHODS whose maps this capture holds."""
        return tuple({**self.scores, **self.layer_sums})

    @property
    def captured_steps(self) -> tuple:
        return tuple(sorted(set(self.steps)))

    @property
    def nbytes(self) -> int:
        stores = (self.step_sums, self.layer_sums, self.scores)
        return sum(t.numel() * t.element_size() for store in stores for t in store.values())

    @classmethod
    def concatenate(cls, captures: list) -> "ConceptAttention":
        """One capture holding the evaluations of several runs (e.g. noise samples)."""
        first = captures[0]
        out = cls(concepts=first.concepts, family=first.family, layers=first.layers, keep=first.keep,
                  grid=first.grid, image_size=first.image_size, video_frames=first.video_frames,
                  frames_per_latent=first.frames_per_latent, latents_per_token=first.latents_per_token,
                  batch_size=first.batch_size)
        out.error = next((c.error for c in captures if c.error), "")
        out.nonfinite_steps = tuple(sorted({s for c in captures for s in c.nonfinite_steps}))
        out.steps = tuple(s for c in captures for s in c.steps)
        out.sigmas = tuple(s for c in captures for s in c.sigmas)
        out.step_sums = {m: torch.cat([c.step_sums[m] for c in captures]) for m in first.step_sums}
        out.layer_sums = {m: sum(c.layer_sums[m] for c in captures) for m in first.layer_sums}
        out.scores = {m: torch.cat([c.scores[m] for c in captures]) for m in first.scores}
        return out

    def replace_with(self, other: "ConceptAttention"):
        """Take over another capture's content (a re-run replaces the maps)."""
        self.__dict__.update(other.__dict__)

    def maps(self, method: str = maths.AUTO, layers=None, steps=None, softmax: bool = True) -> torch.Tensor:
        """Per-concept maps [B, C, h, w] (or [B, C, f, h, w] for video): softmax over
        concepts for every (evaluation, layer), then the mean over the chosen ones.

        layers: captured layer indices to use (None: all captured);
        steps: sampler step indices to use (None: all captured);
        softmax=False (the paper's ablation) needs keep=KEEP_ALL.
        """
        method = self.resolve_method(method)
        if method not in maths.METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(maths.METHODS)}")
        if self.error:
            raise MapsError(capture_failed(self.error))
        if not self.steps:
            raise ValueError(NOTHING_CAPTURED)
        if method not in self.methods:
            raise SelectionError("method", self._not_recorded(method))
        layer_rows = self._select(self.layers, layers, "layer")
        step_rows = self._select(self.steps, steps, "step")
        if self.keep == KEEP_ALL:
            flat = maths.reduce_scores(self.scores[method][step_rows][:, layer_rows], softmax=softmax)
        else:
            if not softmax:
                raise ValueError(f"maps without the softmax need the raw scores: capture with keep = {KEEP_ALL}")
            some_layers, some_steps = len(layer_rows) < len(self.layers), len(step_rows) < len(self.steps)
            if some_layers and some_steps:
                raise SelectionError("layers and timesteps", f"this capture kept {KEEP_SUMS}: choose a subset of the layers or of "
                                              f"the timesteps, not both; for both, capture with keep = {KEEP_ALL}")
            if some_steps:
                flat = self.step_sums[method][step_rows].sum(dim=0) / (len(step_rows) * len(self.layers))
            else:
                flat = self.layer_sums[method][layer_rows].sum(dim=0) / (len(self.steps) * len(layer_rows))
        if not torch.isfinite(flat).all():
            chosen = sorted({self.steps[i] for i in step_rows} & set(self.nonfinite_steps)) or self.nonfinite_steps
            raise MapsError(f"the scores of step{'s' if len(chosen) > 1 else ''} {', '.join(map(str, chosen))} hold NaN "
                            "or infinite values (the latent or the model's activations were not finite there), so "
                            "their maps would be NaN images; choose timesteps without them, or find what made the "
                            "latent non-finite")
        return flat.reshape(*flat.shape[:2], *(self.grid if self.is_video else self.grid[1:]))

    @property
    def cross_attention_only(self) -> bool:
        """A capture of a model without joint attention (Wan): only the baseline's maps exist."""
        return bool(self.methods) and maths.CONCEPT_ATTENTION not in self.methods

    def resolve_method(self, method: str) -> str:
        """maths.AUTO: ConceptAttention's maps, or those of a cross-attention-only capture."""
        if method != maths.AUTO:
            return method
        return maths.CROSS_ATTENTION if self.cross_attention_only else maths.CONCEPT_ATTENTION

    @property
    def method_note(self) -> str:
        """What the nodes show beside the method: why a cross-attention-only capture has no other."""
        if self.cross_attention_only:
            return f"{self.family} has no joint attention: cross-attention maps only"
        return ""

    def method_label(self, method: str) -> str:
        return f"{method} ({self.method_note})" if self.method_note else method

    def _not_recorded(self, method: str) -> str:
        if self.cross_attention_only:
            return (f"this {self.family} capture holds cross-attention maps only: {self.family} has no joint "
                    f"attention (its blocks never update the text), so ConceptAttention's own maps do not exist for "
                    f"it; choose method = {maths.CROSS_ATTENTION}")
        return (f"this capture did not record {method}: turn on cross_attention_baseline on the ConceptAttention node "
                f"that made it and run it again, or choose method = {maths.CONCEPT_ATTENTION}")

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
                f"keep={self.keep}, {self.nbytes / 2**20:.1f} MiB)")


@dataclass(frozen=True)
class ConceptMaps:
    """Normalised heatmaps ready to show: maps [B, C, H, W] in [0, 1], one per
    (image, concept), with the concept words in order; for video [B, C, N, H, W],
    one per decoded frame."""
    words: tuple
    maps: torch.Tensor = field(repr=False)
