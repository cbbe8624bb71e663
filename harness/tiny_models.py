"""Tiny checkpoints and text encoders built from ComfyUI's own classes.

For CPU tests. `comfy` is imported lazily inside the functions: the caller must
already have put the host on sys.path and set `comfy.cli_args.args.cpu = True`.

Sizes respect what comfy/model_detection.py fixes for Flux: head dim 128
(axes_dim [16, 56, 56]), mlp ratio 4; `guidance_in` present -> dev.
context_in_dim / vec_in_dim are 64 to match the tiny text encoder below.
"""

import types
from pathlib import Path

import torch

# Width of the tiny text encoders: T5 d_model (cond) and CLIP-L hidden (pooled).
TINY_TEXT_DIM = 64

FLUX1_CONFIG = dict(
    in_channels=16, out_channels=16, vec_in_dim=TINY_TEXT_DIM, context_in_dim=TINY_TEXT_DIM,
    hidden_size=256, mlp_ratio=4.0, num_heads=2, depth=3, depth_single_blocks=2,
    axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, txt_ids_dims=[],
)

# Flux 2: ComfyUI detects it by double_stream_modulation_img and fixes head dim 128
# (axes [32]*4), MLP ratio 3, 128 latent channels, theta 2000 and no biases. The
# text width is that of the tiny Klein encoder below (three hidden layers of 64).
KLEIN_WIDTH = 64
FLUX2_TEXT_DIM = 3 * KLEIN_WIDTH
FLUX2_CONFIG = dict(
    image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=FLUX2_TEXT_DIM,
    hidden_size=128, mlp_ratio=3.0, num_heads=1, depth=3, depth_single_blocks=2, axes_dim=[32, 32, 32, 32],
    theta=2000, patch_size=1, qkv_bias=False, txt_ids_dims=[3], global_modulation=True, mlp_silu_act=True,
    ops_bias=False,
)

# Shrunk text encoders; merged by SDClipModel into the stock json configs
# (vocab sizes, positions, activations and special tokens stay real).
T5_TINY = dict(d_model=TINY_TEXT_DIM, d_ff=128, d_kv=32, num_heads=2, num_layers=2)
CLIP_L_TINY = dict(hidden_size=TINY_TEXT_DIM, intermediate_size=128, num_attention_heads=2,
                   num_hidden_layers=2, projection_dim=TINY_TEXT_DIM)

# Plain torch.nn layers: unlike comfy.ops (which skip init), these get a real init.
_TORCH_OPS = types.SimpleNamespace(
    Linear=torch.nn.Linear, LayerNorm=torch.nn.LayerNorm, RMSNorm=torch.nn.RMSNorm,
    Conv2d=torch.nn.Conv2d, Conv3d=torch.nn.Conv3d, GroupNorm=torch.nn.GroupNorm,
    Embedding=torch.nn.Embedding,
)


# Tables larger than this (SD3's 4096-wide T5 embedding: 131 M values, over a second of
# random numbers) are filled with a random product of rank LOW_RANK, of the same scale.
LARGE = 1 << 24
LOW_RANK = 32


def _fill_(param: torch.Tensor, name: str, gen: torch.Generator) -> None:
    """Deterministic init: 1-D weights (norm scales) 1, biases 0, the rest N(0, 0.02)
    (large 2-D tables: a low-rank product with entries of that spread)."""
    with torch.no_grad():
        if name.endswith("bias"):
            param.zero_()
        elif param.ndim == 1:
            param.fill_(1.0)
        elif param.numel() > LARGE and param.ndim == 2:
            left = torch.randn(param.shape[0], LOW_RANK, generator=gen)
            right = torch.randn(LOW_RANK, param.shape[1], generator=gen)
            param.copy_(left @ right * (0.02 / LOW_RANK ** 0.5))
        else:
            param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float32) * 0.02)


def _init_uninitialised_(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Fill parameters of modules that have no reset_parameters (their torch.empty is garbage)."""
    for mod in module.modules():
        if hasattr(mod, "reset_parameters"):
            continue
        for p_name, p in mod.named_parameters(recurse=False):
            _fill_(p, p_name, gen)


def _tiny(model_class, config: dict, seed: int) -> tuple:
    """(ComfyUI's `model_class` built from `config`, its constructor arguments ("image_model"
    left out), with plain torch layers, fp32 on the CPU, every parameter filled from `seed`;
    the generator that filled them, for what the model leaves as torch.empty)."""
    torch.manual_seed(seed)
    arguments = {k: v for k, v in config.items() if k != "image_model"}
    model = model_class(operations=_TORCH_OPS, dtype=torch.float32, device="cpu", **arguments)
    gen = torch.Generator().manual_seed(seed)
    _init_uninitialised_(model, gen)
    return model, gen


def build_flux(path, guidance=True, seed=0, config=None) -> Path:
    """Save a tiny Flux checkpoint as fp32 safetensors: with a guidance embedding if
    `guidance` (Flux 1 dev, Flux 2 dev), else without (schnell, Klein).

    `config`: the Flux constructor arguments; FLUX1_CONFIG when None (FLUX2_CONFIG for
    Flux 2). Load it with load_model(path, flux_config(...)) with the same arguments.
    """
    import comfy.ldm.flux.model

    from concept_attention.demo.model import flux_arguments

    model, _ = _tiny(comfy.ldm.flux.model.Flux, flux_arguments(flux_config(guidance, config)), seed)
    return _save(model.state_dict(), path, torch.float32)


def flux_config(guidance=True, config=None) -> dict:
    """The constructor arguments of a tiny Flux (FLUX1_CONFIG unless `config`)."""
    return {**(FLUX1_CONFIG if config is None else config), "guidance_embed": guidance}


def _save(state_dict, path, dtype) -> Path:
    """Save finite weights as safetensors in `dtype`."""
    import safetensors.torch

    sd = {k: v.detach().to(dtype).contiguous() for k, v in state_dict.items()}
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
    assert not bad, f"non-finite weights: {bad}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(sd, str(path))
    return path


def load_model(path, config: dict, expect=None):
    """Load a checkpoint of Flux constructor arguments `config` as UNETLoader would
    (concept_attention.demo.model.load_flux); returns the ModelPatcher, fp32 on CPU.

    `expect`: the supported_models class name ComfyUI must detect ('Flux', 'FluxSchnell', 'Flux2').
    """
    from concept_attention.demo.model import load_flux

    # fp32 explicitly: on CPU the loader would otherwise follow the stored/"optimal" dtype.
    model = load_flux(path, config, model_options={"dtype": torch.float32})
    dm = model.model.diffusion_model
    assert next(dm.parameters()).dtype == torch.float32, next(dm.parameters()).dtype
    if expect is not None:
        assert model_kind(model) == expect, f"{path} detected as {model_kind(model)}, expected {expect}"
    return model


# SD3 (MMDiT): ComfyUI fixes hidden = 64 * depth and heads = depth. The text input is
# SD3's conditioning width (4096: [CLIP-L | CLIP-G] zero-padded, or T5-XXL) and the
# pooled input SD3's (2048: CLIP-L 768 + CLIP-G 1280), so the same tiny model takes
# the stock CLIPLoader's output on a server.
SD3_TEXT_DIM, SD3_POOLED_DIM = 4096, 2048
SD3_DEPTH = 3
SD3_CONFIG = dict(
    patch_size=2, in_channels=16, out_channels=16, depth=SD3_DEPTH, adm_in_channels=SD3_POOLED_DIM,
    context_embedder_config={"target": "torch.nn.Linear",
                             "params": {"in_features": SD3_TEXT_DIM, "out_features": 64 * SD3_DEPTH}},
    pos_embed_max_size=64, num_patches=64 * 64, pos_embed_scaling_factor=None,
)
# SD3.5 medium-like: QK RMSNorm, and x_block.attn2 (image-only self-attention) in its first blocks.
SD35_MEDIUM_CONFIG = {**SD3_CONFIG, "qk_norm": "rms", "x_block_self_attn_layers": [0, 1]}


def build_sd3(path, config=SD3_CONFIG, seed=0) -> Path:
    """Save a tiny SD3 MMDiT (SD3_CONFIG, or SD35_MEDIUM_CONFIG) as fp32 safetensors."""
    import comfy.ldm.modules.diffusionmodules.mmdit as mmdit

    model, gen = _tiny(mmdit.MMDiT, config, seed)
    with torch.no_grad():  # a torch.empty buffer
        model.pos_embed.copy_(torch.randn(model.pos_embed.shape, generator=gen) * 0.02)
    return _save(model.state_dict(), path, torch.float32)


# CogVideoX: ComfyUI detects dim = norm1.linear's output / 6 and fixes head dim 64; the 2b
# positional table splits dim in thirds, so 3 heads (dim 192).
COGVIDEOX_CONFIG = dict(num_attention_heads=3, attention_head_dim=64, in_channels=16, out_channels=16,
                        time_embed_dim=64, text_embed_dim=TINY_TEXT_DIM, num_layers=3,
                        use_rotary_positional_embeddings=True)                      # 1.0, 5b-like (RoPE)
COGVIDEOX_2B_CONFIG = {**COGVIDEOX_CONFIG, "use_rotary_positional_embeddings": False,
                       "use_learned_positional_embeddings": True}                   # 1.0, 2b-like (positional table)
COGVIDEOX_15_CONFIG = {**COGVIDEOX_CONFIG, "patch_size_t": 2}                      # 1.5
COGVIDEOX_I2V_CONFIG = {**COGVIDEOX_CONFIG, "in_channels": 32}                     # image-to-video: + the image latent


def build_cogvideox(path, config=COGVIDEOX_CONFIG, seed=0) -> Path:
    """Save a tiny CogVideoX transformer (one of the COGVIDEOX_*CONFIG) as fp32 safetensors."""
    import comfy.ldm.cogvideo.model as cogvideo

    model, _ = _tiny(cogvideo.CogVideoXTransformer3DModel, config, seed)
    return _save(model.state_dict(), path, torch.float32)


# HunyuanVideo: ComfyUI's detection reads the widths from the weights, with 128-wide heads
# and RoPE axes (16, 56, 56); 1.0 has a 768-wide pooled (CLIP-L) input and guidance.
HUNYUAN_VIDEO_CONFIG = dict(in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=TINY_TEXT_DIM,
                            hidden_size=256, mlp_ratio=4.0, num_heads=2, depth=3, depth_single_blocks=1,
                            axes_dim=[16, 56, 56], theta=256, patch_size=[1, 2, 2], qkv_bias=True,
                            guidance_embed=True, byt5=False, meanflow=False, use_cond_type_embedding=False,
                            vision_in_dim=None, meanflow_sum=False)


# HunyuanVideo 1.5: a 32-channel latent with the image latent and a mask concatenated (65
# in), the text's type embedding, a vision input (what ComfyUI's config tells 1.5 by), no
# pooled input and no guidance embedding.
HUNYUAN_VIDEO_15_CONFIG = {**HUNYUAN_VIDEO_CONFIG, "in_channels": 65, "out_channels": 32, "vec_in_dim": None,
                           "guidance_embed": False, "use_cond_type_embedding": True, "vision_in_dim": 1152,
                           "meanflow_sum": True}


def build_hunyuan_video(path, config=HUNYUAN_VIDEO_CONFIG, seed=0) -> Path:
    """Save a tiny HunyuanVideo transformer (ComfyUI's class) as fp32 safetensors."""
    import comfy.ldm.hunyuan_video.model as hunyuan_video

    from concept_attention.demo.model import known_arguments

    # 0.3.75's parameters lack meanflow_sum
    model, _ = _tiny(hunyuan_video.HunyuanVideo, known_arguments(hunyuan_video.HunyuanVideoParams, config), seed)
    return _save(model.state_dict(), path, torch.float32)



# Qwen-Image: ComfyUI's detection reads only the depth and input channels (the widths
# are the full model's), so the tiny ones are built from their config with ComfyUI's
# own model config and classes (demo.model.build_from_config). Head dim 32 = the RoPE
# axes (8, 12, 12); the text width is the tiny text encoders'.
QWEN_IMAGE_CONFIG = dict(image_model="qwen_image", patch_size=2, in_channels=64, out_channels=16, num_layers=3,
                         attention_head_dim=32, num_attention_heads=2, joint_attention_dim=TINY_TEXT_DIM,
                         axes_dims_rope=(8, 12, 12))
# Qwen-Image-Edit 2511: reference latents by index, their modulation at t = 0.
QWEN_IMAGE_EDIT_CONFIG = {**QWEN_IMAGE_CONFIG, "default_ref_method": "index_timestep_zero"}


# Chroma: ComfyUI's detection fixes the approximator (in 64, out 3072, hidden 5120, 5
# layers), whose output must be the model's width: built from its config too. Head dim
# 128 = the RoPE axes; in_channels 64: the 16-channel latent in 2x2 patches.
CHROMA_CONFIG = dict(image_model="chroma", in_channels=64, out_channels=64, context_in_dim=TINY_TEXT_DIM,
                     hidden_size=128, mlp_ratio=4.0, num_heads=1, depth=3, depth_single_blocks=2,
                     axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, in_dim=64, out_dim=128,
                     hidden_dim=64, n_layers=2, txt_ids_dims=[], vec_in_dim=None)


# Chroma Radiance: pixel space (3 channels), 16-pixel patches, a small per-pixel NeRF head.
# Sequential text positions (Radiance from 2026-05 on); 0.3.75's Radiance has zero ones.
CHROMA_RADIANCE_CONFIG = {**CHROMA_CONFIG, "image_model": "chroma_radiance", "in_channels": 3, "out_channels": 3,
                          "patch_size": 16, "nerf_hidden_size": 16, "nerf_mlp_ratio": 2, "nerf_depth": 1,
                          "nerf_max_freqs": 8, "nerf_tile_size": 0, "nerf_final_head_type": "conv",
                          "nerf_embedder_dtype": torch.float32, "use_x0": False, "use_sequential_txt_ids": True}


def _chroma_classes():
    """{image_model: (model class, its params class)} of this host."""
    import comfy.ldm.chroma.model as chroma
    import comfy.ldm.chroma_radiance.model as radiance

    return {"chroma": (chroma.Chroma, chroma.ChromaParams),
            "chroma_radiance": (radiance.ChromaRadiance, radiance.ChromaRadianceParams)}


def chroma_config(config=CHROMA_CONFIG) -> dict:
    """CHROMA_CONFIG or CHROMA_RADIANCE_CONFIG as this host's model takes it (0.3.75's
    lacks txt_ids_dims, vec_in_dim and Radiance's later options)."""
    from concept_attention.demo.model import known_arguments

    _, params = _chroma_classes()[config["image_model"]]
    return {"image_model": config["image_model"], **known_arguments(params, config)}


def chroma_radiance_config() -> dict:
    return chroma_config(CHROMA_RADIANCE_CONFIG)


def build_chroma(path, config=None, seed=0) -> Path:
    """Save a tiny Chroma or Chroma Radiance (chroma_config(...)) as fp32 safetensors."""
    config = config or chroma_config()
    model, _ = _tiny(_chroma_classes()[config["image_model"]][0], config, seed)
    return _save(model.state_dict(), path, torch.float32)


# Z-Image and Lumina 2 (NextDiT): ComfyUI's detection fixes the heads, RoPE and FFN
# of both (it reads the width), so they are built from their config. Z-Image's
# modulation takes a 256-wide timestep vector: its width must be at least 256. Grouped
# keys and values (2 query heads, 1 key/value head); head dim 128 = the RoPE axes.
Z_IMAGE_CONFIG = dict(image_model="lumina2", patch_size=2, in_channels=16, dim=256, n_layers=3, n_refiner_layers=1,
                      n_heads=2, n_kv_heads=1, multiple_of=16, ffn_dim_multiplier=8.0 / 3.0, qk_norm=True,
                      cap_feat_dim=TINY_TEXT_DIM, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512], rope_theta=256.0,
                      z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32)
# Lumina 2: no caption or image padding, SiLU-fed modulation, timesteps in [0, 1].
LUMINA2_CONFIG = {**Z_IMAGE_CONFIG, "dim": 128, "axes_dims": [16, 24, 24], "axes_lens": [300, 512, 512],
                  "rope_theta": 10000.0, "ffn_dim_multiplier": 4.0, "z_image_modulation": False, "time_scale": 1.0,
                  "pad_tokens_multiple": None}


def build_z_image(path, config=Z_IMAGE_CONFIG, seed=0) -> Path:
    """Save a tiny NextDiT (Z_IMAGE_CONFIG or LUMINA2_CONFIG) as fp32 safetensors."""
    import comfy.ldm.lumina.model as lumina

    model, gen = _tiny(lumina.NextDiT, config, seed)
    with torch.no_grad():      # the learned pad tokens: torch.empty
        for name in ("cap_pad_token", "x_pad_token"):
            if hasattr(model, name):
                getattr(model, name).copy_(torch.randn(getattr(model, name).shape, generator=gen) * 0.02)
    return _save(model.state_dict(), path, torch.float32)


# Wan: ComfyUI's detection fixes the text width (4096) and a head width of 128, so the
# tiny ones are built from their config: width 64 in 2 heads of 32 (RoPE axes 12, 10,
# 10), 3 blocks, the tiny text width. wan21: 2.1 text-to-video; wan21_i2v: 2.1
# image-to-video (the image latent and mask concatenated, CLIP-vision tokens through
# img_emb); wan22_5b: the 5B TI2V (48 channels, the 2.2 VAE's 16 pixels per latent pixel);
# wan22_14b_i2v: Wan 2.2 14B image-to-video; wan21_fun_reference: a reference image's tokens before the video's.
WAN21_CONFIG = dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), in_dim=16, out_dim=16, dim=64,
                    ffn_dim=128, freq_dim=256, text_dim=TINY_TEXT_DIM, num_heads=2, num_layers=3, window_size=(-1, -1),
                    qk_norm=True, cross_attn_norm=True, eps=1e-6)
WAN21_I2V_CONFIG = {**WAN21_CONFIG, "model_type": "i2v", "in_dim": 36}
WAN22_5B_CONFIG = {**WAN21_CONFIG, "in_dim": 48, "out_dim": 48}
# Wan 2.2 14B image-to-video (each model of the pair): 2.1's layout with the image latent and mask
# concatenated (36 channels) and no CLIP-vision tokens, which ComfyUI runs as a 2.1 text-to-video model.
WAN22_14B_I2V_CONFIG = {**WAN21_CONFIG, "in_dim": 36}
# A Fun model with a reference image: its latent through ref_conv, before the video's tokens.
WAN21_FUN_REFERENCE_CONFIG = {**WAN21_CONFIG, "in_dim_ref_conv": 16}


def build_wan(path, config=WAN21_CONFIG, seed=0) -> Path:
    """Save a tiny Wan transformer (WAN21_CONFIG, WAN21_I2V_CONFIG or WAN22_5B_CONFIG) as fp32 safetensors."""
    import comfy.ldm.wan.model as wan

    return _save(_tiny(wan.WanModel, config, seed)[0].state_dict(), path, torch.float32)


def build_qwen_image(path, config=QWEN_IMAGE_CONFIG, seed=0) -> Path:
    """Save a tiny Qwen-Image transformer (QWEN_IMAGE_CONFIG or QWEN_IMAGE_EDIT_CONFIG) as fp32 safetensors."""
    import comfy.ldm.qwen_image.model as qwen_image

    return _save(_tiny(qwen_image.QwenImageTransformer2DModel, config, seed)[0].state_dict(), path, torch.float32)


def load_from_config(path, config: dict, expect=None):
    """A checkpoint built with ComfyUI's own model config for `config` (its constructor
    arguments and "image_model"), fp32, as its loader would place it."""
    import comfy.utils

    from concept_attention.demo.model import build_from_config

    model = build_from_config(comfy.utils.load_torch_file(str(path)), config, {"dtype": torch.float32})
    if expect is not None:
        assert model_kind(model) == expect, f"{path} detected as {model_kind(model)}, expected {expect}"
    return model


def build_cogvideox_clip(seed=0):
    """A real, tiny CogVideoX text encoder: ComfyUI's CogVideoX T5-XXL class at the
    tiny T5 width, with the real T5 tokenizer (padded to 226). cond: (1, 226, 64)."""
    import comfy.text_encoders.cogvideo as cogvideo_text

    from concept_attention.demo.model import small_text_encoder

    clip = small_text_encoder(cogvideo_text.cogvideo_te(dtype_t5=torch.float32), cogvideo_text.CogVideoXTokenizer,
                              {"t5xxl": T5_TINY})
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def load_with_stock_loader(path, expect=None):
    """A checkpoint through comfy.sd.load_diffusion_model (what UNETLoader does), fp32."""
    import comfy.sd

    model = comfy.sd.load_diffusion_model(str(path), model_options={"dtype": torch.float32})
    if expect is not None:
        assert model_kind(model) == expect, f"{path} detected as {model_kind(model)}, expected {expect}"
    return model


def build_sd3_clip(clip_l=True, clip_g=True, t5=True, seed=0):
    """A real, tiny SD3 `comfy.sd.CLIP` (ComfyUI's SD3ClipModel with the parts asked
    for, real tokenizers): CLIP-L and CLIP-G 64 wide with 3 layers (SD3 reads their
    penultimate layer); T5 must be 4096 wide, as SD3 concatenates its tokens after
    the CLIP part, but has one layer. cond: (1, 77 [+ 77], 4096)."""
    import comfy.text_encoders.sd3_clip as sd3_clip

    from concept_attention.demo.model import small_text_encoder

    small_clip = dict(hidden_size=TINY_TEXT_DIM, intermediate_size=128, num_attention_heads=2, num_hidden_layers=3,
                      projection_dim=TINY_TEXT_DIM)
    configs = {"clip_l": small_clip, "clip_g": small_clip,
               "t5xxl": dict(d_model=SD3_TEXT_DIM, d_ff=32, d_kv=16, num_heads=2, num_layers=1)}
    clip = small_text_encoder(sd3_clip.sd3_clip(clip_l=clip_l, clip_g=clip_g, t5=t5, dtype_t5=torch.float32),
                              sd3_clip.SD3Tokenizer, configs)
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def build_klein_clip(seed=0):
    """A real, tiny Klein text encoder: ComfyUI's Flux 2 text-encoder class around its
    Qwen 3 4B model at width 64 (28 layers, since Klein reads layers 9, 18 and 27),
    with the real Qwen tokenizer and chat template. cond: (1, 512, 192)."""
    import comfy.text_encoders.flux as flux_text

    from concept_attention.demo.model import small_text_encoder

    qwen = dict(hidden_size=KLEIN_WIDTH, intermediate_size=KLEIN_WIDTH, num_hidden_layers=28,
                num_attention_heads=2, num_key_value_heads=1)
    clip = small_text_encoder(flux_text.klein_te(), flux_text.KleinTokenizer, {"qwen3_4b": qwen})
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def build_qwen_image_clip(seed=0):
    """A real, tiny Qwen-Image text encoder: ComfyUI's Qwen-Image text-encoder class
    around its Qwen 2.5-VL model at width 64 with 2 layers, the real tokenizer and chat
    template. Its vision tower (what the edit encoder runs on the input image) is
    ComfyUI's at its fixed width 1280 but one block deep, so that an edit encodes in
    a fraction of a second. cond: (1, word tokens + 5, 64): the system prefix cropped."""
    import comfy.text_encoders.qwen_image as qwen_image_text

    from concept_attention.demo.model import small_text_encoder

    qwen = dict(hidden_size=TINY_TEXT_DIM, intermediate_size=TINY_TEXT_DIM, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1)
    clip = small_text_encoder(qwen_image_text.te(dtype_llama=torch.float32), qwen_image_text.QwenImageTokenizer,
                              {"qwen25_7b": qwen})
    vision = clip.cond_stage_model.qwen25_7b.transformer.visual
    vision.blocks = vision.blocks[:1]
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def build_hunyuan_video_15_clip(seed=0):
    """A real, tiny HunyuanVideo 1.5 text encoder: ComfyUI's class (HunyuanImage's Qwen
    2.5-VL encoder, without the ByT5 glyph stream) at width 64 with 4 layers (it reads the
    third from last), the real Qwen tokenizer and HunyuanVideo 1.5's chat template."""
    import comfy.text_encoders.hunyuan_image as hunyuan_image
    import comfy.text_encoders.hunyuan_video as hunyuan_video_text

    from concept_attention.demo.model import small_text_encoder

    qwen = dict(hidden_size=TINY_TEXT_DIM, intermediate_size=TINY_TEXT_DIM, num_hidden_layers=4,
                num_attention_heads=2, num_key_value_heads=1)
    clip = small_text_encoder(hunyuan_image.te(byt5=False, dtype_llama=torch.float32),
                              hunyuan_video_text.HunyuanVideo15Tokenizer, {"qwen25_7b": qwen})
    vision = clip.cond_stage_model.qwen25_7b.transformer.visual
    vision.blocks = vision.blocks[:1]
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def build_wan_clip(seed=0):
    """A tiny Wan text encoder: ComfyUI's umT5-XXL class (what Wan's CLIPLoader type builds)
    at the tiny T5 width. umT5's tokenizer ships only inside the checkpoint, so ComfyUI's
    umT5 tokenizer class reads another real SentencePiece model that ships with ComfyUI,
    Pile T5's (AuraFlow's): the words' pieces differ from umT5's, the template (the words at
    0, the end token, padding to 512) does not. cond: (1, 512, 64)."""
    import comfy.text_encoders.aura_t5
    import comfy.text_encoders.wan as wan_text

    from concept_attention.demo.model import small_text_encoder

    spiece = Path(comfy.text_encoders.aura_t5.__file__).parent / "t5_pile_tokenizer" / "tokenizer.model"
    clip = small_text_encoder(wan_text.te(dtype_t5=torch.float32), wan_text.WanT5Tokenizer,
                              {"umt5xxl": {**T5_TINY, "vocab_size": 32128}},
                              tokenizer_data={"spiece_model": spiece.read_bytes()})
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def build_chroma_clip(seed=0):
    """A real, tiny Chroma text encoder: ComfyUI's PixArt T5-XXL class (what Chroma's
    CLIPLoader type builds) at the tiny T5 width, the real T5 tokenizer, unpadded.
    cond: (1, word tokens + 1, 64)."""
    import comfy.text_encoders.pixart_t5 as pixart_t5

    from concept_attention.demo.model import small_text_encoder

    clip = small_text_encoder(pixart_t5.pixart_te(dtype_t5=torch.float32), pixart_t5.PixArtTokenizer,
                              {"t5xxl": T5_TINY})
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def build_z_image_clip(seed=0):
    """A real, tiny Z-Image text encoder: ComfyUI's Z-Image text-encoder class around its
    Qwen 3 4B model at width 64 (3 layers: it reads the second to last), with the real
    tokenizer and chat template. cond: (1, word tokens + 8, 64)."""
    import comfy.text_encoders.z_image as z_image_text

    from concept_attention.demo.model import small_text_encoder

    qwen = dict(hidden_size=TINY_TEXT_DIM, intermediate_size=TINY_TEXT_DIM, num_hidden_layers=3,
                num_attention_heads=2, num_key_value_heads=1)
    clip = small_text_encoder(z_image_text.te(dtype_llama=torch.float32), z_image_text.ZImageTokenizer,
                              {"qwen3_4b": qwen})
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def build_lumina2_clip(seed=0):
    """A tiny Lumina 2 text encoder: ComfyUI's Lumina 2 class around its Gemma 2 2B model
    at width 64 (3 layers: it reads the second to last). Gemma's tokenizer ships only
    inside the checkpoint, so ComfyUI's Gemma tokenizer class reads another real
    SentencePiece model that ships with ComfyUI, Pile T5's (AuraFlow's): the words'
    pieces differ from Gemma's, the template (a start token, the words, no end token)
    does not. cond: (1, 1 + word pieces, 64)."""
    import comfy.text_encoders.lumina2 as lumina2_text

    from concept_attention.demo.model import small_text_encoder

    gemma = dict(hidden_size=TINY_TEXT_DIM, intermediate_size=TINY_TEXT_DIM, num_hidden_layers=3,
                 num_attention_heads=2, num_key_value_heads=1)
    spiece = Path(lumina2_text.__file__).parent / "t5_pile_tokenizer" / "tokenizer.model"
    clip = small_text_encoder(lumina2_text.te(dtype_llama=torch.float32), lumina2_text.LuminaTokenizer,
                              {"gemma2_2b": gemma}, tokenizer_data={"spiece_model": spiece.read_bytes()})
    _fill_all_(clip.cond_stage_model, seed)
    return clip


def _fill_all_(module, seed):
    """comfy.ops layers skip init: every parameter is filled, by name order, except
    SDClipModel's real logit_scale constant."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in sorted(module.named_parameters()):
        if not name.endswith("logit_scale"):
            _fill_(p, name.rsplit(".", 1)[-1], gen)


def model_kind(model) -> str:
    """Name of the supported_models class ComfyUI detected, e.g. 'Flux' or 'FluxSchnell'."""
    return type(model.model.model_config).__name__


def build_flux_clip(seed=0):
    """A real, tiny `comfy.sd.CLIP` for Flux (CLIP-L + T5-XXL classes, real tokenizers).

    cond: (1, >=256, 64) from T5; pooled: (1, 64) from CLIP-L.
    `clip.tokenize(text, return_word_ids=True)` gives {"l": ..., "t5xxl": ...}, each a
    list of batches of (token_id, weight, word_id); without word ids (token_id, weight).
    "dragon" -> t5xxl [[(14580, 1.0, 1), (1, 1.0, 0), (0, 1.0, 0), ...]] (256 long; end 1
    and pad 0 carry id 0), l [[(49406, 1.0, 0), (5471, 1.0, 1), (49407, 1.0, 0), ...]] (77).
    In ComfyUI 0.33 a word id numbers a weighted segment, not a word: "a red dragon" is
    all id 1, "a (red:1.2) dragon" gives ids 1, 1, 2, 3 (t5 tokens "▁", "a", "red", "dragon").
    """
    from concept_attention.demo.model import build_clip

    clip = build_clip({"clip_l_model_config": CLIP_L_TINY, "t5xxl_model_config": T5_TINY})
    _fill_all_(clip.cond_stage_model, seed)
    return clip


# ---------------------------------------------------------------------------
# Checkpoints for a running server, loaded by ComfyUI's stock loader nodes.

# CLIP-L width: what the stock CLIPLoader(type="stable_diffusion") produces (cond and pooled).
CLIP_L_DIM = 768
FLUX1_CLIP_L_CONFIG = {**FLUX1_CONFIG, "context_in_dim": CLIP_L_DIM, "vec_in_dim": CLIP_L_DIM}
FLUX2_CLIP_L_CONFIG = {**FLUX2_CONFIG, "context_in_dim": CLIP_L_DIM}

# Full-size CLIP-L text model: the stock loaders hard-code its config, so it cannot be shrunk.
CLIP_L_CONFIG = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
)


def build_flux1_for_clip_l(path, seed=0):
    """Tiny Flux 1 dev whose text inputs are CLIP-L wide (768), to pair with build_clip_l()."""
    return build_flux(path, guidance=True, seed=seed, config=FLUX1_CLIP_L_CONFIG)


def build_server_models(root, flux_name, sd3_name, flux2_name, cogvideox_name, clip_name):
    """The tiny models a server's stock loaders take, in the folders under `root`:
    diffusion_models/ a Flux 1 dev, a Flux 2 and a CogVideoX for CLIP-L, and an SD3;
    text_encoders/ a CLIP-L; vae_approx/ taef1, taesd3, taef2 and video TAEs (taehv, lighttaew2_2, lighttaehy1_5)."""
    root = Path(root)
    build_flux1_for_clip_l(root / "diffusion_models" / flux_name)
    build_flux(root / "diffusion_models" / flux2_name, guidance=True, config=FLUX2_CLIP_L_CONFIG)
    build_sd3(root / "diffusion_models" / sd3_name)
    if _has_cogvideox():
        build_cogvideox(root / "diffusion_models" / cogvideox_name, {**COGVIDEOX_CONFIG, "text_embed_dim": CLIP_L_DIM})
    build_taehv(root / "vae_approx" / "taehv.safetensors")        # CogVideoX's VAE, and Qwen-Image's and Wan 2.1's
    build_taehv(root / "vae_approx" / "lighttaew2_2.safetensors", latent_channels=48)           # Wan 2.2's (16 px)
    build_taehv(root / "vae_approx" / "lighttaehy1_5.safetensors", latent_channels=32)     # HunyuanVideo 1.5's
    build_clip_l(root / "text_encoders" / clip_name)
    build_taesd(root / "vae_approx")
    build_taesd(root / "vae_approx", vae_name="taesd3")
    build_taesd(root / "vae_approx", vae_name="taef2", latent_channels=128)


def _has_cogvideox() -> bool:
    import importlib.util
    return importlib.util.find_spec("comfy.ldm.cogvideo") is not None


def build_taehv(path, seed=0, latent_channels=16):
    """Save a random taehv (ComfyUI's TAEHV) in fp32, so that the stock VAELoader applies
    no HunyuanVideo scaling: 16 latent channels, a video TAE with the 4x temporal, 8x
    spatial compression of CogVideoX's and Wan 2.1's VAEs; 48 (Wan 2.2) and 32
    (HunyuanVideo 1.5): 4x temporal, 16x spatial."""
    import comfy.taesd.taehv

    model = comfy.taesd.taehv.TAEHV(latent_channels=latent_channels)
    _fill_all_(model, seed)
    return _save(model.state_dict(), path, torch.float32)


def build_clip_l(path, seed=0):
    """Save a randomly initialised Hugging Face CLIP-L text model as fp16 safetensors (~247 MB).

    Loads with the stock CLIPLoader, type "stable_diffusion"; cond (1, 77, 768), pooled (1, 768).
    Deterministic in `seed`; the global torch RNG is left as it was.
    """
    import transformers

    config = transformers.CLIPTextConfig(**CLIP_L_CONFIG)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.CLIPTextModelWithProjection(config)
    sd = model.state_dict()
    sd.pop("text_model.embeddings.position_ids", None)
    return _save(sd, path, torch.float16)


def build_taesd_file(path, seed=0) -> Path:
    """A random taef1 in one file, as ComfyUI's VAE class reads one (its encoder and decoder
    under taesd_encoder. and taesd_decoder., Flux 1's latent scale and shift): a VAE file
    for the commands that take one (python -m evaluation --vae)."""
    import comfy.utils

    directory = Path(path).parent / "taesd_parts"
    encoder, decoder = build_taesd(directory, seed)
    sd = {**{f"taesd_encoder.{k}": v for k, v in comfy.utils.load_torch_file(str(encoder)).items()},
          **{f"taesd_decoder.{k}": v for k, v in comfy.utils.load_torch_file(str(decoder)).items()},
          "vae_scale": torch.tensor(0.3611), "vae_shift": torch.tensor(0.1159)}
    return _save(sd, path, torch.float32)


def build_taesd(directory, seed=0, vae_name="taef1", latent_channels=16):
    """Save a random TAESD as {vae_name}_{encoder,decoder}.safetensors: "taef1" for
    Flux 1 and "taesd3" for SD3 (16 latent channels), "taef2" for Flux 2 (128).

    The stock VAELoader lists it as `vae_name` when both files are in a vae_approx folder.
    Returns (encoder path, decoder path).
    """
    import comfy.taesd.taesd

    taesd = comfy.taesd.taesd.TAESD(latent_channels=latent_channels)
    gen = torch.Generator().manual_seed(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for part, module in (("encoder", taesd.taesd_encoder), ("decoder", taesd.taesd_decoder)):
        # comfy.ops layers skip init (torch.empty), so every parameter is filled, in name order.
        for name, p in sorted(module.named_parameters()):
            _fill_(p, name.rsplit(".", 1)[-1], gen)
        paths.append(_save(module.state_dict(), directory / f"{vae_name}_{part}.safetensors", torch.float16))
    return tuple(paths)
