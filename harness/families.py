"""The families under test, one entry per hooks family: its tiny checkpoints (each a
session fixture of the same name, tests/conftest.py), its sampling harness, and its
recomputation from the paper's equations (paper_equations.py). The bit-identity and
paper-equation tests run over every entry; tests/test_family_contract.py fails when a
family in hooks.FAMILIES has none.

`recorded_inputs` records a diffusion model's own inputs at every call, and
`expected_scores` recomputes from them, independently of the capture code, the scores
the capture should have recorded.
"""
import contextlib
import inspect
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from harness import paper_equations, sampling, tiny_models


@dataclass(frozen=True)
class TinyModel:
    name: str                  # also its pytest fixture
    build: Callable            # (directory) -> ModelPatcher, through ComfyUI's own loader where it can
    missing: Callable = lambda: None    # () -> why this ComfyUI cannot build it (its tests skip), or None
    harness: sampling.Family = None     # its own inputs where they are not its family's (a pixel-space model)


@dataclass(frozen=True)
class FamilyUnderTest:
    name: str                  # hooks.family.Family.name
    harness: sampling.Family
    tiny_models: tuple         # TinyModel
    # (diffusion model, inputs by name, ConceptSet, layers) -> (output space, cross) [L, B, C, P];
    # output space None for a cross-attention family (Wan)
    paper_scores: Callable
    # (cfg, batch, latent size) of the paper-equation cases: odd sizes, so that rows and columns cannot swap unseen.
    paper_cases: tuple = ((1.0, 1, (16, 12)), (3.0, 2, (16, 12)))

    def harness_of(self, model_name: str) -> sampling.Family:
        """The sampling harness of one of its tiny models."""
        tiny = next(tiny for tiny in self.tiny_models if tiny.name == model_name)
        return tiny.harness or self.harness


def flux_model(name, guidance, config=None, expect="Flux"):
    def build(directory):
        path = tiny_models.build_flux(directory / f"{name}.safetensors", guidance=guidance, config=config)
        return tiny_models.load_model(path, tiny_models.flux_config(guidance, config), expect=expect)
    return TinyModel(name, build)


def stock_loaded(name, builder, config, expect, missing=lambda: None):
    def build(directory):
        return tiny_models.load_with_stock_loader(builder(directory / f"{name}.safetensors", config), expect=expect)
    return TinyModel(name, build, missing)


def family_missing(name):
    """() -> why this ComfyUI lacks the family (hooks.UNAVAILABLE), or None."""
    def missing():
        from concept_attention import hooks
        return hooks.UNAVAILABLE.get(name)
    return missing


def from_config(name, builder, config, expect, missing=lambda: None, harness=None):
    """A model whose size ComfyUI's detection fixes: built from its config (tiny_models.load_from_config).
    config: the constructor arguments, or a function that gives them for this host."""
    def build(directory):
        arguments = config() if callable(config) else config
        return tiny_models.load_from_config(builder(directory / f"{name}.safetensors", arguments), arguments,
                                            expect=expect)
    return TinyModel(name, build, missing, harness)


def qwen_image_edit_2511_missing():
    import comfy.ldm.qwen_image.model as qwen_image
    if "default_ref_method" not in inspect.signature(qwen_image.QwenImageTransformer2DModel).parameters:
        return ("this ComfyUI's Qwen-Image has no index_timestep_zero reference method (Qwen-Image-Edit 2511); "
                "ComfyUI 0.3.75 predates it")
    return None


def flux_paper_scores(dm, inputs, concepts, layers):
    """Flux 1: zero text positions. Flux 2: the concepts sit where the word sits in its own
    encoding once that is left-padded to the call's text, clamped into the text."""
    text_len = inputs["context"].shape[1]
    position = 0
    if dm.params.global_modulation:
        position = min(concepts.text_position + max(0, text_len - concepts.text_length), text_len - 1)
    return paper_equations.concept_attention_maps(dm, inputs["x"], inputs["timestep"], inputs["context"],
                                                  inputs.get("y"), inputs.get("guidance"), concepts.embeddings, layers,
                                                  position)


def sd3_paper_scores(dm, inputs, concepts, layers):
    return paper_equations.sd3_concept_attention_maps(dm, inputs["x"], inputs["timesteps"], inputs["context"],
                                                      inputs["y"], concepts.embeddings, layers)


def qwen_image_paper_scores(dm, inputs, concepts, layers):
    return paper_equations.qwen_image_concept_attention_maps(
        dm, inputs["x"], inputs["timestep"], inputs["context"], concepts.embeddings, layers,
        inputs.get("ref_latents") or (), inputs.get("ref_latents_method", getattr(dm, "default_ref_method", "index")))


def chroma_paper_scores(dm, inputs, concepts, layers):
    return paper_equations.concept_attention_maps(dm, inputs["x"], inputs["timestep"], inputs["context"], None,
                                                  inputs["guidance"], concepts.embeddings, layers)


def z_image_paper_scores(dm, inputs, concepts, layers):
    return paper_equations.z_image_concept_attention_maps(dm, inputs["x"], inputs["timesteps"], inputs["context"],
                                                          concepts.embeddings, layers)


def hunyuan_video_paper_scores(dm, inputs, concepts, layers):
    return paper_equations.hunyuan_video_concept_attention_maps(dm, inputs["x"], inputs["timestep"], inputs["context"],
                                                                inputs.get("y"), inputs.get("guidance"),
                                                                concepts.embeddings, layers, inputs.get("ref_latent"))


def wan_paper_scores(dm, inputs, concepts, layers):
    return paper_equations.wan_cross_attention_maps(dm, inputs["x"], inputs["timestep"], inputs["context"],
                                                    inputs.get("clip_fea"), concepts.embeddings, layers,
                                                    inputs.get("reference_latent"))


def cogvideox_paper_scores(dm, inputs, concepts, layers):
    return paper_equations.cogvideox_concept_attention_maps(dm, inputs["x"], inputs["timestep"], inputs["context"],
                                                            concepts.embeddings, layers)


TESTED = (
    FamilyUnderTest("Flux 1", sampling.FLUX1, (flux_model("flux_dev", True), flux_model("flux_schnell", False,
                                                                                     expect="FluxSchnell")),
                 flux_paper_scores),
    FamilyUnderTest("Flux 2", sampling.FLUX2,
                 (flux_model("flux2_klein", False, tiny_models.FLUX2_CONFIG, "Flux2"),
                  flux_model("flux2_dev", True, tiny_models.FLUX2_CONFIG, "Flux2")),
                 flux_paper_scores, paper_cases=((1.0, 1, (8, 6)), (3.0, 2, (8, 6)))),
    # sd3: SD3 medium-like, 3 joint blocks, the last pre_only; sd35_medium: QK RMSNorm and x_block.attn2 in blocks 0-1.
    FamilyUnderTest("SD3", sampling.SD3,
                 (stock_loaded("sd3", tiny_models.build_sd3, tiny_models.SD3_CONFIG, "SD3"),
                  stock_loaded("sd35_medium", tiny_models.build_sd3, tiny_models.SD35_MEDIUM_CONFIG, "SD3")),
                 sd3_paper_scores),
    # qwen_image: Qwen-Image (2512); qwen_image_edit: Qwen-Image-Edit 2511 (references at t = 0).
    FamilyUnderTest("Qwen-Image", sampling.QWEN_IMAGE,
                 (from_config("qwen_image", tiny_models.build_qwen_image, tiny_models.QWEN_IMAGE_CONFIG, "QwenImage"),
                  from_config("qwen_image_edit", tiny_models.build_qwen_image, tiny_models.QWEN_IMAGE_EDIT_CONFIG,
                              "QwenImage", missing=qwen_image_edit_2511_missing)),
                 qwen_image_paper_scores),
    FamilyUnderTest("Chroma", sampling.CHROMA,
                 (from_config("chroma", tiny_models.build_chroma, tiny_models.chroma_config, "Chroma"),
                  from_config("chroma_radiance", tiny_models.build_chroma, tiny_models.chroma_radiance_config,
                              "ChromaRadiance", harness=sampling.CHROMA_RADIANCE)),
                 chroma_paper_scores),
    # z_image: Z-Image (Turbo); lumina2: Lumina 2-like (no padding, another modulation). ComfyUI's config
    # classes tell them apart by width only (Z-Image: 3840), so both tiny ones are its Lumina2 model config.
    FamilyUnderTest("Z-Image", sampling.Z_IMAGE,
                 (from_config("z_image", tiny_models.build_z_image, tiny_models.Z_IMAGE_CONFIG, "Lumina2"),
                  from_config("lumina2", tiny_models.build_z_image, tiny_models.LUMINA2_CONFIG, "Lumina2")),
                 z_image_paper_scores),
    # cogvideox: 1.0 with RoPE (5b-like); cogvideox_2b: the positional table; cogvideox_15: patch_size_t 2;
    # cogvideox_i2v: image-to-video (the image latent concatenated to the noise).
    FamilyUnderTest("CogVideoX", sampling.COGVIDEOX,
                 (stock_loaded("cogvideox", tiny_models.build_cogvideox, tiny_models.COGVIDEOX_CONFIG, "CogVideoX_T2V"),
                  stock_loaded("cogvideox_2b", tiny_models.build_cogvideox, tiny_models.COGVIDEOX_2B_CONFIG,
                               "CogVideoX_T2V"),
                  stock_loaded("cogvideox_15", tiny_models.build_cogvideox, tiny_models.COGVIDEOX_15_CONFIG,
                               "CogVideoX_T2V"),
                  stock_loaded("cogvideox_i2v", tiny_models.build_cogvideox, tiny_models.COGVIDEOX_I2V_CONFIG,
                               "CogVideoX_I2V")),
                 cogvideox_paper_scores,
                 paper_cases=((1.0, 1, (3, 8, 6)), (3.0, 2, (2, 6, 8)), (1.0, 1, (5, 4, 6)))),
    # hunyuan_video: 1.0 text-to-video (pooled CLIP-L input, guidance); hunyuan_video_15: 1.5 (32-channel
    # latent with the image latent and mask concatenated, the text type embedding); 3 double blocks, 1 single.
    FamilyUnderTest("HunyuanVideo", sampling.HUNYUAN_VIDEO,
                 (stock_loaded("hunyuan_video", tiny_models.build_hunyuan_video, tiny_models.HUNYUAN_VIDEO_CONFIG,
                               "HunyuanVideo", missing=family_missing("HunyuanVideo")),
                  TinyModel("hunyuan_video_15", stock_loaded("hunyuan_video_15", tiny_models.build_hunyuan_video,
                                                             tiny_models.HUNYUAN_VIDEO_15_CONFIG, "HunyuanVideo15").build,
                            family_missing("HunyuanVideo"), sampling.HUNYUAN_VIDEO_15)),
                 hunyuan_video_paper_scores,
                 paper_cases=((1.0, 1, (3, 8, 6)), (3.0, 2, (2, 6, 8)), (1.0, 1, (5, 4, 6)))),
    # Cross-attention maps only. wan21: 2.1 text-to-video; wan21_i2v: image-to-video (CLIP-vision tokens, the
    # image latent concatenated); wan22_5b: the 5B TI2V with the 2.2 VAE's 48 channels; wan22_14b_i2v: 2.2 14B
    # image-to-video (the image latent concatenated, no CLIP-vision tokens); wan21_fun_reference: a reference
    # image's tokens before the video's.
    FamilyUnderTest("Wan", sampling.WAN21,
                 (from_config("wan21", tiny_models.build_wan, tiny_models.WAN21_CONFIG, "WAN21_T2V"),
                  from_config("wan21_i2v", tiny_models.build_wan, tiny_models.WAN21_I2V_CONFIG, "WAN21_I2V",
                              harness=sampling.WAN21_I2V),
                  from_config("wan22_5b", tiny_models.build_wan, tiny_models.WAN22_5B_CONFIG, "WAN22_T2V",
                              harness=sampling.WAN22_5B),
                  from_config("wan22_14b_i2v", tiny_models.build_wan, tiny_models.WAN22_14B_I2V_CONFIG, "WAN21_T2V",
                              harness=sampling.WAN22_14B_I2V),
                  from_config("wan21_fun_reference", tiny_models.build_wan, tiny_models.WAN21_FUN_REFERENCE_CONFIG,
                              "WAN21_T2V", harness=sampling.WAN21_FUN_REFERENCE)),
                 wan_paper_scores,
                 paper_cases=((1.0, 1, (3, 8, 6)), (3.0, 2, (3, 8, 6)), (1.0, 1, (5, 4, 6)))),
)
BY_NAME = {tested.name: tested for tested in TESTED}


def one_model_each(with_block_patches: bool = False) -> list:
    """pytest parameters (FamilyUnderTest, the name of its first tiny model), one per family;
    with_block_patches: only the families whose blocks have patch points."""
    from concept_attention import hooks
    patched = {family.name for family in hooks.FAMILIES if family.block_patches}
    return [pytest.param(tested, tested.tiny_models[0].name, id=tested.tiny_models[0].name)
            for tested in TESTED if not with_block_patches or tested.name in patched]


def family_under_test(model_name: str) -> FamilyUnderTest:
    """The entry whose tiny models include `model_name`."""
    return next(tested for tested in TESTED if model_name in (tiny.name for tiny in tested.tiny_models))


def tiny_model(model_name: str) -> TinyModel:
    return next(tiny for tiny in family_under_test(model_name).tiny_models if tiny.name == model_name)


def server_model_missing(family: str) -> str | None:
    """Why the server tests' tiny model for a workflow family (make_workflows.Workflow.family)
    cannot be built on this ComfyUI (0.3.75: Qwen-Image-Edit 2511), or None."""
    from harness import tiny_model_nodes
    return tiny_model(family).missing() if family in tiny_model_nodes.MODELS else None


def once_per_model(request, compute: Callable) -> Callable:
    """model name -> compute(its sampling harness, the tiny model), computed once: for a
    module-scoped fixture whose result several tests read."""
    results = {}

    def result(model_name):
        if model_name not in results:
            results[model_name] = compute(family_under_test(model_name).harness_of(model_name),
                                          request.getfixturevalue(model_name))
        return results[model_name]
    return result


@contextlib.contextmanager
def recorded_inputs(model):
    """Yields a list that fills with the diffusion model's own inputs at every call, by
    name (tensors and lists of tensors cloned, strings such as ref_latents_method), plus
    "flags": the call's cond_or_uncond. A forward pre-hook
    on the model, removed on exit."""
    dm = model.model.diffusion_model
    signature = inspect.signature(dm.forward)
    calls = []

    def record(module, args, kwargs):
        inputs = signature.bind(*args, **kwargs).arguments
        inputs = {**inputs.pop("kwargs", {}), **inputs}
        options = inputs.get("transformer_options") or {}
        calls.append({**{name: value.clone() for name, value in inputs.items() if isinstance(value, torch.Tensor)},
                      **{name: [tensor.clone() for tensor in value] for name, value in inputs.items()
                         if isinstance(value, list) and value and all(isinstance(t, torch.Tensor) for t in value)},
                      **{name: value for name, value in inputs.items() if isinstance(value, str)},
                      "flags": list(options.get("cond_or_uncond", [0]))})

    handle = dm.register_forward_pre_hook(record, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def conditional_inputs(call: dict) -> dict:
    """The inputs of a recorded call restricted to its conditional rows (cond_or_uncond
    flag 0), or None when it has none."""
    batch = call["x"].shape[0]
    size = batch // len(call["flags"])
    rows = [i * size + r for i, flag in enumerate(call["flags"]) if flag == 0 for r in range(size)]
    if not rows:
        return None
    def conditional(value):
        if isinstance(value, list):
            return [conditional(tensor) for tensor in value]
        return value[rows] if isinstance(value, torch.Tensor) and value.shape[:1] == (batch,) else value
    return {name: conditional(value) for name, value in call.items() if name != "flags"}


def expected_scores(tested: FamilyUnderTest, model, calls: list, concepts, layers) -> list:
    """The paper-equation scores [E, L, B, C, P] per method (output space, cross
    attention) of the conditional rows of the recorded calls; None for a method the
    family does not have."""
    dm = model.model.diffusion_model
    per_call = [tested.paper_scores(dm, inputs, concepts, layers)
                for inputs in map(conditional_inputs, calls) if inputs is not None]
    return [None if method[0] is None else torch.stack(method) for method in zip(*per_call)]
