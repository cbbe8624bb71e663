"""What the nodes that read a CONCEPT_ATTN share: the layer, timestep and method
inputs, picking the maps they select, and finding a concept by its word."""
from comfy_api.latest import io

from ..analysis import maths
from ..analysis.data import NOTHING_CAPTURED, MapsError, SelectionError, capture_failed
from ..analysis.errors import NodeInputError
from ..analysis.selection import parse_indices
from .types import ConceptAttn


def capture_input(tooltip="The recorded maps, from a ConceptAttention Sampler, Apply or Encode Image node."):
    return ConceptAttn.Input("concept_attn", tooltip=tooltip)


def layers_input(what="average"):
    return io.String.Input("layers", default="all",
                           tooltip=f"Which recorded parts of the model to {what}: \"all\" (the usual choice), a range "
                                   f"\"15-18\" or a list \"15,17\" of layers.")


def timesteps_input(what="average"):
    return io.String.Input("timesteps", default="all",
                           tooltip=f"Which recorded sampling steps to {what}: \"all\" (the usual choice), a range \"2-5\" "
                                   f"or a list \"0,3\"; 0 is the first, noisiest step.")


def method_input():
    return io.Combo.Input("method", options=(maths.AUTO, *maths.METHODS), default=maths.AUTO,
                          tooltip="Which maps to draw. auto (the usual choice): ConceptAttention's own, or on Wan, which "
                                  "has no joint attention, its cross-attention maps. concept_attention: "
                                  "ConceptAttention's own, the sharper ones (the paper's output-space maps). "
                                  "cross_attention: the older cross-attention maps, to compare (recorded when the "
                                  "capture's cross_attention_baseline is on, and always on Wan): image queries . "
                                  "concept keys before RoPE, averaged over heads.")


def colormap_input():
    return io.Combo.Input("colormap", options=maths.COLORMAPS, default="plasma", tooltip="The heatmap's colours, from low to high.")


def after_input():
    return io.Latent.Input("after", optional=True,
                           tooltip="Connect the sampler's LATENT here when the maps come from ConceptAttention Apply, "
                                   "so that this node runs after the sampler that fills them.")


def selection(node: str, capture, layers: str, timesteps: str) -> tuple:
    """(layer subset, step subset) of the inputs; None stands for all captured."""
    try:
        layer_subset = _subset(layers, capture.layers, "layer")
    except ValueError as e:
        raise NodeInputError(node, "layers", str(e)) from None
    try:
        step_subset = _subset(timesteps, capture.captured_steps, "timestep")
    except ValueError as e:
        raise NodeInputError(node, "timesteps", str(e)) from None
    return layer_subset, step_subset


def maps(node: str, capture, method: str, layers=None, steps=None, input_name="concept_attn"):
    """capture.maps for a subset, its failures told as the node's input errors:
    [B, C, h, w] (video: [B, C, F, h, w])."""
    try:
        return capture.maps(method, layers=layers, steps=steps)
    except SelectionError as e:
        raise NodeInputError(node, {"layer": "layers", "step": "timesteps"}.get(e.what, e.what), str(e)) from None
    except MapsError as e:
        raise NodeInputError(node, input_name, str(e)) from None
    except ValueError as e:
        raise NodeInputError(node, input_name, f"{e}{AFTER_HINT}") from None


AFTER_HINT = (". With ConceptAttention Apply, connect the sampler's LATENT to `after` so that this node runs "
              "after it")


def check_captured(node: str, capture, input_name="concept_attn"):
    if capture.error:
        raise NodeInputError(node, input_name, capture_failed(capture.error))
    if not capture.steps:
        raise NodeInputError(node, input_name, NOTHING_CAPTURED + AFTER_HINT)


def selected_maps(node: str, capture, layers: str, timesteps: str, method: str):
    """The captured maps of the chosen layers and steps, averaged."""
    layer_subset, step_subset = selection(node, capture, layers, timesteps)
    return maps(node, capture, method, layer_subset, step_subset)


def concept_index(node: str, words: tuple, concept: str, input_name: str = "concept", allow_all: bool = True) -> int:
    wanted = concept.strip().lower()
    for i, word in enumerate(words):
        if word.lower() == wanted:
            return i
    hint = "write \"all\" or one of" if allow_all else "write one of"
    raise NodeInputError(node, input_name, f"{concept!r} is not a captured concept; {hint}: {', '.join(words)}")


def _subset(text: str, captured: tuple, what: str):
    """None for "all", else the parsed indices (checked against what was captured later)."""
    if text.strip().lower() in ("", "all") or not captured:
        return None
    return parse_indices(text, max(captured) + 1, what)


def images_input(tooltip: str, name: str = "images"):
    return io.Image.Input(name, optional=True, tooltip=tooltip)


def item_pictures(node: str, input_name: str, capture, images, cell: tuple) -> list:
    """The decoded picture of each map item (maths.as_items order: an image, or a video's
    token frame, shown by its first decoded frame), resized to cell (h, w): [h, w, 3] each,
    None where a token frame shows in no decoded frame."""
    batch = capture.batch_size
    frames = capture.video_frames if capture.is_video else 1
    if images.shape[0] not in (frames, batch * frames):
        what = f"{batch} videos of {frames} frames" if capture.is_video else f"{batch} images"
        raise NodeInputError(node, input_name, f"{images.shape[0]} images for maps of {what}; connect the decoded "
                                               "batch the maps were made from")
    first_frames = [None if span is None else span[0] for span in capture.token_frame_ranges()]
    pictures = []
    for item in range(batch):
        for first in first_frames:
            index = None if first is None else (first if images.shape[0] == frames else item * frames + first)
            pictures.append(None if index is None else
                            maths.resize(images[index, ..., :3].movedim(-1, 0), cell).movedim(0, -1).clamp(0, 1))
    return pictures
