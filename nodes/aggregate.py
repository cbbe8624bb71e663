"""HeatmapAggregate: CONCEPT_ATTN -> heatmap images, soft masks, argmax masks."""
from comfy_api.latest import io

from .. import maths
from ..data import ConceptMaps, SelectionError
from ..errors import NodeInputError
from ..selection import parse_indices
from .types import CATEGORY, ConceptAttn, ConceptMaps as ConceptMapsType

NODE = "HeatmapAggregate"
OUTPUT_SIZES = ("image", "latent_grid")
LAYOUT = "Batches are image-major: image 0's concepts in order, then image 1's, and so on."


class HeatmapAggregate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=NODE,
            display_name="Heatmap Aggregate",
            category=CATEGORY,
            description="Turns captured scores into one map per (image, concept): softmax over concepts for each "
                        "step and layer, then the mean. " + LAYOUT,
            inputs=[
                ConceptAttn.Input("concept_attn", tooltip="Scores captured by the ConceptAttention Sampler."),
                io.String.Input("layers", default="all",
                                tooltip="Which captured layers to average: \"all\", a range \"15-18\" or a list \"15,17\"."),
                io.String.Input("timesteps", default="all",
                                tooltip="Which captured sampler steps to average: \"all\", a range \"2-5\" or a list \"0,3\"."),
                io.Combo.Input("method", options=maths.METHODS, default="concept_attention",
                               tooltip="concept_attention: the paper's output-space maps. cross_attention: the paper's "
                                       "baseline, image queries . concept keys before RoPE, averaged over heads."),
                io.Combo.Input("normalization", options=("per_concept", "joint"), default="per_concept",
                               tooltip="per_concept: each map stretched to 0..1 on its own. joint: one scale for all "
                                       "concepts of an image, so their strengths compare."),
                io.Combo.Input("output_size", options=OUTPUT_SIZES, default="image",
                               tooltip="image: the decoded image's size, upsampled bilinearly. latent_grid: one pixel per patch."),
                io.Combo.Input("colormap", options=maths.COLORMAPS, default="plasma", tooltip="Colours of the heatmap images."),
            ],
            outputs=[
                io.Image.Output(display_name="heatmaps", tooltip="Coloured heatmaps, one per (image, concept). " + LAYOUT),
                io.Mask.Output(display_name="soft_masks", tooltip="The same maps as masks in 0..1. " + LAYOUT),
                io.Mask.Output(display_name="argmax_masks",
                               tooltip="Segmentation: each pixel belongs to the concept with the highest map, so the masks "
                                       "of an image do not overlap and cover it. " + LAYOUT),
                io.String.Output(display_name="labels", tooltip="The concept of each map, one per line, in batch order."),
                ConceptMapsType.Output(display_name="maps", tooltip="The normalised maps with their words, for Heatmap Overlay."),
            ],
        )

    @classmethod
    def execute(cls, concept_attn, layers, timesteps, method, normalization, output_size, colormap) -> io.NodeOutput:
        capture = concept_attn
        try:
            layer_subset = _subset(layers, capture.layers, "layer")
        except ValueError as e:
            raise NodeInputError(NODE, "layers", str(e)) from None
        try:
            step_subset = _subset(timesteps, capture.captured_steps, "timestep")
        except ValueError as e:
            raise NodeInputError(NODE, "timesteps", str(e)) from None
        try:
            maps = capture.maps(method, layers=layer_subset, steps=step_subset)
        except SelectionError as e:
            raise NodeInputError(NODE, "layers" if e.what == "layer" else "timesteps", str(e)) from None
        except ValueError as e:
            raise NodeInputError(NODE, "concept_attn", str(e)) from None
        if output_size == "image":
            maps = maths.resize(maps, capture.image_size)
        soft = maths.normalize(maps, normalization)
        argmax = maths.argmax_masks(maps)
        batch, concepts, height, width = maps.shape
        labels = "\n".join(w for _ in range(batch) for w in capture.concepts)
        return io.NodeOutput(
            maths.colorize(soft, colormap).reshape(batch * concepts, height, width, 3),
            soft.reshape(batch * concepts, height, width),
            argmax.reshape(batch * concepts, height, width),
            labels,
            ConceptMaps(words=tuple(capture.concepts), maps=soft),
        )


def _subset(text: str, captured: tuple, what: str):
    """None for "all", else the parsed indices (checked against what was captured later)."""
    if text.strip().lower() in ("", "all") or not captured:
        return None
    return parse_indices(text, max(captured) + 1, what)
