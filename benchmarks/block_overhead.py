"""The capture's compute cost per joint-attention block, at each family's real width.

For each family, ComfyUI's own model class is built at the width of the full model
with two joint-attention blocks (random bf16 weights: values do not change the cost),
and one sampler step at the real token count is run with KSampler and with the
ConceptAttention Sampler for 1, 5 and 20 concepts, with the maps kept at block 0
(block 0 captured, block 1 untouched) and at block 1 (block 0 only carries the concept
stream on to block 1, which is captured); and for 5 concepts at block 0 with the
cross-attention baseline recorded too (the capture nodes' cross_attention_baseline). On Flux 1 dev with the default layers 15-18,
blocks 0-14 carry and 15-18 are captured; its 38 single blocks are untouched.

Two measures, both medians of `--repeats` interleaved runs (plain, then every capture,
again and again, so that drift in the machine's speed hits all alike):
- the capture's own time per block, timed around its code during the runs (the block
  patch's time less the real block's, plus the attention tap's inside it; CogVideoX:
  its pre-block hook and tap): a captured block's from the first setting, a carrying
  block's as the second less the first. Precise to a few ms.
- end to end: the second setting's whole step against KSampler's, which also shows any
  slowdown of the model's own work (caches, memory); its noise on this machine is a few
  per cent of a run.
Shares are of one block's time: half of KSampler's (which includes the embedders and
the final layer, about 2 % of it).

    ~/comfy/venv/bin/python -m benchmarks.block_overhead [--repeats 5] [--families flux1,sd35_large,flux2,qwen_image,chroma,z_image,cogvideox_5b,hunyuan_video,wan_14b]
    ~/comfy/venv/bin/python -m benchmarks.block_overhead --families wan_14b --latent-frames 1 --repeats 1   # full width, one latent frame
    ~/comfy/venv/bin/python -m benchmarks.block_overhead --scale 0.125 --repeats 1    # a quick check of the script

Attention is PyTorch's scaled_dot_product_attention (`--attention pytorch`, what
ComfyUI uses on a GPU). ComfyUI's CPU default (`--attention host`, split attention)
materialises the fp32 score matrix, 2.6 GB per block for SD3.5 large at 1024²; its
page faults make a block's time swing by a third between runs, which drowns the
capture's cost.
"""
import argparse
import statistics
import time

from harness import host

CONCEPT_COUNTS = (1, 5, 20)


def families(scale: float, latent_frames: int = None) -> dict:
    """name -> (unet_config with two blocks (MMDiT: its full depth, which sets its width), block list attribute, latent shape, text tokens,
    text width, pooled width or None, what it stands for). `scale` shrinks the width
    (and the image) for a quick run."""
    def width(heads, head_dim):
        return max(1, round(heads * scale)), head_dim

    def video(frames, height, width):
        """A video latent of `frames` latent frames (--latent-frames overrides) of height x width, scaled."""
        frames = latent_frames or max(2, round(frames * scale))
        return 1, 16, frames, 2 * max(2, round(height * scale)), 2 * max(2, round(width * scale))

    side = max(8, round(128 * scale))                       # 1024 px -> 128 latent pixels
    f_heads, f_dim = width(24, 128)
    s_depth = max(2, round(38 * scale))
    x_heads, x_dim = width(48, 128)
    c_heads, c_dim = width(48, 64)
    z_heads, z_dim = width(30, 128)
    w_heads, w_dim = width(40, 128)
    frames_text = (f"{latent_frames * 4 - 3} frame{'s' if latent_frames > 1 else ''}" if latent_frames
                   else "81 frames")
    return {
        "flux1": (dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=768, context_in_dim=4096,
                       hidden_size=f_heads * f_dim, mlp_ratio=4.0, num_heads=f_heads, depth=2, depth_single_blocks=0,
                       axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True,
                       txt_ids_dims=[]),
                  "double_blocks", (1, 16, side, side), 512, 4096, 768,
                  f"Flux 1 dev: hidden {f_heads * f_dim}, {f_heads} heads, 1024x1024 ({(side // 2) ** 2} image tokens)"),
        "sd35_large": (dict(patch_size=2, in_channels=16, out_channels=16, depth=s_depth, adm_in_channels=2048,
                            context_embedder_config={"target": "torch.nn.Linear",
                                                     "params": {"in_features": 4096, "out_features": 64 * s_depth}},
                            pos_embed_max_size=192, num_patches=192 * 192, pos_embed_scaling_factor=None,
                            qk_norm="rms"),
                       "joint_blocks", (1, 16, side, side), 154, 4096, 2048,
                       f"SD3.5 large: hidden {64 * s_depth}, {s_depth} heads, 1024x1024 ({(side // 2) ** 2} image tokens)"),
        "flux2": (dict(image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None,
                       context_in_dim=15360, hidden_size=x_heads * x_dim, mlp_ratio=3.0, num_heads=x_heads, depth=2,
                       depth_single_blocks=0, axes_dim=[32, 32, 32, 32], theta=2000, patch_size=1, qkv_bias=False,
                       guidance_embed=True, txt_ids_dims=[3], global_modulation=True, mlp_silu_act=True,
                       ops_bias=False, default_ref_method="index", ref_index_scale=10.0),
                  "double_blocks", (1, 128, side // 2, side // 2), 512, 15360, None,
                  f"Flux 2 dev: hidden {x_heads * x_dim}, {x_heads} heads, 1024x1024 ({(side // 2) ** 2} image tokens)"),
        "qwen_image": (dict(image_model="qwen_image", in_channels=64, out_channels=16, num_layers=2,
                            attention_head_dim=f_dim, num_attention_heads=f_heads, joint_attention_dim=3584),
                       "transformer_blocks", (1, 16, side, side), 128, 3584, None,
                       f"Qwen-Image: hidden {f_heads * f_dim}, {f_heads} heads, 1024x1024 ({(side // 2) ** 2} image tokens)"),
        "chroma": (dict(image_model="chroma", in_channels=64, out_channels=64, context_in_dim=4096,
                        hidden_size=f_heads * f_dim, mlp_ratio=4.0, num_heads=f_heads, depth=2, depth_single_blocks=0,
                        axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, in_dim=64,
                        out_dim=f_heads * f_dim, hidden_dim=5120, n_layers=5, txt_ids_dims=[], vec_in_dim=None),
                   "double_blocks", (1, 16, side, side), 512, 4096, None,
                   f"Chroma: hidden {f_heads * f_dim}, {f_heads} heads, 1024x1024 ({(side // 2) ** 2} image tokens)"),
        # No refiner layers: they run once per call on the caption or the image alone, not per captured block.
        "z_image": (dict(image_model="lumina2", patch_size=2, in_channels=16, dim=z_heads * z_dim, n_layers=2,
                         n_refiner_layers=0, n_heads=z_heads, n_kv_heads=z_heads, multiple_of=256,
                         ffn_dim_multiplier=8.0 / 3.0, qk_norm=True, cap_feat_dim=2560, axes_dims=[32, 48, 48],
                         axes_lens=[1536, 512, 512], rope_theta=256.0, z_image_modulation=True, time_scale=1000.0,
                         pad_tokens_multiple=32),
                    "layers", (1, 16, side, side), 128, 2560, None,
                    f"Z-Image: hidden {z_heads * z_dim}, {z_heads} heads, 1024x1024 ({(side // 2) ** 2} image tokens)"),
        "cogvideox_5b": (dict(image_model="cogvideox", num_attention_heads=c_heads, attention_head_dim=c_dim,
                              in_channels=16, out_channels=16, time_embed_dim=512, text_embed_dim=4096, num_layers=2,
                              patch_size=2, use_rotary_positional_embeddings=True,
                              use_learned_positional_embeddings=False),
                         "blocks", video(13, 30, 45), 226, 4096, None,
                         f"CogVideoX 5b: hidden {c_heads * c_dim}, {c_heads} heads, "
                         f"{frames_text if latent_frames else '49 frames'} 480x720"),
        # 81 frames at 480x832: 21 latent frames of 60x104, 2x2 patches (32,760 tokens at full size).
        "hunyuan_video": (dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=768,
                               context_in_dim=4096, hidden_size=f_heads * f_dim, mlp_ratio=4.0, num_heads=f_heads,
                               depth=2, depth_single_blocks=0, axes_dim=[16, 56, 56], theta=256, patch_size=[1, 2, 2],
                               qkv_bias=True, guidance_embed=True, byt5=False, meanflow=False,
                               use_cond_type_embedding=False, vision_in_dim=None, meanflow_sum=False),
                          "double_blocks", video(21, 30, 52), 256, 4096, 768,
                          f"HunyuanVideo 1.0: hidden {f_heads * f_dim}, {f_heads} heads, {frames_text} 480x832"),
        # Wan 14B (2.1, and each model of 2.2's pair), the same video; umT5 text padded to 512.
        "wan_14b": (dict(image_model="wan2.1", model_type="t2v", patch_size=(1, 2, 2), in_dim=16, out_dim=16,
                         dim=w_heads * w_dim, ffn_dim=max(1, round(13824 * scale)), freq_dim=256, text_dim=4096,
                         num_heads=w_heads, num_layers=2, window_size=(-1, -1), qk_norm=True, cross_attn_norm=True,
                         eps=1e-6),
                    "blocks", video(21, 30, 52), 512, 4096, None,
                    f"Wan 14B (cross-attention): hidden {w_heads * w_dim}, {w_heads} heads, {frames_text} 480x832"),
    }


# The families() entries of families an older ComfyUI may lack (hooks.UNAVAILABLE's names).
FAMILY_OF = {"cogvideox_5b": "CogVideoX", "hunyuan_video": "HunyuanVideo", "wan_14b": "Wan"}


def with_blocks(unet_config: dict, count: int) -> dict:
    """unet_config with `count` blocks (MMDiT: its width follows its depth)."""
    if "context_embedder_config" in unet_config:
        embedder = {"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 64 * count}}
        return {**unet_config, "depth": count, "context_embedder_config": embedder}
    # NextDiT (lumina2) counts its layers in n_layers; Chroma's n_layers is its modulation approximator's depth.
    key = "num_layers" if "num_layers" in unet_config else "n_layers" if unet_config.get("image_model") == "lumina2" \
        else "depth"
    return {**unet_config, key: count}


def sampling_inputs(tokens: int, text_width: int, pooled_width, latent_shape: tuple) -> tuple:
    """(positive, negative, latent) for a family of families(): random prompt tokens,
    zero negative, guidance 3.5, a pooled vector where the family takes one, an empty latent."""
    import torch

    extra = {"guidance": 3.5, **({"pooled_output": torch.randn(1, pooled_width)} if pooled_width else {})}
    return ([[torch.randn(1, tokens, text_width), extra]], [[torch.zeros(1, tokens, text_width), extra]],
            {"samples": torch.zeros(latent_shape)})


def build(unet_config: dict, blocks: str, kept: int = 2, device: str = "cpu"):
    """A ModelPatcher of ComfyUI's model for unet_config with its first `kept` blocks in
    `blocks` (None: all), built on the meta device, filled on `device` with random bf16
    weights (fast on a GPU), and left on the CPU for ComfyUI to load onto `device` with
    its own memory accounting, as a loaded checkpoint would be."""
    import comfy.model_detection
    import comfy.model_patcher
    import torch

    model_config = comfy.model_detection.model_config_from_unet_config(unet_config, {})
    if model_config is None:
        raise SystemExit(f"this ComfyUI has no model for {unet_config.get('image_model', 'MMDiT')}")
    model_config.set_inference_dtype(torch.bfloat16, None)
    model = model_config.get_model({}, "", device="meta")
    dm = model.diffusion_model
    if kept is not None:
        # MMDiT's width is 64 x its depth: build the depth, keep the first (not final) blocks.
        setattr(dm, blocks, torch.nn.ModuleList(list(getattr(dm, blocks))[:kept]))
    dm.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, tensor in [*dm.named_parameters(), *dm.named_buffers()]:
            if tensor.is_floating_point():
                if tensor.ndim > 1 or "bias" in name:
                    tensor.normal_(0, 0.02, generator=gen)
                else:
                    tensor.fill_(1)
    dm.to("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device(device), offload_device=torch.device("cpu"))


# The parts of a captured block's work that parts() times: (module, function, what it is).
PARTS = (("maths", "unrotate_pairs", "image queries before RoPE, in fp32 (cross-attention baseline)"),
         ("maths", "output_space_scores", "output-space scores (image outputs to fp32, dot products)"),
         ("maths", "cross_attention_scores", "cross-attention scores"),
         ("call", "attention_pytorch", "the concepts' attention over [concepts, image]"))


class OwnTime:
    """While active, adds up the wall time spent in the capture's own code (here, in
    the benchmark only): around each block, ConceptBlockPatch's time less the real
    block's, plus the concept step inside the block's attention (ModelCall.on_attention);
    for a family with block hooks, the hook's preparation (ModelCall.prepare).
    `parts` adds up the time of each function in PARTS."""

    def __init__(self):
        from concept_attention.analysis import maths
        from concept_attention.hooks import call, capture
        self.seconds = 0.0
        self.parts = {name: 0.0 for _, name, _ in PARTS}
        self.patches = [(capture.ConceptBlockPatch, "__call__", self._timed(capture.ConceptBlockPatch.__call__, 1)),
                        (capture.ConceptBlockPatch, "_run_block", self._timed(capture.ConceptBlockPatch._run_block, -1)),
                        (call.ModelCall, "on_attention", self._timed(call.ModelCall.on_attention, 1)),
                        (call.ModelCall, "prepare", self._timed_prepare(call.ModelCall.prepare)),
                        # A cross-attention family's (Wan's) own steps
                        (call.CrossAttentionCall, "on_attention", self._timed(call.CrossAttentionCall.on_attention, 1)),
                        (call.CrossAttentionCall, "prepare", self._timed_prepare(call.CrossAttentionCall.prepare))]
        for where, name, _ in PARTS:
            module = maths if where == "maths" else call
            self.patches.append((module, name, self._timed(getattr(module, name), 0, name)))

    def _timed_prepare(self, prepare):
        """Inside a ConceptBlockPatch (block patches) prepare is already counted; from a block hook it is not."""
        def timed(call, *args):
            return self._timed(prepare, 0 if call.family.block_patches else 1)(call, *args)
        return timed

    def _timed(self, function, sign, part=None):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                self.seconds += sign * seconds
                if part is not None:
                    self.parts[part] += seconds
        return timed

    def __enter__(self):
        self.saved = [(owner, name, getattr(owner, name)) for owner, name, _ in self.patches]
        for owner, name, replacement in self.patches:
            setattr(owner, name, replacement)
        return self

    def __exit__(self, *exc):
        for owner, name, original in self.saved:
            setattr(owner, name, original)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each, interleaved; medians count")
    parser.add_argument("--families",
                        default="flux1,sd35_large,flux2,qwen_image,chroma,z_image,cogvideox_5b,hunyuan_video,wan_14b")
    parser.add_argument("--scale", type=float, default=1.0, help="width and image scale (1: the real models)")
    parser.add_argument("--latent-frames", type=int,
                        help="video families: this many latent frames instead of the video's (fewer tokens, to fit "
                             "a small machine's time; the capture's share is then larger than at the full length)")
    parser.add_argument("--attention", choices=("pytorch", "host"), default="pytorch",
                        help="pytorch: scaled_dot_product_attention; host: ComfyUI's default for this machine")
    opts = parser.parse_args()
    # Read when ComfyUI's attention module is imported.
    host.prepare(use_pytorch_cross_attention=opts.attention == "pytorch")

    import comfy.ldm.modules.attention
    import nodes as comfy_nodes
    import torch

    from benchmarks import measure
    from concept_attention import hooks
    from concept_attention.analysis.data import ConceptSet
    from concept_attention.nodes.sampler import ConceptAttentionSampler

    print(f"ComfyUI {host.comfyui_version(host.find_comfyui())}, CPU ({torch.get_num_threads()} threads), bf16, "
          f"{comfy.ldm.modules.attention.optimized_attention.__name__}, two blocks, one euler step, cfg 1, batch 1, "
          f"medians of {opts.repeats} interleaved runs, {time.strftime('%Y-%m-%d')}\n")
    print("| family | model | block s | concepts | captured block: own time | captured, with the cross-attention "
          "baseline | carrying block: own time | end to end, carry + capture |")
    print("|---|---|---|---|---|---|---|---|")
    table = families(opts.scale, opts.latent_frames)
    breakdown = {}
    for name in opts.families.split(","):
        unet_config, blocks, latent_shape, tokens, text_width, pooled_width, what = table[name]
        family = FAMILY_OF.get(name)
        if family in hooks.UNAVAILABLE:
            print(f"| {name} | {hooks.UNAVAILABLE[family]} |" + " |" * 6)
            continue
        model = build(unet_config, blocks)
        positive, negative, latent = sampling_inputs(tokens, text_width, pooled_width, latent_shape)
        words = [f"concept{i}" for i in range(max(CONCEPT_COUNTS))]
        concept_sets = {c: ConceptSet(words=tuple(words[:c]), embeddings=torch.randn(c, text_width))
                        for c in CONCEPT_COUNTS}
        # (concepts, captured block, with the cross-attention baseline)
        own = {**{(c, layer, False): [] for c in CONCEPT_COUNTS for layer in (0, 1)}, (5, 0, True): []}
        parts = {name: [] for _, name, _ in PARTS}          # of a captured block, 5 concepts, with the baseline

        def plain():
            comfy_nodes.common_ksampler(model, 0, 1, 1.0, "euler", "simple", positive, negative, latent)

        def captured(count, layer, baseline):
            def run():
                with OwnTime() as clock:
                    out = ConceptAttentionSampler.execute(model, 0, 1, 1.0, "euler", "simple", positive, negative,
                                                          latent, 1.0, concept_sets[count], str(layer), "all",
                                                          cross_attention_baseline=baseline)
                own[count, layer, baseline].append(clock.seconds)
                if baseline:
                    for part, seconds in clock.parts.items():
                        parts[part].append(seconds)
                return out
            return run

        runs = {"plain": plain, **{key: captured(*key) for key in own}}
        runs["plain"]()                                     # warm-up: loads the model, builds caches
        for key in own:
            capture = runs[key]().args[1]
            layer = key[1]
            if capture.error or capture.layers != (layer,) or not capture.steps:
                raise SystemExit(f"{name}: the capture recorded nothing ({capture.error or 'no step'})")
        for times in (*own.values(), *parts.values()):
            times.clear()
        medians = measure.interleaved(runs, opts.repeats)
        block = medians["plain"] / 2

        def share(seconds):
            return f"{1000 * seconds:.0f} ms ({100 * seconds / block:.1f}%)"

        for count in CONCEPT_COUNTS:
            captured_block = statistics.median(own[count, 0, False])
            carrying_block = statistics.median(own[count, 1, False]) - captured_block
            baseline = share(statistics.median(own[count, 0, True])) if (count, 0, True) in own else ""
            print(f"| {name} | {what} | {block:.2f} | {count} | {share(captured_block)} | {baseline} | "
                  f"{share(carrying_block)} | {measure.extra(medians[count, 1, False], medians['plain'])} of 2 blocks |",
                  flush=True)
        breakdown[name] = {part: statistics.median(times) for part, times in parts.items()}
        breakdown[name]["total"] = statistics.median(own[5, 0, True])
    print("\nWhere a captured block's own time goes, 5 concepts, with the cross-attention baseline, ms (the rest: "
          "the concept stream's layers, selecting and joining keys and values, bookkeeping)\n")
    print("| part | " + " | ".join(breakdown) + " |")
    print("|---|" + "---|" * len(breakdown))
    for _, part, what in PARTS:
        print(f"| {what} | " + " | ".join(f"{1000 * times[part]:.0f}" for times in breakdown.values()) + " |")
    print("| all of the capture's own time | " + " | ".join(f"{1000 * t['total']:.0f}" for t in breakdown.values()) + " |")


if __name__ == "__main__":
    main()
