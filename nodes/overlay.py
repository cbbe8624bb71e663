"""HeatmapOverlay: heatmaps over the decoded image, one labelled picture per concept."""
import torch
from comfy_api.latest import io

from ..analysis import maths
from ..analysis.errors import NodeInputError, require_finite
from ..analysis.render import draw_label
from .types import MAPS, ConceptMaps, schema

NODE = "HeatmapOverlay"
TITLE = "Concept Overlay"   # what the user sees, and what errors name


class HeatmapOverlay(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=MAPS,
            search_aliases=["heatmap overlay", "overlay heatmap", "attention map"],
            description="Blends each concept's heatmap over its image and writes the concept on it.",
            inputs=[
                io.Image.Input("image", tooltip="The decoded images (one, or one per image of the sampled batch); "
                                                "for video, the decoded frames (of one video, or of each)."),
                ConceptMaps.Input("heatmaps", tooltip="The maps output of Concept Heatmaps."),
                io.Float.Input("opacity", default=0.5, min=0.0, max=1.0, step=0.05, tooltip="0: only the image; 1: only the heatmap."),
                io.Combo.Input("colormap", options=maths.COLORMAPS, default="plasma", tooltip="The heatmap's colours, from low to high."),
                io.Boolean.Input("label", default=True, tooltip="Write the concept word in the top-left corner."),
            ],
            outputs=[io.Image.Output(display_name="overlays",
                                     tooltip="One overlay per (image, concept), image-major: image 1's concepts, then "
                                             "image 2's; for video, each concept's frames in order, then the next video.")],
        )

    @classmethod
    def execute(cls, image, heatmaps, opacity, colormap, label=True) -> io.NodeOutput:
        require_finite(TITLE, opacity=opacity)
        maps = heatmaps.maps                                # [B, C, H, W], video [B, C, N, H, W]
        batch, concepts = maps.shape[:2]
        frames = maps.shape[2] if maps.ndim == 5 else 1
        if image.shape[0] not in (frames, batch * frames):
            what = f"{batch} videos of {frames} frames" if maps.ndim == 5 else f"{batch}"
            raise NodeInputError(TITLE, "image", f"{image.shape[0]} images for maps of {what}; connect the decoded "
                                                f"batch the maps were made from, or a single "
                                                f"{'video' if maps.ndim == 5 else 'image'}")
        height, width = image.shape[1:3]
        maps = maps.reshape(batch, concepts, frames, *maps.shape[-2:])
        colour = maths.colorize(maths.resize(maps, (height, width)), colormap)       # [B, C, N, H, W, 3]
        base = image[..., :3].reshape(-1, 1, frames, height, width, 3).to(colour)    # per video, shared over concepts
        overlays = maths.blend(base, colour, opacity).reshape(-1, height, width, 3)
        if label:
            words = [w for _ in range(batch) for w in heatmaps.words for _ in range(frames)]
            overlays = torch.stack([draw_label(o, w) for o, w in zip(overlays, words)])
        return io.NodeOutput(overlays)
