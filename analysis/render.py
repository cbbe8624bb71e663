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
BLANK = object()        # a draw_grid cell left as background (None: a missing map, drawn as a grey dash)
# Tableau 10, by the colour word a reader would give each.
PALETTE = {"blue": (78, 121, 167), "orange": (242, 142, 43), "red": (225, 87, 89), "teal": (118, 183, 178),
           "green": (89, 161, 79), "yellow": (237, 201, 72), "purple": (176, 122, 161), "pink": (255, 157, 167),
           "brown": (156, 117, 95), "grey": (186, 176, 172)}
COLOUR_WORDS = {**PALETTE, "gray": PALETTE["grey"], "violet": PALETTE["purple"], "cyan": PALETTE["teal"],
                "white": (235, 235, 235), "gold": (212, 175, 55), "magenta": (202, 80, 170)}


def concept_colours(words) -> list:
    """An RGB colour per concept, in order: a concept that names a colour ("red", "red car")
    gets it; the others take palette colours that no concept names, in order, so that no
    bar wears another word's colour and a run's charts agree."""
    named = [next((COLOUR_WORDS[w] for w in word.lower().split() if w in COLOUR_WORDS), None) for word in words]
    free = [rgb for rgb in PALETTE.values() if rgb not in named] or list(PALETTE.values())
    colours, next_free = [], 0
    for colour in named:
        if colour is None:
            colour, next_free = free[next_free % len(free)], next_free + 1
        colours.append(colour)
    return colours


def _font(size: int):
    return ImageFont.load_default(size=size)


def _to_tensor(picture: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(picture.convert("RGB")).astype(np.float32) / 255.0)


def draw_segmentation(masks: torch.Tensor, words, label: bool = True) -> torch.Tensor:
    """One image's argmax segmentation as a picture [H, W, 3] (0..1): masks [C, H, W]
    ({0, 1}, one concept per pixel) each in its concept_colours colour and, with label,
    its word in a box on its region (at the region's pixel nearest its centroid)."""
    colours = torch.tensor(concept_colours(words), dtype=torch.float32) / 255.0
    picture = colours[masks.argmax(0).cpu()]
    if not label:
        return picture
    height, width = picture.shape[:2]
    canvas = Image.fromarray((picture * 255).round().to(torch.uint8).numpy())
    draw = ImageDraw.Draw(canvas)
    font = _font(max(8, min(height, width) // 16))
    for mask, word in zip(masks.cpu(), words):
        pixels = mask.nonzero().float()
        if not len(pixels):
            continue
        y, x = pixels[((pixels - pixels.mean(0)) ** 2).sum(1).argmin()].tolist()
        left, top, right, bottom = font.getbbox(word)
        pad = max(2, (bottom - top) // 4)
        box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
        x0 = int(min(max(x - box_w / 2, 0), max(width - box_w, 0)))
        y0 = int(min(max(y - box_h / 2, 0), max(height - box_h, 0)))
        draw.rectangle((x0, y0, x0 + box_w - 1, y0 + box_h - 1), fill=(0, 0, 0))
        draw.text((x0 + pad - left, y0 + pad - top), word, font=font, fill=(255, 255, 255))
    return _to_tensor(canvas)


def draw_grid(cells: list, row_labels: list, column_labels: list, cell_size: tuple) -> torch.Tensor:
    """A labelled grid [H, W, 3]: cells[r][c] is an image [h, w, 3] (0..1), None (a
    missing map, drawn grey with a dash) or BLANK; column labels may have several lines."""
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
            if cell is BLANK:
                continue
            if cell is None:
                draw.rectangle((x, y, x + cell_w - 1, y + cell_h - 1), fill=EMPTY_CELL)
                draw.text((x + cell_w / 2 - font.getlength("-") / 2, y + (cell_h - line) / 2), "-", font=font, fill=MUTED)
                continue
            tile = Image.fromarray((cell.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy())
            picture.paste(tile, (x + (cell_w - tile.width) // 2, int(y) + (cell_h - tile.height) // 2))
    return _to_tensor(picture)


def draw_banded_grid(cells: list, row_labels: list, column_labels: list, cell_size: tuple,
                     max_columns: int) -> torch.Tensor:
    """draw_grid with at most max_columns columns side by side: more columns continue in
    bands below, each with its own column labels, so that a long row still reads at a
    node's size."""
    bands = [draw_grid([row[start:start + max_columns] for row in cells], row_labels,
                       column_labels[start:start + max_columns], cell_size)
             for start in range(0, len(column_labels), max_columns)]
    width = max(band.shape[1] for band in bands)
    background = torch.tensor(BACKGROUND, dtype=torch.float32) / 255.0
    padded = [torch.cat([band, background.expand(band.shape[0], width - band.shape[1], 3)], dim=1) for band in bands]
    gap = background.expand(4 * GRID_GAP, width, 3)
    return torch.cat([part for band in padded for part in (band, gap)][:-1], dim=0)


def draw_bar_chart(title: str, bars: list, width: int = 512) -> torch.Tensor:
    """A bar chart [H, W, 3] of area shares: bars are (label, share 0..1, note, RGB colour,
    muted); a muted bar is drawn grey (an ignored concept)."""
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
        fill = MUTED if muted else colour
        if share > 0:
            draw.rectangle((label_w, y + 2, label_w + max(1, round(share * bar_w)), y + line - 6), fill=fill)
        draw.text((label_w + bar_w + 8, y + 2), note, font=font, fill=MUTED if muted else TEXT)
    return _to_tensor(picture)
