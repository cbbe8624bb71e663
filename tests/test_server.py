"""End to end through a real ComfyUI server: the extension loads from outside the
ComfyUI tree, workflows/api/flux1_heatmaps.json and every UI-format example workflow
in workflows/ run over HTTP on tiny models.

The server and its HTTP side are harness/comfy_server.py.
"""
import io
import json
import os
import re
import shutil
import struct
import time
import urllib.parse
from pathlib import Path

import pytest
import torch

from concept_attention import hooks
from harness import families, host, tiny_model_nodes, tiny_models, workflow_format
from harness.comfy_server import REPO, ComfyServer
from tools import make_workflows, render_thumbnails

pytestmark = pytest.mark.server

COMFYUI = host.find_comfyui()  # the same host conftest puts on sys.path
WORKFLOW = REPO / "workflows" / "api" / "flux1_heatmaps.json"
NODES = ("ConceptEncode", "ConceptAttentionSampler", "ConceptAttentionApply", "ConceptAttentionEncodeImage",
         "HeatmapAggregate", "HeatmapOverlay", "ConceptAttentionViewer", "ConceptReport", "ConceptEvolution",
         "ConceptCompare", "ConceptGate", "ConceptAttentionDemoModel")
CONCEPTS = ("dragon", "rock", "sky")
BATCH = 1
WIDTH, HEIGHT = 256, 192  # EmptySD3LatentImage in the workflow; non-square on purpose
UNET_NAME = "tiny_flux1_dev.safetensors"
CLIP_NAME = "tiny_clip_l.safetensors"
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with the tiny models and this extension; its log stays in the pytest temp folder."""
    root = tmp_path_factory.mktemp("comfy_server")
    models = root / "models"
    started = time.monotonic()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the server below
    try:
        tiny_models.build_server_models(models, UNET_NAME, render_thumbnails.TINY_SD3, render_thumbnails.TINY_FLUX2,
                                        render_thumbnails.TINY_COGVIDEOX, CLIP_NAME)
    finally:
        torch.set_num_threads(threads)
    built = time.monotonic()
    # One thread unless told otherwise: the models are tiny, and on a busy CPU (a training job)
    # torch's threads wait on each other. This module on 2 busy cores: 19 s, against 82 s with 2 threads.
    srv = ComfyServer(COMFYUI, root, {folder.name: folder for folder in models.iterdir()},
                      env={"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
                      extra_nodes=[REPO / "harness" / "tiny_model_nodes.py"])
    try:
        srv.start(timeout=START_TIMEOUT_S)
        print(f"tiny models built in {built - started:.1f} s; server answered in {time.monotonic() - built:.1f} s")
        yield srv
    finally:
        srv.stop()
        # pytest keeps the last three base temps; the CLIP-L alone is 247 MB. The log stays.
        shutil.rmtree(models, ignore_errors=True)


@pytest.fixture(scope="module")
def model_rules(server):
    """Substitutions(family, width, height, steps) that give a workflow of that family
    (make_workflows.Workflow.family) models this host's loaders build: the tiny models of its family through the stock loaders
    where UNETLoader builds them at their size (ComfyUI 0.33). ComfyUI 0.3.75's
    UNETLoader builds Flux only at full size (24 heads, Flux 2 48): there the Flux 1
    workflows run on the bundled demo model, and the Flux 2 ones are skipped."""
    import comfy.utils

    from concept_attention.demo.model import stock_loader_builds

    folder = server.model_folders["diffusion_models"]
    fits = {family: stock_loader_builds(comfy.utils.load_torch_file(str(folder / name)), config)
            for family, name, config in (("flux1", UNET_NAME, tiny_models.FLUX1_CLIP_L_CONFIG),
                                         ("flux2", render_thumbnails.TINY_FLUX2, tiny_models.FLUX2_CLIP_L_CONFIG))}
    fits["flux1_sd35"] = fits["flux1"]

    def rules(family, width, height, steps):
        if family == "cogvideox" and "CogVideoX" in hooks.UNAVAILABLE:
            pytest.skip(hooks.UNAVAILABLE["CogVideoX"])
        if why := families.server_model_missing(family):
            pytest.skip(why)
        if family in tiny_model_nodes.MODELS:
            if "TinyTestModel" not in server.object_info:
                pytest.fail(f"the tiny model nodes did not load:\n{server.log_tail()}")
        if fits.get(family, True):
            return render_thumbnails.tiny_substitutions(family, width, height, steps, CLIP_NAME)
        if family == "flux2":
            pytest.skip("this ComfyUI's UNETLoader builds Flux 2 only at full size (48 heads), not the tiny test model")
        print("Flux 1 workflows run on the demo model: this ComfyUI's UNETLoader builds Flux only at 24 heads")
        demo = render_thumbnails.demo_substitutions(width, height, steps)
        # A graph with SD3.5 too keeps the tiny SD3 for it (its loaders' rules win).
        return {**demo, **render_thumbnails.sd3_substitutions(CLIP_NAME)} if family == "flux1_sd35" else demo
    return rules


def test_object_info_lists_the_nodes(server):
    info = server.object_info
    missing = [n for n in NODES if n not in info]
    assert not missing, f"nodes not loaded: {missing}\n{server.log_tail()}"
    menu = {"ConceptAttention/" + part: [] for part in ("capture", "maps", "answers", "models")}
    for name in NODES:
        menu[info[name]["category"]].append(info[name]["display_name"])
    assert sorted(menu["ConceptAttention/maps"]) == ["Concept Heatmaps", "Concept Overlay", "ConceptAttention Viewer"]
    assert all(menu.values()), menu
    if "search_aliases" in info["KSampler"]:            # ComfyUI 0.33; 0.3.75's schema has no aliases
        aliases = {alias for name in NODES for alias in info[name]["search_aliases"] or ()}
        assert {"heatmap", "attention map", "segmentation", "mask from words", "what does the model see"} <= aliases
        assert "heatmap" in info["HeatmapAggregate"]["search_aliases"]
    assert info["ConceptAttentionSampler"]["output"] == ["LATENT", "CONCEPT_ATTN"]


def _saved(server, entry: dict, node_id: str) -> list[Path]:
    images = entry["outputs"].get(node_id, {}).get("images", [])
    paths = server.saved_files(entry, node_id)
    assert all(img["type"] == "output" for img in images), images
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths), paths
    return paths


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR", png[:24]
    return struct.unpack(">II", png[16:24])


def test_flux1_heatmaps_workflow(server, model_rules):
    prompt = workflow_format.substitute(json.loads(WORKFLOW.read_text()), model_rules("flux1", WIDTH, HEIGHT, None))
    by_type = {}
    for node_id, node in prompt.items():
        by_type.setdefault(node["class_type"], []).append(node_id)

    started = time.monotonic()
    entry = server.run(prompt, timeout=RUN_TIMEOUT_S)
    print(f"workflow ran in {time.monotonic() - started:.1f} s")

    saves = {prompt[n]["inputs"]["filename_prefix"]: n for n in by_type["SaveImage"]}
    heatmaps = _saved(server, entry, saves["concept_heatmaps"])
    overlays = _saved(server, entry, saves["concept_overlays"])
    decoded = _saved(server, entry, saves["concept_image"])
    assert len(heatmaps) == len(CONCEPTS) * BATCH
    assert len(overlays) == len(CONCEPTS) * BATCH
    assert len(decoded) == BATCH
    on_disk = {prefix: sorted(server.output.glob(f"{prefix}_*.png")) for prefix in saves}
    assert on_disk["concept_heatmaps"] == sorted(heatmaps) and on_disk["concept_overlays"] == sorted(overlays)
    for path in heatmaps + overlays + decoded:
        assert _png_size(path.read_bytes()) == (WIDTH, HEIGHT), path


# ---------------------------------------------------------------------------
# The UI-format example workflows (workflows/*.json, written by python -m tools.make_workflows).

# Images each output node (by title) gives for one generated image and the workflow's concepts
# (the segmentation: one labelled picture per image).
DEMO_WORDS, IMAGE_WORDS = (len(words.split(",")) for words in (make_workflows.DEMO_CONCEPTS,
                                                                 make_workflows.DEMO_IMAGE_CONCEPTS))
def generated(words=3) -> dict:
    """A generate-with-maps template's outputs: the image, an overlay and a heatmap per concept, one segmentation."""
    return {"Save Image": 1, "Save Overlays": words, "Save Heatmaps": words, "Preview Segmentation": 1}


def videos(*kinds) -> dict:
    """A video template's outputs: the video, and a video of each kind per concept."""
    return {"Save Video": 1, **{f"Save {word} {kind}": 1 for word in ("dragon", "rock", "sky") for kind in kinds}}


UI_OUTPUTS = {
    "Try it - a picture and its maps": generated(DEMO_WORDS),
    "Try it - maps of your image": {"Save Overlays": IMAGE_WORDS},
    "Flux 1 - generate with maps": generated(),
    "Flux 1 - maps of an image": {"Save Overlays": 4, "Save Heatmaps": 4},
    "Flux 1 - mask the sky, repaint": {"Save Original": 1, "Preview Sky Mask": 1, "Save New Sky": 1},
    "Flux 1 - maps with any sampler": {"Save Image": 1, "Save Overlays": 3, "Save Heatmaps": 3},
    "SD3.5 - generate with maps": generated(),
    "SD3.5 - maps of an image": {"Save Overlays": 4, "Save Heatmaps": 4},
    "Flux 2 Klein - with maps": generated(),
    "Flux 2 dev - with maps": generated(),
    "Try it - answers from the maps": {"Save Image": 1, "Save Chart": 1, "Save Evolution by step": 1,
                                       "Save Evolution by layer": 1},
    "Try it - compare two prompts": {"Save Image 1": 1, "Save Image 2": 1, "Save Comparison": 1},
    "Qwen-Image - generate with maps": generated(),
    "Qwen-Image-Edit - edit with maps": generated(4),
    "Qwen-Image-Edit - mask the edit": {"Save Original": 1, "Preview Dress Mask": 1, "Save Edited": 1},
    "Z-Image Turbo - with maps": generated(),
    "Chroma - generate with maps": generated(),
    "Chroma Radiance - with maps": generated(),
    "Flux 1 vs SD3.5 - compare maps": {"Save Image 1": 1, "Save Image 2": 1, "Save Comparison": 1},
    "CogVideoX - video heatmaps": {"Save Video": 1, "Save dragon heatmaps": 1, "Save rock heatmaps": 1,
                                   "Save sky heatmaps": 1},
    "CogVideoX - video overlays": {"Save Video": 1, "Save dragon overlays": 1, "Save rock overlays": 1,
                                   "Save sky overlays": 1},
    "Wan 2.2 5B - video with maps": videos("heatmaps", "overlays"),
    "Wan 2.2 14B - image to video": videos("heatmaps", "overlays"),
    "HunyuanVideo 1.5 - video maps": videos("heatmaps"),
}
SHEETS = {"Save Chart", "Save Evolution by step", "Save Evolution by layer", "Save Comparison"}
# What the PreviewAny nodes of a workflow show.
REPORTED, FIRST_RUN, SECOND_RUN = make_workflows.DEMO_REPORTED, *make_workflows.DEMO_RUN_NAMES
UI_TEXTS = {
    "Try it - answers from the maps": {
        "Report table": re.compile(r"^ConceptAttention report: concept_attention.*\n\nimage 1\n *rank +concept", re.S),
        f"Is {REPORTED} present?": re.compile(r"^(True|False)$"),
        f"{REPORTED.capitalize()}'s area share": re.compile(r"^[01](\.\d+)?$")},
    "Try it - compare two prompts": {   # the shared word first, then a word only run 1 has
        "Area shares": re.compile(rf"{FIRST_RUN} +{SECOND_RUN}\n{REPORTED} +\d+\.\d% +\d+\.\d%\n\w+ +\d+\.\d% +-\n")},
    "Flux 1 vs SD3.5 - compare maps": {"Area shares": re.compile(r"Flux 1 dev +SD3\.5 large\ndragon +\d+\.\d% +\d+\.\d%\n")},
}
UI_WORKFLOWS = sorted(p.stem for p in (REPO / "workflows").glob("*.json"))
# Small and short: the module has to stay quick on a 2-core CPU that may be busy.
UI_WIDTH, UI_HEIGHT, UI_STEPS = 128, 96, 2
INPUT_SIZE = (120, 88)  # the picture given to LoadImage: not a multiple of 16 on purpose


def test_every_ui_workflow_has_expectations_and_a_thumbnail():
    assert set(UI_WORKFLOWS) == set(UI_OUTPUTS) == set(make_workflows.WORKFLOWS), UI_WORKFLOWS
    for name in UI_WORKFLOWS:
        ui = json.loads((REPO / "workflows" / f"{name}.json").read_text())
        assert ui["version"] == 0.4 and ui["nodes"] and ui["links"], name
        assert (REPO / "workflows" / f"{name}.jpg").is_file(), f"{name}.jpg: run python -m tools.render_thumbnails"
        # The fields the frontend's schema requires, and links that agree with both of their ends.
        nodes = {n["id"]: n for n in ui["nodes"]}
        for node in nodes.values():
            assert {"id", "type", "pos", "size", "flags", "order", "mode", "properties"} <= set(node), node
            assert len(node["pos"]) == len(node["size"]) == 2 and node["mode"] == 0, node
        for link_id, origin, origin_slot, target, target_slot, kind in ui["links"]:
            assert link_id in nodes[origin]["outputs"][origin_slot]["links"], (name, link_id)
            assert nodes[target]["inputs"][target_slot]["link"] == link_id, (name, link_id)
            assert nodes[origin]["outputs"][origin_slot]["type"] == kind, (name, link_id)
            assert nodes[target]["inputs"][target_slot]["type"] in (kind, "*"), (name, link_id)   # "*": any type
        assert ui["last_node_id"] == max(nodes) and ui["last_link_id"] == max(link[0] for link in ui["links"])


def _write_png(path: Path, size) -> None:
    from PIL import Image

    width, height = size
    image = Image.new("RGB", size)
    image.putdata([(x * 255 // width, y * 255 // height, 128) for y in range(height) for x in range(width)])
    image.save(path)


@pytest.mark.parametrize("name", list(UI_OUTPUTS))
def test_ui_workflow(server, model_rules, name):
    rules = model_rules(make_workflows.WORKFLOWS[name].family, UI_WIDTH, UI_HEIGHT, UI_STEPS)   # or skip, saying why
    ui = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    prompt = workflow_format.ui_to_api(ui, server.object_info)
    fresh = workflow_format.ui_to_api(make_workflows.build(name, server.object_info), server.object_info)
    assert prompt == fresh, f"workflows/{name}.json is out of date with the nodes: run python -m tools.make_workflows"

    rules["*"]["inputs"]["noise_samples"] = 1
    prompt = workflow_format.substitute(prompt, rules)
    assert not workflow_format.nodes_of(prompt, "DualCLIPLoader")
    loads = workflow_format.nodes_of(prompt, "LoadImage")
    for node in loads.values():
        _write_png(server.input / node["inputs"]["image"], INPUT_SIZE)

    started = time.monotonic()
    entry = server.run(prompt, timeout=RUN_TIMEOUT_S)
    print(f"{name} ran in {time.monotonic() - started:.1f} s")

    outputs = {n["_meta"]["title"]: node_id for node_id, n in prompt.items()
               if n["class_type"] in ("SaveImage", "PreviewImage", "SaveAnimatedWEBP")}
    assert set(outputs) == set(UI_OUTPUTS[name]), outputs
    # Maps and overlays take the size of the image they read; an edit's input, and image-to-video's start
    # image, are scaled to the size rules' size.
    scaled = {**workflow_format.nodes_of(prompt, "ImageScale"), **workflow_format.nodes_of(prompt, "WanImageToVideo")}
    size = INPUT_SIZE if loads and not scaled else (UI_WIDTH, UI_HEIGHT)
    for title, node_id in outputs.items():
        images = entry["outputs"].get(node_id, {}).get("images", [])
        class_type = prompt[node_id]["class_type"]
        if class_type == "SaveAnimatedWEBP":
            # One animated WEBP of several frames. (The encoder merges equal consecutive frames,
            # and the random tiny models give many, so its frame count says little; the frame
            # counts and layout are tested on the nodes, tests/test_cogvideox_capture.py.)
            assert len(images) == 1 and entry["outputs"][node_id].get("animated") == [True], (title, entry["outputs"])
            assert _webp_size(server.view(images[0])) == size, title
            continue
        assert len(images) == UI_OUTPUTS[name][title], (title, images)
        kind = "output" if class_type == "SaveImage" else "temp"
        for image in images:
            assert image["type"] == kind, image
            if title in SHEETS:     # charts and grids: their own layout, tested in tests/test_answers.py
                assert min(_png_size(server.view(image))) >= 64, (title, image)
            else:
                assert _png_size(server.view(image)) == size, (title, image)
        if kind == "output":
            prefix = prompt[node_id]["inputs"]["filename_prefix"]
            assert sorted(server.output.glob(f"{prefix}_*.png")) == sorted(_saved(server, entry, node_id)), prefix
    texts = {prompt[node_id]["_meta"]["title"]: entry["outputs"][node_id]["text"][0]
             for node_id in workflow_format.nodes_of(prompt, "PreviewAny")}
    assert set(texts) == set(UI_TEXTS.get(name, {})), texts
    for title, expected in UI_TEXTS.get(name, {}).items():
        assert expected.search(texts[title]), (title, texts[title])
    for node_id in workflow_format.nodes_of(prompt, "ConceptAttentionViewer"):
        view = entry["outputs"][node_id]["concept_attention_viewer"][0]      # what the viewer in the page shows
        concepts = workflow_format.nodes_of(prompt, "ConceptEncode")
        assert view["concepts"] == [w.strip() for w in next(iter(concepts.values()))["inputs"]["concepts"].split(",")]
        assert len(view["pictures"]) == 1 and len(view["maps"]) == len(view["views"])


def _webp_size(data: bytes) -> tuple:
    from PIL import Image

    picture = Image.open(io.BytesIO(data))
    assert picture.format == "WEBP", picture.format
    return picture.size


# ---------------------------------------------------------------------------
# The UI -> API converter on hand-made graphs (no server needed).

OBJECT_INFO = {
    "Loader": {"input": {"required": {"name": [["a.safetensors", "b.safetensors"], {}]}}, "input_order": {"required": ["name"]},
               "output": ["MODEL"], "output_name": ["MODEL"], "display_name": "Loader"},
    "Sampler": {"input": {"required": {"model": ["MODEL", {}], "seed": ["INT", {"default": 0}],
                                       "cfg": ["FLOAT", {"default": 1.0}], "mode": ["COMBO", {"options": ["x", "y"]}]},
                          "optional": {"extra": ["LATENT", {}], "count": ["INT", {"forceInput": True}]}},
                "input_order": {"required": ["model", "seed", "cfg", "mode"], "optional": ["extra", "count"]},
                "output": ["LATENT"], "output_name": ["LATENT"], "display_name": "Sampler"},
    "Patch": {"input": {"required": {"model": ["MODEL", {}], "strength": ["FLOAT", {}]}},
              "input_order": {"required": ["model", "strength"]}, "output": ["MODEL"], "output_name": ["MODEL"],
              "display_name": "Patch"},
    "Load": {"input": {"required": {"image": [["x.png"], {"image_upload": True}]}}, "input_order": {"required": ["image"]},
             "output": ["IMAGE"], "output_name": ["IMAGE"], "display_name": "Load"},
}


def _node(node_id, kind, inputs=(), widgets=(), outputs=(), mode=0, **extra):
    return {"id": node_id, "type": kind, "mode": mode, "inputs": [dict(i) for i in inputs],
            "outputs": [dict(o) for o in outputs], "widgets_values": list(widgets), **extra}


def _graph(*nodes, links=()):
    return {"nodes": list(nodes), "links": [list(link) for link in links], "version": 0.4}


def test_widget_layout_follows_the_frontend():
    layout = workflow_format.widget_layout
    assert layout(OBJECT_INFO["Sampler"]) == ["seed", ("control", "seed"), "cfg", "mode"]  # forceInput: a socket
    assert layout(OBJECT_INFO["Load"]) == ["image", ("upload", "image")]
    no_control = {"input": {"required": {"seed": ["INT", {"control_after_generate": False}]}}}
    assert layout(no_control) == ["seed"]
    combo_control = {"input": {"required": {"pick": [["a", "b"], {"control_after_generate": True}]}}}
    assert layout(combo_control) == ["pick", ("control", "pick"), ("filter", "pick")]


def test_ui_to_api_links_widgets_and_virtual_nodes():
    model_out = {"name": "MODEL", "type": "MODEL"}
    ui = _graph(
        _node(1, "Loader", widgets=["b.safetensors"], outputs=[model_out]),
        _node(2, "Reroute", inputs=[{"name": "", "type": "*", "link": 1}], outputs=[{"name": "", "type": "*"}]),
        _node(3, "Patch", inputs=[{"name": "model", "type": "MODEL", "link": 2}], widgets=[0.5], outputs=[model_out],
              mode=4),
        _node(4, "PrimitiveNode", widgets=[1.5, "fixed"], outputs=[{"name": "FLOAT", "type": "FLOAT"}]),
        _node(5, "Sampler", title="My sampler", widgets=[7, "randomize", 3.0, "y"],
              inputs=[{"name": "model", "type": "MODEL", "link": 3},
                      {"name": "extra", "type": "LATENT", "link": None, "shape": 7},
                      {"name": "count", "type": "INT", "link": None},
                      {"name": "cfg", "type": "FLOAT", "widget": {"name": "cfg"}, "link": 4}]),
        _node(6, "Note", widgets=["a note"]),
        links=[(1, 1, 0, 2, 0, "MODEL"), (2, 2, 0, 3, 0, "*"), (3, 3, 0, 5, 0, "MODEL"), (4, 4, 0, 5, 3, "FLOAT")],
    )
    prompt = workflow_format.ui_to_api(ui, OBJECT_INFO)
    assert prompt == {
        "1": {"class_type": "Loader", "inputs": {"name": "b.safetensors"}, "_meta": {"title": "Loader"}},
        # The bypassed Patch passes the loader through the reroute; the primitive's value replaces the widget.
        "5": {"class_type": "Sampler", "inputs": {"seed": 7, "cfg": 1.5, "mode": "y", "model": ["1", 0]},
              "_meta": {"title": "My sampler"}},
    }


def test_ui_to_api_muted_nodes_feed_nothing():
    ui = _graph(
        _node(1, "Loader", widgets=["a.safetensors"], outputs=[{"name": "MODEL", "type": "MODEL"}], mode=2),
        _node(2, "Sampler", widgets=[1, "fixed", 2.0, "x"], inputs=[{"name": "model", "type": "MODEL", "link": 1}]),
        links=[(1, 1, 0, 2, 0, "MODEL")],
    )
    assert workflow_format.ui_to_api(ui, OBJECT_INFO) == {
        "2": {"class_type": "Sampler", "inputs": {"seed": 1, "cfg": 2.0, "mode": "x"}, "_meta": {"title": "Sampler"}}}


@pytest.mark.parametrize("widgets, message", [
    ([1, 2.0, "x"], "3 widget values"),           # saved without the seed's control value
    ([1, 2.0, "x", "fixed"], "control"),          # values in another order
])
def test_ui_to_api_refuses_misaligned_widgets(widgets, message):
    ui = _graph(_node(1, "Sampler", widgets=widgets, inputs=[{"name": "model", "type": "MODEL", "link": None}]))
    with pytest.raises(ValueError, match=message):
        workflow_format.ui_to_api(ui, OBJECT_INFO)


def test_substitute_swaps_nodes_and_remaps_outputs():
    prompt = {
        "1": {"class_type": "Loader", "inputs": {"name": "a"}, "_meta": {"title": "L"}},
        "2": {"class_type": "Sampler", "inputs": {"model": ["1", 0], "steps": 20}, "_meta": {"title": "S"}},
    }
    out = workflow_format.substitute(prompt, {"Loader": {"class_type": "AllInOne", "inputs": {"ckpt": "c"},
                                                         "output_map": {"0": 2}},
                                              "*": {"inputs": {"steps": 3, "model": "not a link"}}})
    assert out["1"]["class_type"] == "AllInOne" and out["1"]["inputs"] == {"ckpt": "c"}
    assert out["2"]["inputs"] == {"model": ["1", 2], "steps": 3}
    assert prompt["2"]["inputs"]["steps"] == 20  # the original is left as it was


def test_substitute_splits_a_node_by_output():
    prompt = {
        "1": {"class_type": "Checkpoint", "inputs": {"name": "big"}, "_meta": {"title": "C"}},
        "2": {"class_type": "Sampler", "inputs": {"model": ["1", 0], "steps": 20}, "_meta": {"title": "S"}},
        "3": {"class_type": "Decode", "inputs": {"vae": ["1", 2], "samples": ["2", 0]}, "_meta": {"title": "D"}},
    }
    out = workflow_format.substitute(prompt, {
        "Checkpoint": {"split": {"0": {"class_type": "Loader", "inputs": {"name": "tiny"}},
                                 "2": {"class_type": "VaeLoader", "inputs": {"vae": "small"}}}},
        "Loader": {"inputs": {"name": "not for added nodes"}}})
    assert "1" not in out and out["1.0"]["class_type"] == "Loader" and out["1.0"]["inputs"] == {"name": "tiny"}
    assert out["1.2"] == {"class_type": "VaeLoader", "inputs": {"vae": "small"}, "_meta": {"title": "C -> VaeLoader"}}
    assert out["2"]["inputs"]["model"] == ["1.0", 0] and out["3"]["inputs"] == {"vae": ["1.2", 0], "samples": ["2", 0]}


def test_substitute_bypasses_nodes_and_picks_nodes_by_title():
    prompt = {
        "1": {"class_type": "Loader", "inputs": {"name": "a"}, "_meta": {"title": "L"}},
        "2": {"class_type": "Shift", "inputs": {"model": ["1", 0], "shift": 8}, "_meta": {"title": "M"}},
        "3": {"class_type": "Text", "inputs": {"text": "x"}, "_meta": {"title": "T"}},
        "4": {"class_type": "ImageToVideo", "inputs": {"positive": ["3", 0], "width": 640}, "_meta": {"title": "V"}},
        "5": {"class_type": "Sampler", "inputs": {"model": ["2", 0], "positive": ["4", 0], "latent": ["4", 2],
                                                  "end": 10}, "_meta": {"title": "High"}},
        "6": {"class_type": "Sampler", "inputs": {"model": ["2", 0], "start": 10}, "_meta": {"title": "Low"}},
    }
    out = workflow_format.substitute(prompt, {
        "Loader": {"class_type": "Other", "inputs": {}, "output_map": {"0": 1}},
        "Shift": {"bypass": {"0": "model"}},
        "ImageToVideo": {"class_type": "EmptyLatent", "inputs": {"width": 64}, "output_map": {"2": 0},
                         "bypass": {"0": "positive"}},
        "title:High": {"inputs": {"end": 1}}, "Sampler": {"inputs": {"start": 1}}})
    assert "2" not in out and out["5"]["inputs"] == {"model": ["1", 1], "positive": ["3", 0], "latent": ["4", 0],
                                                     "end": 1}
    assert out["4"]["class_type"] == "EmptyLatent" and out["6"]["inputs"] == {"model": ["1", 1], "start": 1}


def test_workflow_templates_are_served(server):
    """ComfyUI lists workflows/*.json of an extension as templates and serves them with their thumbnails."""
    listed = server.get("/workflow_templates")
    assert sorted(listed.get("ConceptAttention", [])) == UI_WORKFLOWS, listed
    for name in UI_WORKFLOWS:
        for suffix in (".json", ".jpg"):
            route = f"/api/workflow_templates/ConceptAttention/{urllib.parse.quote(name)}{suffix}"
            assert server.read(route) == (REPO / "workflows" / f"{name}{suffix}").read_bytes(), route
