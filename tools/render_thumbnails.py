"""Render workflows/<name>.jpg, the thumbnail ComfyUI shows next to each example workflow.

Each workflow in workflows/*.json is converted to the API format with the server's
/object_info, adapted to the models that server has (substitutions), run, and the
images of its chosen output nodes (make_workflows.WORKFLOWS) are put on one sheet.

    # the committed thumbnails: every graph on the bundled demo model (its prompt, its
    # concepts, its scene for LoadImage) on a temporary CPU server:
    python -m tools.render_thumbnails --demo
    # tiny random test models on a temporary CPU server (the pictures are noise):
    python -m tools.render_thumbnails --tiny
    # a running server, with substitutions for its models:
    python -m tools.render_thumbnails --server http://127.0.0.1:8188 --substitutions subs.json --size 512x512 --steps 20

A substitutions file is JSON, as tests/workflow_format.substitute takes it: a class_type
(or "*") maps to inputs to set, or to a replacement node. For example:

    {"UNETLoader": {"inputs": {"unet_name": "my_flux.safetensors"}},
     "DualCLIPLoader": {"class_type": "CLIPLoader",
                        "inputs": {"clip_name": "clip_l.safetensors", "type": "stable_diffusion"}},
     "VAELoader": {"inputs": {"vae_name": "taef1"}},
     "*": {"inputs": {"steps": 8}}}

A loader with several outputs can replace single loaders: {"class_type": "MyLoader",
"inputs": {...}, "output_map": {"0": 1}} sends links from output 0 to output 1.
"""
import argparse
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from harness import host
from harness.comfy_server import ComfyClient, ComfyServer
from harness.workflow_format import nodes_of, substitute, ui_to_api
from tools.make_workflows import DEMO_CONCEPTS, DEMO_PROMPT, OUT, REPO, WORKFLOWS

SHEET_WIDTH = 512
GAP = 4
BACKGROUND = (24, 24, 24)
RUN_TIMEOUT_S = 1800
DEMO_SCENE = REPO / "demo" / "scene.png"   # the extension copies it into ComfyUI's input folder
TINY_UNET = "tiny_flux1_dev.safetensors"
TINY_SD3 = "tiny_sd3.safetensors"
TINY_FLUX2 = "tiny_flux2.safetensors"
TINY_COGVIDEOX = "tiny_cogvideox.safetensors"
VIDEO_FRAMES = 9   # decoded frames of the tiny runs: 3 latent frames
TINY_CLIP = "tiny_clip_l.safetensors"


def size_rules(width=None, height=None, steps=None) -> dict:
    """Substitutions for the image size of the empty latents and of an edit's input image
    (Kontext's scaling to about a megapixel), and the step count of every sampler."""
    rules = {}
    if width and height:
        for sizer in ("EmptySD3LatentImage", "EmptyLatentImage", "EmptyFlux2LatentImage", "Flux2Scheduler",
                      "EmptyChromaRadianceLatentImage"):
            rules[sizer] = {"inputs": {"width": width, "height": height}}
        for video in ("EmptyHunyuanLatentVideo", "EmptyHunyuanVideo15Latent", "Wan22ImageToVideoLatent",
                      "WanImageToVideo"):
            rules[video] = {"inputs": {"width": width, "height": height, "length": VIDEO_FRAMES}}
        rules["FluxKontextImageScale"] = {"class_type": "ImageScale", "keep_links": ["image"], "inputs": {
            "upscale_method": "area", "width": width, "height": height, "crop": "center"}}
    if steps:
        rules["*"] = {"inputs": {"steps": steps}}
    return rules


def tiny_substitutions(family, width=256, height=256, steps=4, clip_name=TINY_CLIP) -> dict:
    """The stock loaders of a workflow of `family` (make_workflows.Workflow.family)
    swapped for the tiny test models (tests/tiny_models.py build_server_models)."""
    return {**TINY_MODELS[family](clip_name), **size_rules(width, height, steps)}


def _flux1_substitutions(clip_name):
    """A tiny Flux 1 dev whose text input is CLIP-L wide, a CLIP-L loaded as
    stable_diffusion (its 768-wide output feeds that Flux), and taef1."""
    clip = {"clip_name": clip_name, "type": "stable_diffusion"}
    return {"UNETLoader": {"inputs": {"unet_name": TINY_UNET}}, "CLIPLoader": {"inputs": clip},
            "DualCLIPLoader": {"class_type": "CLIPLoader", "inputs": clip}, "VAELoader": {"inputs": {"vae_name": "taef1"}}}


def _flux2_substitutions(clip_name):
    """A tiny Flux 2 whose text input is CLIP-L wide, the CLIP-L loaded as
    stable_diffusion in place of the language model, and taef2."""
    return {"UNETLoader": {"inputs": {"unet_name": TINY_FLUX2}},
            "CLIPLoader": {"inputs": {"clip_name": clip_name, "type": "stable_diffusion"}},
            "VAELoader": {"inputs": {"vae_name": "taef2"}}}


def sd3_substitutions(clip_name=TINY_CLIP) -> dict:
    """The SD3.5 workflows' checkpoint loader split into the tiny SD3 (UNETLoader) and
    taesd3 (VAELoader); their three text encoders replaced by the CLIP-L alone, loaded
    as sd3 (SD3's conditioning, the CLIP-G part and T5 left out)."""
    return {
        "CheckpointLoaderSimple": {"split": {
            "0": {"class_type": "UNETLoader", "inputs": {"unet_name": TINY_SD3, "weight_dtype": "default"}},
            "2": {"class_type": "VAELoader", "inputs": {"vae_name": "taesd3"}}}},
        "TripleCLIPLoader": {"class_type": "CLIPLoader", "inputs": {"clip_name": clip_name, "type": "sd3"}},
    }


def _cogvideox_substitutions(clip_name):
    """A tiny CogVideoX whose text input is CLIP-L wide, the CLIP-L loaded as
    stable_diffusion in place of T5-XXL, and a random taehv (a video TAE with
    CogVideoX's 16 channels and 4x8x8 compression)."""
    return {"UNETLoader": {"inputs": {"unet_name": TINY_COGVIDEOX}},
            "CLIPLoader": {"inputs": {"clip_name": clip_name, "type": "stable_diffusion"}},
            "VAELoader": {"inputs": {"vae_name": "taehv.safetensors"}}}


def _built_from_config_substitutions(model, vae_name, **more):
    """Families whose tiny models ComfyUI's loaders cannot build (their widths are fixed
    by its detection): the test nodes of harness/tiny_model_nodes.py give the tiny model
    and its tiny text encoder; the VAE is a random tiny one of the same latent. `more`:
    further rules."""
    def rules(clip_name):
        clip = {"class_type": "TinyTestCLIP", "inputs": {"model": model}}
        return {"UNETLoader": {"class_type": "TinyTestModel", "inputs": {"model": model}}, "CLIPLoader": clip,
                "DualCLIPLoader": clip, "VAELoader": {"inputs": {"vae_name": vae_name}}, **more}
    return rules


# Wan 2.2 14B: both loaders give the one tiny model (so the two Apply nodes are told apart by their
# place in the graph alone); the split at step 10 of 20 moved to 1 of the tests' few steps.
WAN22_14B_PAIR = {"title:High-noise sampler (steps 0-9)": {"inputs": {"end_at_step": 1}},
                  "title:Low-noise sampler (steps 10-19)": {"inputs": {"start_at_step": 1}}}


TINY_MODELS = {"demo": lambda clip_name: {}, "flux1": _flux1_substitutions, "flux2": _flux2_substitutions, "sd35": sd3_substitutions,
               "flux1_sd35": lambda clip_name: {**_flux1_substitutions(clip_name), **sd3_substitutions(clip_name)},
               "cogvideox": _cogvideox_substitutions,
               # Qwen-Image's latent is Wan 2.1's (16 channels, one frame): the tiny video TAE decodes it.
               "qwen_image": _built_from_config_substitutions("qwen_image", "taehv.safetensors"),
               "qwen_image_edit": _built_from_config_substitutions("qwen_image_edit", "taehv.safetensors"),
               "z_image": _built_from_config_substitutions("z_image", "taef1"),
               "chroma": _built_from_config_substitutions("chroma", "taef1"),
               "chroma_radiance": _built_from_config_substitutions("chroma_radiance", "pixel_space"),
               "wan22_5b": _built_from_config_substitutions("wan22_5b", "lighttaew2_2.safetensors"),
               "wan22_14b_i2v": _built_from_config_substitutions("wan22_14b_i2v", "taehv.safetensors",
                                                                 **WAN22_14B_PAIR),
               "hunyuan_video_15": _built_from_config_substitutions("hunyuan_video_15", "lighttaehy1_5.safetensors")}


DEMO = {"class_type": "ConceptAttentionDemoModel", "inputs": {}}   # outputs MODEL, CLIP, VAE


def demo_substitutions(width=128, height=128, steps=None) -> dict:
    """The stock loaders of a workflow swapped for the bundled demo model: one
    ConceptAttention Demo Model node gives each loader's MODEL, CLIP or VAE (the SD3.5
    checkpoint loader's MODEL and VAE too), and the latents become the demo model's."""
    image_latent = {"class_type": "EmptySD3LatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}}
    return {
        **size_rules(width, height, steps),
        "UNETLoader": DEMO,
        "CLIPLoader": {**DEMO, "output_map": {"0": 1}},
        "DualCLIPLoader": {**DEMO, "output_map": {"0": 1}},
        "TripleCLIPLoader": {**DEMO, "output_map": {"0": 1}},
        "VAELoader": {**DEMO, "output_map": {"0": 2}},
        "CheckpointLoaderSimple": {"split": {"0": DEMO, "2": {**DEMO, "output": 2}}},
        # Flux 2, CogVideoX and Chroma Radiance latents: the demo model's 16-channel image latent instead
        "EmptyFlux2LatentImage": image_latent,
        "EmptyHunyuanLatentVideo": image_latent,
        "EmptyHunyuanVideo15Latent": image_latent,
        "Wan22ImageToVideoLatent": image_latent,
        "EmptyChromaRadianceLatentImage": image_latent,
        # Image to video: the prompts pass, the latent is the demo model's image latent.
        "WanImageToVideo": {**image_latent, "output_map": {"2": 0}, "bypass": {"0": "positive", "1": "negative"}},
        "ModelSamplingSD3": {"bypass": {"0": "model"}},      # the demo model keeps its own schedule
    }


def demo_thumbnail_substitutions(scene_size=128, steps=20) -> dict:
    """demo_substitutions, with the demo model's own prompt and concepts in every text
    and concept input, so that each thumbnail shows what the graph does."""
    rules = demo_substitutions(scene_size, scene_size, steps)
    rules["CLIPTextEncode"] = {"inputs": {"text": DEMO_PROMPT}}
    rules["ConceptEncode"] = {"inputs": {"concepts": DEMO_CONCEPTS}}
    # An edit's instruction: the demo prompt as plain text (the demo model was never taught to edit).
    rules["TextEncodeQwenImageEditPlus"] = {"class_type": "CLIPTextEncode", "keep_links": ["clip"],
                                            "inputs": {"text": DEMO_PROMPT}}
    return rules


def contact_sheet(images, width=SHEET_WIDTH, caption=None):
    """The images on a 4:3 sheet `width` px wide, as a template card shows it: one, a row
    of two or three, else two or more columns, each scaled to fit its cell (a tall grid or
    a wide chart keeps its aspect, letterboxed); `caption` in a strip along the bottom."""
    from PIL import Image, ImageDraw, ImageFont

    height = width * 3 // 4
    font = ImageFont.load_default(size=max(12, width // 32))
    strip = font.getbbox("Ag")[3] + 2 * GAP if caption else 0
    count = len(images)
    columns = count if count <= 3 else math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cell_w = (width - GAP * (columns - 1)) // columns
    cell_h = (height - strip - GAP * (rows - 1)) // rows
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    for i, im in enumerate(images):
        scale = min(cell_w / im.width, cell_h / im.height)
        tile = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
        x = (i % columns) * (cell_w + GAP) + (cell_w - tile.width) // 2
        y = (i // columns) * (cell_h + GAP) + (cell_h - tile.height) // 2
        sheet.paste(tile, (x, y))
    if caption:
        ImageDraw.Draw(sheet).text((GAP, height - strip + GAP), caption, font=font, fill=(235, 235, 235))
    return sheet


# What the caption of a thumbnail made on the demo model says the template is for.
FAMILY_NAMES = {"flux1": "Flux 1", "flux2": "Flux 2", "sd35": "SD3.5", "flux1_sd35": "Flux 1 and SD3.5",
                "qwen_image": "Qwen-Image", "qwen_image_edit": "Qwen-Image-Edit", "z_image": "Z-Image",
                "chroma": "Chroma", "chroma_radiance": "Chroma Radiance", "cogvideox": "CogVideoX",
                "wan22_5b": "Wan 2.2 5B", "wan22_14b_i2v": "Wan 2.2 14B", "hunyuan_video_15": "HunyuanVideo 1.5"}


def demo_caption(name) -> str | None:
    """The caption of a template's thumbnail made on the demo model, for a template made
    for another model: it says that the picture is not that model's."""
    family = WORKFLOWS[name].family
    return None if family == "demo" else f"Demo model on this graph, not {FAMILY_NAMES[family]}"


def _rename_chosen_concepts(prompt: dict, rules: dict, old_words: list):
    """Where the rules replace the concepts, a Concept Heatmaps's `concept` (one word of
    the workflow's concepts) stays if the new ones have it, else becomes the word at the
    same place in the new ones (counted round where there are fewer new words)."""
    new_words = rules.get("ConceptEncode", {}).get("inputs", {}).get("concepts")
    if new_words is None:
        return
    new_words = [w.strip() for w in new_words.split(",")]
    for node in nodes_of(prompt, "HeatmapAggregate").values():
        if node["inputs"].get("concept") in old_words and node["inputs"]["concept"] not in new_words:
            node["inputs"]["concept"] = new_words[old_words.index(node["inputs"]["concept"]) % len(new_words)]


def render(client, name, object_info, rules, image=None, out=OUT, width=SHEET_WIDTH, pictures=None,
           caption=None) -> Path:
    from PIL import Image

    ui = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    original = ui_to_api(ui, object_info)
    prompt = substitute(original, rules)
    encoded = [node["inputs"]["concepts"] for node in nodes_of(original, "ConceptEncode").values()]
    _rename_chosen_concepts(prompt, rules, [w.strip() for w in encoded[0].split(",")] if encoded else [])
    for node in nodes_of(prompt, "LoadImage").values():
        if image is not None:
            node["inputs"]["image"] = client.upload_image(image, f"concept_attention_{Path(node['inputs']['image']).name}")
    entry = client.run(prompt, timeout=RUN_TIMEOUT_S)
    by_title = {node["_meta"]["title"]: node_id for node_id, node in prompt.items()}
    images = []
    for title in WORKFLOWS[name].thumbnail:
        items = entry["outputs"].get(by_title[title], {}).get("images", [])
        shown = [Image.open(io.BytesIO(client.view(item))).convert("RGB") for item in items]
        for i, picture in enumerate(shown if pictures else []):
            picture.save(pictures / f"{name} - {title} {i}.png")
        images += shown
    if not images:
        raise RuntimeError(f"{name}: no images from {WORKFLOWS[name].thumbnail}")
    path = out / f"{name}.jpg"
    contact_sheet(images, width, caption).save(path, "JPEG", quality=88, optimize=True)
    return path


def _default_image():
    """ComfyUI's own input/example.png, which the image workflow loads."""
    try:
        path = host.find_comfyui() / "input" / "example.png"
    except RuntimeError:
        return None
    return path if path.is_file() else None


def _build_tiny_models(root: Path) -> dict:
    host.prepare()
    from harness import tiny_models

    tiny_models.build_server_models(root, TINY_UNET, TINY_SD3, TINY_FLUX2, TINY_COGVIDEOX, TINY_CLIP)
    return {folder: root / folder for folder in ("diffusion_models", "text_encoders", "vae_approx")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="URL of a running ComfyUI with this extension and the models")
    where.add_argument("--demo", action="store_true", help="start a temporary CPU server and run every graph on the "
                                                           "bundled demo model (the committed thumbnails)")
    where.add_argument("--tiny", action="store_true", help="start a temporary CPU server with the tiny test models")
    parser.add_argument("--substitutions", help="JSON file (or inline JSON) of substitutions; with --tiny, added to its own")
    parser.add_argument("--size", help="WxH of the generated images, e.g. 512x512 (default: the workflow's; 256x256 with --tiny)")
    parser.add_argument("--steps", type=int, help="sampling steps of every sampler (default: the workflow's; 4 with --tiny)")
    parser.add_argument("--image", type=Path, default=_default_image(),
                        help="image for LoadImage, uploaded to the server (default: ComfyUI's input/example.png)")
    parser.add_argument("--only", nargs="+", choices=list(WORKFLOWS), help="render only these workflows")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the .jpg files (default: workflows/)")
    parser.add_argument("--width", type=int, default=SHEET_WIDTH, help="thumbnail width in px")
    parser.add_argument("--pictures", type=Path, help="also save each picture of a thumbnail at full size in this folder "
                                                      "(the README's pictures come from here)")
    args = parser.parse_args(argv)

    width, height = (int(v) for v in args.size.lower().split("x")) if args.size else (None, None)
    extra = {}
    if args.substitutions:
        text = args.substitutions
        extra = json.loads(text if text.lstrip().startswith("{") else Path(text).read_text())

    if args.demo:
        args.image = DEMO_SCENE

    def rules_for(name):
        if args.demo and WORKFLOWS[name].family == "demo":
            rules = size_rules(width, height, args.steps)    # made for the demo model: as they are
        elif args.demo:
            rules = demo_thumbnail_substitutions()
        elif args.tiny:
            rules = tiny_substitutions(WORKFLOWS[name].family, width=width or 256, height=height or 256,
                                       steps=args.steps or 4)
        else:
            rules = size_rules(width, height, args.steps)
        for key, rule in extra.items():
            if key == "*" and "*" in rules:
                rule = {"inputs": {**rules["*"]["inputs"], **rule.get("inputs", {})}}
            rules[key] = rule
        return rules

    def render_all(client):
        object_info = client.get("/object_info", timeout=60)
        for name in args.only or WORKFLOWS:
            started = time.monotonic()
            path = render(client, name, object_info, rules_for(name), args.image, args.out, args.width, args.pictures,
                          demo_caption(name) if args.demo else None)
            print(f"wrote {path} ({time.monotonic() - started:.1f} s)")

    if args.demo:
        with tempfile.TemporaryDirectory(prefix="concept_attention_demo_") as root, \
                ComfyServer(host.find_comfyui(), Path(root)) as server:
            render_all(server)
    elif args.tiny:
        with tempfile.TemporaryDirectory(prefix="concept_attention_tiny_") as root, \
                ComfyServer(host.find_comfyui(), Path(root), _build_tiny_models(Path(root) / "models")) as server:
            render_all(server)
    else:
        render_all(ComfyClient(args.server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
