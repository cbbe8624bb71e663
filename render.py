"""Text labels drawn onto image tensors (PIL only, no ComfyUI import)."""
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def draw_label(image: torch.Tensor, text: str) -> torch.Tensor:
    """A copy of image [H, W, 3] (0..1) with `text` in white on a black box in the
    top-left corner; pixels outside the box are left exactly as they were."""
    height, width = image.shape[:2]
    font = ImageFont.load_default(size=max(8, min(height, width) // 16))
    left, top, right, bottom = font.getbbox(text)
    pad = max(2, (bottom - top) // 4)
    box = Image.new("RGB", (min(right - left + 2 * pad, width), min(bottom - top + 2 * pad, height)))
    ImageDraw.Draw(box).text((pad - left, pad - top), text, font=font, fill=(255, 255, 255))
    out = image.clone()
    out[:box.height, :box.width] = torch.from_numpy(np.asarray(box).astype(np.float32) / 255.0).to(image)
    return out
