"""Flux 1 (dev, schnell and fine-tunes): ComfyUI's comfy.ldm.flux.model.Flux; and
the concept stream that Flux 2 (hooks/flux2.py, the same class) shares.

Concepts run through the text-stream weights of every double block up to the
last chosen one: they attend to themselves and to the image tokens, and nothing
attends to them, so the image is untouched. The block itself runs unchanged;
its joint attention is tapped through a per-block attention override. They skip
the single blocks.
"""
import torch

import comfy.ldm.flux.math
import comfy.ldm.flux.model
import comfy.patcher_extension
import comfy.text_encoders.flux
from comfy.ldm.flux.layers import apply_mod, timestep_embedding
from comfy.ldm.modules.attention import attention_pytorch

from .. import maths
from .capture import (KEY, CaptureSpec, ModelCall, image_grid, image_pixels, missing_joint_attention, patch_blocks,
                      record_model_call, with_attention_tap)
from .text import TextEncoding

DIFFUSION_MODEL = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
NAME = "Flux 1"
LATENT_DOWNSCALE = 8  # pixels per latent pixel (the Flux 1 VAE's downscale)
# Paper default: double blocks 15-18 of Flux's 19 (0-based).
PAPER_LAYERS = (15, 16, 17, 18)


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, comfy.ldm.flux.model.Flux) and not diffusion_model.params.global_modulation


def layer_count(diffusion_model) -> int:
    return len(diffusion_model.double_blocks)


def default_layers(count: int) -> tuple:
    if count > max(PAPER_LAYERS):
        return PAPER_LAYERS
    return tuple(range(max(count - 4, 0), count))


def patch_size(diffusion_model) -> int:
    return diffusion_model.patch_size


def max_patches(diffusion_model):
    return None  # RoPE positions: any size


def context_width(diffusion_model) -> int:
    return diffusion_model.txt_in.in_features


def text_encoding(clip):
    """Flux 1's conditioning is the T5-XXL tokens of its CLIP-L + T5 pair (CLIP-L
    gives only the pooled vector); None for another text encoder."""
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.flux.FluxClipModel):
        return None
    return TextEncoding(family=NAME, stream="t5xxl", description="Flux 1 text encoder (CLIP-L + T5-XXL): the T5-XXL tokens")


class FluxCall(ModelCall):
    """The concept stream of one Flux model call (Flux 1 and 2). Subclasses say where
    the concepts' modulation comes from and at which text position they sit."""

    def __init__(self, dm, spec: CaptureSpec, rows, x, context):
        super().__init__(spec, rows, x.device, image_grid(x, dm.patch_size), image_pixels(x, spec))
        self.dm = dm
        embeddings = spec.concepts.embeddings.to(device=x.device, dtype=context.dtype)
        embeddings = embeddings.unsqueeze(0).expand(self.row_count, -1, -1)
        txt_norm = getattr(dm, "txt_norm", None)      # ComfyUI 0.3.75 has no txt_norm
        if txt_norm is not None:
            embeddings = txt_norm(embeddings)
        self.stream = dm.txt_in(embeddings)                                  # [R, C, hidden]
        self.pe = None
        self.unrotate = None

    def text_modulation(self, block, args: dict) -> tuple:
        """(mod1, mod2) of the block's text stream for the concept rows."""
        raise NotImplementedError

    def text_index(self) -> int:
        """The prompt position whose RoPE rotation every concept takes."""
        raise NotImplementedError

    def concept_rotation(self, pe: torch.Tensor) -> torch.Tensor:
        """RoPE of the concepts: that of the prompt token at text_index(), for all of
        them, so that their maps do not depend on the order of the list.
        pe: the block's rotations of [prompt, image] tokens [B or 1, 1, N, D/2, 2, 2]."""
        if self.pe is None:
            pe = pe[self.rows] if pe.shape[0] > 1 else pe
            self.pe = pe[:, :, [self.text_index()] * self.stream.shape[1]]
        return self.pe

    def queries_before_rope(self, queries: torch.Tensor, pe: torch.Tensor, image: slice) -> torch.Tensor:
        """The image queries before RoPE, in fp32 [R, H, P, D], from the rotated ones; the
        rotations' cos and sin are kept for the whole call (every block has the same
        positions). pe: [B or 1, 1, N, D/2, 2, 2], each pair's [[cos, -sin], [sin, cos]]."""
        if self.unrotate is None:
            pe = (pe[self.rows] if pe.shape[0] > 1 else pe)[:, :, image].float()
            self.unrotate = pe[..., 0, 0].contiguous(), pe[..., 1, 0].contiguous()
        return maths.unrotate_pairs(queries, *self.unrotate)


class _Call(FluxCall):
    """Flux 1: the concepts' own modulation vector, and zero text positions."""

    def __init__(self, dm, spec: CaptureSpec, rows, x, timestep, context, guidance):
        super().__init__(dm, spec, rows, x, context)
        self.vec = self._modulation_vector(dm, x, timestep, guidance)         # [R, hidden]

    def _modulation_vector(self, dm, x, timestep, guidance):
        # As the paper's code: the prompt's modulation with the pooled text vector zeroed.
        rows = self.rows
        vec = dm.time_in(timestep_embedding(timestep[rows], 256).to(x.dtype))
        if dm.params.guidance_embed and guidance is not None:
            vec = vec + dm.guidance_in(timestep_embedding(guidance[rows], 256).to(x.dtype))
        if dm.vector_in is not None:
            vec = vec + dm.vector_in(torch.zeros(self.row_count, dm.params.vec_in_dim, device=x.device, dtype=x.dtype))
        return vec

    def text_modulation(self, block, args: dict) -> tuple:
        return block.txt_mod(self.vec)

    def text_index(self) -> int:
        return 0   # Flux 1's text ids are all zero: the identity rotation, as the paper's code


def advance_double_block(index: int, call: _Call, args: dict, run):
    """Run double block `index` with its joint attention tapped, and move the concept
    stream through the block's text-stream weights beside it."""
    block = call.dm.double_blocks[index]
    rows, heads = call.rows, block.num_heads
    mod1, mod2 = call.text_modulation(block, args)
    qkv = block.txt_attn.qkv(apply_mod(block.txt_norm1(call.stream), 1 + mod1.scale, mod1.shift))
    q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k = block.txt_attn.norm(q, k, v)                                     # [R, H, C, D]
    q_rot, k_rot = comfy.ldm.flux.math.apply_rope(q, k, call.concept_rotation(args["pe"]))
    txt_len = args["txt"].shape[1]
    image = slice(txt_len, txt_len + call.patches)
    concept_out = []

    def on_attention(q_all, k_all, v_all, out):
        # q_all, k_all, v_all: [B, H, txt + img, D] after RoPE; out: [B, txt + img, H * D].
        # Concepts attend to themselves and the image (Kontext reference tokens too), never the prompt.
        # The joined keys and values live only for this call, not while the scores are taken.
        concept_out.append(attention_pytorch(q_rot, torch.cat((k_rot, k_all[rows, :, txt_len:]), dim=2),
                                             torch.cat((v, v_all[rows, :, txt_len:]), dim=2), heads,
                                             skip_reshape=True))                               # [R, C, H * D]
        if index in call.spec.layers:
            call.record(concept_out[0], out[rows, image], k,
                        lambda: call.queries_before_rope(q_all[rows, :, image], args["pe"], image))

    out = run(with_attention_tap(args["transformer_options"], on_attention))
    if not concept_out:
        raise missing_joint_attention(index)
    if index < call.spec.last_layer:
        stream = call.stream + apply_mod(block.txt_attn.proj(concept_out[0]), mod1.gate)
        call.advance(stream + apply_mod(block.txt_mlp(apply_mod(block.txt_norm2(stream), 1 + mod2.scale, mod2.shift)),
                                        mod2.gate))
    return out


def diffusion_model_wrapper(make_call):
    """DIFFUSION_MODEL wrapper; make_call(dm, rows, x, timestep, context, guidance) -> FluxCall."""
    def wrapper(executor, x, timestep, context, y=None, guidance=None, ref_latents=None, control=None,
                transformer_options={}, **kwargs):
        def run(options):
            return executor(x, timestep, context, y, guidance, ref_latents, control, options, **kwargs)

        def call_for(rows):
            return make_call(executor.class_obj, rows, x, timestep, context, guidance)

        return record_model_call(transformer_options, x, call_for, run)
    return wrapper


def attach_flux(model, make_call, spec: CaptureSpec):
    """Add a Flux capture to a ModelPatcher clone, replacing an earlier one of ours
    and wrapping any other patch on the same blocks."""
    model.remove_wrappers_with_key(DIFFUSION_MODEL, KEY)
    model.add_wrapper_with_key(DIFFUSION_MODEL, KEY, diffusion_model_wrapper(make_call))
    patch_blocks(model, spec, advance_double_block)


def attach(model, spec: CaptureSpec):
    attach_flux(model, lambda dm, rows, x, timestep, context, guidance: _Call(dm, spec, rows, x, timestep, context,
                                                                              guidance), spec)
