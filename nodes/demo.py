"""ConceptAttentionDemoModel: the bundled small model, so the extension runs out of the box;
and the scene its image template reads."""
import logging
import shutil
from pathlib import Path

import folder_paths
from comfy_api.latest import io

from .. import hooks
from ..demo.model import SCENE, load_config, load_demo
from .types import LOADERS, schema

TITLE = "ConceptAttention Demo Model"


class ConceptAttentionDemoModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id="ConceptAttentionDemoModel",
            display_name=TITLE,
            category=LOADERS,
            search_aliases=["demo model", "no download", "example model"],
            description="Loads the extension's own small Flux 1-architecture model, trained on 128x128 scenes of "
                        "coloured shapes (circle, square, triangle, cross, star, heart) on sky, grass or a wooden floor. "
                        "It knows only those words; use your own Flux loaders for real images.",
            inputs=[],
            outputs=[
                io.Model.Output(display_name="MODEL", tooltip="The small demo model that draws the pictures (a Flux-architecture DiT: ComfyUI's Flux class)."),
                io.Clip.Output(display_name="CLIP", tooltip="Its small text encoder (ComfyUI's Flux CLIP-L + T5 classes)."),
                io.Vae.Output(display_name="VAE", tooltip="Its small autoencoder (TAESD architecture, 128 px images)."),
            ],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        model, clip, vae = load_demo()
        # Its layers "default": the blocks the localization benchmark measured best for it.
        return io.NodeOutput(hooks.state_default_layers(model, load_config().get("default_layers")), clip, vae)


# The name under which LoadImage finds it (the templates were saved with this name).
INPUT_NAME = "demo_scene.png"


def install_demo_scene():
    """Put the demo scene into ComfyUI's input folder (once), so that the template
    "Try it - maps of your image" can load it with LoadImage."""
    target = Path(folder_paths.get_input_directory()) / INPUT_NAME
    if target.exists():
        return
    try:
        shutil.copyfile(SCENE, target)
    except OSError as e:
        logging.warning("ConceptAttention: could not copy %s to the input folder (%s); the image template "
                        "needs an image loaded by hand", INPUT_NAME, e)
