"""Text labels drawn onto image tensors (PIL only, no ComfyUI import)."""
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def draw_label(image: torch.Tensor, text: str) -> torch.Tensor:
    """A copy of image [H, W, 3] (0..1) with `text` on a dark box in the top-left corner."""
    height, width = image.shape[:2]
    pil = Image.fromarray((image.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    font = ImageFont.load_default(size=max(8, min(height, width) // 16))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = max(2, (bottom - top) // 4)
    draw.rectangle((0, 0, right - left + 2 * pad, bottom - top + 2 * pad), fill=(0, 0, 0))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255))
    return torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0).to(image.device)
