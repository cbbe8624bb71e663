"""The demo: run the bundled example workflow on the bundled demo model through a
real ComfyUI server, and copy the image, heatmaps, overlays and masks to a folder.

    make demo                      # sets up what it needs, then runs this
    python -m demo.run [--out out/demo] [--prompt "..."] [--concepts "..."]
"""
import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from harness import host
from harness.comfy_server import REPO, ComfyServer

WORKFLOW = REPO / "workflows" / "api" / "demo.json"
# SaveImage node ids of workflows/api/demo.json and what they hold.
OUTPUTS = {"image": "image", "heatmaps": "heatmap", "overlays": "overlay", "masks": "mask"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "out" / "demo"), help="where the pictures go")
    parser.add_argument("--prompt", help="the prompt (default: the workflow's)")
    parser.add_argument("--concepts", help="comma-separated concepts (default: the workflow's)")
    parser.add_argument("--seed", type=int, help="the sampler's seed (default: the workflow's)")
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
    print(f"prompt: {nodes['prompt']['text']!r}; concepts: {', '.join(words)}")
    print(f"{len(written)} pictures in {out} ({time.monotonic() - started:.1f} s):")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    main()
