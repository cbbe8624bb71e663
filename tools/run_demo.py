"""The demo: run the bundled example workflow on the bundled demo model through a
real ComfyUI server, and copy the image, heatmaps, overlays and masks to a folder.

    make demo                      # sets up what it needs, then runs this
    python tools/run_demo.py [--out out/demo] [--prompt "..."] [--concepts "..."] [--sheet docs/demo.png]
"""
import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import host
from comfy_server import REPO, ComfyServer

WORKFLOW = REPO / "workflows" / "api" / "demo.json"
# SaveImage node ids of workflows/api/demo.json and what they hold.
OUTPUTS = {"image": "image", "heatmaps": "heatmap", "overlays": "overlay", "masks": "mask"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "out" / "demo"), help="where the pictures go")
    parser.add_argument("--prompt", help="the prompt (default: the workflow's)")
    parser.add_argument("--concepts", help="comma-separated concepts (default: the workflow's)")
    parser.add_argument("--seed", type=int, help="the sampler's seed (default: the workflow's)")
    parser.add_argument("--sheet", type=Path, help="also write one picture of it all here: the image and the "
                                                   "overlays above, the argmax masks below (the README's)")
    opts = parser.parse_args()

    prompt = json.loads(WORKFLOW.read_text())
    nodes = {node["_meta"]["title"]: node["inputs"] for node in prompt.values()}
    if opts.prompt:
        nodes["prompt"]["text"] = opts.prompt
    if opts.concepts:
        nodes["concepts"]["concepts"] = opts.concepts
    if opts.seed is not None:
        nodes["sampler"]["seed"] = opts.seed

    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch, ComfyServer(host.find_comfyui(), Path(scratch)) as server:
        print(f"ComfyUI answered in {time.monotonic() - started:.1f} s; running {WORKFLOW.relative_to(REPO)}")
        entry = server.run(prompt)
        ids = {node["_meta"]["title"]: node_id for node_id, node in prompt.items()}
        words = [w.strip() for w in nodes["concepts"]["concepts"].replace("\n", ",").split(",") if w.strip()]
        written = []
        for title, stem in OUTPUTS.items():
            saved = server.saved_files(entry, ids[title])
            if not saved:
                raise SystemExit(f"the workflow's {title!r} node saved no pictures\n{server.log_tail()}")
            for i, path in enumerate(saved):
                # Batches are image-major: image i // C, concept i % C.
                name = f"{stem}_{i}" if title == "image" else f"{stem}_{i // len(words)}_{words[i % len(words)]}"
                target = out / f"{name}.png"
                shutil.copyfile(path, target)
                written.append(target)
    if opts.sheet:
        write_sheet(out, words, opts.sheet)
        written.append(opts.sheet)
    print(f"prompt: {nodes['prompt']['text']!r}; concepts: {', '.join(words)}")
    print(f"{len(written)} pictures in {out} ({time.monotonic() - started:.1f} s):")
    for path in written:
        print(f"  {path}")


def write_sheet(out: Path, words: list, path: Path, scale=2, gap=4):
    """The first image and its overlays in a row, its argmax masks under the overlays."""
    from PIL import Image

    rows = [[out / "image_0.png"] + [out / f"overlay_0_{w}.png" for w in words],
            [None] + [out / f"mask_0_{w}.png" for w in words]]
    size = Image.open(rows[0][0]).size
    cell = (size[0] * scale, size[1] * scale)
    sheet = Image.new("RGB", (len(rows[0]) * (cell[0] + gap) - gap, 2 * (cell[1] + gap) - gap), "white")
    for r, row in enumerate(rows):
        for c, picture in enumerate(row):
            if picture is not None:
                tile = Image.open(picture).convert("RGB").resize(cell, Image.NEAREST)
                sheet.paste(tile, (c * (cell[0] + gap), r * (cell[1] + gap)))
    sheet.save(path)


if __name__ == "__main__":
    main()
