"""The extension's own small demo model: a Flux 1 (schnell-like) DiT, a taef1
autoencoder and a small Flux text encoder, trained on procedural scenes
(demo/scenes.py; see docs/demo-model.md).

`load_demo()` builds all three with ComfyUI's own classes and loaders. `comfy` is
imported inside the functions, so this module imports without the host.

The DiT is stored in the reference Flux layout (QK-norm scales named `*_norm.scale`,
as in every published Flux checkpoint), which each ComfyUI version loads: 0.33 renames
them to its own `*_norm.weight` on load, 0.3.75 uses them as they are.
"""
import json
import types
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent / "weights"
# The scene that the "Try it - maps of your image" template reads.
SCENE = Path(__file__).resolve().with_name("scene.png")
FILES = {
    "model": "flux_demo.safetensors",
    "vae_encoder": "taef1_encoder.safetensors",
    "vae_decoder": "taef1_decoder.safetensors",
    "text_encoder": "text_encoder.safetensors",
    "config": "config.json",
}


def load_config(directory=None) -> dict:
    return json.loads((Path(directory or DEFAULT_DIR) / FILES["config"]).read_text())


def load_demo(directory=None):
    """(model_patcher, clip, vae) of the demo model in `directory` (demo/weights by default).

    MODEL: ComfyUI's Flux as a FluxSchnell model, built by load_flux.
    VAE: comfy.sd.VAE from the taef1 encoder/decoder pair, as VAELoader("taef1").
    CLIP: comfy.sd.CLIP of the Flux CLIP-L + T5 classes at the sizes in config.json.
    """
    directory = Path(directory or DEFAULT_DIR)
    config = load_config(directory)
    model = load_flux(directory / FILES["model"], config["dit"])
    vae = build_vae(directory, config)
    clip = build_clip(config["text_encoder"], directory / FILES["text_encoder"])
    return model, clip, vae


def load_flux(path, dit_config: dict, model_options: dict = None):
    """The ModelPatcher of a Flux checkpoint whose constructor arguments are `dit_config`
    (with "image_model": "flux2" for Flux 2).

    Through ComfyUI's own loader (what UNETLoader does) where the host detects the
    checkpoint at its real size. ComfyUI 0.3.75 fixes Flux at 24 heads and Flux 2 at 48
    (full size), so there ComfyUI's own model classes are built from `dit_config`
    instead, with the model config, dtype and devices the loader would choose.
    """
    import comfy.sd
    import comfy.utils

    model_options = model_options or {}
    sd = comfy.utils.load_torch_file(str(path))
    if stock_loader_builds(sd, dit_config):
        return comfy.sd.load_diffusion_model_state_dict(sd, model_options=model_options)
    return build_from_config(sd, {"image_model": dit_config.get("image_model", "flux"), **flux_arguments(dit_config)},
                             model_options)


def build_from_config(state_dict: dict, unet_config: dict, model_options: dict = None):
    """The ModelPatcher of a diffusion model state dict whose constructor arguments are
    `unet_config` ("image_model" names the family), built with ComfyUI's own model
    config and model classes and the dtype and devices its loader would choose: for
    checkpoints whose size ComfyUI's detection fixes (it reads only some widths from
    the weights)."""
    import comfy.model_detection
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.utils

    model_options = model_options or {}
    model_config = comfy.model_detection.model_config_from_unet_config(unet_config, state_dict)
    if model_config is None:
        raise RuntimeError(f"this ComfyUI has no model for the config {unet_config}")
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    supported = model_config.supported_inference_dtypes
    dtype = model_options.get("dtype") or mm.unet_dtype(model_params=comfy.utils.calculate_parameters(state_dict),
                                                        supported_dtypes=supported,
                                                        weight_dtype=comfy.utils.weight_dtype(state_dict))
    model_config.set_inference_dtype(dtype, mm.unet_manual_cast(dtype, load_device, supported))
    if model_options.get("custom_operations") is not None:      # as ComfyUI's loader passes them on
        model_config.custom_operations = model_options["custom_operations"]
    model = model_config.get_model(state_dict, "")
    model.load_model_weights(state_dict, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def flux_arguments(dit_config: dict) -> dict:
    """The entries of `dit_config` that this host's Flux takes: an older host's Flux lacks
    later parameters (0.3.75: txt_ids_dims)."""
    import comfy.ldm.flux.model

    return known_arguments(comfy.ldm.flux.model.FluxParams, dit_config)


def known_arguments(params_class, config: dict) -> dict:
    """The entries of `config` that this host's parameter dataclass has fields for."""
    import dataclasses

    known = {field.name for field in dataclasses.fields(params_class)}
    return {k: v for k, v in config.items() if k in known}


def stock_loader_builds(state_dict: dict, dit_config: dict) -> bool:
    """Whether this host's own loader detects the Flux checkpoint `state_dict` at the
    size of `dit_config`: 0.33 derives the head count from the weights and 0.3.75 fixes
    it at 24; both fix Flux 1's patch size at 2 (the demo model's is 1)."""
    import comfy.model_detection

    detected = comfy.model_detection.detect_unet_config(state_dict, "")
    if detected is None:
        return False
    sized = ("num_heads", "patch_size", "in_channels", "hidden_size", "axes_dim")
    return all(_comparable(detected.get(k)) == _comparable(dit_config[k]) for k in sized)


def _comparable(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def reference_layout(state_dict: dict) -> dict:
    """A Flux state dict with its QK-norm scales under the reference names
    (`*_norm.scale`); ComfyUI 0.33's modules call them `*_norm.weight`."""
    suffix = "_norm.weight"
    return {(k[:-len("weight")] + "scale" if k.endswith(suffix) else k): v for k, v in state_dict.items()}


def build_vae(directory, config=None):
    """The taef1 VAE the way nodes.VAELoader.load_taesd assembles it."""
    import comfy.sd
    import comfy.utils
    import torch

    directory = Path(directory)
    vae_cfg = (config or load_config(directory))["vae"]
    sd = {}
    for part in ("encoder", "decoder"):
        for k, v in comfy.utils.load_torch_file(str(directory / FILES[f"vae_{part}"])).items():
            sd[f"taesd_{part}.{k}"] = v
    sd["vae_scale"] = torch.tensor(vae_cfg["vae_scale"])
    sd["vae_shift"] = torch.tensor(vae_cfg["vae_shift"])
    vae = comfy.sd.VAE(sd=sd)
    vae.throw_exception_if_invalid()
    return vae


def build_clip(text_config, weights=None):
    """A comfy.sd.CLIP of ComfyUI's Flux text encoder classes (CLIP-L + T5, real
    tokenizers), shrunk through model_options; `weights`: a safetensors file or a
    state dict in the layout CLIP.get_sd() gives (keys 'clip_l.*', 't5xxl.*')."""
    import comfy.text_encoders.flux
    import comfy.utils
    import torch

    clip = small_text_encoder(comfy.text_encoders.flux.flux_clip(dtype_t5=torch.float32),
                              comfy.text_encoders.flux.FluxTokenizer,
                              {part: text_config[f"{part}_model_config"] for part in ("clip_l", "t5xxl")},
                              text_config.get("tokenizer_data", {}))
    if weights is not None:
        sd = weights if isinstance(weights, dict) else comfy.utils.load_torch_file(str(weights))
        missing, unexpected = clip.load_sd(sd, full_model=True)
        missing = [k for k in missing if not k.endswith("logit_scale")]
        if missing or unexpected:
            raise RuntimeError(f"text encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    return clip


def small_text_encoder(encoder_class, tokenizer_class, configs: dict, tokenizer_data: dict = None):
    """A comfy.sd.CLIP of one of ComfyUI's text encoder classes with its real
    tokenizer, each part shrunk by its config (configs: {"clip_l": {...}, "t5xxl":
    {...}}, merged by SDClipModel into the stock json). fp32; weights uninitialised."""
    import comfy.sd
    import torch

    target = types.SimpleNamespace(params={}, clip=encoder_class, tokenizer=tokenizer_class)
    model_options = {"dtype": torch.float32, **{f"{part}_model_config": dict(c) for part, c in configs.items()}}
    return comfy.sd.CLIP(target=target, model_options=model_options, tokenizer_data=dict(tokenizer_data or {}))
