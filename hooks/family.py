"""The family contract: everything a model family gives the capture core.

A family module (hooks/flux.py, ...) declares one `Family` and a `ModelCall` subclass
(hooks/call.py) that starts the concept stream of one model call and, block by block,
prepares the concepts' queries, keys and values and says how the stream leaves the
block (`BlockConcepts`). The core does the rest for every family: the per-call
wrapper (arguments bound by name), the block patches or block hooks, the attention
tap, the concepts' attention, the scores, the check that the real joint attention
ran, and recording. docs/adding-a-family.md is the checklist.
"""
from dataclasses import dataclass
from typing import Callable, Optional

import comfy.patcher_extension

from ..analysis import maths

# Where a family's per-call wrapper sits. DIFFUSION_MODEL wraps the diffusion model's own
# forward (class_obj is the diffusion model); APPLY_MODEL wraps BaseModel.apply_model,
# for models without a DIFFUSION_MODEL executor (class_obj.diffusion_model is it).
DIFFUSION_MODEL = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
APPLY_MODEL = comfy.patcher_extension.WrappersMP.APPLY_MODEL


class FamilyUnavailable(ImportError):
    """Raised when its module is imported on a ComfyUI whose model code for the family is
    of a form the family does not follow; the message says why."""


@dataclass(frozen=True)
class Family:
    name: str                                   # as users read it: "Flux 1", "SD3"
    matches: Callable                           # (diffusion model) -> bool
    call_type: type                             # a hooks.call.ModelCall subclass
    blocks: Callable                            # (diffusion model) -> its joint-attention blocks, in order
    default_layers: Callable                    # (block count) -> the block indices read by default
    default_layers_text: str                    # the same, in words, for tooltips
    context_width: Callable                     # (diffusion model) -> width of the text vectors it takes
    text_encoding: Callable                     # (CLIP) -> hooks.text.TextEncoding, None for another encoder
    text_encoder: str                           # the text encoder(s) that go with it, in words
    # The model looks up patches_replace["dit"][("double_block", i)] for these blocks; if
    # not, the core hooks the block modules for the length of each recorded call.
    block_patches: bool = True
    call_wrapper: str = DIFFUSION_MODEL
    patch_size: Callable = lambda dm: dm.patch_size
    # (diffusion model) -> pixels per latent pixel, each side, where ComfyUI's latent format
    # does not say it (0.3.75's formats do not)
    latent_downscale: Callable = lambda dm: 8
    max_patches: Callable = lambda dm: None     # patches a side of a fixed position table; None: any size
    frames_per_latent: int = 1                  # video: decoded frames per latent frame (the first alone)
    latents_per_token: Callable = lambda dm: 1  # video: latent frames per token frame
    # The maps it can give: a cross-attention model (Wan: its text is never updated by
    # the blocks, so there are no concept outputs) gives only the cross-attention baseline.
    methods: tuple = maths.METHODS

    def layer_count(self, diffusion_model) -> int:
        return len(self.blocks(diffusion_model))


@dataclass
class BlockConcepts:
    """The concepts in one block, prepared before the block runs.

    q, k, v: the concepts' attention inputs in the layout the block's attention takes,
    [R, H, C, D] when `heads_first` (Flux's skip_reshape), else [R, C, H * D], after any
    RoPE. keys: the concepts' keys before any RoPE [R, H, C, D] (cross-attention
    baseline). The block's joint attention is told apart by its length, text_len +
    joint_len's image part: [prompt, image (and reference) tokens], the prompt first.
    image_queries(q) -> [R, H, P, D] fp32: the block's image queries before RoPE, from
    its rotated ones in the block's layout. leave(concept_out [R, C, H * D]) -> the
    concept stream after the block. key_count: how many tokens after the prompt the
    concepts attend to (None: all of them, reference latents included; Z-Image: the
    image's patches, not the pad tokens after them). image_start: where the image's own
    tokens start in the joint sequence (None: right after the prompt; HunyuanVideo puts
    reference latents between the two).
    """
    index: int
    q: object
    k: object
    v: object
    heads: int
    heads_first: bool
    keys: object
    text_len: int
    joint_len: int
    image_queries: Callable
    leave: Optional[Callable]
    key_count: Optional[int] = None
    image_start: Optional[int] = None
