"""Write the example workflows in workflows/*.json (ComfyUI's UI format, LiteGraph 0.4).

Each graph is described below in Python; the widget order of every node comes from
a server's /object_info, so `widgets_values` match what the frontend would save.

    python -m tools.make_workflows                      # starts a temporary ComfyUI (--cpu) for /object_info
    python -m tools.make_workflows --object-info http://127.0.0.1:8188
    python -m tools.make_workflows --check              # exit 1 if a committed file differs

The ComfyUI host is the one the tests use ($COMFYUI_PATH, else ~/comfy/ComfyUI, ...).
Thumbnails (workflows/<name>.jpg) are made by tools/render_thumbnails.py.
"""
import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable, NamedTuple

from harness import host
from harness.comfy_server import REPO, ComfyClient, ComfyServer
from harness.workflow_format import socket_inputs, widget_layout

OUT = REPO / "workflows"
DEMO_SCENE = "demo_scene.png"   # demo/scene.png, which the extension copies into ComfyUI's input folder under this name

WAN22 = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files"
HUNYUAN15 = "https://huggingface.co/Comfy-Org/HunyuanVideo_1.5_repackaged/resolve/main/split_files"
# Download links the frontend offers when a model is missing (those of ComfyUI's own Flux templates).
MODELS = {
    "flux1-dev.safetensors":
        ("diffusion_models", "https://huggingface.co/Comfy-Org/flux1-dev/resolve/main/flux1-dev.safetensors"),
    "clip_l.safetensors":
        ("text_encoders", "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/clip_l.safetensors"),
    "t5xxl_fp16.safetensors":
        ("text_encoders",
         "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp16.safetensors"),
    "ae.safetensors":
        ("vae", "https://huggingface.co/Comfy-Org/Lumina_Image_2.0_Repackaged/resolve/main/split_files/vae/ae.safetensors"),
    "sd3.5_large.safetensors":
        ("checkpoints", "https://huggingface.co/stabilityai/stable-diffusion-3.5-large/resolve/main/sd3.5_large.safetensors"),
    "clip_g.safetensors":
        ("text_encoders", "https://huggingface.co/Comfy-Org/stable-diffusion-3.5-fp8/resolve/main/text_encoders/clip_g.safetensors"),
    # Flux 2: the files of ComfyUI's own Flux 2 templates.
    "flux-2-klein-4b.safetensors":
        ("diffusion_models",
         "https://huggingface.co/Comfy-Org/flux2-klein/resolve/main/split_files/diffusion_models/flux-2-klein-4b.safetensors"),
    "qwen_3_4b.safetensors":
        ("text_encoders", "https://huggingface.co/Comfy-Org/flux2-klein/resolve/main/split_files/text_encoders/qwen_3_4b.safetensors"),
    "flux2_dev_fp8mixed.safetensors":
        ("diffusion_models",
         "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files/diffusion_models/flux2_dev_fp8mixed.safetensors"),
    "mistral_3_small_flux2_bf16.safetensors":
        ("text_encoders",
         "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files/text_encoders/mistral_3_small_flux2_bf16.safetensors"),
    "flux2-vae.safetensors":
        ("vae", "https://huggingface.co/Comfy-Org/flux2-dev/resolve/main/split_files/vae/flux2-vae.safetensors"),
    # Qwen-Image, Z-Image and Chroma: the files of ComfyUI's own templates for them.
    "qwen_image_2512_fp8_e4m3fn.safetensors":
        ("diffusion_models", "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/"
                             "diffusion_models/qwen_image_2512_fp8_e4m3fn.safetensors"),
    "qwen_2.5_vl_7b_fp8_scaled.safetensors":
        ("text_encoders", "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/"
                          "text_encoders/qwen_2.5_vl_7b_fp8_scaled.safetensors"),
    "qwen_image_vae.safetensors":
        ("vae", "https://huggingface.co/Comfy-Org/Qwen-Image_ComfyUI/resolve/main/split_files/vae/qwen_image_vae.safetensors"),
    "qwen_image_edit_2511_fp8mixed.safetensors":
        ("diffusion_models", "https://huggingface.co/Comfy-Org/Qwen-Image-Edit_ComfyUI/resolve/main/split_files/"
                             "diffusion_models/qwen_image_edit_2511_fp8mixed.safetensors"),
    "z_image_turbo_bf16.safetensors":
        ("diffusion_models", "https://huggingface.co/Comfy-Org/z_image_turbo/resolve/main/split_files/"
                             "diffusion_models/z_image_turbo_bf16.safetensors"),
    "Chroma1-HD-fp8mixed.safetensors":
        ("diffusion_models", "https://huggingface.co/Comfy-Org/Chroma1-HD_repackaged/resolve/main/split_files/"
                             "diffusion_models/Chroma1-HD-fp8mixed.safetensors"),
    "chroma-radiance-x0.safetensors":
        ("diffusion_models", "https://huggingface.co/Comfy-Org/Chroma1-Radiance_Repackaged/resolve/main/split_files/"
                             "diffusion_models/chroma-radiance-x0.safetensors"),
    "t5xxl_fp8_e4m3fn_scaled.safetensors":
        ("text_encoders",
         "https://huggingface.co/comfyanonymous/flux_text_encoders/resolve/main/t5xxl_fp8_e4m3fn_scaled.safetensors"),
    "cogvideox_vae.safetensors":
        ("vae", "https://huggingface.co/Comfy-Org/void-model/resolve/main/vae/cogvideox_vae.safetensors"),
    # Wan 2.2 and HunyuanVideo 1.5: the files of ComfyUI's own templates for them.
    "wan2.2_ti2v_5B_fp16.safetensors":
        ("diffusion_models", f"{WAN22}/diffusion_models/wan2.2_ti2v_5B_fp16.safetensors"),
    "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors":
        ("diffusion_models", f"{WAN22}/diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"),
    "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors":
        ("diffusion_models", f"{WAN22}/diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"),
    "wan2.2_vae.safetensors": ("vae", f"{WAN22}/vae/wan2.2_vae.safetensors"),
    "wan_2.1_vae.safetensors": ("vae", f"{WAN22}/vae/wan_2.1_vae.safetensors"),
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors":
        ("text_encoders", "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/"
                          "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
    "hunyuanvideo1.5_720p_t2v_fp16.safetensors":
        ("diffusion_models", f"{HUNYUAN15}/diffusion_models/hunyuanvideo1.5_720p_t2v_fp16.safetensors"),
    "byt5_small_glyphxl_fp16.safetensors": ("text_encoders", f"{HUNYUAN15}/text_encoders/byt5_small_glyphxl_fp16.safetensors"),
    "hunyuanvideo15_vae_fp16.safetensors": ("vae", f"{HUNYUAN15}/vae/hunyuanvideo15_vae_fp16.safetensors"),
}
COGVIDEOX_NOTE = (
    "CogVideoX: put a CogVideoX transformer in ComfyUI's own layout (its keys start blocks.0.norm1...; ComfyUI does "
    "not read the diffusers files of THUDM/CogVideoX-5b, and ships no repackaged 5b) as cogvideox_5b.safetensors "
    "in models/diffusion_models, t5xxl_fp16.safetensors in models/text_encoders and cogvideox_vae.safetensors "
    "(Comfy-Org/void-model, vae/) in models/vae. 49 frames at 720x480, 50 steps, cfg 6 as the reference's example. "
    "Layers \"default\" reads every block. The heatmaps come one map per decoded frame: frame 0 from latent "
    "frame 0, then 4 frames per latent frame."
)
FLUX2_NOTE = (
    "Flux 2 {name}: put {unet} in models/diffusion_models, {clip} in models/text_encoders and "
    "flux2-vae.safetensors in models/vae ({repo} on Hugging Face). The sampling follows ComfyUI's own Flux 2 "
    "template ({sampling}); ConceptAttention Apply patches the model for SamplerCustomAdvanced. Layers "
    "\"default\" reads the last 3/8 of the double blocks ({layers})."
)
SD35_NOTE = (
    "SD3.5 large: put sd3.5_large.safetensors (stabilityai/stable-diffusion-3.5-large on Hugging Face; accept the "
    "licence there first) in models/checkpoints, and clip_l.safetensors, clip_g.safetensors and "
    "t5xxl_fp16.safetensors (Comfy-Org/stable-diffusion-3.5-fp8, text_encoders/) in models/text_encoders. "
    "SD3.5 medium works the same: pick sd3.5_medium.safetensors in the checkpoint loader. "
    "Layers \"default\" reads every joint block."
)

TEMPLATE_NOTE = (
    "{name}: put {files} in ComfyUI's models folders (diffusion_models, text_encoders, vae), from {repo} on "
    "Hugging Face. The loaders, sampler settings and file names are those of ComfyUI's own {name} template "
    "({sampling}), with the ConceptAttention Sampler in place of KSampler. Layers \"default\" reads {layers}."
)

# Layout, in canvas pixels.
X0, Y0 = 0, 0
COLUMN_GAP, ROW_GAP = 60, 50
TITLE_H, GROUP_HEADER, GROUP_PAD = 30, 40, 15
WIDTH = 320
SLOT_H, WIDGET_H = 22, 30
# extra height for the picture (the viewer: its panel)
IMAGE_NODES = {"SaveImage": 340, "PreviewImage": 340, "LoadImage": 340, "ConceptAttentionViewer": 480,
               "PreviewAny": 90}    # its text box, a few lines
TEXT_LINES = 20   # a PreviewAny of a table: room for this many lines
GROUP_COLORS = {"models": "#3f789e", "prompt": "#3f789e", "sample": "#8A8", "maps": "#a1309b", "edit": "#b06634",
                "output": "#444"}


class Out:
    """An output socket of a node, to pass as an input value."""

    def __init__(self, node, slot):
        self.node, self.slot = node, slot

    @property
    def type(self):
        return self.node.definition["output"][self.slot]


# Frontend-only nodes, which /object_info does not list.
VIRTUAL = {"Note": {"input": {}, "output": [], "output_name": []}}


class Node:
    def __init__(self, graph, node_id, kind, column, title, size):
        self.graph, self.id, self.type, self.column, self.title, self.size = graph, node_id, kind, column, title, size
        self.definition = VIRTUAL[kind] if kind in VIRTUAL else graph.object_info[kind]
        self.links_in = {}   # input name -> link id
        self.links_out = {}  # output slot -> [link ids]
        self.widgets = []
        self.pos = None

    def __getitem__(self, output):
        """An output by name (as /object_info's output_name) or index."""
        if isinstance(output, int):
            return Out(self, output)
        names = self.definition["output_name"]
        if output not in names:
            raise KeyError(f"{self.type} has no output {output!r}; outputs: {names}")
        return Out(self, names.index(output))


class Graph:
    """A UI-format workflow under construction. Nodes are placed in columns, left to
    right, stacked top to bottom in the order they are added."""

    def __init__(self, name, object_info):
        self.name, self.object_info = name, object_info
        self.nodes, self.links, self.groups = [], [], []

    def add(self, kind, column, /, title=None, box_width=WIDTH, control="fixed", room=0, **values):
        """Add a node in `column` (`box_width`: its width on the canvas; a column is as wide
        as its widest node; `room`: height for what it shows after a run, beyond what
        _height gives its kind, so that the node does not grow over the next one). `values`: widget values and links (an `Out`) by input name;
        widgets left out take the node's default. `control`: the value of any
        control_after_generate widget ("fixed" keeps the seed, so changing a heatmap
        setting does not sample again)."""
        if kind not in self.object_info:
            raise KeyError(f"{kind} is not on this server")
        node = Node(self, len(self.nodes) + 1, kind, column, title, None)
        sockets = socket_inputs(node.definition)
        layout = widget_layout(node.definition)
        known = {n for n, _, _ in sockets} | {n for n in layout if isinstance(n, str)}
        unknown = set(values) - known
        if unknown:
            raise KeyError(f"{kind} has no inputs {sorted(unknown)}; inputs: {sorted(known)}")
        specs = {**node.definition["input"].get("required", {}), **node.definition["input"].get("optional", {})}
        for entry in layout:
            if isinstance(entry, str):
                options = specs[entry][1] if len(specs[entry]) > 1 else {}
                value = values.get(entry, options.get("default"))
                choices = specs[entry][0] if isinstance(specs[entry][0], list) else options.get("options")
                if value is None and choices:  # a combo without a default starts at its first option
                    value = choices[0]
                if value is None:
                    raise ValueError(f"{kind}.{entry}: no value given and no default")
                if isinstance(value, Out):
                    raise ValueError(f"{kind}.{entry}: linking widgets is not supported here")
                node.widgets.append(value)
            elif entry[0] == "control":
                node.widgets.append(control)
            elif entry[0] == "filter":
                node.widgets.append("")
            else:  # the upload button
                node.widgets.append("image")
        self.nodes.append(node)
        for name, socket_type, optional in sockets:
            source = values.get(name)
            if source is None:
                if not optional:
                    raise ValueError(f"{kind}: required input {name!r} is not connected")
                continue
            if not isinstance(source, Out):
                raise ValueError(f"{kind}.{name}: connect an output (node[...]), not {source!r}")
            if not _fits(source.type, socket_type):
                raise TypeError(f"{kind}.{name} takes {socket_type}, not {source.type} from {source.node.type}")
            link_id = len(self.links) + 1
            target_slot = [n for n, _, _ in sockets].index(name)
            self.links.append([link_id, source.node.id, source.slot, node.id, target_slot, source.type])
            node.links_in[name] = link_id
            source.node.links_out.setdefault(source.slot, []).append(link_id)
        node.size = [box_width, _height(node, sockets, layout) + room]
        return node

    def note(self, column, text, title="Note"):
        """A frontend Note (a node the server never sees) with `text`."""
        node = Node(self, len(self.nodes) + 1, "Note", column, title, [WIDTH, 200])
        node.widgets.append(text)
        self.nodes.append(node)
        return node

    def group(self, title, nodes, color=None):
        self.groups.append((title, list(nodes), color or "#3f789e"))

    def to_ui(self) -> dict:
        self._place()
        order = _execution_order(self)
        nodes = [_serialise(node, order[node.id]) for node in self.nodes]
        groups = []
        for i, (title, members, color) in enumerate(self.groups, 1):
            left = min(n.pos[0] for n in members) - GROUP_PAD
            top = min(n.pos[1] for n in members) - TITLE_H - GROUP_HEADER
            right = max(n.pos[0] + n.size[0] for n in members) + GROUP_PAD
            bottom = max(n.pos[1] + n.size[1] for n in members) + GROUP_PAD
            groups.append({"id": i, "title": title, "bounding": [left, top, right - left, bottom - top],
                           "color": color, "font_size": 24, "flags": {}})
        right = max(n.pos[0] + n.size[0] for n in self.nodes)
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"concept-attention/workflows/{self.name}")),
            "revision": 0,
            "last_node_id": len(self.nodes),
            "last_link_id": len(self.links),
            "nodes": nodes,
            "links": self.links,
            "groups": groups,
            "config": {},
            "extra": {"ds": {"scale": round(min(1.0, 1800 / (right + 100)), 2), "offset": [50, 80]}},
            "version": 0.4,
        }

    def _place(self):
        """Columns left to right; in a column, nodes top to bottom; group headers get room."""
        group_of = {}
        for i, (_, members, _) in enumerate(self.groups):
            for n in members:
                group_of.setdefault(n.id, i)
        x = X0
        for column in sorted({n.column for n in self.nodes}):
            members = [n for n in self.nodes if n.column == column]
            width = max(n.size[0] for n in members)
            y = Y0 + TITLE_H + GROUP_HEADER
            for previous, node in zip([None] + members, members):
                if previous is not None:
                    y += previous.size[1] + TITLE_H + ROW_GAP
                    if group_of.get(previous.id) != group_of.get(node.id):
                        y += GROUP_HEADER + 2 * GROUP_PAD
                node.pos = [x, y]
                node.size[0] = width
            x += width + COLUMN_GAP + 2 * GROUP_PAD


def _fits(output_type, input_type):
    return output_type == input_type or "*" in (output_type, input_type)


def _height(node, sockets, layout):
    outputs = len(node.definition["output"])
    height = 10 + SLOT_H * max(len(sockets), outputs, 1) + WIDGET_H * len(layout)
    specs = {**node.definition["input"].get("required", {}), **node.definition["input"].get("optional", {})}
    for name in layout:
        if isinstance(name, str) and len(specs[name]) > 1 and specs[name][1].get("multiline"):
            height += 90
    return height + IMAGE_NODES.get(node.type, 0)


def _execution_order(graph):
    """LiteGraph's `order`: a topological order of the nodes (sources first)."""
    order, done = {}, set()
    pending = list(graph.nodes)
    sources = {n.id: {link[1] for link in graph.links if link[3] == n.id} for n in graph.nodes}
    while pending:
        ready = [n for n in pending if sources[n.id] <= done]
        for node in ready:
            order[node.id] = len(order)
            done.add(node.id)
        pending = [n for n in pending if n.id not in done]
    return order


def _serialise(node, order):
    sockets = socket_inputs(node.definition)
    inputs = []
    for name, socket_type, optional in sockets:
        slot = {"name": name, "type": socket_type}
        if optional:
            slot["shape"] = 7
        slot["link"] = node.links_in.get(name)
        inputs.append(slot)
    outputs = []
    for slot, (output_type, name) in enumerate(zip(node.definition["output"], node.definition["output_name"])):
        outputs.append({"name": name, "type": output_type, "links": node.links_out.get(slot, []), "slot_index": slot})
    properties = {"Node name for S&R": node.type}
    models = [{"name": v, "url": MODELS[v][1], "directory": MODELS[v][0]} for v in node.widgets if v in MODELS]
    if models:
        properties["models"] = models
    serialised = {"id": node.id, "type": node.type, "pos": node.pos, "size": node.size, "flags": {}, "order": order,
                  "mode": 0, "inputs": inputs, "outputs": outputs}
    if node.title:
        serialised["title"] = node.title
    serialised["properties"] = properties
    serialised["widgets_values"] = node.widgets
    return serialised


# ---------------------------------------------------------------------------
# The workflows.

PROMPT = "a green dragon standing on a rock under a blue sky, fantasy illustration, detailed"
CONCEPTS = "dragon, rock, sky"


def _flux_models(g, column=0):
    unet = g.add("UNETLoader", column, unet_name="flux1-dev.safetensors", weight_dtype="default")
    clip = g.add("DualCLIPLoader", column, clip_name1="clip_l.safetensors", clip_name2="t5xxl_fp16.safetensors",
                 type="flux", device="default")
    vae = g.add("VAELoader", column, vae_name="ae.safetensors")
    g.group("Flux 1 dev", [unet, clip, vae], GROUP_COLORS["models"])
    return unet, clip, vae


def _flux_prompt(g, clip, column, text, title="Prompt", guidance=3.5, negative=True):
    encode = g.add("CLIPTextEncode", column, title=title, box_width=400, clip=clip["CLIP"], text=text)
    positive = g.add("FluxGuidance", column, conditioning=encode["CONDITIONING"], guidance=guidance)
    if negative:
        negative = g.add("ConditioningZeroOut", column, title="Negative (unused at cfg 1)",
                         conditioning=encode["CONDITIONING"])
    return encode, positive, negative


def _flux_generation(g):
    """Flux 1 dev's loaders, prompt and sampler settings for _generate."""
    unet, clip, vae = _flux_models(g)
    encode, positive, negative = _flux_prompt(g, clip, 1, PROMPT)
    settings = dict(steps=20, cfg=1.0, sampler_name="euler", scheduler="simple")
    return unet["MODEL"], clip["CLIP"], vae["VAE"], [encode, positive, negative], positive, negative, settings


def _generate(g, group, family=_flux_generation, aggregate_title=None, **aggregate_options):
    """Prompt, concepts and ConceptAttentionSampler, decoded and aggregated.
    Returns (model, clip, vae) outputs, the VAEDecode node and the HeatmapAggregate node."""
    model, clip, vae, prompt_nodes, positive, negative, settings = family(g)
    concepts = g.add("ConceptEncode", 1, box_width=400, clip=clip, concepts=CONCEPTS, pooling="first_token")
    latent = g.add("EmptySD3LatentImage", 1, width=1024, height=1024, batch_size=1)
    g.group("Prompt and concepts", [*prompt_nodes, concepts, latent], GROUP_COLORS["prompt"])
    sampler = g.add("ConceptAttentionSampler", 2, model=model, seed=42, positive=positive["CONDITIONING"],
                    negative=negative["CONDITIONING"], latent_image=latent["LATENT"], denoise=1.0,
                    concepts=concepts["concepts"], layers="default", timesteps="all", **settings)
    decode = g.add("VAEDecode", 2, samples=sampler["LATENT"], vae=vae)
    aggregate = g.add("HeatmapAggregate", 2, title=aggregate_title, concept_attn=sampler["concept_attn"],
                      **aggregate_options)
    g.group(group, [sampler, decode, aggregate], GROUP_COLORS["sample"])
    return (model, clip, vae), decode, aggregate


def _overlays_and_segmentation(g, decode, aggregate, prefix, column=3):
    overlay = g.add("HeatmapOverlay", column, image=decode["IMAGE"], heatmaps=aggregate["maps"], opacity=0.5,
                    colormap="plasma", label=True)
    g.add("SaveImage", column + 1, title="Save Image", images=decode["IMAGE"],
          filename_prefix=f"ConceptAttention/{prefix}_image")
    g.add("SaveImage", column + 1, title="Save Overlays", images=overlay["overlays"],
          filename_prefix=f"ConceptAttention/{prefix}_overlays")
    g.add("SaveImage", column + 2, title="Save Heatmaps", images=aggregate["heatmaps"],
          filename_prefix=f"ConceptAttention/{prefix}_heatmaps")
    g.add("PreviewImage", column + 2, title="Preview Segmentation", images=aggregate["segmentation"])
    g.group("Overlays", [overlay], GROUP_COLORS["maps"])


def generate_with_heatmaps(g):
    _, decode, aggregate = _generate(g, "Sample and read the maps")
    _overlays_and_segmentation(g, decode, aggregate, "generate")


def heatmaps_of_an_image(g):
    unet, clip, vae = _flux_models(g)
    _read_an_image(g, unet["MODEL"], clip["CLIP"], vae["VAE"], "image")


def _read_an_image(g, model, clip, vae, prefix):
    image = g.add("LoadImage", 1, image="example.png")
    concepts = g.add("ConceptEncode", 1, box_width=400, clip=clip, concepts="girl, dress, sky, grass",
                     pooling="first_token")
    g.group("Image and concepts", [image, concepts], GROUP_COLORS["prompt"])
    read = g.add("ConceptAttentionEncodeImage", 2, model=model, vae=vae, image=image["IMAGE"],
                 concepts=concepts["concepts"], noise_level=0.5, noise_samples=4, seed=0, layers="default")
    aggregate = g.add("HeatmapAggregate", 2, concept_attn=read["concept_attn"])
    overlay = g.add("HeatmapOverlay", 2, image=image["IMAGE"], heatmaps=aggregate["maps"], opacity=0.5,
                    colormap="plasma", label=True)
    g.group("Read the image", [read, aggregate, overlay], GROUP_COLORS["sample"])
    g.add("SaveImage", 3, title="Save Overlays", images=overlay["overlays"],
          filename_prefix=f"ConceptAttention/{prefix}_overlays")
    g.add("SaveImage", 3, title="Save Heatmaps", images=aggregate["heatmaps"],
          filename_prefix=f"ConceptAttention/{prefix}_heatmaps")


def _sd35_models(g, column=0):
    checkpoint = g.add("CheckpointLoaderSimple", column, ckpt_name="sd3.5_large.safetensors")
    clip = g.add("TripleCLIPLoader", column, clip_name1="clip_l.safetensors", clip_name2="clip_g.safetensors",
                 clip_name3="t5xxl_fp16.safetensors")
    note = g.note(column, SD35_NOTE, title="Models for SD3.5")
    g.group("SD3.5 large (its own CLIP output is unused: the checkpoint has no text encoders)", [checkpoint, clip, note],
            GROUP_COLORS["models"])
    return checkpoint["MODEL"], clip["CLIP"], checkpoint["VAE"]


def _sd35_generation(g):
    """SD3.5's loaders, prompts and sampler settings (Stability's: 28 steps, cfg 4.5) for _generate."""
    model, clip, vae = _sd35_models(g)
    positive = g.add("CLIPTextEncode", 1, title="Prompt", box_width=400, clip=clip, text=PROMPT)
    negative = g.add("CLIPTextEncode", 1, title="Negative prompt", box_width=400, clip=clip, text="")
    settings = dict(steps=28, cfg=4.5, sampler_name="dpmpp_2m", scheduler="sgm_uniform")
    return model, clip, vae, [positive, negative], positive, negative, settings


def sd35_generate_with_heatmaps(g):
    _, decode, aggregate = _generate(g, "Sample and read the maps", family=_sd35_generation)
    _overlays_and_segmentation(g, decode, aggregate, "sd35_generate")


def sd35_heatmaps_of_an_image(g):
    _read_an_image(g, *_sd35_models(g), "sd35_image")


NEW_SKY = "a dramatic orange and purple sunset sky with glowing clouds"


def mask_the_sky_and_inpaint(g):
    (model, clip, vae), decode, aggregate = _generate(g, "Generate and segment",
                                                      aggregate_title="The sky's mask (blur 4, grow 8)",
                                                      blur=4.0, grow=8, concept="sky")
    as_image = g.add("MaskToImage", 3, mask=aggregate["argmax_masks"])
    feather = g.add("ImageBlur", 3, title="Feather the edge", image=as_image["IMAGE"], blur_radius=15, sigma=5.0)
    mask = g.add("ImageToMask", 3, image=feather["IMAGE"], channel="red")
    g.group("Sky mask", [as_image, feather, mask], GROUP_COLORS["maps"])
    sky_text, sky_positive, sky_negative = _flux_prompt(g, clip.node, 4, NEW_SKY, title="New sky")
    pixels = g.add("VAEEncode", 4, pixels=decode["IMAGE"], vae=vae)
    masked = g.add("SetLatentNoiseMask", 4, samples=pixels["LATENT"], mask=mask["MASK"])
    inpaint = g.add("KSampler", 4, model=model, seed=7, steps=20, cfg=1.0, sampler_name="euler",
                    scheduler="simple", positive=sky_positive["CONDITIONING"], negative=sky_negative["CONDITIONING"],
                    latent_image=masked["LATENT"], denoise=1.0)
    inpainted = g.add("VAEDecode", 4, samples=inpaint["LATENT"], vae=vae)
    g.group("Repaint the sky", [sky_text, sky_positive, sky_negative, pixels, masked, inpaint, inpainted],
            GROUP_COLORS["edit"])
    g.add("SaveImage", 5, title="Save Original", images=decode["IMAGE"],
          filename_prefix="ConceptAttention/inpaint_original")
    g.add("PreviewImage", 5, title="Preview Sky Mask", images=feather["IMAGE"])
    g.add("SaveImage", 5, title="Save New Sky", images=inpainted["IMAGE"],
          filename_prefix="ConceptAttention/inpaint_new_sky")


def _apply_and_sample(g, model, concepts, latent, vae, guider, scheduler):
    """ConceptAttention Apply on `model`, then SamplerCustomAdvanced with the guider and
    scheduler nodes that guider(patched model) and scheduler(patched model) add;
    returns the sampler, VAEDecode and HeatmapAggregate nodes."""
    apply = g.add("ConceptAttentionApply", 2, model=model, concepts=concepts["concepts"], layers="default",
                  timesteps="all")
    guider = guider(apply["MODEL"])
    noise = g.add("RandomNoise", 2, noise_seed=42)
    sampler_select = g.add("KSamplerSelect", 2, sampler_name="euler")
    scheduler = scheduler(apply["MODEL"])
    g.group("Patched model and sampler parts", [apply, guider, noise, sampler_select, scheduler], GROUP_COLORS["sample"])
    sample = g.add("SamplerCustomAdvanced", 3, noise=noise["NOISE"], guider=guider["GUIDER"],
                   sampler=sampler_select["SAMPLER"], sigmas=scheduler["SIGMAS"], latent_image=latent["LATENT"])
    decode = g.add("VAEDecode", 3, samples=sample["output"], vae=vae["VAE"])
    aggregate = g.add("HeatmapAggregate", 3, title="Concept Heatmaps (after the sampler)",
                      concept_attn=apply["concept_attn"], after=sample["output"])
    return sample, decode, aggregate


def apply_with_sampler_custom_advanced(g):
    unet, clip, vae = _flux_models(g)
    encode, positive, _ = _flux_prompt(g, clip, 1, PROMPT, negative=False)  # BasicGuider: no negative
    concepts = g.add("ConceptEncode", 1, box_width=400, clip=clip["CLIP"], concepts=CONCEPTS, pooling="first_token")
    latent = g.add("EmptySD3LatentImage", 1, width=1024, height=1024, batch_size=1)
    g.group("Prompt and concepts", [encode, positive, concepts, latent], GROUP_COLORS["prompt"])
    sample, decode, aggregate = _apply_and_sample(
        g, unet["MODEL"], concepts, latent, vae,
        guider=lambda model: g.add("BasicGuider", 2, model=model, conditioning=positive["CONDITIONING"]),
        scheduler=lambda model: g.add("BasicScheduler", 2, model=model, scheduler="simple", steps=20, denoise=1.0))
    overlay = g.add("HeatmapOverlay", 3, image=decode["IMAGE"], heatmaps=aggregate["maps"], opacity=0.5,
                    colormap="plasma", label=True)
    g.group("Sample, then read the maps", [sample, decode, aggregate, overlay], GROUP_COLORS["maps"])
    g.add("SaveImage", 4, title="Save Image", images=decode["IMAGE"], filename_prefix="ConceptAttention/custom_image")
    g.add("SaveImage", 4, title="Save Overlays", images=overlay["overlays"],
          filename_prefix="ConceptAttention/custom_overlays")
    g.add("SaveImage", 5, title="Save Heatmaps", images=aggregate["heatmaps"],
          filename_prefix="ConceptAttention/custom_heatmaps")


def _flux2_generate(g, name, unet_name, clip_name, repo, steps, guidance, cfg, layers_note, prefix):
    """Flux 2 with ComfyUI's own template sampling: CFGGuider, Flux2Scheduler and
    SamplerCustomAdvanced, on the model ConceptAttention Apply patched."""
    unet = g.add("UNETLoader", 0, unet_name=unet_name, weight_dtype="default")
    clip = g.add("CLIPLoader", 0, clip_name=clip_name, type="flux2", device="default")
    vae = g.add("VAELoader", 0, vae_name="flux2-vae.safetensors")
    sampling = f"{steps} steps" + (f", guidance {guidance}" if guidance else "") + f", cfg {cfg}"
    note = g.note(0, FLUX2_NOTE.format(name=name, unet=unet_name, clip=clip_name, repo=repo, sampling=sampling,
                                       layers=layers_note), title=f"Models for Flux 2 {name}")
    g.group(f"Flux 2 {name}", [unet, clip, vae, note], GROUP_COLORS["models"])
    encode = g.add("CLIPTextEncode", 1, title="Prompt", box_width=400, clip=clip["CLIP"], text=PROMPT)
    positive = g.add("FluxGuidance", 1, conditioning=encode["CONDITIONING"], guidance=guidance) if guidance else encode
    negative = g.add("ConditioningZeroOut", 1, title="Negative (unused at cfg 1)", conditioning=encode["CONDITIONING"])
    concepts = g.add("ConceptEncode", 1, box_width=400, clip=clip["CLIP"], concepts=CONCEPTS, pooling="first_token")
    latent = g.add("EmptyFlux2LatentImage", 1, width=1024, height=1024, batch_size=1)
    prompt_nodes = [encode, positive, negative] if guidance else [encode, negative]
    g.group("Prompt and concepts", [*prompt_nodes, concepts, latent], GROUP_COLORS["prompt"])
    sample, decode, aggregate = _apply_and_sample(
        g, unet["MODEL"], concepts, latent, vae,
        guider=lambda model: g.add("CFGGuider", 2, model=model, positive=positive["CONDITIONING"],
                                   negative=negative["CONDITIONING"], cfg=cfg),
        scheduler=lambda model: g.add("Flux2Scheduler", 2, steps=steps, width=1024, height=1024))
    g.group("Sample, then read the maps", [sample, decode, aggregate], GROUP_COLORS["maps"])
    _overlays_and_segmentation(g, decode, aggregate, prefix, column=4)


def flux2_klein_generate_with_heatmaps(g):
    _flux2_generate(g, "Klein 4B", "flux-2-klein-4b.safetensors", "qwen_3_4b.safetensors", "Comfy-Org/flux2-klein",
                    steps=4, guidance=None, cfg=1.0, layers_note="counted on the model's own depth", prefix="flux2_klein")


def flux2_dev_generate_with_heatmaps(g):
    _flux2_generate(g, "dev", "flux2_dev_fp8mixed.safetensors", "mistral_3_small_flux2_bf16.safetensors",
                    "Comfy-Org/flux2-dev", steps=20, guidance=4.0, cfg=1.0, layers_note="dev: 5-7 of 8",
                    prefix="flux2_dev")


def _template_generation(name, unet_name, clip_name, clip_type, vae_name, repo, shift, settings, layers,
                         negative_text=None, tokenizer_options=False, size=1024):
    """A family function for _generate from ComfyUI's own template for a model: its loaders
    and file names, ModelSamplingAuraFlow's shift, its sampler settings; the negative prompt
    is a zeroed prompt at cfg 1, else a text."""
    def family(g):
        unet = g.add("UNETLoader", 0, unet_name=unet_name, weight_dtype="default")
        clip = g.add("CLIPLoader", 0, clip_name=clip_name, type=clip_type, device="default")
        vae = g.add("VAELoader", 0, vae_name=vae_name)
        sampling = f"{settings['steps']} steps, cfg {settings['cfg']:g}, {settings['sampler_name']} " \
                   f"{settings['scheduler']}, shift {shift:g}, {size}x{size}"
        note = g.note(0, TEMPLATE_NOTE.format(name=name, files=", ".join((unet_name, clip_name, vae_name)), repo=repo,
                                              sampling=sampling, layers=layers), title=f"Models for {name}")
        model = g.add("ModelSamplingAuraFlow", 0, model=unet["MODEL"], shift=shift)
        g.group(name, [unet, clip, vae, note, model], GROUP_COLORS["models"])
        text_clip = clip
        if tokenizer_options:       # Chroma's template: T5 without padding
            text_clip = g.add("T5TokenizerOptions", 1, clip=clip["CLIP"], min_padding=0, min_length=0)
        encode = g.add("CLIPTextEncode", 1, title="Prompt", box_width=400, clip=text_clip["CLIP"], text=PROMPT)
        if negative_text is None:
            negative = g.add("ConditioningZeroOut", 1, title="Negative (unused at cfg 1)",
                             conditioning=encode["CONDITIONING"])
        else:
            negative = g.add("CLIPTextEncode", 1, title="Negative prompt", box_width=400, clip=text_clip["CLIP"],
                             text=negative_text)
        prompt_nodes = [*([text_clip] if tokenizer_options else []), encode, negative]
        return model["MODEL"], clip["CLIP"], vae["VAE"], prompt_nodes, encode, negative, dict(settings)
    return family


def qwen_image_generate_with_heatmaps(g):
    family = _template_generation(
        "Qwen-Image 2512", "qwen_image_2512_fp8_e4m3fn.safetensors", "qwen_2.5_vl_7b_fp8_scaled.safetensors",
        "qwen_image", "qwen_image_vae.safetensors", "Comfy-Org/Qwen-Image_ComfyUI", 3.1,
        dict(steps=50, cfg=4.0, sampler_name="euler", scheduler="simple"), "blocks 36-47 of 60",
        negative_text="blurry, low resolution, distorted")
    _, decode, aggregate = _generate(g, "Sample and read the maps", family=family)
    _overlays_and_segmentation(g, decode, aggregate, "qwen_image")


def z_image_turbo_generate_with_heatmaps(g):
    family = _template_generation(
        "Z-Image Turbo", "z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "lumina2", "ae.safetensors",
        "Comfy-Org/z_image_turbo", 3.0, dict(steps=8, cfg=1.0, sampler_name="res_multistep", scheduler="simple"),
        "layers 18-23 of 30")
    _, decode, aggregate = _generate(g, "Sample and read the maps", family=family)
    _overlays_and_segmentation(g, decode, aggregate, "z_image")


def chroma_generate_with_heatmaps(g):
    family = _template_generation(
        "Chroma1-HD", "Chroma1-HD-fp8mixed.safetensors", "t5xxl_fp8_e4m3fn_scaled.safetensors", "chroma",
        "ae.safetensors", "Comfy-Org/Chroma1-HD_repackaged", 1.0,
        dict(steps=26, cfg=3.5, sampler_name="euler", scheduler="beta"), "double blocks 15-18 of 19",
        negative_text="low quality, blurry, sketch, oversaturated", tokenizer_options=True)
    _, decode, aggregate = _generate(g, "Sample and read the maps", family=family)
    _overlays_and_segmentation(g, decode, aggregate, "chroma")


EDIT_CONCEPTS = "girl, dress, sky, grass"   # ComfyUI's input/example.png: a girl in a pink dress, grass, sky
EDIT_NOTE = (
    "Qwen-Image-Edit 2511: put qwen_image_edit_2511_fp8mixed.safetensors (Comfy-Org/Qwen-Image-Edit_ComfyUI) in "
    "models/diffusion_models, qwen_2.5_vl_7b_fp8_scaled.safetensors in models/text_encoders and "
    "qwen_image_vae.safetensors (Comfy-Org/Qwen-Image_ComfyUI) in models/vae. The loaders, image scaling, edit "
    "encoders, reference method (index_timestep_zero), CFGNorm, shift 3.1 and sampler settings (40 steps, cfg 4, "
    "euler simple) are those of ComfyUI's own Qwen-Image-Edit 2511 template. The concepts attend to the input "
    "image's tokens too; the maps cover the image being made. Layers \"default\" reads blocks 36-47 of 60."
)


def _qwen_image_edit(g, edit_prompt):
    """ComfyUI's Qwen-Image-Edit 2511 template up to its sampler: the model (shift 3.1,
    CFGNorm), the input image scaled as Kontext does, and the edit's positive and negative
    conditioning (the image through the vision encoder and, as reference latents, the VAE).
    Returns (model, clip, vae, scaled image, positive, negative) outputs."""
    unet = g.add("UNETLoader", 0, unet_name="qwen_image_edit_2511_fp8mixed.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, clip_name="qwen_2.5_vl_7b_fp8_scaled.safetensors", type="qwen_image", device="default")
    vae = g.add("VAELoader", 0, vae_name="qwen_image_vae.safetensors")
    note = g.note(0, EDIT_NOTE, title="Models for Qwen-Image-Edit 2511")
    shift = g.add("ModelSamplingAuraFlow", 0, model=unet["MODEL"], shift=3.1)
    model = g.add("CFGNorm", 0, model=shift["MODEL"], strength=1.0)
    g.group("Qwen-Image-Edit 2511", [unet, clip, vae, note, shift, model], GROUP_COLORS["models"])
    image = g.add("LoadImage", 1, image="example.png")
    scaled = g.add("FluxKontextImageScale", 1, image=image["IMAGE"])
    g.group("The image to edit", [image, scaled], GROUP_COLORS["prompt"])
    conditioning = []
    for title, text in (("Edit instruction", edit_prompt), ("Negative (empty)", "")):
        encode = g.add("TextEncodeQwenImageEditPlus", 1, title=title, box_width=400, clip=clip["CLIP"], prompt=text,
                       vae=vae["VAE"], image1=scaled["IMAGE"])
        method = g.add("FluxKontextMultiReferenceLatentMethod", 1, conditioning=encode["CONDITIONING"],
                       reference_latents_method="index_timestep_zero")
        conditioning += [encode, method]
    g.group("The edit", conditioning, GROUP_COLORS["edit"])
    return model["patched_model"], clip["CLIP"], vae["VAE"], scaled["IMAGE"], conditioning[1], conditioning[3]


def qwen_image_edit_2511_with_heatmaps(g):
    model, clip, vae, scaled, positive, negative = _qwen_image_edit(g, "Turn the daytime sky into a starry night sky")
    concepts = g.add("ConceptEncode", 2, box_width=400, clip=clip, concepts=EDIT_CONCEPTS, pooling="first_token")
    start = g.add("VAEEncode", 2, title="Start from the image", pixels=scaled, vae=vae)
    sampler = g.add("ConceptAttentionSampler", 2, model=model, seed=42, steps=40, cfg=4.0, sampler_name="euler",
                    scheduler="simple", positive=positive["CONDITIONING"], negative=negative["CONDITIONING"],
                    latent_image=start["LATENT"], denoise=1.0, concepts=concepts["concepts"], layers="default",
                    timesteps="all")
    decode = g.add("VAEDecode", 2, samples=sampler["LATENT"], vae=vae)
    aggregate = g.add("HeatmapAggregate", 2, concept_attn=sampler["concept_attn"])
    g.group("Edit and read the maps", [concepts, start, sampler, decode, aggregate], GROUP_COLORS["sample"])
    _overlays_and_segmentation(g, decode, aggregate, "qwen_image_edit")




def qwen_image_edit_2511_mask_what_you_change(g):
    """Read the image's own concept maps first, then let the edit change only where one
    concept is: its argmax mask, feathered, as the latent noise mask of the edit."""
    model, clip, vae, scaled, positive, negative = _qwen_image_edit(g, "Turn the pink dress into shining silver armour")
    concepts = g.add("ConceptEncode", 2, box_width=400, clip=clip, concepts=EDIT_CONCEPTS, pooling="first_token")
    read = g.add("ConceptAttentionEncodeImage", 2, model=model, vae=vae, image=scaled, concepts=concepts["concepts"],
                 noise_level=0.5, noise_samples=4, seed=0, layers="default")
    aggregate = g.add("HeatmapAggregate", 2, title="The dress's mask (blur 4, grow 8)",
                      concept_attn=read["concept_attn"], blur=4.0, grow=8, concept="dress")
    as_image = g.add("MaskToImage", 2, mask=aggregate["argmax_masks"])
    feather = g.add("ImageBlur", 2, title="Feather the edge", image=as_image["IMAGE"], blur_radius=15, sigma=5.0)
    mask = g.add("ImageToMask", 2, image=feather["IMAGE"], channel="red")
    g.group("Where the dress is", [concepts, read, aggregate, as_image, feather, mask], GROUP_COLORS["maps"])
    pixels = g.add("VAEEncode", 3, pixels=scaled, vae=vae)
    masked = g.add("SetLatentNoiseMask", 3, samples=pixels["LATENT"], mask=mask["MASK"])
    edit = g.add("KSampler", 3, model=model, seed=42, steps=40, cfg=4.0, sampler_name="euler", scheduler="simple",
                 positive=positive["CONDITIONING"], negative=negative["CONDITIONING"], latent_image=masked["LATENT"],
                 denoise=1.0)
    edited = g.add("VAEDecode", 3, samples=edit["LATENT"], vae=vae)
    g.group("Edit inside the mask only", [pixels, masked, edit, edited], GROUP_COLORS["edit"])
    g.add("SaveImage", 4, title="Save Original", images=scaled, filename_prefix="ConceptAttention/edit_original")
    g.add("PreviewImage", 4, title="Preview Dress Mask", images=feather["IMAGE"])
    g.add("SaveImage", 4, title="Save Edited", images=edited["IMAGE"], filename_prefix="ConceptAttention/edit_result")


RADIANCE_NOTE = (
    "Chroma1 Radiance: put chroma-radiance-x0.safetensors (Comfy-Org/Chroma1-Radiance_Repackaged) in "
    "models/diffusion_models and t5xxl_fp8_e4m3fn_scaled.safetensors in models/text_encoders; it works on pixels, "
    "so the VAE is pixel_space (no file). The loaders, T5 options, shift 1, CFGGuider 3.5, beta "
    "scheduler (30 steps, 0.4, 0.4) and euler are those of ComfyUI's own Chroma1 Radiance template; ConceptAttention "
    "Apply patches the model for SamplerCustomAdvanced. Layers \"default\" reads double blocks 15-18 of 19; the maps "
    "come in 16-pixel patches."
)


def chroma_radiance_generate_with_heatmaps(g):
    unet = g.add("UNETLoader", 0, unet_name="chroma-radiance-x0.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, clip_name="t5xxl_fp8_e4m3fn_scaled.safetensors", type="chroma", device="default")
    vae = g.add("VAELoader", 0, vae_name="pixel_space")
    note = g.note(0, RADIANCE_NOTE, title="Models for Chroma1 Radiance")
    # ComfyUI's template also has a ChromaRadianceOptions node, whose settings there change nothing.
    model = g.add("ModelSamplingAuraFlow", 0, model=unet["MODEL"], shift=1.0)
    g.group("Chroma1 Radiance", [unet, clip, vae, note, model], GROUP_COLORS["models"])
    text_clip = g.add("T5TokenizerOptions", 1, clip=clip["CLIP"], min_padding=0, min_length=0)
    positive = g.add("CLIPTextEncode", 1, title="Prompt", box_width=400, clip=text_clip["CLIP"], text=PROMPT)
    negative = g.add("CLIPTextEncode", 1, title="Negative prompt", box_width=400, clip=text_clip["CLIP"],
                     text="low quality, blurry, sketch, oversaturated")
    concepts = g.add("ConceptEncode", 1, box_width=400, clip=clip["CLIP"], concepts=CONCEPTS, pooling="first_token")
    latent = g.add("EmptyChromaRadianceLatentImage", 1, width=1024, height=1024, batch_size=1)
    g.group("Prompt and concepts", [text_clip, positive, negative, concepts, latent], GROUP_COLORS["prompt"])
    sample, decode, aggregate = _apply_and_sample(
        g, model["MODEL"], concepts, latent, vae,
        guider=lambda patched: g.add("CFGGuider", 2, model=patched, positive=positive["CONDITIONING"],
                                     negative=negative["CONDITIONING"], cfg=3.5),
        scheduler=lambda patched: g.add("BetaSamplingScheduler", 2, model=patched, steps=30, alpha=0.4, beta=0.4))
    g.group("Sample, then read the maps", [sample, decode, aggregate], GROUP_COLORS["maps"])
    _overlays_and_segmentation(g, decode, aggregate, "chroma_radiance", column=4)


VIDEO_PROMPT = "a green dragon flying over a rock under a blue sky, cinematic, slow camera pan"
VIDEO_FPS = 8.0   # CogVideoX 1.0's frame rate


def _cogvideox_generate(g):
    """CogVideoX text to video through the ConceptAttention Sampler; returns the decode node,
    the sampler and the CLIP output."""
    unet = g.add("UNETLoader", 0, unet_name="cogvideox_5b.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, clip_name="t5xxl_fp16.safetensors", type="cogvideox", device="default")
    vae = g.add("VAELoader", 0, vae_name="cogvideox_vae.safetensors")
    note = g.note(0, COGVIDEOX_NOTE, title="Models for CogVideoX")
    g.group("CogVideoX 5b", [unet, clip, vae, note], GROUP_COLORS["models"])
    positive, negative, concepts = _video_prompt(g, clip["CLIP"])
    latent = g.add("EmptyHunyuanLatentVideo", 1, title="Empty video latent (49 frames)", width=720, height=480,
                   length=49, batch_size=1)
    g.group("Prompt and concepts", [positive, negative, concepts, latent], GROUP_COLORS["prompt"])
    return _sample_video(g, unet["MODEL"], positive, negative, latent, concepts, vae, "cogvideox", VIDEO_FPS,
                         steps=50, cfg=6.0, sampler_name="euler", scheduler="normal")


def _video_prompt(g, clip, negative_text=""):
    """The prompt, the negative prompt and the concepts of a video template."""
    positive = g.add("CLIPTextEncode", 1, title="Prompt", box_width=400, clip=clip, text=VIDEO_PROMPT)
    negative = g.add("CLIPTextEncode", 1, title="Negative prompt", box_width=400, clip=clip, text=negative_text)
    concepts = g.add("ConceptEncode", 1, box_width=400, clip=clip, concepts=CONCEPTS, pooling="first_token")
    return positive, negative, concepts


def _sample_video(g, model, positive, negative, latent, concepts, vae, prefix, fps, **settings):
    """The ConceptAttention Sampler (seed 42, `settings`: steps, cfg, sampler and scheduler), the
    decode and the saved video, grouped: (the decode node, the sampler)."""
    sampler = g.add("ConceptAttentionSampler", 2, model=model, seed=42, positive=positive["CONDITIONING"],
                    negative=negative["CONDITIONING"], latent_image=latent["LATENT"], denoise=1.0,
                    concepts=concepts["concepts"], layers="default", timesteps="all", **settings)
    decode = g.add("VAEDecode", 2, samples=sampler["LATENT"], vae=vae["VAE"])
    save = _save_video(g, decode, 2, prefix, fps)
    g.group("Sample", [sampler, decode, save], GROUP_COLORS["sample"])
    return decode, sampler


def _video_per_concept(g, maps, group, kinds, prefix, fps=VIDEO_FPS, aggregate_title="Maps of {word}"):
    """For each concept: a HeatmapAggregate of it alone (of the CONCEPT_ATTN `maps`) and
    an animated WEBP per kind of the frames that kinds[kind](word, aggregate) gives:
    (nodes it added, an IMAGE output)."""
    nodes = []
    for word in (w.strip() for w in CONCEPTS.split(",")):
        aggregate = g.add("HeatmapAggregate", 3, title=aggregate_title.format(word=word), concept_attn=maps,
                          concept=word)
        nodes.append(aggregate)
        for kind, frames_of in kinds.items():
            added, frames = frames_of(word, aggregate)
            save = g.add("SaveAnimatedWEBP", 4, title=f"Save {word} {kind}", images=frames,
                         filename_prefix=f"ConceptAttention/{prefix}_{word}_{kind}", fps=fps, lossless=False,
                         quality=85, method="default")
            nodes += [*added, save]
    g.group(group, nodes, GROUP_COLORS["maps"])


def _heatmaps(word, aggregate):
    return [], aggregate["heatmaps"]


def _overlays(g, decode):
    def overlay(word, aggregate):
        node = g.add("HeatmapOverlay", 3, title=f"Overlay {word}", image=decode["IMAGE"], heatmaps=aggregate["maps"],
                     opacity=0.5, colormap="plasma", label=True)
        return [node], node["overlays"]
    return overlay


def cogvideox_text_to_video_heatmaps(g):
    _, sampler = _cogvideox_generate(g)
    _video_per_concept(g, sampler["concept_attn"], "One heatmap video per concept", {"heatmaps": _heatmaps}, "cogvideox")


def cogvideox_text_to_video_overlays(g):
    decode, sampler = _cogvideox_generate(g)
    _video_per_concept(g, sampler["concept_attn"], "One overlay video per concept", {"overlays": _overlays(g, decode)},
                       "cogvideox")


WAN_CROSS_ATTENTION = (
    "Wan has no joint attention (its blocks never update the text), so ConceptAttention's own maps do not exist for "
    "it: these are the paper's cross-attention maps (video queries . concept keys, every block), which method "
    "\"auto\" picks."
)
WAN22_5B_NOTE = (
    "Wan 2.2 5B: put wan2.2_ti2v_5B_fp16.safetensors in models/diffusion_models, wan2.2_vae.safetensors in "
    "models/vae (Comfy-Org/Wan_2.2_ComfyUI_Repackaged) and umt5_xxl_fp8_e4m3fn_scaled.safetensors in "
    "models/text_encoders (Comfy-Org/Wan_2.1_ComfyUI_repackaged). The loaders, shift 8, 1280x704, 121 frames, "
    "20 steps, cfg 5, uni_pc and 24 fps are those of ComfyUI's own Wan 2.2 5B template (here text to video: no "
    "start image), with the ConceptAttention Sampler in place of KSampler. " + WAN_CROSS_ATTENTION +
    " One map per decoded frame: frame 0 from latent frame 0, then 4 frames per latent frame."
)
WAN_FPS_5B, WAN_FPS_14B, HUNYUAN15_FPS = 24.0, 16.0, 24.0   # the frame rates of ComfyUI's own templates
WAN_NEGATIVE = "blurry, low quality, static, subtitles, watermark"


def _save_video(g, decode, column, prefix, fps):
    return g.add("SaveAnimatedWEBP", column, title="Save Video", images=decode["IMAGE"],
                 filename_prefix=f"ConceptAttention/{prefix}_video", fps=fps, lossless=False, quality=85,
                 method="default")


def wan22_5b_text_to_video(g):
    unet = g.add("UNETLoader", 0, unet_name="wan2.2_ti2v_5B_fp16.safetensors", weight_dtype="default")
    clip = g.add("CLIPLoader", 0, clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan", device="default")
    vae = g.add("VAELoader", 0, vae_name="wan2.2_vae.safetensors")
    shift = g.add("ModelSamplingSD3", 0, model=unet["MODEL"], shift=8.0)
    note = g.note(0, WAN22_5B_NOTE, title="Models for Wan 2.2 5B")
    g.group("Wan 2.2 5B", [unet, clip, vae, shift, note], GROUP_COLORS["models"])
    positive, negative, concepts = _video_prompt(g, clip["CLIP"], WAN_NEGATIVE)
    latent = g.add("Wan22ImageToVideoLatent", 1, title="Empty video latent (121 frames)", vae=vae["VAE"], width=1280,
                   height=704, length=121, batch_size=1)
    g.group("Prompt and concepts", [positive, negative, concepts, latent], GROUP_COLORS["prompt"])
    decode, sampler = _sample_video(g, shift["MODEL"], positive, negative, latent, concepts, vae, "wan22_5b", WAN_FPS_5B,
                                    steps=20, cfg=5.0, sampler_name="uni_pc", scheduler="simple")
    _video_per_concept(g, sampler["concept_attn"], "Per concept: a heatmap video and an overlay video",
                       {"heatmaps": _heatmaps, "overlays": _overlays(g, decode)}, "wan22_5b", WAN_FPS_5B,
                       "Cross-attention maps of {word}")


WAN22_14B_NOTE = (
    "Wan 2.2 14B image to video: put wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors and "
    "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors in models/diffusion_models, wan_2.1_vae.safetensors in "
    "models/vae (Comfy-Org/Wan_2.2_ComfyUI_Repackaged) and umt5_xxl_fp8_e4m3fn_scaled.safetensors in "
    "models/text_encoders (Comfy-Org/Wan_2.1_ComfyUI_repackaged); load your start image. The loaders, shift 8, "
    "640x640, 81 frames, 20 steps split at step 10 between the high-noise and the low-noise model, cfg 3.5, euler and "
    "16 fps are those of ComfyUI's own Wan 2.2 14B image-to-video template. Each model gets a ConceptAttention "
    "Apply; Concept Join makes one capture of all 20 steps from the two (keep the two samplers' steps, scheduler and "
    "the split step as they are: the join refuses parts that overlap or leave steps out). " + WAN_CROSS_ATTENTION
)


def wan22_14b_image_to_video(g):
    high = g.add("UNETLoader", 0, title="High-noise model", unet_name="wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                 weight_dtype="default")
    low = g.add("UNETLoader", 0, title="Low-noise model", unet_name="wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                weight_dtype="default")
    clip = g.add("CLIPLoader", 0, clip_name="umt5_xxl_fp8_e4m3fn_scaled.safetensors", type="wan", device="default")
    vae = g.add("VAELoader", 0, vae_name="wan_2.1_vae.safetensors")
    note = g.note(0, WAN22_14B_NOTE, title="Models for Wan 2.2 14B")
    g.group("Wan 2.2 14B (two models)", [high, low, clip, vae, note], GROUP_COLORS["models"])
    positive, negative, concepts = _video_prompt(g, clip["CLIP"], WAN_NEGATIVE)
    image = g.add("LoadImage", 1, title="Start image", image=DEMO_SCENE)
    start = g.add("WanImageToVideo", 1, positive=positive["CONDITIONING"], negative=negative["CONDITIONING"],
                  vae=vae["VAE"], width=640, height=640, length=81, batch_size=1, start_image=image["IMAGE"])
    g.group("Prompt, concepts and start image", [positive, negative, concepts, image, start], GROUP_COLORS["prompt"])
    parts = []
    for title, model, (add_noise, first, last, leftover), latent in (
            ("High-noise sampler (steps 0-9)", high, ("enable", 0, 10, "enable"), start["latent"]),
            ("Low-noise sampler (steps 10-19)", low, ("disable", 10, 10000, "disable"), None)):
        shift = g.add("ModelSamplingSD3", 2, model=model["MODEL"], shift=8.0)
        apply = g.add("ConceptAttentionApply", 2, model=shift["MODEL"], concepts=concepts["concepts"], layers="default",
                      timesteps="all")
        sampler = g.add("KSamplerAdvanced", 2, title=title, model=apply["MODEL"], add_noise=add_noise, noise_seed=42,
                        steps=20, cfg=3.5, sampler_name="euler", scheduler="simple",
                        positive=start["positive"], negative=start["negative"],
                        latent_image=latent or parts[-1][2]["LATENT"], start_at_step=first, end_at_step=last,
                        return_with_leftover_noise=leftover)
        parts.append((shift, apply, sampler))
    join = g.add("ConceptAttentionJoin", 3, concept_attn_a=parts[0][1]["concept_attn"],
                 concept_attn_b=parts[1][1]["concept_attn"], after=parts[1][2]["LATENT"])
    decode = g.add("VAEDecode", 3, samples=parts[1][2]["LATENT"], vae=vae["VAE"])
    save = _save_video(g, decode, 3, "wan22_14b", WAN_FPS_14B)
    g.group("Sample with both models, join their maps",
            [node for part in parts for node in part] + [join, decode, save], GROUP_COLORS["sample"])
    _video_per_concept(g, join["concept_attn"], "Per concept: a heatmap video and an overlay video",
                       {"heatmaps": _heatmaps, "overlays": _overlays(g, decode)}, "wan22_14b", WAN_FPS_14B,
                       "Cross-attention maps of {word}")


HUNYUAN15_NOTE = (
    "HunyuanVideo 1.5 (720p text to video): put hunyuanvideo1.5_720p_t2v_fp16.safetensors in "
    "models/diffusion_models, qwen_2.5_vl_7b_fp8_scaled.safetensors and byt5_small_glyphxl_fp16.safetensors in "
    "models/text_encoders and hunyuanvideo15_vae_fp16.safetensors in models/vae "
    "(Comfy-Org/HunyuanVideo_1.5_repackaged). The loaders, files and latent are those of ComfyUI's own HunyuanVideo "
    "1.5 template; 1280x720, 121 frames at 24 fps, 20 steps at cfg 6 with the model's own shift (7), with the "
    "ConceptAttention Sampler in place of KSampler. Layers \"default\" reads the last fifth of the double blocks. "
    "One map per decoded frame: frame 0 from latent frame 0, then 4 frames per latent frame."
)


def hunyuan_video_15_text_to_video(g):
    unet = g.add("UNETLoader", 0, unet_name="hunyuanvideo1.5_720p_t2v_fp16.safetensors", weight_dtype="default")
    clip = g.add("DualCLIPLoader", 0, clip_name1="qwen_2.5_vl_7b_fp8_scaled.safetensors",
                 clip_name2="byt5_small_glyphxl_fp16.safetensors", type="hunyuan_video_15", device="default")
    vae = g.add("VAELoader", 0, vae_name="hunyuanvideo15_vae_fp16.safetensors")
    note = g.note(0, HUNYUAN15_NOTE, title="Models for HunyuanVideo 1.5")
    g.group("HunyuanVideo 1.5", [unet, clip, vae, note], GROUP_COLORS["models"])
    positive, negative, concepts = _video_prompt(g, clip["CLIP"])
    latent = g.add("EmptyHunyuanVideo15Latent", 1, title="Empty video latent (121 frames)", width=1280, height=720,
                   length=121, batch_size=1)
    g.group("Prompt and concepts", [positive, negative, concepts, latent], GROUP_COLORS["prompt"])
    _, sampler = _sample_video(g, unet["MODEL"], positive, negative, latent, concepts, vae, "hunyuan_video_15",
                               HUNYUAN15_FPS, steps=20, cfg=6.0, sampler_name="euler", scheduler="simple")
    _video_per_concept(g, sampler["concept_attn"], "One heatmap video per concept", {"heatmaps": _heatmaps},
                       "hunyuan_video_15", HUNYUAN15_FPS)


# The demo prompt, concepts and seed of the no-download templates and of `make demo` (the
# README picture): one word per thing in the picture, chosen with benchmarks/demo_prompt.py
# (every concept's argmax region on its object or background, over 8 seeds).
DEMO_PROMPT = "a yellow star in the sky"
DEMO_CONCEPTS = "star, sky"
DEMO_SEED = 0
DEMO_REPORTED = DEMO_CONCEPTS.split(",")[0].strip()      # the concept the report and gate template asks about
DEMO_NOTE = (
    "No downloads: the ConceptAttention Demo Model node loads the small model that ships with the extension "
    "(models/demo), trained on 128 px scenes of coloured shapes (circle, square, triangle, cross, star, heart in "
    "red, green, blue, yellow, purple, orange or white) on sky, grass or a wooden floor. It knows only those words. "
    "Run the graph, then explore the maps in the ConceptAttention Viewer: click a concept, hover the image."
)
DEMO_IMAGE_NOTE = (
    "No downloads: the demo model reads an image you load (Encode Image), here demo_scene.png, a held-out scene "
    "(a purple circle and a blue square on grass) that the extension puts into ComfyUI's input folder; one concept "
    "word for each thing in it (two words for one object would share it). Load any "
    "128 px scene of coloured shapes on sky, grass or a wooden floor; the demo model knows only those words."
)
DEMO_IMAGE_CONCEPTS = "purple, blue, grass"


def _demo_model(g, note):
    demo = g.add("ConceptAttentionDemoModel", 0)
    g.group("The demo model (ships with the extension)", [demo, g.note(0, note, title="About this template")],
            GROUP_COLORS["models"])
    return demo


def try_no_downloads(g):
    sampler, decode = _demo_generation(g, *_demo_start(g, DEMO_NOTE), DEMO_PROMPT, DEMO_CONCEPTS, 1)
    aggregate = g.add("HeatmapAggregate", 2, concept_attn=sampler["concept_attn"])
    g.group("Sample and read the maps", [sampler, decode, aggregate], GROUP_COLORS["sample"])
    viewer = g.add("ConceptAttentionViewer", 3, box_width=460, concept_attn=sampler["concept_attn"],
                   images=decode["IMAGE"])
    g.group("Explore the maps", [viewer], GROUP_COLORS["maps"])
    _overlays_and_segmentation(g, decode, aggregate, "try", column=4)


def try_reading_an_image(g):
    demo = _demo_model(g, DEMO_IMAGE_NOTE)
    image = g.add("LoadImage", 1, image=DEMO_SCENE)
    concepts = g.add("ConceptEncode", 1, box_width=400, clip=demo["CLIP"], concepts=DEMO_IMAGE_CONCEPTS,
                     pooling="first_token")
    g.group("Image and concepts", [image, concepts], GROUP_COLORS["prompt"])
    read = g.add("ConceptAttentionEncodeImage", 2, model=demo["MODEL"], vae=demo["VAE"], image=image["IMAGE"],
                 concepts=concepts["concepts"], noise_level=0.5, noise_samples=4, seed=0, layers="default")
    aggregate = g.add("HeatmapAggregate", 2, concept_attn=read["concept_attn"])
    overlay = g.add("HeatmapOverlay", 2, image=image["IMAGE"], heatmaps=aggregate["maps"], opacity=0.5,
                    colormap="plasma", label=True)
    g.group("Read the image", [read, aggregate, overlay], GROUP_COLORS["sample"])
    g.add("ConceptAttentionViewer", 3, box_width=460, concept_attn=read["concept_attn"], images=image["IMAGE"])
    g.add("SaveImage", 4, title="Save Overlays", images=overlay["overlays"],
          filename_prefix="ConceptAttention/try_image_overlays")


DEMO_REPORT_NOTE = (
    "No downloads: the demo model generates the scene, then the maps become answers. Concept Report: which concept "
    "wins how much of the image, how strongly, where (centroid, box), and which look ignored or merged. Concept "
    f"Evolution: each concept's map at every step and every layer. Concept Gate: is \"{DEMO_REPORTED}\" present (its "
    "area share at least 5%)? Its BOOLEAN can drive a switch, or stop the run."
)
# The second run of the two-prompt template: the same object on another background, so
# that Compare shows one shared word and one word each run lacks.
DEMO_SECOND_PROMPT = "a yellow star on grass"
DEMO_SECOND_CONCEPTS = "star, grass"
DEMO_RUN_NAMES = ("star in the sky", "star on grass")
DEMO_COMPARE_NOTE = (
    "No downloads: two prompts on the demo model with the same seed, their maps side by side in Concept Compare. "
    "Concepts are matched by word; a word one run lacks shows as an empty cell. The shared normalisation puts both "
    "runs on one scale, so their strengths compare."
)


def _demo_generation(g, demo, latent, prompt, concepts, column, run=None):
    """Prompt, concepts, sampler and decode on the demo model; `run` names them when a graph has several."""
    suffix = f" ({run})" if run else ""
    positive = g.add("CLIPTextEncode", column, title=f"Prompt{suffix}", box_width=400, clip=demo["CLIP"], text=prompt)
    negative = g.add("CLIPTextEncode", column, title=f"Negative prompt{suffix}", box_width=400, clip=demo["CLIP"],
                     text="")
    encode = g.add("ConceptEncode", column, title=f"Concepts{suffix}" if run else None, box_width=400,
                   clip=demo["CLIP"], concepts=concepts, pooling="first_token")
    g.group(f"Prompt and concepts{suffix}", [positive, negative, encode], GROUP_COLORS["prompt"])
    sampler = g.add("ConceptAttentionSampler", column + 1, model=demo["MODEL"], seed=DEMO_SEED, steps=20, cfg=4.0,
                    sampler_name="euler", scheduler="simple", positive=positive["CONDITIONING"],
                    negative=negative["CONDITIONING"], latent_image=latent["LATENT"], denoise=1.0,
                    concepts=encode["concepts"], layers="default", timesteps="all")
    decode = g.add("VAEDecode", column + 1, samples=sampler["LATENT"], vae=demo["VAE"])
    return sampler, decode


def _demo_start(g, note):
    """The demo model and a 128 px latent (the size it was trained at)."""
    demo = _demo_model(g, note)
    return demo, g.add("EmptySD3LatentImage", 0, width=128, height=128, batch_size=1)


def try_reports(g):
    sampler, decode = _demo_generation(g, *_demo_start(g, DEMO_REPORT_NOTE), DEMO_PROMPT, DEMO_CONCEPTS, 1)
    g.group("Sample", [sampler, decode], GROUP_COLORS["sample"])
    maps = sampler["concept_attn"]
    report = g.add("ConceptReport", 3, concept_attn=maps, concept=DEMO_REPORTED)
    evolution = g.add("ConceptEvolution", 3, concept_attn=maps, images=decode["IMAGE"])
    gate = g.add("ConceptGate", 3, concept_attn=maps, concept=DEMO_REPORTED, measure="area_share", threshold=0.05)
    g.group("Answers", [report, evolution, gate], GROUP_COLORS["maps"])
    g.add("SaveImage", 4, title="Save Image", images=decode["IMAGE"], filename_prefix="ConceptAttention/report_image")
    g.add("PreviewAny", 4, title="Report table", box_width=560, room=TEXT_LINES * 16, source=report["table"])
    g.add("SaveImage", 4, title="Save Chart", images=report["chart"], filename_prefix="ConceptAttention/report_chart")
    g.add("SaveImage", 5, title="Save Evolution by step", box_width=560, images=evolution["by_step"],
          filename_prefix="ConceptAttention/evolution_by_step")
    g.add("SaveImage", 5, title="Save Evolution by layer", images=evolution["by_layer"],
          filename_prefix="ConceptAttention/evolution_by_layer")
    g.add("PreviewAny", 5, title=f"Is {DEMO_REPORTED} present?", source=gate["present"])
    g.add("PreviewAny", 5, title=f"{DEMO_REPORTED.capitalize()}'s area share", source=gate["value"])


def try_two_prompts(g):
    demo, latent = _demo_start(g, DEMO_COMPARE_NOTE)
    first, first_image = _demo_generation(g, demo, latent, DEMO_PROMPT, DEMO_CONCEPTS, 1, "run 1")
    second, second_image = _demo_generation(g, demo, latent, DEMO_SECOND_PROMPT, DEMO_SECOND_CONCEPTS, 1, "run 2")
    g.group("Sample", [first, first_image, second, second_image], GROUP_COLORS["sample"])
    _compare(g, [(first, DEMO_RUN_NAMES[0]), (second, DEMO_RUN_NAMES[1])], [first_image, second_image], "two_prompts")


def _compare(g, runs, images, prefix, column=3):
    names = {f"name_{k}": name for k, (_, name) in enumerate(runs, 1)}
    sources = {f"run_{k}": sampler["concept_attn"] for k, (sampler, _) in enumerate(runs, 1)}
    pictures = {f"image_{k}": image["IMAGE"] for k, image in enumerate(images, 1)}
    compare = g.add("ConceptCompare", column, **sources, **names, **pictures)
    g.group("Compare", [compare], GROUP_COLORS["maps"])
    for k, image in enumerate(images, 1):
        g.add("SaveImage", column + 1, title=f"Save Image {k}", images=image["IMAGE"],
              filename_prefix=f"ConceptAttention/{prefix}_image_{k}")
    g.add("SaveImage", column + 2, title="Save Comparison", box_width=420, images=compare["grid"],
          filename_prefix=f"ConceptAttention/{prefix}_grid")
    g.add("PreviewAny", column + 2, title="Area shares", box_width=420, room=TEXT_LINES * 8,
          source=compare["area_shares"])


def flux1_vs_sd35_compare(g):
    """One prompt on Flux 1 dev and SD3.5 large, each with its own text encoder for the concepts."""
    latent = g.add("EmptySD3LatentImage", 1, width=1024, height=1024, batch_size=1)
    runs, images = [], []
    for title, family in (("Flux 1 dev", _flux_generation), ("SD3.5 large", _sd35_generation)):
        model, clip, vae, prompt_nodes, positive, negative, settings = family(g)
        concepts = g.add("ConceptEncode", 1, title=f"Concepts ({title})", box_width=400, clip=clip, concepts=CONCEPTS,
                         pooling="first_token")
        g.group(f"Prompt and concepts ({title})", [*prompt_nodes, concepts], GROUP_COLORS["prompt"])
        sampler = g.add("ConceptAttentionSampler", 2, model=model, seed=42, positive=positive["CONDITIONING"],
                        negative=negative["CONDITIONING"], latent_image=latent["LATENT"], denoise=1.0,
                        concepts=concepts["concepts"], layers="default", timesteps="all", **settings)
        decode = g.add("VAEDecode", 2, samples=sampler["LATENT"], vae=vae)
        g.group(f"Sample ({title})", [sampler, decode], GROUP_COLORS["sample"])
        runs.append((sampler, title))
        images.append(decode)
    _compare(g, runs, images, "flux1_vs_sd35")


class Workflow(NamedTuple):
    build: Callable          # build(graph) adds the nodes
    thumbnail: list          # titles of the output nodes whose images make the thumbnail, in order
    family: str              # the models it loads: demo (ships with the extension), flux1, flux2, sd35, flux1_sd35
                             # (both), qwen_image, qwen_image_edit, z_image, chroma, chroma_radiance, cogvideox,
                             # wan22_5b, wan22_14b_i2v, hunyuan_video_15


WORKFLOWS = {
    # The page shows a template's file name as its title; web/templates.js lists these two first.
    "Try it - a picture and its maps": Workflow(try_no_downloads, ["Save Image", "Save Overlays"], "demo"),
    "Try it - maps of your image": Workflow(try_reading_an_image, ["Save Overlays"], "demo"),
    "Try it - answers from the maps": Workflow(try_reports, ["Save Evolution by step"], "demo"),
    "Try it - compare two prompts": Workflow(try_two_prompts, ["Save Comparison"], "demo"),
    "Flux 1 - generate with maps": Workflow(generate_with_heatmaps, ["Save Image", "Save Overlays"], "flux1"),
    "Flux 1 - maps of an image": Workflow(heatmaps_of_an_image, ["Save Overlays"], "flux1"),
    "Flux 1 - mask the sky, repaint": Workflow(mask_the_sky_and_inpaint,
                                               ["Save Original", "Preview Sky Mask", "Save New Sky"], "flux1"),
    "Flux 1 - maps with any sampler": Workflow(apply_with_sampler_custom_advanced,
                                                         ["Save Image", "Save Overlays"], "flux1"),
    "SD3.5 - generate with maps": Workflow(sd35_generate_with_heatmaps, ["Save Image", "Save Overlays"], "sd35"),
    "SD3.5 - maps of an image": Workflow(sd35_heatmaps_of_an_image, ["Save Overlays"], "sd35"),
    "Flux 2 Klein - with maps": Workflow(flux2_klein_generate_with_heatmaps, ["Save Image", "Save Overlays"],
                                                   "flux2"),
    "Flux 2 dev - with maps": Workflow(flux2_dev_generate_with_heatmaps, ["Save Image", "Save Overlays"],
                                                 "flux2"),
    "CogVideoX - video heatmaps": Workflow(cogvideox_text_to_video_heatmaps,
                                                 ["Save Video", "Save dragon heatmaps", "Save rock heatmaps",
                                                  "Save sky heatmaps"], "cogvideox"),
    "Qwen-Image - generate with maps": Workflow(qwen_image_generate_with_heatmaps, ["Save Image", "Save Overlays"],
                                                  "qwen_image"),
    "Qwen-Image-Edit - edit with maps": Workflow(qwen_image_edit_2511_with_heatmaps, ["Save Image", "Save Overlays"],
                                                   "qwen_image_edit"),
    "Qwen-Image-Edit - mask the edit": Workflow(qwen_image_edit_2511_mask_what_you_change,
                                                          ["Save Original", "Preview Dress Mask", "Save Edited"],
                                                          "qwen_image_edit"),
    "Z-Image Turbo - with maps": Workflow(z_image_turbo_generate_with_heatmaps,
                                                     ["Save Image", "Save Overlays"], "z_image"),
    "Chroma - generate with maps": Workflow(chroma_generate_with_heatmaps, ["Save Image", "Save Overlays"], "chroma"),
    "Chroma Radiance - with maps": Workflow(chroma_radiance_generate_with_heatmaps,
                                                       ["Save Image", "Save Overlays"], "chroma_radiance"),
    "Flux 1 vs SD3.5 - compare maps": Workflow(flux1_vs_sd35_compare, ["Save Comparison"], "flux1_sd35"),
    "CogVideoX - video overlays": Workflow(cogvideox_text_to_video_overlays,
                                                 ["Save dragon overlays", "Save rock overlays", "Save sky overlays"],
                                                 "cogvideox"),
    # (On the demo model's two words, "rock" would repeat "sky": the thumbnails leave it out.)
    "Wan 2.2 5B - video with maps": Workflow(wan22_5b_text_to_video,
                                                         ["Save Video", "Save dragon overlays", "Save sky overlays"],
                                                         "wan22_5b"),
    "Wan 2.2 14B - image to video": Workflow(wan22_14b_image_to_video,
                                                                 ["Save Video", "Save dragon overlays",
                                                                  "Save sky overlays"], "wan22_14b_i2v"),
    "HunyuanVideo 1.5 - video maps": Workflow(hunyuan_video_15_text_to_video,
                                                  ["Save Video", "Save dragon heatmaps", "Save sky heatmaps"],
                                                  "hunyuan_video_15"),
}


THUMBNAIL_NOTE = (
    "This template's thumbnail shows the extension's bundled demo model running this same graph (its loaders "
    "swapped for the ConceptAttention Demo Model node, the demo model's prompt and concepts): the model this "
    "template is for cannot be downloaded where the extension is built. The \"Try it\" templates "
    "run on the demo model as they are."
)


def build(name, object_info) -> dict:
    graph = Graph(name, object_info)
    WORKFLOWS[name].build(graph)
    if WORKFLOWS[name].family != "demo":
        graph.note(0, THUMBNAIL_NOTE, title="About the thumbnail")
    return graph.to_ui()


def dumps(ui: dict) -> str:
    return json.dumps(ui, indent=2) + "\n"


def load_object_info(source):
    """/object_info from a server URL or a saved JSON file."""
    if source.startswith(("http://", "https://")):
        return ComfyClient(source).get("/object_info", timeout=60)
    return json.loads(Path(source).read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--object-info", help="server URL or /object_info JSON file (default: start a temporary server)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the workflows (default: workflows/)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    if args.object_info:
        object_info = load_object_info(args.object_info)
    else:
        with tempfile.TemporaryDirectory(prefix="concept_attention_server_") as root, \
                ComfyServer(host.find_comfyui(), Path(root)) as server:
            object_info = server.object_info
    stale = []
    for name in WORKFLOWS:
        path = args.out / f"{name}.json"
        text = dumps(build(name, object_info))
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    if stale:
        print("out of date: " + ", ".join(str(p) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
