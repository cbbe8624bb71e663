"""ConceptEvolution: how each concept's map forms over the captured steps, and over
the captured layers, as labelled grids."""
import torch
from comfy_api.latest import io

from ..analysis import maths
from ..analysis.data import KEEP_ALL
from ..analysis.errors import NodeInputError
from ..analysis.render import BLANK, draw_banded_grid
from . import checks, map_inputs
from .types import ANSWERS, schema

NODE = "ConceptEvolution"
TITLE = "Concept Evolution"   # what the user sees, and what errors name
MAX_COLUMNS = 8   # side by side; more steps or layers continue in bands below, so a grid reads at a node's size


class ConceptEvolution(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=ANSWERS,
            search_aliases=["heatmap by step", "heatmap by layer", "over the steps"],
            description="Grids of how the maps form: one row per concept, one column per captured step (labelled with "
                        "its index and noise level sigma; each the mean over the chosen layers), and the same per "
                        "captured layer (each the mean over the chosen steps). One grid per image; for video, per "
                        "token frame.",
            inputs=[
                map_inputs.capture_input(),
                map_inputs.layers_input("show (and average in the per-step grid)"),
                map_inputs.timesteps_input("show (and average in the per-layer grid)"),
                map_inputs.method_input(),
                io.Combo.Input("normalization", options=("per_concept", "joint"), default="per_concept",
                               tooltip="per_concept: each cell stretched to 0..1 on its own, to see its shape. joint: "
                                       "one scale per column, so that concepts compare within a step or layer."),
                map_inputs.colormap_input(),
                io.Int.Input("cell_size", default=96, min=16, max=512,
                             tooltip="The longer side of each cell, in pixels (the image's aspect is kept)."),
                map_inputs.after_input(),
                map_inputs.images_input("The generated images (optional): shown in the grids' first column, so you "
                                        "see what the maps describe. For video, the decoded frames (each token "
                                        "frame shows its first)."),
            ],
            outputs=[
                io.Image.Output(display_name="by_step",
                                tooltip="Rows: concepts; columns: the chosen steps, labelled step and sigma. One grid "
                                        "per image (video: per token frame, video-major)."),
                io.Image.Output(display_name="by_layer",
                                tooltip="Rows: concepts; columns: the chosen layers. One grid per image (video: per "
                                        "token frame, video-major)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, layers=None, timesteps=None):
        return checks.refusal(TITLE, layers=layers, timesteps=timesteps)

    @classmethod
    def execute(cls, concept_attn, layers="all", timesteps="all", method=maths.AUTO,
                normalization="per_concept", colormap="plasma", cell_size=96, after=None, images=None) -> io.NodeOutput:
        capture = concept_attn
        layer_subset, step_subset = map_inputs.selection(TITLE, capture, layers, timesteps)
        map_inputs.check_captured(TITLE, capture)
        if capture.keep != KEEP_ALL:
            # Without the raw scores, one step is known only over every layer, and one layer over every step.
            partial = [name for name, subset, captured in (("layers", layer_subset, capture.layers),
                                                           ("timesteps", step_subset, capture.captured_steps))
                       if subset is not None and set(subset) < set(captured)]
            if partial:
                raise NodeInputError(TITLE, partial[0], f"this capture kept {capture.keep}: the grids show each step "
                                                       f"over all layers and each layer over all steps; write \"all\", "
                                                       f"or capture with keep = {KEEP_ALL} to choose {partial[0]}")
        steps = step_subset or capture.captured_steps
        chosen_layers = layer_subset or capture.layers
        by_step = [(f"step {s}\nsigma {capture.sigma_of(s):.3f}",
                    map_inputs.maps(TITLE, capture, method, layer_subset, [s])) for s in sorted(steps)]
        by_layer = [(f"layer {layer}", map_inputs.maps(TITLE, capture, method, [layer], step_subset))
                    for layer in sorted(chosen_layers)]
        cell = maths.fit(capture.image_size, cell_size)
        words = list(capture.concepts)
        pictures = None if images is None else map_inputs.item_pictures(TITLE, "images", capture, images, cell)
        return io.NodeOutput(*(_grids(columns, words, cell, normalization, colormap, pictures)
                               for columns in (by_step, by_layer)))


def _grids(columns, words, cell, normalization, colormap, pictures) -> torch.Tensor:
    """One grid per item: rows concepts, a column per (label, maps [B, C, ...]), after a
    first column with the item's picture (top row) where pictures are given."""
    tiles = [maths.colorize(maths.normalize(maths.resize(maths.as_items(maps), cell), normalization), colormap)
             for _, maps in columns]                                      # each [N, C, h, w, 3]
    labels = (["image"] if pictures else []) + [label for label, _ in columns]
    grids = []
    for n in range(tiles[0].shape[0]):
        rows = [[tile[n, c] for tile in tiles] for c in range(len(words))]
        if pictures:
            rows = [[pictures[n] if r == 0 else BLANK] + row for r, row in enumerate(rows)]
        grids.append(draw_banded_grid(rows, words, labels, cell, MAX_COLUMNS))
    return torch.stack(grids)
