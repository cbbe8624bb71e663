"""ConceptAttentionViewer: an interactive view of the maps in the node itself (web/viewer.js)."""
from comfy_api.latest import io

from ..analysis import maths
from ..analysis.data import MapsError, SelectionError
from ..analysis.errors import NodeInputError
from ..analysis.viewer_data import payload
from . import map_inputs
from .types import MAPS, schema

NODE = "ConceptAttentionViewer"
TITLE = "ConceptAttention Viewer"   # what the user sees, and what errors name
UI_KEY = "concept_attention_viewer"   # the key of the node's UI output that web/viewer.js reads


class ConceptAttentionViewer(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=MAPS,
            search_aliases=["heatmap viewer", "interactive heatmap", "what does the model see", "attention map"],
            description="Explore the maps in the node: the image with one concept's heatmap over it, concept chips, "
                        "every concept ranked under the pointer, opacity, and the maps of each captured step, layer, "
                        "frame and image of the batch.",
            inputs=[
                map_inputs.capture_input(),
                io.Image.Input("images", tooltip="The decoded images the maps were made from (for video, the decoded "
                                                 "frames)."),
                map_inputs.method_input(),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, concept_attn, images, method=maths.AUTO) -> io.NodeOutput:
        capture = concept_attn
        if capture.error:
            map_inputs.check_captured(TITLE, capture)
        if not capture.steps:
            raise NodeInputError(TITLE, "concept_attn", "nothing was captured yet: connect the decoded images of the "
                                                       "sampler that filled these maps, so that this node runs after it")
        expected = capture.batch_size * (capture.video_frames if capture.is_video else 1)
        if images.shape[0] != expected:
            raise NodeInputError(TITLE, "images", f"{images.shape[0]} images for maps of {capture.batch_size} "
                                                 f"{'videos' if capture.is_video else 'images'}; connect the decoded "
                                                 f"batch the maps were made from ({expected} images)")
        try:
            return io.NodeOutput(ui={UI_KEY: [payload(capture, images, method)]})
        except MapsError as e:
            raise NodeInputError(TITLE, "concept_attn", str(e)) from None
        except SelectionError as e:        # the views are of what was captured: only the method can be missing
            raise NodeInputError(TITLE, "method", str(e)) from None
