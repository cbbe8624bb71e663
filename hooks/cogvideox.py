"""CogVideoX 1.0 (2b, 5b) and 1.5 (patch_size_t = 2), text- and image-to-video:
ComfyUI's comfy.ldm.cogvideo.model.CogVideoXTransformer3DModel.

One stream with shared weights: each block's norm1/norm2 give the text ("enc")
shift, scale and gate; q/k/v, QK-norm, the output projection and the MLP are shared
over [text, video]; RoPE (5b, 1.5) or a positional table (2b) on the video tokens
only. The concepts take the text modulation, the shared projections and no RoPE,
attend to [concepts, video tokens], and nothing attends to them. The model has no
block patch point, so the core hooks its blocks for the length of each recorded call.
"""
import comfy.ldm.cogvideo.model as cogvideo
import comfy.text_encoders.cogvideo
import torch
import torch.nn.functional as F

from ..analysis import maths
from .call import ModelCall
from .family import BlockConcepts, Family
from .text import TextEncoding


def text_encoding(clip):
    """CogVideoX's conditioning is T5-XXL's tokens (padded to 226)."""
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.cogvideo.CogVideoXT5XXL):
        return None
    return TextEncoding(family=FAMILY.name, stream="t5xxl",
                        description="CogVideoX text encoder (T5-XXL): the T5-XXL tokens")


class CogVideoXCall(ModelCall):
    def __init__(self, family, dm, spec, rows, x, arguments):
        super().__init__(family, dm, spec, rows, x, arguments)
        text_proj = dm.patch_embed.text_proj   # runs in fp32, as ComfyUI runs it
        self.stream = text_proj(self.embeddings(text_proj.weight.dtype, x.device)).to(arguments["context"].dtype)
        self.unrotate = None

    def queries_before_rope(self, video_q: torch.Tensor, heads: int, rotary) -> torch.Tensor:
        """The video queries [R, P, H * D] before RoPE, [R, H, P, D]. The cos and sin per
        feature pair [P, D/2] (ComfyUI's rotary gives each angle to both features of its
        pair, [P, D]) are kept for the whole call: every block has the same positions."""
        video_q = video_q.unflatten(-1, (heads, -1)).transpose(1, 2)
        if rotary is None:                 # 2b adds its positions to the input instead
            return video_q
        if self.unrotate is None:
            self.unrotate = tuple(part[..., 0::2].float().contiguous() for part in rotary)
        return maths.unrotate_pairs(video_q, *self.unrotate)

    def block_concepts(self, index, block, args):
        temb = args["temb"][self.rows]
        _, normed, _, gate = block.norm1(self.stream, self.stream, temb)      # the text ("enc") modulation
        heads, width = block.num_heads, block.head_dim
        q = block.norm_q(block.q(normed).view(self.row_count, -1, heads, width))
        k = block.norm_k(block.k(normed).view(self.row_count, -1, heads, width))
        text_len = args["encoder_hidden_states"].shape[1]
        rotary = args.get("image_rotary_emb")

        def leave(concept_out):
            stream = self.stream + gate * block.attn_out(concept_out)
            _, normed, _, gate_ff = block.norm2(stream, stream, temb)
            return stream + gate_ff * block.ff_out(F.gelu(block.ff_proj(normed), approximate="tanh"))

        return BlockConcepts(index, q.flatten(2), k.flatten(2), block.v(normed), heads, heads_first=False,
                             keys=k.transpose(1, 2), text_len=text_len,
                             joint_len=text_len + args["hidden_states"].shape[1],
                             image_queries=lambda queries: self.queries_before_rope(queries, heads, rotary), leave=leave)


FAMILY = Family(
    name="CogVideoX",
    matches=lambda dm: isinstance(dm, cogvideo.CogVideoXTransformer3DModel),
    call_type=CogVideoXCall,
    blocks=lambda dm: dm.blocks,
    # Every block, as the reference's CogVideoX example.
    default_layers=lambda count: tuple(range(count)),
    default_layers_text="every block",
    context_width=lambda dm: dm.patch_embed.text_proj.in_features,
    text_encoding=text_encoding,
    text_encoder="T5-XXL",
    block_patches=False,
    frames_per_latent=4,     # the VAE's temporal compression: frame 0 alone, then 4 per latent frame
    latents_per_token=lambda dm: dm.patch_size_t or 1,
)
