"""Model families and where their joint attention can be tapped.

Each family module declares one family.Family (the contract) on the shared capture
core (capture.py, call.py); FAMILIES lists them. Adding one: docs/adding-a-family.md.
"""
import importlib

from ..analysis import maths
from . import flux, flux2, sd3
from .family import FamilyUnavailable
from .text import matching_stream

FAMILIES = (flux.FAMILY, flux2.FAMILY, sd3.FAMILY)
# Families whose model code this ComfyUI lacks: {name: why}.
UNAVAILABLE = {}
# Families whose model code an older ComfyUI may lack (0.3.75 has no CogVideoX): (module, name).
for _module, _name in (("qwen_image", "Qwen-Image"), ("chroma", "Chroma"), ("z_image", "Z-Image"),
                       ("cogvideox", "CogVideoX"), ("hunyuan_video", "HunyuanVideo"), ("wan", "Wan")):
    try:
        FAMILIES += (importlib.import_module(f".{_module}", __name__).FAMILY,)
    except ModuleNotFoundError as e:
        UNAVAILABLE[_name] = f"this ComfyUI has no {_name} model code ({e.name}); update ComfyUI to 0.33 or newer"
    except FamilyUnavailable as e:
        UNAVAILABLE[_name] = str(e)


class UnsupportedModelError(ValueError):
    pass


def family_names(families=FAMILIES, last="or") -> str:
    """"Flux 1, Flux 2, SD3 or CogVideoX": the families, for messages and tooltips."""
    names = [family.name for family in families]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def family_of(model):
    """The Family of a ModelPatcher, or UnsupportedModelError naming what is supported."""
    diffusion_model = model.model.diffusion_model
    for family in FAMILIES:
        if family.matches(diffusion_model):
            return family
    unavailable = "".join(f" ({name}: {why})" for name, why in UNAVAILABLE.items())
    joint = [family for family in FAMILIES if maths.CONCEPT_ATTENTION in family.methods]
    cross = [family for family in FAMILIES if family not in joint]
    cross_text = f" or, for cross-attention maps only, {family_names(cross)}" if cross else ""
    raise UnsupportedModelError(
        f"{type(model.model).__name__} ({type(diffusion_model).__name__}) is not a supported model; "
        f"ConceptAttention needs a joint-attention transformer: {family_names(joint)}{cross_text}{unavailable}")


# A loader that knows which blocks localise best for its model states them here, in the
# model's model_options (they follow it through clones); else the family's rule applies.
DEFAULT_LAYERS_OPTION = "concept_attention_default_layers"


def state_default_layers(model, layers):
    """The ModelPatcher `model`, whose layers "default" are now `layers` (None: its family's rule)."""
    if layers is not None:
        model.model_options[DEFAULT_LAYERS_OPTION] = tuple(layers)
    return model


def default_layers(model) -> tuple:
    """The blocks that layers "default" reads on a ModelPatcher."""
    stated = model.model_options.get(DEFAULT_LAYERS_OPTION)
    if stated is not None:
        return tuple(stated)
    family = family_of(model)
    return tuple(family.default_layers(family.layer_count(model.model.diffusion_model)))


def text_encoding(clip, tokens: dict, length: int):
    """The TextEncoding of `clip`: its family's, else (an encoder no family knows) the
    tokenizer stream as long as the conditioning, `length`; None if none is."""
    for family in FAMILIES:
        encoding = family.text_encoding(clip)
        if encoding is not None:
            return encoding
    return matching_stream(tokens, length, type(clip.cond_stage_model).__name__)
