"""HeatmapAggregate: CONCEPT_ATTN -> heatmap images, soft masks, argmax masks."""
import torch
from comfy_api.latest import io

from ..analysis import maths
from ..analysis.data import ConceptMaps
from ..analysis.errors import require_finite
from ..analysis.render import draw_label, draw_segmentation
from . import checks, map_inputs
from .types import MAPS, schema
from .types import ConceptMaps as ConceptMapsType

NODE = "HeatmapAggregate"
TITLE = "Concept Heatmaps"   # what the user sees, and what errors name
OUTPUT_SIZES = ("image", "latent_grid")
THRESHOLD_MODES = ("mean", "fixed")
LAYOUT = ("Batches are image-major: image 1's concepts in order, then image 2's, and so on; for video, each "
          "concept's frames in order (concept-major), then the next video.")


class HeatmapAggregate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=MAPS,
            search_aliases=["heatmap", "heatmap aggregate", "attention map", "segmentation", "mask from words", "concept mask"],
            description="Turns captured scores into one map per (image, concept): softmax over concepts for each "
                        "step and layer, then the mean. " + LAYOUT,
            inputs=[
                map_inputs.capture_input(),
                map_inputs.layers_input(),
                map_inputs.timesteps_input(),
                map_inputs.method_input(),
                io.Combo.Input("normalization", options=("per_concept", "joint"), default="per_concept",
                               tooltip="per_concept: each map uses the full colour range, to see its shape. joint: one scale "
                                       "for all concepts of an image, so a weak concept looks weak next to a strong one."),
                io.Combo.Input("output_size", options=OUTPUT_SIZES, default="image",
                               tooltip="image: maps at the picture's size, to lay over it (upsampled bilinearly; video: one "
                                       "per decoded frame). latent_grid: one pixel per model patch, the maps' own "
                                       "resolution (video: one frame per token frame)."),
                map_inputs.colormap_input(),
                io.Float.Input("blur", default=0.0, min=0.0, max=64.0, step=0.5,
                               tooltip="Soften the maps' blocky edges before the masks are cut: the blur's size in "
                                       "pixels (Gaussian standard deviation). 0: none."),
                io.Combo.Input("threshold_mode", options=THRESHOLD_MODES, default="mean",
                               tooltip="How threshold_masks are cut. mean: keep what is above the map's own average "
                                       "(the paper's binary segmentation). fixed: keep what is above `threshold`."),
                io.Float.Input("threshold", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="For threshold_mode fixed: how strong the map must be for a pixel to be in the "
                                       "mask, from 0 (everything) to 1 (only the peak)."),
                io.Int.Input("grow", default=0, min=-256, max=256,
                             tooltip="Grow (positive) or shrink (negative) the argmax and threshold masks by this many pixels."),
                io.Boolean.Input("label", default=True,
                                 tooltip="Write the concept word in the top-left corner of each heatmap image, so that "
                                         "previews say which map is which (the masks are left as they are)."),
                io.String.Input("concept", default="all",
                                tooltip="\"all\", or one concept word: only that concept's maps and masks (for a video, "
                                        "its frames, ready for a video-saving node)."),
                map_inputs.after_input(),
            ],
            outputs=[
                io.Image.Output(display_name="heatmaps", tooltip="Coloured heatmaps, one per (image, concept). " + LAYOUT),
                io.Mask.Output(display_name="soft_masks", tooltip="The same maps as masks in 0..1. " + LAYOUT),
                io.Mask.Output(display_name="argmax_masks",
                               tooltip="Segmentation: each pixel belongs to the concept with the highest map, so the masks "
                                       "of an image do not overlap and cover it. " + LAYOUT),
                io.Mask.Output(display_name="threshold_masks",
                               tooltip="Binary masks: each map above its mean or a fixed threshold. " + LAYOUT),
                io.String.Output(display_name="labels", tooltip="The concept of each map, one per line, in batch order."),
                ConceptMapsType.Output(display_name="maps", tooltip="The maps with their words, for Concept Overlay (normalised to 0..1)."),
                io.Image.Output(display_name="segmentation",
                                tooltip="A picture of the segmentation: each concept's region (argmax_masks) in its "
                                        "own colour, with its word on it when label is on (a colour word in its "
                                        "colour). One per image; for video, one per frame."),
            ],
        )

    @classmethod
    def validate_inputs(cls, layers=None, timesteps=None):
        return checks.refusal(TITLE, layers=layers, timesteps=timesteps)

    @classmethod
    def execute(cls, concept_attn, layers, timesteps, method, normalization, output_size, colormap,
                blur=0.0, threshold_mode="mean", threshold=0.5, grow=0, label=True, concept="all",
                after=None) -> io.NodeOutput:
        require_finite(TITLE, blur=blur, threshold=threshold)
        capture = concept_attn
        maps = map_inputs.selected_maps(TITLE, capture, layers, timesteps, method)
        words = tuple(capture.concepts)
        chosen = None if concept.strip().lower() == "all" else map_inputs.concept_index(TITLE, words, concept)
        if output_size == "image":
            if capture.is_video:
                maps = maps[:, :, capture.token_frame_of()]             # one map per decoded frame
            maps = maths.resize(maps, capture.image_size)
        maps = maths.blur(maps, blur)
        # Everything over all concepts (a pixel is one concept's against the others), then the chosen one.
        soft = maths.normalize(maps, normalization)
        regions = maths.argmax_masks(maps)
        argmax = maths.grow(regions, grow)
        thresholded = maths.grow(maths.threshold_masks(soft, threshold if threshold_mode == "fixed" else None), grow)
        frames_first = regions.movedim(2, 1) if regions.ndim == 5 else regions    # [B, (F,) C, H, W]
        pictures = frames_first.reshape(-1, len(words), *regions.shape[-2:])
        segmentation = torch.stack([draw_segmentation(masks, words, label) for masks in pictures])
        shown = words
        if chosen is not None:
            soft, argmax, thresholded = (t[:, [chosen]] for t in (soft, argmax, thresholded))
            shown = (words[chosen],)
        per_map = soft[0, 0].numel() // (soft.shape[-2] * soft.shape[-1])   # frames of a video, 1 for an image
        labels = "\n".join(w for _ in range(soft.shape[0]) for w in shown for _ in range(per_map))

        def as_batch(t):
            return t.reshape(-1, *soft.shape[-2:], *t.shape[soft.ndim:])

        heatmaps = as_batch(maths.colorize(soft, colormap))
        if label:
            heatmaps = torch.stack([draw_label(image, word) for image, word in zip(heatmaps, labels.splitlines())])
        return io.NodeOutput(heatmaps, as_batch(soft), as_batch(argmax), as_batch(thresholded), labels,
                             ConceptMaps(words=shown, maps=soft), segmentation)
