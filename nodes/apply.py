"""ConceptAttentionApply: a patched MODEL for any sampler node, and the CONCEPT_ATTN it fills."""
from comfy_api.latest import io

from ..analysis.data import KEEP_SUMS
from . import checks
from .setup import (
    MODELS,
    attach_capture,
    concepts_input,
    cross_attention_input,
    keep_input,
    layers_input,
    timesteps_input,
)
from .types import CAPTURE, ConceptAttn, schema

NODE = "ConceptAttentionApply"
TITLE = "ConceptAttention Apply"   # what the user sees, and what errors name


class ConceptAttentionApply(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=CAPTURE,
            search_aliases=["concept attention", "attention map for any sampler", "heatmap patch"],
            # Each Apply node fills its own maps: two with the same model and settings (the two parts of a
            # split generation) must not be merged into one by ComfyUI's cache.
            not_idempotent=True,
            description="Patches a model so that whichever sampler runs it (KSampler, KSamplerAdvanced, "
                        "SamplerCustomAdvanced, ...) records ConceptAttention maps. Connect that sampler's LATENT "
                        "to Concept Heatmaps's `after` input so the maps are read after they are made.",
            inputs=[
                io.Model.Input("model", tooltip=MODELS + " It is not changed: the patch goes on a clone."),
                concepts_input(), layers_input(), timesteps_input(), keep_input(), cross_attention_input(),
            ],
            outputs=[
                io.Model.Output(display_name="MODEL", tooltip="The model with the capture; sample with it as usual."),
                ConceptAttn.Output(display_name="concept_attn",
                                   tooltip="The recorded maps of every concept, filled when a sampler runs the MODEL output "
                                           "(a new run replaces them); for Concept Heatmaps, the Viewer or the answer nodes."),
            ],
        )

    @classmethod
    def validate_inputs(cls, layers=None, timesteps=None):
        return checks.refusal(TITLE, layers=layers, timesteps=timesteps)

    @classmethod
    def execute(cls, model, concepts, layers, timesteps, keep=KEEP_SUMS, cross_attention_baseline=False) -> io.NodeOutput:
        patched, capture = attach_capture(TITLE, model, concepts, layers, timesteps, keep=keep,
                                          cross_attention=cross_attention_baseline)
        return io.NodeOutput(patched, capture)
