"""The extension's own small demo model: a Flux 1 (schnell-like) DiT, a taef1
autoencoder and a small Flux text encoder, trained on procedural scenes
(demo/scenes.py; see models/demo/MODEL_CARD.md).

`load_demo()` builds all three with ComfyUI's own classes and loaders. `comfy` is
imported inside the functions, so this module imports without the host.
"""
import json
import types
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent / "models" / "demo"
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
    """(model_patcher, clip, vae) of the demo model in `directory` (models/demo by default).

    MODEL: comfy.sd.load_diffusion_model, as UNETLoader (detected as FluxSchnell).
    VAE: comfy.sd.VAE from the taef1 encoder/decoder pair, as VAELoader("taef1").
    CLIP: comfy.sd.CLIP of the Flux CLIP-L + T5 classes at the sizes in config.json.
    """
    import comfy.sd

    directory = Path(directory or DEFAULT_DIR)
    config = load_config(directory)
    model = comfy.sd.load_diffusion_model(str(directory / FILES["model"]))
    vae = build_vae(directory, config)
    clip = build_clip(config["text_encoder"], directory / FILES["text_encoder"])
    return model, clip, vae


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
    import comfy.sd
    import comfy.text_encoders.flux
    import comfy.utils
    import torch

    target = types.SimpleNamespace(
        params={},
        clip=comfy.text_encoders.flux.flux_clip(dtype_t5=torch.float32),
        tokenizer=comfy.text_encoders.flux.FluxTokenizer,
    )
    model_options = {
        "dtype": torch.float32,
        "clip_l_model_config": dict(text_config["clip_l_model_config"]),
        "t5xxl_model_config": dict(text_config["t5xxl_model_config"]),
    }
    clip = comfy.sd.CLIP(target=target, model_options=model_options,
                         tokenizer_data=dict(text_config.get("tokenizer_data", {})))
    if weights is not None:
        sd = weights if isinstance(weights, dict) else comfy.utils.load_torch_file(str(weights))
        missing, unexpected = clip.load_sd(sd, full_model=True)
        missing = [k for k in missing if not k.endswith("logit_scale")]
        if missing or unexpected:
            raise RuntimeError(f"text encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    return clip
