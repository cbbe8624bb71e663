"""Flux 2 (dev and the Klein models): ComfyUI's comfy.ldm.flux.model.Flux with the
Flux 2 parameters (global modulation, SiLU-gated bias-free MLP, 4-axis RoPE).

The concept stream is Flux 1's (hooks/flux.py) with two differences:
- modulation is shared: the model computes the text stream's modulation once and
  hands every double block vec = ((img_mod1, img_mod2), (txt_mod1, txt_mod2)); the
  concepts take the text one, which carries timestep and guidance and no pooled vector;
- text tokens carry positions (their ids run along the last RoPE axis), so every
  concept takes one constant position: where the word's token sits when the word
  alone goes through the text encoder's template, after ComfyUI's left-padding of
  Flux 2's text to TEXT_TOKENS (Flux 2 dev: near the end, what the reference's fixed
  index 510 amounts to; Klein, whose tokenizer pads on the right: 3).
Scores read the image rows after the call's own text length; reference latents
(editing) come after the image: concepts attend to them, the maps drop them.
"""
import comfy.ldm.flux.model
import comfy.text_encoders.flux
from comfy.ldm.flux.layers import ModulationOut

from .capture import CaptureSpec
from .flux import FluxCall, attach_flux, context_width, layer_count, max_patches, patch_size  # noqa: F401 (the family interface)
from .text import TextEncoding

NAME = "Flux 2"
LATENT_DOWNSCALE = 16  # pixels per latent pixel (Flux 2's latent packs 2x2 of its VAE's 1/8)
# model_base.Flux2.extra_conds left-pads the prompt with zeros to this many tokens.
TEXT_TOKENS = 512
ENCODERS = {"qwen3_4b": "Qwen 3 4B, as Klein 4B", "qwen3_8b": "Qwen 3 8B, as Klein 9B",
            "mistral3_24b": "Mistral Small 3.2 24B, as Flux 2 dev"}


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, comfy.ldm.flux.model.Flux) and diffusion_model.params.global_modulation


def default_layers(count: int) -> tuple:
    # The reference reads double blocks 5-7 of Flux 2 dev's 8: the last 3/8 of the blocks.
    return tuple(range(count * 5 // 8, count))


def text_encoding(clip):
    """Flux 2's conditioning: three hidden layers of a causal language model, per token
    of the chat template; the word's own tokens sit inside it."""
    encoder = clip.cond_stage_model
    if not isinstance(encoder, comfy.text_encoders.flux.Flux2TEModel):
        return None
    model = ENCODERS.get(encoder.clip_name, encoder.clip_name)
    return TextEncoding(family=NAME, stream=encoder.clip_name,
                        description=f"Flux 2 text encoder ({model}): the word's own tokens inside the chat template")


class _Call(FluxCall):
    def text_modulation(self, block, args: dict) -> tuple:
        rows = self.rows
        return tuple(ModulationOut(mod.shift[rows], mod.scale[rows], mod.gate[rows]) for mod in args["vec"][1])

    def text_index(self) -> int:
        concepts = self.spec.concepts
        return concepts.text_position + max(0, TEXT_TOKENS - concepts.text_length)


def attach(model, spec: CaptureSpec):
    attach_flux(model, lambda dm, rows, x, timestep, context, guidance: _Call(dm, spec, rows, x, context), spec)
