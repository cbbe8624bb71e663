"""Qwen-Image, and Qwen-Image-Edit (the same class): ComfyUI's
comfy.ldm.qwen_image.model.QwenImageTransformer2DModel, 60 dual-stream blocks.

Concepts run, as the prompt does, through the model's txt_norm and txt_in, then
through each block's text-stream weights: txt_mod (the timestep's modulation, which
has no pooled text vector), txt_norm1, add_q/k/v_proj, norm_added_q/k, RoPE; after the
attention to_add_out, txt_norm2, txt_mlp. Text positions run from txt_start (half the
longer side, in patches) upward, after the image's; every concept takes the first
prompt position, txt_start, which is where a word encoded alone sits once ComfyUI has
cropped the chat template's system prefix, so that the maps do not depend on the
order of the list. Editing (ref_latents): the reference tokens follow the image;
concepts attend to them, the maps drop them. With index_timestep_zero the model
doubles the modulation vector (the reference's, at t = 0); the text stream, and so
the concepts, take the first half, as the model's own text does.
"""
import comfy.ldm.flux.math
import comfy.ldm.qwen_image.model
import comfy.text_encoders.hunyuan_image
import comfy.text_encoders.qwen_image

from . import flux
from .family import BlockConcepts, Family
from .text import TextEncoding


def default_layers(count: int) -> tuple:
    # The paper found the later-middle blocks localise best (Flux: 15-18 of 19 double
    # blocks, where the single blocks still follow). Qwen-Image has only dual-stream
    # blocks, so its last ones are its output layers: the fifth of blocks from 60% of
    # the depth on (blocks 36-47 of 60) is the same place in the network.
    first = count * 3 // 5
    return tuple(range(first, max(first + 1, count * 4 // 5)))


def text_encoding(clip):
    """Qwen 2.5-VL 7B: the hidden states of the chat template's user turn (ComfyUI
    crops the system prefix); the word's own tokens sit at its start."""
    # HunyuanVideo 1.5's encoder extends this class: hooks/hunyuan_video.py knows it.
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.qwen_image.QwenImageTEModel) or \
            isinstance(clip.cond_stage_model, comfy.text_encoders.hunyuan_image.HunyuanImageTEModel):
        return None
    return TextEncoding(family=FAMILY.name, stream="qwen25_7b",
                        description="Qwen-Image text encoder (Qwen 2.5-VL 7B): the word's own tokens")


class QwenImageCall(flux.FluxCall):
    """The stream starts as Flux's (txt_norm, txt_in) and takes Flux's RoPE layout."""

    def text_index(self, text_len: int) -> int:
        return 0     # txt_start: the first prompt position

    def block_concepts(self, index, block, args):
        attn, heads = block.attn, block.attn.heads
        # Under index_timestep_zero vec is [the call's temb, temb at t = 0]: the rows pick the first half.
        mod1, mod2 = block.txt_mod(args["vec"][self.rows]).chunk(2, dim=-1)
        modulated, gate1 = block._modulate(block.txt_norm1(self.stream), mod1)

        def heads_first(tensor):
            return tensor.unflatten(-1, (heads, -1)).transpose(1, 2)                    # [R, H, C, D]

        q = attn.norm_added_q(heads_first(attn.add_q_proj(modulated)))
        k = attn.norm_added_k(heads_first(attn.add_k_proj(modulated)))
        v = heads_first(attn.add_v_proj(modulated))
        text_len = args["txt"].shape[1]
        q_rot, k_rot = comfy.ldm.flux.math.apply_rope(q, k, self.concept_rotation(args["pe"], text_len))
        image = slice(text_len, text_len + self.layout.patches)

        def leave(concept_out):
            stream = self.stream + gate1 * attn.to_add_out(concept_out)
            modulated2, gate2 = block._modulate(block.txt_norm2(stream), mod2)
            return stream + gate2 * block.txt_mlp(modulated2)

        return BlockConcepts(index, q_rot, k_rot, v, heads, heads_first=True, keys=k, text_len=text_len,
                             joint_len=text_len + args["img"].shape[1],
                             image_queries=lambda queries: self.unrotated_image_queries(queries, args["pe"], image),
                             leave=leave)


FAMILY = Family(
    name="Qwen-Image",
    matches=lambda dm: type(dm) is comfy.ldm.qwen_image.model.QwenImageTransformer2DModel,
    call_type=QwenImageCall,
    blocks=lambda dm: dm.transformer_blocks,
    default_layers=default_layers,
    default_layers_text="blocks from 3/5 to 4/5 of the depth (36-47 of 60)",
    context_width=lambda dm: dm.txt_in.in_features,
    text_encoding=text_encoding,
    text_encoder="Qwen 2.5-VL 7B",
)
