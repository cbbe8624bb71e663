"""Model families and where their joint attention can be tapped.

Each family is one module with the same small interface: NAME, matches(dm),
LATENT_DOWNSCALE, layer_count(dm), default_layers(count), patch_size(dm), max_patches(dm), context_width(dm),
text_encoding(clip) and attach(clone, spec). Adding a family means adding its
module to FAMILIES.
"""
from . import flux, flux2, sd3
from .text import matching_stream

FAMILIES = (flux, flux2, sd3)
# Families whose model code this ComfyUI lacks: {name: why}.
UNAVAILABLE = {}
try:
    from . import cogvideox
    FAMILIES += (cogvideox,)
except ModuleNotFoundError as e:   # ComfyUI added CogVideoX after 0.3.75
    UNAVAILABLE["CogVideoX"] = f"this ComfyUI has no CogVideoX model code ({e.name}); update ComfyUI to 0.33 or newer"


class UnsupportedModelError(ValueError):
    pass


def family_of(model):
    """The family module for a ModelPatcher, or UnsupportedModelError naming what is supported."""
    diffusion_model = model.model.diffusion_model
    for family in FAMILIES:
        if family.matches(diffusion_model):
            return family
    supported = ", ".join(f.NAME for f in FAMILIES)
    unavailable = "".join(f" ({name}: {why})" for name, why in UNAVAILABLE.items())
    raise UnsupportedModelError(
        f"{type(model.model).__name__} ({type(diffusion_model).__name__}) is not a supported model; "
        f"ConceptAttention needs a joint-attention transformer: {supported}{unavailable}")


def text_encoding(clip, tokens: dict, length: int):
    """The TextEncoding of `clip`: its family's, else (an encoder no family knows) the
    tokenizer stream as long as the conditioning, `length`; None if none is."""
    for family in FAMILIES:
        encoding = family.text_encoding(clip)
        if encoding is not None:
            return encoding
    return matching_stream(tokens, length, type(clip.cond_stage_model).__name__)
