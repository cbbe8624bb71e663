"""Chroma: ComfyUI's comfy.ldm.chroma.model.Chroma, Flux schnell's double and single
blocks with the modulation taken out of them; and Chroma Radiance
(comfy.ldm.chroma_radiance), the same blocks on 16-pixel patches of the image itself.

A distilled approximator turns the timestep and guidance (no pooled text vector) into
one modulation vector per block and hands each double block vec = ((img_mod1,
img_mod2), (txt_mod1, txt_mod2)); the concepts take the text one, as Flux 2's do
(hooks/flux.py SharedModulationCall), then Flux's text-stream weights of every double
block up to the last chosen one. Every concept takes the first text position: text
ids are zero, as Flux 1's (Radiance's since 2026-05 count up from 0 on the first axis),
so the concepts' rotation is the identity. Blocks listed in the model's skip_mmdit do not run; the
capture keeps the chosen layers that did.
"""
import comfy.ldm.chroma.model
import comfy.ldm.chroma_radiance.model
import comfy.text_encoders.pixart_t5

from . import flux
from .family import Family
from .text import TextEncoding


def text_encoding(clip):
    """Chroma's conditioning is T5-XXL's tokens (ComfyUI's PixArt T5 encoder, unpadded)."""
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.pixart_t5.PixArtT5XXL):
        return None
    return TextEncoding(family=FAMILY.name, stream="t5xxl", description="Chroma text encoder (T5-XXL): the T5 tokens")


class ChromaCall(flux.SharedModulationCall):
    def text_index(self, text_len: int) -> int:
        return 0


FAMILY = Family(
    name="Chroma",
    matches=lambda dm: type(dm) in (comfy.ldm.chroma.model.Chroma, comfy.ldm.chroma_radiance.model.ChromaRadiance),
    call_type=ChromaCall,
    blocks=lambda dm: dm.double_blocks,
    default_layers=flux.default_layers,
    default_layers_text="double blocks 15-18, as Flux's (the last four of a smaller model)",
    context_width=lambda dm: dm.txt_in.in_features,
    text_encoding=text_encoding,
    text_encoder="T5-XXL",
    latent_downscale=lambda dm: 1 if isinstance(dm, comfy.ldm.chroma_radiance.model.ChromaRadiance) else 8,
)
