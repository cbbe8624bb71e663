"""Flux 1 (dev, schnell and fine-tunes): ComfyUI's comfy.ldm.flux.model.Flux.

Concepts run through the text-stream weights of every double block up to the
last chosen one: they attend to themselves and to the image tokens, and nothing
attends to them, so the image is untouched. The block itself runs unchanged;
its joint attention is tapped through a per-block attention override.
"""
import torch

import comfy.ldm.flux.math
import comfy.ldm.flux.model
import comfy.patcher_extension
from comfy.ldm.flux.layers import apply_mod, timestep_embedding
from comfy.ldm.modules.attention import attention_pytorch

from .. import maths
from .capture import CALL_KEY, KEY, CaptureSpec, with_attention_tap

DIFFUSION_MODEL = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
NAME = "Flux 1"
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


class _Call:
    """Concept-stream state for one model call, carried in transformer_options."""

    def __init__(self, dm, spec: CaptureSpec, rows, x, timestep, context, guidance):
        self.dm, self.spec, self.rows = dm, spec, rows.to(x.device)
        count = len(rows)
        embeddings = spec.concepts.embeddings.to(device=x.device, dtype=context.dtype)
        embeddings = embeddings.unsqueeze(0).expand(count, -1, -1)
        txt_norm = getattr(dm, "txt_norm", None)      # ComfyUI 0.3.75 has no txt_norm
        if txt_norm is not None:
            embeddings = txt_norm(embeddings)
        self.stream = dm.txt_in(embeddings)                                  # [R, C, hidden]
        self.vec = self._modulation_vector(dm, x, timestep, guidance)         # [R, hidden]
        ids = torch.zeros(count, embeddings.shape[1], len(dm.params.axes_dim), device=x.device, dtype=torch.float32)
        self.pe = dm.pe_embedder(ids)                                         # identity rotation for zero ids
        p = dm.patch_size
        self.grid = (1, (x.shape[-2] + p // 2) // p, (x.shape[-1] + p // 2) // p)
        self.patches = self.grid[1] * self.grid[2]
        self.scores = {method: [] for method in maths.METHODS}

    def _modulation_vector(self, dm, x, timestep, guidance):
        # As the paper's code: the prompt's modulation with the pooled text vector zeroed.
        rows = self.rows
        vec = dm.time_in(timestep_embedding(timestep[rows], 256).to(x.dtype))
        if dm.params.guidance_embed and guidance is not None:
            vec = vec + dm.guidance_in(timestep_embedding(guidance[rows], 256).to(x.dtype))
        if dm.vector_in is not None:
            vec = vec + dm.vector_in(torch.zeros(len(rows), dm.params.vec_in_dim, device=x.device, dtype=x.dtype))
        return vec

    def stacked_scores(self) -> dict:
        return {m: torch.stack(s) for m, s in self.scores.items()}     # [L, R, C, P]


class ConceptDoubleBlock:
    """patches_replace["dit"][("double_block", i)]: runs the real block (or the
    patch that was there before) and advances the concept stream beside it."""

    def __init__(self, index: int, inner=None):
        self.index = index
        self.inner = inner.inner if isinstance(inner, ConceptDoubleBlock) else inner

    def _run_block(self, args, extra):
        if self.inner is not None:
            return self.inner(args, extra)
        return extra["original_block"](args)

    def __call__(self, args, extra):
        call = args["transformer_options"].get(CALL_KEY)
        if call is None or self.index > call.spec.last_layer:
            return self._run_block(args, extra)

        block = call.dm.double_blocks[self.index]
        rows, heads = call.rows, block.num_heads
        mod1, mod2 = block.txt_mod(call.vec)
        qkv = block.txt_attn.qkv(apply_mod(block.txt_norm1(call.stream), 1 + mod1.scale, mod1.shift))
        q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k = block.txt_attn.norm(q, k, v)                                     # [R, H, C, D]
        q_rot, k_rot = comfy.ldm.flux.math.apply_rope(q, k, call.pe)
        txt_len = args["txt"].shape[1]
        image = slice(txt_len, txt_len + call.patches)
        concept_out = []

        def on_attention(q_all, k_all, v_all, out):
            # q_all, k_all, v_all: [B, H, txt + img, D] after RoPE; out: [B, txt + img, H * D].
            keys = torch.cat((k_rot, k_all[rows, :, txt_len:]), dim=2)
            values = torch.cat((v, v_all[rows, :, txt_len:]), dim=2)
            concept_out.append(attention_pytorch(q_rot, keys, values, heads, skip_reshape=True))  # [R, C, H * D]
            if self.index in call.spec.layers:
                call.scores["concept_attention"].append(maths.output_space_scores(concept_out[0], out[rows, image]))
                image_q = _undo_rope(q_all[rows, :, image], args["pe"], rows, image)
                call.scores["cross_attention"].append(maths.cross_attention_scores(image_q, k))

        out = self._run_block({**args, "transformer_options": with_attention_tap(args["transformer_options"], on_attention)}, extra)
        if not concept_out:
            raise RuntimeError(f"ConceptAttention: double block {self.index} ran without its joint attention; "
                               "another patch on this model replaces it, which ConceptAttention cannot follow")
        if self.index < call.spec.last_layer:
            stream = call.stream + apply_mod(block.txt_attn.proj(concept_out[0]), mod1.gate)
            stream = stream + apply_mod(block.txt_mlp(apply_mod(block.txt_norm2(stream), 1 + mod2.scale, mod2.shift)), mod2.gate)
            if stream.dtype == torch.float16:
                stream = torch.nan_to_num(stream, nan=0.0, posinf=65504, neginf=-65504)
            call.stream = stream
        return out


def _undo_rope(q, pe, rows, image):
    """Queries before RoPE, from the rotated ones: each 2x2 rotation's transpose is its inverse."""
    pe = pe[rows] if pe.shape[0] > 1 else pe
    inverse = pe[:, :, image].transpose(-1, -2).contiguous()
    return comfy.ldm.flux.math.apply_rope1(q, inverse)


def diffusion_model_wrapper(spec: CaptureSpec):
    def wrapper(executor, x, timestep, context, y=None, guidance=None, ref_latents=None, control=None,
                transformer_options={}, **kwargs):
        recorder = transformer_options.get(KEY)
        claim = recorder.claim(transformer_options, x.shape[0]) if recorder is not None else None
        if claim is None:
            return executor(x, timestep, context, y, guidance, ref_latents, control, transformer_options, **kwargs)
        rows, chunks, step, sigma = claim
        call = _Call(executor.class_obj, spec, rows, x, timestep, context, guidance)
        options = {**transformer_options, CALL_KEY: call}
        out = executor(x, timestep, context, y, guidance, ref_latents, control, options, **kwargs)
        image_size = (x.shape[-2] * spec.pixels_per_latent, x.shape[-1] * spec.pixels_per_latent)
        recorder.add(step, sigma, call.grid, image_size, chunks, call.stacked_scores())
        return out
    return wrapper


def attach(model, spec: CaptureSpec):
    """Add the Flux capture to a ModelPatcher clone, replacing an earlier one of
    ours and wrapping any other patch on the same blocks."""
    model.remove_wrappers_with_key(DIFFUSION_MODEL, KEY)
    model.add_wrapper_with_key(DIFFUSION_MODEL, KEY, diffusion_model_wrapper(spec))
    existing = model.model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
    for i in range(spec.last_layer + 1):
        model.set_model_patch_replace(ConceptDoubleBlock(i, existing.get(("double_block", i))), "dit", "double_block", i)
