"""Wan 2.1 and 2.2 (text-to-video, image-to-video, the 5B TI2V, each 14B model of the
high/low-noise pair, Fun's reference latent): ComfyUI's comfy.ldm.wan.model.WanModel.

Wan has no joint attention. Each block runs self-attention over the video tokens, then
cross-attention from the video queries to the umT5 prompt's keys, which the blocks never
update: there is no concept output for ConceptAttention's own maps. Wan gives the
paper's cross-attention baseline only (hooks/call.py CrossAttentionCall): per block, the
video queries of the text cross-attention (after the block's norm_q, no RoPE) · the
concepts' keys (each concept's umT5 vector through the model's text_embedding, then the
block's k and norm_k, as the prompt's keys are made), a softmax over the concepts, then
the mean over heads, blocks and steps. Image-to-video's CLIP-vision tokens have their own
attention, which the maps do not read.
"""
import comfy.ldm.wan.model as wan
import comfy.text_encoders.wan

from ..analysis import maths
from .call import CrossAttentionCall
from .family import Family
from .text import TextEncoding


def text_encoding(clip):
    """Wan's umT5-XXL: the word's own tokens at the start, then the end token, padded to 512."""
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.wan.WanT5Model):
        return None
    return TextEncoding(family=FAMILY.name, stream="umt5xxl", description="Wan text encoder (umT5-XXL): the word's "
                                                                         "own tokens")


class WanCall(CrossAttentionCall):
    def __init__(self, family, dm, spec, rows, x, arguments):
        super().__init__(family, dm, spec, rows, x, arguments)
        context = arguments["context"]
        self.text_len = context.shape[1]
        self.concept_context = dm.text_embedding(self.embeddings(context.dtype, x.device))       # [R, C, dim]
        # A Fun model's reference latent (one frame, [B, C, H, W]) goes before the video's tokens.
        reference = arguments.get("kwargs", {}).get("reference_latent")
        if dm.ref_conv is not None and reference is not None:
            patch = dm.patch_size[-1]
            self.image_start = -(-reference.shape[-2] // patch) * -(-reference.shape[-1] // patch)

    def concept_keys(self, index, block, args):
        attention = block.cross_attn
        keys = attention.norm_k(attention.k(self.concept_context))
        return keys.unflatten(-1, (attention.num_heads, -1)).transpose(1, 2)

    def text_attention(self, block):
        # After the self-attention; image-to-video's cross-attention reads the CLIP-vision tokens first.
        return 2 if isinstance(block.cross_attn, wan.WanI2VCrossAttention) else 1


FAMILY = Family(
    name="Wan",
    # WanModel itself (text- and image-to-video, 2.2 5B and 14B, Fun's reference latent); its subclasses (VACE,
    # camera, speech, animate) run their own forward, which is not tested here.
    matches=lambda dm: type(dm) is wan.WanModel,
    call_type=WanCall,
    blocks=lambda dm: dm.blocks,
    # Every block, as cross-attention maps are usually read (DAAM sums every layer): no
    # block is known to localise best in Wan, whose real weights could not be measured here.
    default_layers=lambda count: tuple(range(count)),
    default_layers_text="every block (cross-attention maps)",
    context_width=lambda dm: dm.text_embedding[0].in_features,
    text_encoding=text_encoding,
    text_encoder="umT5-XXL",
    patch_size=lambda dm: dm.patch_size[-1],
    # The 2.1 VAE: 8 pixels per latent pixel; the 2.2 VAE (the 5B model's 48 channels): 16.
    latent_downscale=lambda dm: 16 if dm.out_dim == 48 else 8,
    frames_per_latent=4,
    latents_per_token=lambda dm: dm.patch_size[0],
    methods=(maths.CROSS_ATTENTION,),
)
