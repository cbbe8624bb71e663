"""Input checks and capture set-up shared by the nodes that attach a capture."""
from comfy_api.latest import io

from .. import hooks
from ..analysis.data import KEEP_ALL, KEEP_SUMS, KEEPS
from ..analysis.errors import NodeInputError
from ..analysis.selection import parse_indices
from ..hooks.capture import COMPILED, CaptureSpec, attach, is_compiled
from .types import Concepts

MODELS = f"A {hooks.family_names()} model."
LAYERS_TOOLTIP = ("Which parts of the model the maps come from. Leave \"default\" for the blocks that give the "
                  "sharpest maps; or \"all\", a range \"15-18\" or a list \"0,3,7\" of joint-attention blocks. "
                  "Defaults (also when empty): "
                  + "; ".join(f"{family.name}: {family.default_layers_text}" for family in hooks.FAMILIES)
                  + "; the demo model: the blocks measured best for it. Later blocks localise best.")
TIMESTEPS_TOOLTIP = ("Which sampling steps to record: \"all\" (the usual choice), a range \"2-5\" or a list "
                     "\"0,3\"; 0 is the first, noisiest step.")


def concepts_input():
    return Concepts.Input("concepts", tooltip="The concepts to find, from a Concept Encode node.")


def layers_input():
    return io.String.Input("layers", default="default", tooltip=LAYERS_TOOLTIP)


def timesteps_input():
    return io.String.Input("timesteps", default="all", tooltip=TIMESTEPS_TOOLTIP)


KEEP_TOOLTIP = (f"How much to remember for the map nodes. {KEEP_SUMS} (small; the usual choice): they can show "
                f"chosen steps or chosen layers, not both at once (each step's map summed over the layers, each "
                f"layer's over the steps; SD3.5 large at 1024 px, 28 steps, 5 concepts: 5 MiB). {KEEP_ALL}: any "
                f"combination of steps and layers, and maps without the softmax, at more memory (the raw scores of "
                f"every step and layer: 83 MiB in the same case). The cross-attention baseline doubles both.")


def keep_input():
    return io.Combo.Input("keep", options=KEEPS, default=KEEP_SUMS, tooltip=KEEP_TOOLTIP)


def cross_attention_input():
    # Optional, so that prompts saved before it existed still validate.
    return io.Boolean.Input("cross_attention_baseline", default=False, optional=True,
                            tooltip="Also record the older cross-attention maps, to compare them with "
                                    "ConceptAttention's (method = cross_attention in the map nodes). Off is faster: "
                                    "on Flux and CogVideoX, undoing RoPE on every image query (image queries . "
                                    "concept keys before RoPE) is most of a captured block's extra time.")


# Without a known step count (a patched model for any sampler), indices up to this are accepted.
MAX_STEPS = 10000


def attach_capture(node: str, model, concepts, layers: str, timesteps: str, step_count: int = None,
                   keep: str = KEEP_SUMS, cross_attention: bool = False):
    """Check the inputs against the model (and the sampler's step count, when
    known) and return (patched clone, CONCEPT_ATTN)."""
    if is_compiled(model.model_options):
        raise NodeInputError(node, "model", f"{COMPILED}. Connect the model from before TorchCompileModel")
    try:
        family = hooks.family_of(model)
    except hooks.UnsupportedModelError as e:
        raise NodeInputError(node, "model", str(e)) from None
    if not getattr(concepts, "words", None):
        raise NodeInputError(node, "concepts", "connect the output of a Concept Encode node")
    dm = model.model.diffusion_model
    check_concepts_fit(node, family, dm, concepts)
    count = family.layer_count(dm)
    try:
        chosen = hooks.default_layers(model) if layers.strip().lower() in ("default", "") else parse_indices(layers, count, "layer")
    except ValueError as e:
        raise NodeInputError(node, "layers", f"{e} ({family.name} model with {count} joint-attention blocks)") from None
    try:
        steps = None if timesteps.strip().lower() == "all" else parse_indices(timesteps, step_count or MAX_STEPS, "timestep")
    except ValueError as e:
        runs = f" (the sampler runs {step_count} steps)" if step_count else ""
        raise NodeInputError(node, "timesteps", f"{e}{runs}") from None
    spec = CaptureSpec(concepts=concepts, family=family.name, layers=chosen, steps=steps,
                       pixels_per_latent=pixels_per_latent(model), keep=keep, cross_attention=cross_attention,
                       family_methods=family.methods)
    return attach(model, family, spec)


def check_concepts_fit(node: str, family, diffusion_model, concepts):
    """Concepts must come from the model family's own text encoder, or at least one
    whose vectors are as wide as the model's text input."""
    if concepts.family not in (None, family.name):
        raise NodeInputError(node, "concepts", f"these concepts come from the {concepts.encoder}, made for "
                                               f"{concepts.family} models, but this model is {family.name}; encode them "
                                               f"with the text encoder that goes with the {family.name} model")
    width, wanted = concepts.embeddings.shape[1], family.context_width(diffusion_model)
    if width != wanted:
        raise NodeInputError(node, "concepts", f"the concept vectors are {width} wide ({concepts.encoder or 'unknown encoder'}), "
                                               f"but this {family.name} model takes {wanted}-wide text; encode them "
                                               f"with the text encoder that goes with the model")


def pixels_per_latent(model) -> int:
    # ComfyUI 0.3.75's latent formats do not state their downscale; the family knows it.
    stated = getattr(model.model.latent_format, "spacial_downscale_ratio", None)
    return stated or hooks.family_of(model).latent_downscale(model.model.diffusion_model)


def pixels_per_patch(model) -> int:
    return hooks.family_of(model).patch_size(model.model.diffusion_model) * pixels_per_latent(model)


def check_latent_size(node: str, input_name: str, model, latent: dict):
    """Maps need whole patches: refuse latents whose size is not a multiple of the patch,
    or larger than the model's position table."""
    family, dm = hooks.family_of(model), model.model.diffusion_model
    patch = family.patch_size(dm)
    height, width = latent["samples"].shape[-2:]
    if height % patch or width % patch:
        raise NodeInputError(node, input_name, f"latent size {width}x{height} is not a multiple of the model's "
                                               f"{patch}x{patch} patch; use an image width and height that are "
                                               f"multiples of {pixels_per_patch(model)} px")
    check_patch_count(node, input_name, model, height // patch, width // patch)


def check_patch_count(node: str, input_name: str, model, rows: int, columns: int):
    """Models with a fixed position table (SD3) take at most that many patches a side."""
    family = hooks.family_of(model)
    limit = family.max_patches(model.model.diffusion_model)
    if limit is not None and max(rows, columns) > limit:
        raise NodeInputError(node, input_name, f"{columns * pixels_per_patch(model)}x{rows * pixels_per_patch(model)} px "
                                               f"is {columns}x{rows} patches, more than this {family.name} model's "
                                               f"position table of {limit}x{limit}; use at most "
                                               f"{limit * pixels_per_patch(model)} px a side")
