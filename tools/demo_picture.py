"""The README's first picture (docs/demo.png) from what `make demo` wrote: the generated
image and an overlay per concept on top, each concept's argmax mask under its overlay.

    make demo && ~/comfy/venv/bin/python -m tools.demo_picture [--from out/demo] [--out docs/demo.png]
"""
import argparse
import json
from pathlib import Path

from demo.run import WORKFLOW
from harness.comfy_server import REPO

GAP = 4
SCALE = 2       # the demo's 128 px pictures, shown at 256 px


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path, default=REPO / "out" / "demo", help="make demo's folder")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "demo.png")
    opts = parser.parse_args()
    from PIL import Image

    image = Image.open(opts.source / "image_0.png").convert("RGB")
    # demo.run names the pictures overlay_0_<word>.png and mask_0_<word>.png; the words of its workflow, in order
    prompt = json.loads(WORKFLOW.read_text())
    concepts = next(node["inputs"]["concepts"] for node in prompt.values() if node["_meta"]["title"] == "concepts")
    words = [w.strip() for w in concepts.split(",") if w.strip()]
    size = image.width * SCALE
    sheet = Image.new("RGB", ((1 + len(words)) * (size + GAP) - GAP, 2 * size + GAP), "white")
    sheet.paste(image.resize((size, size), Image.NEAREST), (0, 0))
    for column, word in enumerate(words, 1):
        for row, stem in enumerate(("overlay", "mask")):
            tile = Image.open(opts.source / f"{stem}_0_{word}.png").convert("RGB").resize((size, size), Image.NEAREST)
            sheet.paste(tile, (column * (size + GAP), row * (size + GAP)))
    sheet.save(opts.out, optimize=True)
    print(f"wrote {opts.out} ({', '.join(words)})")


if __name__ == "__main__":
    main()
