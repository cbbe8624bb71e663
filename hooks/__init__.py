"""Model families and where their joint attention can be tapped.

Each family is one module with the same small interface: NAME, matches(dm),
layer_count(dm), default_layers(count), patch_size(dm) and attach(clone, spec).
Adding a family means adding its module to FAMILIES.
"""
from . import flux

FAMILIES = (flux,)


class UnsupportedModelError(ValueError):
    pass


def family_of(model):
    """The family module for a ModelPatcher, or UnsupportedModelError naming what is supported."""
    diffusion_model = model.model.diffusion_model
    for family in FAMILIES:
        if family.matches(diffusion_model):
            return family
    supported = ", ".join(f.NAME for f in FAMILIES)
    raise UnsupportedModelError(
        f"{type(model.model).__name__} ({type(diffusion_model).__name__}) is not a supported model; "
        f"ConceptAttention needs a joint-attention transformer: {supported}")
