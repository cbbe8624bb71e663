"""Z-Image and Lumina 2: ComfyUI's comfy.ldm.lumina.model.NextDiT, one stream of
shared-weight blocks over [caption, image].

The caption passes a text-only context_refiner and the image an image-only
noise_refiner before the joint layers; the layers have no patch points, so the core
hooks them for the length of each recorded call (as CogVideoX). Concepts go, as the
caption does, through cap_embedder and the context refiner, each concept alone (a
one-token caption); then through every joint layer up to the last chosen one with the
layer's own weights and modulation (adaLN of the timestep: scale and tanh gate for
attention and MLP, sandwich RMSNorms). Caption token i sits at RoPE position (i + 1,
0, 0); every concept takes (1, 0, 0), the first caption position, in the refiner and
in the layers, so that the maps do not depend on the order of the list. Z-Image pads
the caption and the image to multiples of 32 tokens with learned pad tokens; the
concepts attend to the image's patches, not its pad tokens. Reference images (Z-Image
Omni) are not supported: the capture stops with that reason, and the image is
sampled as without it.
"""
import comfy.ldm.lumina.model as lumina
import comfy.text_encoders.lumina2
import comfy.text_encoders.z_image
import torch
from comfy.ldm.flux.math import apply_rope

from .call import ModelCall, clamp_fp16
from .family import BlockConcepts, Family
from .text import TextEncoding

ENCODERS = ((comfy.text_encoders.z_image.ZImageTEModel, "Z-Image", "Qwen 3 4B"),
            (comfy.text_encoders.lumina2.LuminaModel, "Lumina 2", "Gemma 2 2B"))


def default_layers(count: int) -> tuple:
    # The paper's finding (later-middle blocks localise best), in a single-stream model
    # whose last layers write the output: from 3/5 to 4/5 of the depth (Z-Image: 18-23 of 30).
    first = count * 3 // 5
    return tuple(range(first, max(first + 1, count * 4 // 5)))


def text_encoding(clip):
    """Z-Image (Qwen 3 4B) and Lumina 2 (Gemma 2 2B): hidden states of every token of the
    prompt's template; the word's own tokens sit inside it."""
    for encoder_class, model, language_model in ENCODERS:
        if isinstance(clip.cond_stage_model, encoder_class):
            return TextEncoding(family=FAMILY.name, stream=clip.cond_stage_model.clip,
                                description=f"{model} text encoder ({language_model}): the word's own tokens")
    return None


def padded(count: int, multiple) -> int:
    return count if multiple is None else -(-count // multiple) * multiple


class ZImageCall(ModelCall):
    def __init__(self, family, dm, spec, rows, x, arguments):
        super().__init__(family, dm, spec, rows, x, arguments)
        if arguments.get("ref_latents"):
            raise ValueError("Z-Image reference images (Omni editing) are not supported yet; "
                             "sample without them to get maps")
        position = torch.tensor([[[1.0, 0.0, 0.0]]], device=x.device)
        self.concept_pe = dm.rope_embedder(position).movedim(1, 2)                 # [1, 1, 1, D/2, 2, 2]
        embeddings = dm.cap_embedder(self.embeddings(arguments["context"].dtype, x.device))
        # Each concept alone through the context refiner, as a caption of one token.
        alone = embeddings.reshape(-1, 1, embeddings.shape[-1])
        for layer in dm.context_refiner:
            alone = layer(alone, None, self.concept_pe)
        self.stream = alone.reshape(embeddings.shape)                              # [R, C, dim]
        self.image_tokens = padded(self.layout.patches, dm.pad_tokens_multiple)

    def block_concepts(self, index, block, args):
        attention, count = block.attention, block.attention.n_local_heads
        scale_msa, gate_msa, scale_mlp, gate_mlp = block.adaLN_modulation(args["adaln_input"][self.rows]).chunk(4, dim=1)
        q, k, v = torch.split(attention.qkv(lumina.modulate(block.attention_norm1(self.stream), scale_msa)),
                              [count * attention.head_dim, *[attention.n_local_kv_heads * attention.head_dim] * 2], dim=-1)
        q = attention.q_norm(q.unflatten(-1, (count, -1)))                         # [R, C, H, D]
        k = attention.k_norm(k.unflatten(-1, (attention.n_local_kv_heads, -1)))
        v = v.unflatten(-1, (attention.n_local_kv_heads, -1))
        k, v = (t.repeat_interleave(attention.n_rep, dim=2) for t in (k, v))       # grouped-query heads, as the model
        q_rot, k_rot = apply_rope(q, k, self.concept_pe)
        joint_len = args["x"].shape[1]
        text_len = joint_len - self.image_tokens
        image = slice(text_len, text_len + self.layout.patches)
        pe = args["freqs_cis"].movedim(2, 1)                                       # [B, 1, N, D/2, 2, 2]

        def leave(concept_out):
            # ComfyUI 0.33's layers clamp fp16 overflow before the sandwich norms (0.3.75's do not).
            stream = self.stream + gate_msa.unsqueeze(1).tanh() * block.attention_norm2(
                clamp_fp16(attention.out(concept_out)))
            return stream + gate_mlp.unsqueeze(1).tanh() * block.ffn_norm2(clamp_fp16(
                block.feed_forward(lumina.modulate(block.ffn_norm1(stream), scale_mlp))))

        return BlockConcepts(index, q_rot.transpose(1, 2), k_rot.transpose(1, 2), v.transpose(1, 2), count,
                             heads_first=True, keys=k.transpose(1, 2), text_len=text_len, joint_len=joint_len,
                             image_queries=lambda queries: self.unrotated_image_queries(queries, pe, image),
                             leave=leave, key_count=self.layout.patches)


FAMILY = Family(
    name="Z-Image",
    matches=lambda dm: type(dm) is lumina.NextDiT,
    call_type=ZImageCall,
    blocks=lambda dm: dm.layers,
    default_layers=default_layers,
    default_layers_text="layers from 3/5 to 4/5 of the depth (Z-Image: 18-23 of 30)",
    context_width=lambda dm: dm.cap_embedder[1].in_features,
    text_encoding=text_encoding,
    text_encoder="Qwen 3 4B for Z-Image, Gemma 2 2B for Lumina 2",
    block_patches=False,
)
