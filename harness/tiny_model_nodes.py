"""Test-only ComfyUI nodes: the tiny Qwen-Image, Chroma, Z-Image, Wan and HunyuanVideo 1.5 models and their
tiny text encoders (harness/tiny_models.py), for the server tests.

ComfyUI's UNETLoader and CLIPLoader build these families only at their full width
(its detection fixes the widths), so the server tests put these two nodes in place of
the templates' loaders (tools/render_thumbnails.py, tiny_substitutions). The models
are ComfyUI's own classes, built from their config, deterministic.
"""
import functools
import tempfile
from pathlib import Path

from harness import host, tiny_models

# harness/families.py tiny model names
MODELS = ("qwen_image", "qwen_image_edit", "chroma", "chroma_radiance", "z_image", "wan22_5b", "wan22_14b_i2v",
          "hunyuan_video_15")


@functools.cache
def _model(name):
    """The tests' own tiny model of that name (harness/families.py, which needs the extension loaded)."""
    from harness.families import tiny_model
    return tiny_model(name).build(Path(tempfile.mkdtemp(prefix="tiny_model_nodes_")))


@functools.cache
def _clip(name):
    return {"qwen_image": tiny_models.build_qwen_image_clip, "qwen_image_edit": tiny_models.build_qwen_image_clip,
            "chroma": tiny_models.build_chroma_clip, "chroma_radiance": tiny_models.build_chroma_clip,
            "z_image": tiny_models.build_z_image_clip, "wan22_5b": tiny_models.build_wan_clip,
            "wan22_14b_i2v": tiny_models.build_wan_clip,
            "hunyuan_video_15": tiny_models.build_hunyuan_video_15_clip}[name]()


def _loader_node(output_type: str, build):
    """A node class whose one input picks the tiny model and whose output is build(its name)."""
    class TinyLoader:
        CATEGORY = "testing"
        RETURN_TYPES = (output_type,)
        FUNCTION = "load"

        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"model": (MODELS,)}}

        def load(self, model):
            return (build(model),)
    return TinyLoader


host.load_extension()   # harness/tiny_models.py builds through the extension's demo.model
NODE_CLASS_MAPPINGS = {"TinyTestModel": _loader_node("MODEL", _model), "TinyTestCLIP": _loader_node("CLIP", _clip)}
