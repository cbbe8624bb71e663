"""SD3, SD3.5 medium and SD3.5 large: ComfyUI's MMDiT
(comfy.ldm.modules.diffusionmodules.mmdit).

Concepts run through each JointBlock's context_block, the text stream's weights:
pre_attention (adaLN modulation, norm1, qkv, ln_q/ln_k) with the block's own
conditioning vector c (timestep + pooled text, as the reference's SD3 code does),
attention over [concepts, image tokens], then post_attention, except in the last
block, whose context block is pre_only (its maps still count). SD3.5 medium's
x_block.attn2 calls the attention function a second time over the image tokens
alone; the core tells the joint call by its length. Positions are absolute (pos_embed
on the image tokens); concepts carry none. MMDiT has no DIFFUSION_MODEL executor, so
the per-call wrapper sits on APPLY_MODEL.
"""
import comfy.ldm.modules.diffusionmodules.mmdit as mmdit
import comfy.text_encoders.sd3_clip

from .call import ModelCall
from .family import APPLY_MODEL, BlockConcepts, Family
from .text import TextEncoding


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
    return TextEncoding(family=FAMILY.name, stream=stream,
                        description=f"SD3 text encoder ({', '.join(present)}): the {part} tokens")


class SD3Call(ModelCall):
    """The SD3 concept stream of one model call; it starts at the first block, where the
    prompt tokens give the device and dtype the blocks run in."""

    def block_concepts(self, index, block, args):
        text = args["txt"]                                                     # [B, T, hidden]
        if self.stream is None:
            # The concepts through the model's own text input layers, as MMDiT.forward takes the prompt.
            embeddings = self.embeddings(text.dtype, text.device)
            if self.dm.context_processor is not None:
                embeddings = self.dm.context_processor(embeddings)
            self.stream = self.dm.context_embedder(embeddings)                # [R, C, hidden]
        context_block, heads = block.context_block, block.x_block.attn.num_heads
        (q, k, v), intermediates = context_block.pre_attention(self.stream, args["vec"][self.rows])   # [R, C, H * D]
        text_len = text.shape[1]
        return BlockConcepts(index, q, k, v, heads, heads_first=False, keys=k.unflatten(-1, (heads, -1)).transpose(1, 2),
                             text_len=text_len, joint_len=text_len + args["img"].shape[1],
                             # fp32 while the heads are still side by side: one dense copy, not a transposing one.
                             image_queries=lambda queries: queries.float().unflatten(-1, (heads, -1)).transpose(1, 2),
                             leave=lambda concept_out: context_block.post_attention(concept_out, *intermediates))


FAMILY = Family(
    name="SD3",
    matches=lambda dm: isinstance(dm, mmdit.MMDiT),
    call_type=SD3Call,
    blocks=lambda dm: dm.joint_blocks,
    # Every joint block, as the reference's SD3 code averages over all layers.
    default_layers=lambda count: tuple(range(count)),
    default_layers_text="every joint block",
    context_width=lambda dm: dm.context_embedder.in_features,
    text_encoding=text_encoding,
    text_encoder="CLIP-L, CLIP-G and T5, or any of them",
    call_wrapper=APPLY_MODEL,
    # Patches a side of the position table (SD3.5 large: 192, 3072 px).
    max_patches=lambda dm: dm.pos_embed_max_size if dm.pos_embed is not None else None,
)
