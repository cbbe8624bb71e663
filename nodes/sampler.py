"""ConceptAttentionSampler: KSampler with ConceptAttention capture."""
import comfy.samplers
import nodes as comfy_nodes
from comfy_api.latest import io

from ..analysis.data import KEEP_SUMS
from ..analysis.errors import require_finite
from . import checks
from .setup import (
    MODELS,
    attach_capture,
    check_latent_size,
    concepts_input,
    cross_attention_input,
    keep_input,
    layers_input,
    timesteps_input,
)
from .types import CAPTURE, ConceptAttn, schema

NODE = "ConceptAttentionSampler"
TITLE = "ConceptAttention Sampler"   # what the user sees, and what errors name


class ConceptAttentionSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=CAPTURE,
            search_aliases=["concept attention", "ksampler with heatmaps", "attention map", "what does the model see"],
            description="Samples exactly like KSampler (the latent is bit-identical) and records, per concept, "
                        "where the model puts it.",
            inputs=[
                io.Model.Input("model", tooltip=MODELS + " It is not changed: the capture runs on a clone."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=True,
                             tooltip="The random seed of the noise, as in KSampler."),
                io.Int.Input("steps", default=20, min=1, max=10000, tooltip="Number of sampling steps."),
                io.Float.Input("cfg", default=1.0, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance scale. Maps always come from the conditional pass."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, tooltip="The sampling algorithm."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, tooltip="The noise schedule."),
                io.Conditioning.Input("positive", tooltip="The prompt conditioning."),
                io.Conditioning.Input("negative", tooltip="The negative conditioning (used when cfg > 1)."),
                io.Latent.Input("latent_image", tooltip="The latent to denoise; each image of a batch gets its own maps."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01, tooltip="How much of the latent to replace."),
                concepts_input(), layers_input(), timesteps_input(), keep_input(), cross_attention_input(),
            ],
            outputs=[
                io.Latent.Output(display_name="LATENT", tooltip="The sampled latent, identical to KSampler's."),
                ConceptAttn.Output(display_name="concept_attn",
                                   tooltip="The recorded maps of every concept, for Concept Heatmaps, the Viewer or the "
                                           "answer nodes (raw scores)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, layers=None, timesteps=None):
        return checks.refusal(TITLE, layers=layers, timesteps=timesteps)

    @classmethod
    def execute(cls, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                denoise, concepts, layers, timesteps, keep=KEEP_SUMS, cross_attention_baseline=False) -> io.NodeOutput:
        require_finite(TITLE, cfg=cfg, denoise=denoise)
        patched, capture = attach_capture(TITLE, model, concepts, layers, timesteps, steps, keep,
                                          cross_attention_baseline)
        check_latent_size(TITLE, "latent_image", model, latent_image)
        latent = comfy_nodes.common_ksampler(patched, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                             latent_image, denoise=denoise)[0]
        return io.NodeOutput(latent, capture)
