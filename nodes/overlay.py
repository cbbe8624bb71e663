"""HeatmapOverlay: heatmaps over the decoded image, one labelled picture per concept."""
import torch
from comfy_api.latest import io

from .. import maths
from ..errors import NodeInputError
from ..render import draw_label
from .types import CATEGORY, ConceptMaps

NODE = "HeatmapOverlay"


class HeatmapOverlay(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=NODE,
            display_name="Heatmap Overlay",
            category=CATEGORY,
            description="Blends each concept's heatmap over its image and writes the concept on it.",
            inputs=[
                io.Image.Input("image", tooltip="The decoded images (one, or one per image of the sampled batch)."),
                ConceptMaps.Input("heatmaps", tooltip="The maps output of Heatmap Aggregate."),
                io.Float.Input("opacity", default=0.5, min=0.0, max=1.0, step=0.05, tooltip="0: only the image; 1: only the heatmap."),
                io.Combo.Input("colormap", options=maths.COLORMAPS, default="plasma", tooltip="Colours of the heatmap."),
                io.Boolean.Input("label", default=True, tooltip="Write the concept word in the top-left corner."),
            ],
            outputs=[io.Image.Output(display_name="overlays",
                                     tooltip="One overlay per (image, concept), image-major: image 0's concepts, then image 1's.")],
        )

    @classmethod
    def execute(cls, image, heatmaps, opacity, colormap, label=True) -> io.NodeOutput:
        maps = heatmaps.maps
        batch, concepts = maps.shape[:2]
        if image.shape[0] not in (1, batch):
            raise NodeInputError(NODE, "image", f"{image.shape[0]} images for maps of {batch}; "
                                                f"connect the decoded batch the maps were made from, or a single image")
        height, width = image.shape[1:3]
        colour = maths.colorize(maths.resize(maps, (height, width)), colormap)          # [B, C, H, W, 3]
        base = image[..., :3].expand(batch, -1, -1, -1).unsqueeze(1).to(colour)
        overlays = maths.blend(base, colour, opacity).reshape(batch * concepts, height, width, 3)
        if label:
            words = [w for _ in range(batch) for w in heatmaps.words]
            overlays = torch.stack([draw_label(o, w) for o, w in zip(overlays, words)])
        return io.NodeOutput(overlays)
