"""What the ConceptAttention Viewer node sends to the page (web/viewer.js): the decoded
pictures as JPEG and every view of the maps quantised to 8 bits at the token grid,
as grayscale PNG, in the node's UI output (nothing is written to disk).

Views: all captured steps and layers, then each captured step alone (over all
layers), then each captured layer alone (over all steps): exactly the maps that
Concept Heatmaps gives for that subset. A view is one PNG whose tiles are the maps:
row (image b, token frame f), column concept c, each tile grid_h x grid_w pixels;
value v means a map value of v / 255. No ComfyUI import.
"""
import base64
import io

import torch
from PIL import Image

IMAGE_SIDE = 1024      # pictures are sent at most this size a side
FRAME_SIDE = 384       # video frames: smaller, as there are many
BUDGET_BYTES = 2_000_000
# The pictures take what the maps leave of the budget: the best of these JPEG
# qualities that fits (the last one whatever it takes; only noise-like pictures need it).
JPEG_QUALITIES = (85, 70, 55, 40)


def payload(capture, pictures: torch.Tensor, method: str) -> dict:
    """The viewer's data for a CONCEPT_ATTN and its decoded pictures [N, H, W, 3] in
    0..1 (one per image of the batch, or one per frame of each video)."""
    frames = capture.video_frames if capture.is_video else 1
    grid_frames, grid_h, grid_w = capture.grid
    views = [("all steps and layers", None, None)]
    views += [(f"step {s}", [s], None) for s in capture.captured_steps]
    views += [(f"layer {layer}", None, [layer]) for layer in capture.layers]
    maps = [_png(capture.maps(method, layers=layers, steps=steps)) for _, steps, layers in views]
    side = FRAME_SIDE if capture.is_video else IMAGE_SIDE
    return {
        "concepts": list(capture.concepts),
        "method": capture.method_label(capture.resolve_method(method)),
        "batch": capture.batch_size,
        "frames": frames,
        "token_frames": grid_frames if capture.is_video else 1,
        "frame_map": capture.token_frame_of().tolist() if capture.is_video else [0],
        "grid": [grid_h, grid_w],
        "image_size": list(capture.image_size),
        "steps": list(capture.captured_steps),
        "sigmas": [round(capture.sigma_of(s), 4) for s in capture.captured_steps],
        "layers": list(capture.layers),
        "views": [label for label, _, _ in views],
        "maps": maps,
        "pictures": _jpegs(pictures[..., :3], side, BUDGET_BYTES - sum(map(len, maps))),
    }


def _png(maps: torch.Tensor) -> str:
    """maps [B, C, h, w] or [B, C, F, h, w] in 0..1 -> a data URL of their tile sheet."""
    if maps.ndim == 4:
        maps = maps.unsqueeze(2)
    batch, concepts, frames, height, width = maps.shape
    sheet = maps.permute(0, 2, 3, 1, 4).reshape(batch * frames * height, concepts * width)
    pixels = (sheet.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return _data_url(Image.fromarray(pixels, mode="L"), "PNG")


def _jpegs(pictures: torch.Tensor, side: int, budget: int) -> list:
    images = []
    for picture in pictures:
        image = Image.fromarray((picture.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
        image.thumbnail((side, side))
        images.append(image)
    for quality in JPEG_QUALITIES:
        urls = [_data_url(image, "JPEG", quality=quality) for image in images]
        if sum(map(len, urls)) <= budget:
            break
    return urls


def _data_url(image, kind: str, **options) -> str:
    buffer = io.BytesIO()
    image.save(buffer, kind, optimize=True, **options)
    return f"data:image/{kind.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()
