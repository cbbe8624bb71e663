"""Render docs/video_layout.png: HeatmapAggregate's per-frame output of a real CogVideoX
run, one strip of decoded frames per concept, in batch order (concept-major, frames
consecutive). The model is the tests' tiny random CogVideoX 1.0 (weights of real
size cannot be had here), so the maps show the layout, not what CogVideoX sees.

    python -m tools.render_video_layout [--out docs/video_layout.png]
"""
import argparse
import tempfile
from pathlib import Path

from harness import host

REPO = Path(__file__).resolve().parents[1]
TILE, GAP, LABEL_W = 64, 3, 70


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "video_layout.png")
    opts = parser.parse_args()
    host.prepare()
    import torch
    from PIL import Image, ImageDraw

    from concept_attention.nodes.aggregate import HeatmapAggregate
    from harness import tiny_models
    from harness.sampling import COGVIDEOX

    with tempfile.TemporaryDirectory() as scratch:
        model = tiny_models.load_with_stock_loader(tiny_models.build_cogvideox(Path(scratch) / "cogvideox.safetensors"))
    words = ("dragon", "rock", "sky")
    _, capture = COGVIDEOX.run_capture(model, COGVIDEOX.concepts(words), steps=8, size=(3, 8, 8))
    heatmaps, _, argmax, _, labels, _ = HeatmapAggregate.execute(capture, "all", "all", "concept_attention",
                                                                 "per_concept", "image", "plasma").args
    frames = capture.video_frames
    lines = labels.splitlines()
    columns = frames
    rows = 2 * len(words)
    sheet = Image.new("RGB", (LABEL_W + columns * (TILE + GAP), 22 + rows * (TILE + GAP)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for f in range(frames):
        draw.text((LABEL_W + f * (TILE + GAP) + 4, 4), f"f{f}", fill=(220, 220, 220))
    for i, (image, mask) in enumerate(zip(heatmaps, argmax)):
        concept, frame = divmod(i, frames)
        y = 22 + 2 * concept * (TILE + GAP)
        x = LABEL_W + frame * (TILE + GAP)
        if frame == 0:
            draw.text((4, y + TILE // 2 - 6), lines[i], fill=(230, 230, 230))
            draw.text((4, y + TILE + GAP + TILE // 2 - 6), "argmax", fill=(160, 160, 160))
        for offset, picture in ((0, image), (TILE + GAP, mask[..., None].expand(-1, -1, 3))):
            pixels = (picture.clamp(0, 1) * 255).to(torch.uint8).numpy()
            sheet.paste(Image.fromarray(pixels).resize((TILE, TILE), Image.NEAREST), (x, y + offset))
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(opts.out)
    print(f"wrote {opts.out}: {len(words)} concepts x {frames} decoded frames, token frames "
          f"{capture.token_frame_of().tolist()}")


if __name__ == "__main__":
    main()
