"""The models an evaluation reads with: ComfyUI's own loaders, in-process, from files the
user names (a diffusion model, its text encoder files and a VAE, or one checkpoint), or
the bundled demo model."""
from pathlib import Path


class ModelError(ValueError):
    """A model file that is missing or that ComfyUI cannot load; the message names it."""


def load(demo=False, demo_folder=None, checkpoint=None, unet=None, clip=(), clip_type=None, vae=None,
         weight_dtype="default"):
    """(MODEL, CLIP, VAE) as ComfyUI's loaders give them."""
    if demo:
        return load_demo_model(demo_folder)
    import comfy.sd
    import comfy.utils
    import torch

    check_files(demo, demo_folder, checkpoint, unet, clip, clip_type, vae, weight_dtype)
    if checkpoint:
        model, text, image_vae = comfy.sd.load_checkpoint_guess_config(str(checkpoint), output_vae=True,
                                                                        output_clip=True)[:3]
        return model, text, image_vae
    dtypes = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
    options = {"dtype": dtypes[weight_dtype]} if dtypes[weight_dtype] else {}
    model = comfy.sd.load_diffusion_model(str(unet), model_options=options)
    kind = getattr(comfy.sd.CLIPType, (clip_type or "stable_diffusion").upper(), None)
    if kind is None:
        raise ModelError(f"--clip-type {clip_type}: not one of ComfyUI's CLIP types "
                         f"({', '.join(t.name.lower() for t in comfy.sd.CLIPType)})")
    text = comfy.sd.load_clip(ckpt_paths=[str(path) for path in clip], clip_type=kind)
    image_vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(vae)))
    return model, text, image_vae


def check_files(demo=False, demo_folder=None, checkpoint=None, unet=None, clip=(), clip_type=None, vae=None,
                weight_dtype="default"):
    """Before any worker starts: the files named exist and make a model."""
    if demo:
        return
    if not checkpoint and not (unet and clip and vae):
        raise ModelError("give --checkpoint, or --unet, --clip (one or more) and --vae, or --demo")
    for path in [checkpoint, unet, vae, *clip]:
        if path is not None and not Path(path).is_file():
            raise ModelError(f"{path}: no such file")


def load_demo_model(directory=None):
    """(model, clip, vae) of a demo model as its node gives them: layers "default" are
    those its config states."""
    from concept_attention import hooks
    from concept_attention.demo.model import load_config, load_demo

    model, clip, vae = load_demo(directory)
    return hooks.state_default_layers(model, load_config(directory).get("default_layers")), clip, vae
