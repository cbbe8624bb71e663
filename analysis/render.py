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


BACKGROUND = (24, 24, 24)
TEXT = (235, 235, 235)
MUTED = (150, 150, 150)
EMPTY_CELL = (56, 56, 56)
GRID_GAP = 4            # pixels between the cells of draw_grid
# One colour per concept in capture order (Tableau 10), so charts of one run agree.
PALETTE = [(78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178), (89, 161, 79),
           (237, 201, 72), (176, 122, 161), (255, 157, 167), (156, 117, 95), (186, 176, 172)]


def _font(size: int):
    return ImageFont.load_default(size=size)


def _to_tensor(picture: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(picture.convert("RGB")).astype(np.float32) / 255.0)


def draw_grid(cells: list, row_labels: list, column_labels: list, cell_size: tuple) -> torch.Tensor:
    """A labelled grid [H, W, 3]: cells[r][c] is an image [h, w, 3] (0..1) or None (an
    empty cell, drawn grey with a dash); column labels may have several lines."""
    cell_h, cell_w = cell_size
    font = _font(max(10, min(cell_w // 8, 16)))
    line = font.getbbox("Ag")[3] + 4
    left = max([font.getlength(text) for text in row_labels] + [0]) + 12
    top = line * max(text.count("\n") + 1 for text in column_labels) + 8
    gap = GRID_GAP
    width = int(left + len(column_labels) * (cell_w + gap))
    height = int(top + len(row_labels) * (cell_h + gap))
    picture = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    for c, text in enumerate(column_labels):
        x = left + c * (cell_w + gap)
        for i, part in enumerate(text.split("\n")):
            draw.text((x + (cell_w - font.getlength(part)) / 2, 4 + i * line), part, font=font, fill=TEXT)
    for r, text in enumerate(row_labels):
        y = top + r * (cell_h + gap)
        draw.text((6, y + (cell_h - line) / 2), text, font=font, fill=TEXT)
        for c, cell in enumerate(cells[r]):
            x = int(left + c * (cell_w + gap))
            if cell is None:
                draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=EMPTY_CELL)
                draw.text((x + cell_w / 2 - font.getlength("-") / 2, y + (cell_h - line) / 2), "-", font=font, fill=MUTED)
                continue
            tile = Image.fromarray((cell.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
            picture.paste(tile, (x + (cell_w - tile.width) // 2, int(y) + (cell_h - tile.height) // 2))
    return _to_tensor(picture)


def draw_bar_chart(title: str, bars: list, width: int = 512) -> torch.Tensor:
    """A bar chart [H, W, 3] of area shares: bars are (label, share 0..1, note, colour
    index, muted); a muted bar is drawn grey (an ignored concept)."""
    font = _font(14)
    line = font.getbbox("Ag")[3] + 10
    label_w = max([font.getlength(label) for label, *_ in bars] + [40]) + 16
    note_w = max([font.getlength(note) for _, _, note, *_ in bars] + [0]) + 12
    bar_w = max(width - label_w - note_w - 8, 40)
    picture = Image.new("RGB", (width, line * (len(bars) + 1) + 8), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    draw.text((8, 6), title, font=font, fill=TEXT)
    for i, (label, share, note, colour, muted) in enumerate(bars):
        y = line * (i + 1) + 4
        draw.text((8, y + 2), label, font=font, fill=MUTED if muted else TEXT)
        draw.rectangle((label_w, y + 2, label_w + bar_w, y + line - 6), outline=(70, 70, 70))
        fill = MUTED if muted else PALETTE[colour % len(PALETTE)]
        if share > 0:
            draw.rectangle((label_w, y + 2, label_w + max(1, round(share * bar_w)), y + line - 6), fill=fill)
        draw.text((label_w + bar_w + 8, y + 2), note, font=font, fill=MUTED if muted else TEXT)
    return _to_tensor(picture)
