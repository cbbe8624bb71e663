"""SD3, SD3.5 medium and SD3.5 large: ComfyUI's MMDiT
(comfy.ldm.modules.diffusionmodules.mmdit).

Concepts run through each JointBlock's context_block, the text stream's weights:
pre_attention (adaLN modulation, norm1, qkv, ln_q/ln_k) with the block's own
conditioning vector c (timestep + pooled text, as the reference's SD3 code does),
attention over [concepts, image tokens], then post_attention, except in the last
block, whose context block is pre_only (its maps still count). The real block runs
unchanged; its joint attention is tapped through a per-block attention override.
SD3.5 medium's x_block.attn2 calls the attention function a second time with the
same options, over the image tokens alone: the joint call is the one whose length
is text + image. Positions are absolute (pos_embed on the image tokens); concepts
carry none.
"""
import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
import comfy.patcher_extension
import comfy.text_encoders.sd3_clip
import torch
from comfy.ldm.modules.attention import attention_pytorch

from .capture import (KEY, CaptureSpec, ModelCall, image_grid, image_pixels, missing_joint_attention, patch_blocks,
                      record_model_call, with_attention_tap)
from .text import TextEncoding

# MMDiT has no DIFFUSION_MODEL wrapper; APPLY_MODEL runs once per model call (t is sigma there).
APPLY_MODEL = comfy.patcher_extension.WrappersMP.APPLY_MODEL
NAME = "SD3"
LATENT_DOWNSCALE = 8  # pixels per latent pixel (the SD3 VAE's downscale)


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, mmdit.MMDiT)


def layer_count(diffusion_model) -> int:
    return len(diffusion_model.joint_blocks)


def default_layers(count: int) -> tuple:
    # Every joint block, as the reference's SD3 code averages over all layers.
    return tuple(range(count))


def patch_size(diffusion_model) -> int:
    return diffusion_model.patch_size


def max_patches(diffusion_model):
    """Patches a side of the position table (SD3.5 large: 192, 3072 px); None without one."""
    return diffusion_model.pos_embed_max_size if diffusion_model.pos_embed is not None else None


def context_width(diffusion_model) -> int:
    return diffusion_model.context_embedder.in_features


def text_encoding(clip):
    """Where concept tokens sit in this family's conditioning, or None for another
    text encoder. SD3's conditioning is [CLIP-L | CLIP-G] features (zero-padded to
    4096) for the 77 CLIP tokens, then the T5 tokens; the concept vector comes from
    the CLIP part (as the reference), or from T5 when the loader gave only T5."""
    encoder = clip.cond_stage_model
    if not isinstance(encoder, comfy.text_encoders.sd3_clip.SD3ClipModel):
        return None
    present = [name for name, part in (("CLIP-L", encoder.clip_l), ("CLIP-G", encoder.clip_g), ("T5-XXL", encoder.t5xxl))
               if part is not None]
    clips = [name for name in present if name.startswith("CLIP")]
    stream = ("l" if encoder.clip_l is not None else "g") if clips else "t5xxl"
    part = " + ".join(clips) if clips else "T5-XXL"
    return TextEncoding(family=NAME, stream=stream,
                        description=f"SD3 text encoder ({', '.join(present)}): the {part} tokens")


class _Call(ModelCall):
    """The SD3 concept stream of one model call; it starts at the first block, where
    the prompt tokens give the device and dtype the blocks run in."""

    def __init__(self, dm, spec: CaptureSpec, rows, x):
        super().__init__(spec, rows, x.device, image_grid(x, dm.patch_size), image_pixels(x, spec))
        self.dm = dm

    def start_stream(self, text: torch.Tensor):
        """The concepts through the model's own text input layers, as MMDiT.forward
        takes the prompt. text: the first block's prompt tokens [B, T, hidden]."""
        embeddings = self.spec.concepts.embeddings.to(device=text.device, dtype=text.dtype)
        embeddings = embeddings.unsqueeze(0).expand(self.row_count, -1, -1)
        if self.dm.context_processor is not None:
            embeddings = self.dm.context_processor(embeddings)
        self.stream = self.dm.context_embedder(embeddings)                     # [R, C, hidden]


def advance_joint_block(index: int, call: _Call, args: dict, run):
    """Run joint block `index` with its joint attention tapped, and move the concept
    stream through the block's context_block beside it."""
    if call.stream is None:
        call.start_stream(args["txt"])
    block = call.dm.joint_blocks[index]
    context_block, heads = block.context_block, block.x_block.attn.num_heads
    rows = call.rows
    (q, k, v), intermediates = context_block.pre_attention(call.stream, args["vec"][rows])   # each [R, C, H * D]
    text_len = args["txt"].shape[1]
    joint_len = text_len + args["img"].shape[1]
    concept_out = []

    def on_attention(q_all, k_all, v_all, out):
        # q_all, k_all, v_all, out: [B, text + image, H * D], the prompt first.
        if q_all.shape[1] != joint_len:        # SD3.5 medium's attn2, over the image tokens alone
            return
        # The joined keys and values live only for this call, not while the scores are taken.
        concept_out.append(attention_pytorch(q, torch.cat((k, k_all[rows, text_len:]), dim=1),
                                             torch.cat((v, v_all[rows, text_len:]), dim=1), heads))   # [R, C, H * D]
        if index in call.spec.layers:
            concept_k = k.unflatten(-1, (heads, -1)).transpose(1, 2)                           # [R, H, C, D]
            # fp32 while the heads are still side by side: one dense copy, not a transposing one.
            call.record(concept_out[0], out[rows, text_len:], concept_k,
                        lambda: q_all[rows, text_len:].float().unflatten(-1, (heads, -1)).transpose(1, 2))

    out = run(with_attention_tap(args["transformer_options"], on_attention))
    if not concept_out:
        raise missing_joint_attention(index)
    if index < call.spec.last_layer:
        call.advance(context_block.post_attention(concept_out[0], *intermediates))
    return out


def apply_model_wrapper(spec: CaptureSpec):
    def wrapper(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={}, **kwargs):
        def run(options):
            return executor(x, t, c_concat, c_crossattn, control, options, **kwargs)

        def make_call(rows):
            return _Call(executor.class_obj.diffusion_model, spec, rows, x)

        return record_model_call(transformer_options, x, make_call, run)
    return wrapper


def attach(model, spec: CaptureSpec):
    """Add the SD3 capture to a ModelPatcher clone, replacing an earlier one of ours
    and wrapping any other patch on the same blocks."""
    model.remove_wrappers_with_key(APPLY_MODEL, KEY)
    model.add_wrapper_with_key(APPLY_MODEL, KEY, apply_model_wrapper(spec))
    patch_blocks(model, spec, advance_joint_block)
