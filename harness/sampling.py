"""One sampling harness for every family's tests: conditioning built directly (the
full-size text encoders cannot be built here), empty latents, and the
ConceptAttention Sampler and KSampler run with the same inputs."""
import types
from dataclasses import dataclass
from typing import Callable

import nodes as comfy_nodes
import torch

from concept_attention.analysis.data import KEEP_SUMS, ConceptSet
from concept_attention.nodes.sampler import ConceptAttentionSampler
from harness import tiny_models

SEED = 5


@dataclass(frozen=True)
class Family:
    text_width: int          # the tiny checkpoints' text input
    latent_channels: int
    latent_size: tuple       # (height, width) of the default latent; (frames, height, width) for video
    tokens: int              # prompt tokens of the built conditioning
    pooled_width: int = 0    # a random pooled vector this wide (0: none)
    zero_pooled: int = 0     # a zero pooled vector this wide, for models that ignore it
    guidance: float = None
    size_scale: int = 1      # latent pixels per size unit: a pixel-space model's sizes in its VAE family's units
    # (torch.Generator, latent size) -> image-to-video's conditioning inputs for a latent of that size, or None
    image_inputs: Callable = None

    def conditioning(self, seed, size=None, **extra) -> list:
        gen = torch.Generator().manual_seed(seed)
        options = {}
        tokens = torch.randn(1, self.tokens, self.text_width, generator=gen)
        if self.pooled_width:
            options["pooled_output"] = torch.randn(1, self.pooled_width, generator=gen)
        if self.zero_pooled:
            # Flux 2 has no pooled input; ComfyUI 0.3.75's Flux model still reads a pooled_output.
            options["pooled_output"] = torch.zeros(1, self.zero_pooled)
        if self.guidance is not None:
            options["guidance"] = self.guidance
        if self.image_inputs is not None:
            options.update(self.image_inputs(gen, size or self.latent_size))
        return [[tokens, {**options, **extra}]]

    def concepts(self, words=("dragon", "rock", "sky"), seed=7) -> ConceptSet:
        return ConceptSet(words=tuple(words),
                          embeddings=torch.randn(len(words), self.text_width, generator=torch.Generator().manual_seed(seed)))

    def latent(self, batch=1, *size) -> dict:
        """An empty latent [batch, channels, *size]: (height, width), or (frames, height,
        width) for video; latent_size by default."""
        size = [side * self.size_scale for side in (size or self.latent_size)]
        return {"samples": torch.zeros(batch, self.latent_channels, *size)}

    def run_capture(self, model, concepts, cfg=1.0, batch=1, sampler="euler", steps=4, layers="default",
                    timesteps="all", size=None, keep=KEEP_SUMS, positive=None, cross_attention=False):
        """(sampled latent, CONCEPT_ATTN) of the ConceptAttention Sampler; cross_attention
        records the baseline too."""
        out = ConceptAttentionSampler.execute(model, SEED, steps, cfg, sampler, "simple",
                                              positive or self.conditioning(1, size), self.conditioning(2, size),
                                              self.latent(batch, *(size or ())), 1.0, concepts,
                                              layers, timesteps, keep, cross_attention)
        return out.args[0]["samples"], out.args[1]

    def run_ksampler(self, model, cfg=1.0, batch=1, sampler="euler", steps=4, size=None, positive=None):
        """KSampler's latent with the same inputs."""
        return comfy_nodes.common_ksampler(model, SEED, steps, cfg, sampler, "simple",
                                           positive or self.conditioning(1, size), self.conditioning(2, size),
                                           self.latent(batch, *(size or ())))[0]["samples"]


FLUX1 = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(16, 16), tokens=16,
               pooled_width=tiny_models.TINY_TEXT_DIM, guidance=3.5)
SD3 = Family(text_width=tiny_models.SD3_TEXT_DIM, latent_channels=16, latent_size=(16, 16), tokens=154,
             pooled_width=tiny_models.SD3_POOLED_DIM)
FLUX2 = Family(text_width=tiny_models.FLUX2_TEXT_DIM, latent_channels=128, latent_size=(8, 8), tokens=40,
               zero_pooled=768, guidance=4.0)
COGVIDEOX = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(3, 8, 6), tokens=32)
# Qwen-Image: a 4-D latent as EmptySD3LatentImage gives it; ComfyUI adds the frame axis.
QWEN_IMAGE = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(12, 16), tokens=12)
# zero_pooled: ComfyUI 0.3.75 reads a pooled_output for every Flux-class model.
CHROMA = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(16, 12), tokens=12,
                zero_pooled=768)
# Chroma Radiance: pixels, 8 per Chroma latent pixel, so that the same sizes give the same 16-pixel patch grid.
CHROMA_RADIANCE = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=3, latent_size=(16, 12), tokens=12,
                         zero_pooled=768, size_scale=8)
# Z-Image and Lumina 2: a 16 x 12 latent is 48 patches, padded to 64 by Z-Image; 12 prompt tokens, padded to 32.
Z_IMAGE = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(16, 12), tokens=12)
# HunyuanVideo 1.0: a pooled CLIP-L vector (768) and embedded guidance, as its conditioning carries them.
HUNYUAN_VIDEO = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(3, 8, 6), tokens=12,
                       pooled_width=768, guidance=6.0)
# HunyuanVideo 1.5: a 32-channel latent (16 pixels per latent pixel); ComfyUI reads a pooled_output it does not use.
HUNYUAN_VIDEO_15 = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=32, latent_size=(3, 8, 6), tokens=12,
                          zero_pooled=768)
# Wan 2.1: umT5 vectors at the tiny text width; 3 latent frames of 8 x 6 (36 patches).
WAN21 = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(3, 8, 6), tokens=12)


def wan_image_inputs(gen, size) -> dict:
    """Wan 2.1 image-to-video's inputs for a latent of any size: the mask of a first frame
    (ComfyUI pads it over the rest; the image latent concatenated with it is then zeros)
    and CLIP-vision tokens (257 x 1280). tests/test_wan_capture.py runs WanImageToVideo on an image."""
    return {"concat_mask": torch.zeros(1, 1, 1, 8, 6),
            "clip_vision_output": types.SimpleNamespace(penultimate_hidden_states=torch.randn(1, 257, 1280,
                                                                                                generator=gen))}


WAN21_I2V = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(3, 8, 6), tokens=12,
                   image_inputs=wan_image_inputs)
# Wan 2.2 5B: the 2.2 VAE's 48 channels, 16 pixels per latent pixel.
WAN22_5B = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=48, latent_size=(3, 8, 6), tokens=12)
# Wan 2.2 14B image-to-video: the image latent and mask concatenated (a first-frame mask: the image latent is zeros).
WAN22_14B_I2V = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(3, 8, 6), tokens=12,
                       image_inputs=lambda gen, size: {"concat_mask": torch.zeros(1, 1, 1, 8, 6)})
# Wan Fun with a reference image: its latent (one frame of the video's size) in the conditioning, as reference_latents.
WAN21_FUN_REFERENCE = Family(text_width=tiny_models.TINY_TEXT_DIM, latent_channels=16, latent_size=(3, 8, 6), tokens=12,
                             image_inputs=lambda gen, size: {"reference_latents": [torch.randn(1, 16, 1, *size[1:],
                                                                                               generator=gen)]})
