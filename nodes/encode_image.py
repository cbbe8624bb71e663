"""ConceptAttentionEncodeImage: maps for an existing image, from one noised forward pass per sample."""
import dataclasses

import comfy.sample
import comfy.samplers
import comfy.utils
import torch
from comfy_api.latest import io

from ..analysis.data import KEEP_SUMS, ConceptAttention
from ..analysis.errors import NodeInputError, require_finite
from . import checks
from .setup import (
    MODELS,
    attach_capture,
    check_patch_count,
    concepts_input,
    cross_attention_input,
    keep_input,
    layers_input,
    pixels_per_patch,
)
from .types import CAPTURE, ConceptAttn, schema

NODE = "ConceptAttentionEncodeImage"
TITLE = "ConceptAttention Encode Image"   # what the user sees, and what errors name


class ConceptAttentionEncodeImage(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=CAPTURE,
            search_aliases=["concept attention", "segment an image", "segmentation", "heatmaps of an image"],
            description="Heatmaps for an image you already have: the image is encoded, noised to the chosen level "
                        "and read by the model in one forward pass per noise sample (no sampling loop).",
            inputs=[
                io.Model.Input("model", tooltip=MODELS + " It is not changed."),
                io.Vae.Input("vae", tooltip="The model's VAE, to encode the image."),
                io.Image.Input("image", tooltip="The images to read; any size and aspect ratio. Each gets its own maps."),
                concepts_input(),
                io.Float.Input("noise_level", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="How much of the image is hidden in noise before the model reads it: 0.5, as "
                                       "the paper, is a good start; lower keeps fine detail, higher asks the model to "
                                       "imagine more (flow models: x = t*noise + (1-t)*image)."),
                io.Int.Input("noise_samples", default=1, min=1, max=64,
                             tooltip="Read the image this many times, each with other noise, and average the maps: "
                                     "smoother maps, slower in proportion (one forward pass each)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="Seed of the first noise sample (the others use seed+1, seed+2, ...)."),
                layers_input(),
                keep_input(),
                cross_attention_input(),
                io.Conditioning.Input("positive", optional=True,
                                      tooltip="A prompt describing the image. Empty (the paper's setting) when not connected."),
            ],
            outputs=[ConceptAttn.Output(display_name="concept_attn",
                                        tooltip="The recorded maps of every concept, for Concept Heatmaps, the Viewer or the "
                                                "answer nodes (raw scores).")],
        )

    @classmethod
    def validate_inputs(cls, layers=None):
        return checks.refusal(TITLE, layers=layers)

    @classmethod
    def execute(cls, model, vae, image, concepts, noise_level, noise_samples, seed, layers, keep=KEEP_SUMS,
                positive=None, cross_attention_baseline=False) -> io.NodeOutput:
        require_finite(TITLE, noise_level=noise_level)
        patched, capture = attach_capture(TITLE, model, concepts, layers, "all", step_count=1, keep=keep,
                                          cross_attention=cross_attention_baseline)
        if positive is None:
            if concepts.empty_prompt is None:
                raise NodeInputError(TITLE, "positive", "these concepts carry no empty-prompt conditioning; "
                                                       "connect a prompt conditioning here")
            positive = concepts.empty_prompt
        pixels = _fit_to_patches(image[..., :3], pixels_per_patch(model))
        check_patch_count(TITLE, "image", model, *(side // pixels_per_patch(model) for side in pixels.shape[1:3]))
        # As KSampler: a model with 3-D latents (Qwen-Image) takes an image's latent as one frame.
        latent = comfy.sample.fix_empty_latent_channels(model, vae.encode(pixels))
        guider = comfy.samplers.CFGGuider(patched)
        guider.inner_set_conds({"positive": positive})
        guider.set_cfg(1.0)
        sampler = comfy.samplers.sampler_object("euler")
        # One euler step from noise_level to 0 is exactly one model evaluation at noise_level.
        sigmas = torch.tensor([noise_level, 0.0])
        samples = []
        for n in range(noise_samples):
            noise = comfy.sample.prepare_noise(latent, seed + n)
            guider.sample(noise, latent, sampler, sigmas, disable_pbar=True, seed=seed + n)
            samples.append(dataclasses.replace(capture))
        capture.replace_with(ConceptAttention.concatenate(samples))
        capture.image_size = tuple(image.shape[1:3])
        if capture.is_video:          # a video model reads the image batch as one video's frames
            capture.video_frames = image.shape[0]
        return io.NodeOutput(capture)


def _fit_to_patches(pixels: torch.Tensor, multiple: int) -> torch.Tensor:
    """Resize [B, H, W, 3] to the nearest multiple of `multiple` on each side (at least
    one patch): the aspect ratio is kept up to half a patch, never squashed to a square."""
    height, width = pixels.shape[1:3]
    target = [max(multiple, round(side / multiple) * multiple) for side in (height, width)]
    if target == [height, width]:
        return pixels
    return comfy.utils.common_upscale(pixels.movedim(-1, 1), target[1], target[0], "bilinear", "disabled").movedim(1, -1)
