"""Flux 2 (dev and the Klein models): ComfyUI's comfy.ldm.flux.model.Flux with the
Flux 2 parameters (global modulation, SiLU-gated bias-free MLP, 4-axis RoPE).

The concept stream is Flux 1's (hooks/flux.py) with two differences:
- modulation is shared: the model computes the text stream's modulation once and
  hands every double block vec = ((img_mod1, img_mod2), (txt_mod1, txt_mod2)); the
  concepts take the text one, which carries timestep and guidance and no pooled vector;
- text tokens carry positions (their ids run along the last RoPE axis), so every
  concept takes one constant position: where the word's token sits in its own
  encoding once that is left-padded to the call's text length, as ComfyUI left-pads
  Flux 2's text to 512 tokens (Flux 2 dev: near the end, what the reference's fixed
  index 510 amounts to; Klein, whose tokenizer pads on the right to 512: 3). A call
  whose text is shorter than the word's encoding (not padded) clamps the position
  into its text.
Reference latents (editing) come after the image: concepts attend to them, the maps
drop them.
"""
import dataclasses

import comfy.ldm.flux.model
import comfy.text_encoders.flux

from . import flux
from .text import TextEncoding

ENCODERS = {"qwen3_4b": "Qwen 3 4B, as Klein 4B", "qwen3_8b": "Qwen 3 8B, as Klein 9B",
            "mistral3_24b": "Mistral Small 3.2 24B, as Flux 2 dev"}


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
    return TextEncoding(family=FAMILY.name, stream=encoder.clip_name,
                        description=f"Flux 2 text encoder ({model}): the word's own tokens inside the chat template")


class Flux2Call(flux.SharedModulationCall):
    def text_index(self, text_len: int) -> int:
        concepts = self.spec.concepts
        return min(concepts.text_position + max(0, text_len - concepts.text_length), text_len - 1)


FAMILY = dataclasses.replace(
    flux.FAMILY,
    name="Flux 2",
    matches=lambda dm: isinstance(dm, comfy.ldm.flux.model.Flux) and dm.params.global_modulation,
    call_type=Flux2Call,
    default_layers=default_layers,
    default_layers_text="the last 3/8 of the double blocks (dev: 5-7)",
    text_encoding=text_encoding,
    text_encoder="Qwen 3 for Klein, Mistral Small 3.2 for dev",
    latent_downscale=lambda dm: 16,  # its latent packs 2x2 of its VAE's 1/8
)
