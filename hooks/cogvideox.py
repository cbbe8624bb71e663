"""CogVideoX 1.0 (2b, 5b) and 1.5 (patch_size_t = 2), text- and image-to-video:
ComfyUI's comfy.ldm.cogvideo.model.CogVideoXTransformer3DModel.

One stream with shared weights: each block's norm1/norm2 give the text ("enc")
shift, scale and gate; q/k/v, QK-norm, the output projection and the MLP are shared
over [text, video]; RoPE (5b, 1.5) or a positional table (2b) on the video tokens
only. The concepts take the text modulation, the shared projections and no RoPE,
attend to [concepts, video tokens], and nothing attends to them.

There is no block patch point, so the capture lives for one model call: forward
pre-hooks on the blocks up to the last chosen one (for the block's temb and text
length) and an attention override on that call's transformer_options, which sees
every block's joint attention in order and chains to any override already set. The
hooks are removed in `finally`, whatever happens.
"""
import contextlib

import torch
import torch.nn.functional as F

import comfy.ldm.cogvideo.model as cogvideo
import comfy.patcher_extension
import comfy.text_encoders.cogvideo
from comfy.ldm.modules.attention import attention_pytorch

from .. import maths
from .capture import CALL_KEY, KEY, CaptureSpec, ModelCall, missing_joint_attention, record_model_call, with_attention_tap
from .text import TextEncoding

DIFFUSION_MODEL = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
NAME = "CogVideoX"
LATENT_DOWNSCALE = 8      # pixels per latent pixel, each side
FRAMES_PER_LATENT = 4     # the VAE's temporal compression: frame 0 alone, then 4 per latent frame


def matches(diffusion_model) -> bool:
    return isinstance(diffusion_model, cogvideo.CogVideoXTransformer3DModel)


def layer_count(diffusion_model) -> int:
    return len(diffusion_model.blocks)


def default_layers(count: int) -> tuple:
    # Every block, as the reference's CogVideoX example.
    return tuple(range(count))


def patch_size(diffusion_model) -> int:
    return diffusion_model.patch_size


def max_patches(diffusion_model):
    return None


def context_width(diffusion_model) -> int:
    return diffusion_model.patch_embed.text_proj.in_features


def text_encoding(clip):
    """CogVideoX's conditioning is T5-XXL's tokens (padded to 226)."""
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.cogvideo.CogVideoXT5XXL):
        return None
    return TextEncoding(family=NAME, stream="t5xxl", description="CogVideoX text encoder (T5-XXL): the T5-XXL tokens")


class _Call(ModelCall):
    """The concept stream of one CogVideoX call, block by block: a block's pre-hook
    prepares the concepts' q, k, v; the attention override completes the block."""

    def __init__(self, dm, spec: CaptureSpec, rows, x, context):
        latents_per_token = dm.patch_size_t or 1
        frames, height, width = x.shape[-3:]
        p = dm.patch_size
        grid = (-(-frames // latents_per_token), (height + p // 2) // p, (width + p // 2) // p)
        image_size = (height * spec.pixels_per_latent, width * spec.pixels_per_latent)
        super().__init__(spec, rows, x.device, grid, image_size,
                         video_frames=max(1, frames * FRAMES_PER_LATENT - (FRAMES_PER_LATENT - 1)),
                         frames_per_latent=FRAMES_PER_LATENT, latents_per_token=latents_per_token)
        self.dm = dm
        text_proj = dm.patch_embed.text_proj   # runs in fp32, as ComfyUI runs it
        embeddings = spec.concepts.embeddings.to(device=x.device, dtype=text_proj.weight.dtype)
        self.stream = text_proj(embeddings.unsqueeze(0).expand(self.row_count, -1, -1)).to(context.dtype)   # [R, C, dim]
        self.block = None     # (index, module, temb, text length, rotary) of the block under way
        self.done = []
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

    def before_block(self, index: int, block, kwargs: dict):
        temb = kwargs["temb"][self.rows]
        _, normed, _, gate = block.norm1(self.stream, self.stream, temb)     # the text ("enc") modulation
        heads, width = block.num_heads, block.head_dim
        count = normed.shape[1]
        q = block.norm_q(block.q(normed).view(self.row_count, count, heads, width))
        k = block.norm_k(block.k(normed).view(self.row_count, count, heads, width))
        self.block = dict(index=index, module=block, temb=temb, gate=gate, q=q, k=k, v=block.v(normed),
                          text_len=kwargs["encoder_hidden_states"].shape[1], rotary=kwargs["image_rotary_emb"])

    def on_attention(self, q_all, k_all, v_all, out):
        """The joint attention of the block under way: q_all, k_all, v_all, out
        [B, text + video, H * D], text first, video q/k after RoPE."""
        if self.block is None:          # a block past the last chosen one
            return
        b, self.block = self.block, None
        block, rows, text = b["module"], self.rows, b["text_len"]
        heads = block.num_heads
        q, k = b["q"].flatten(2), b["k"].flatten(2)
        # The joined keys and values live only for this call, not while the scores are taken.
        concept_out = attention_pytorch(q, torch.cat((k, k_all[rows, text:]), dim=1),
                                        torch.cat((b["v"], v_all[rows, text:]), dim=1), heads)   # [R, C, H * D]
        if b["index"] in self.spec.layers:
            self.record(concept_out, out[rows, text:], b["k"].transpose(1, 2),
                        lambda: self.queries_before_rope(q_all[rows, text:], heads, b["rotary"]))
        if b["index"] < self.spec.last_layer:
            stream = self.stream + b["gate"] * block.attn_out(concept_out)
            _, normed, _, gate = block.norm2(stream, stream, b["temb"])
            self.advance(stream + gate * block.ff_out(F.gelu(block.ff_proj(normed), approximate="tanh")))
        self.done.append(b["index"])


@contextlib.contextmanager
def _block_hooks(call: _Call):
    """Forward pre-hooks on the blocks up to the last chosen one, for this call only."""
    handles = []
    try:
        for index, block in enumerate(call.dm.blocks[:call.spec.last_layer + 1]):
            def before(module, args, kwargs, index=index):
                call.guarded(call.before_block, index, module, kwargs)
            handles.append(block.register_forward_pre_hook(before, with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def diffusion_model_wrapper(spec: CaptureSpec):
    def wrapper(executor, x, timestep, context, ofs=None, transformer_options=None, **kwargs):
        dm = executor.class_obj

        def plain(options):
            return executor(x, timestep, context, ofs, options, **kwargs)

        def make_call(rows):
            return _Call(dm, spec, rows, x, context)

        def run(options):
            call = options.get(CALL_KEY)
            if call is None:
                return plain(options)
            with _block_hooks(call):
                out = plain(with_attention_tap(options, call.on_attention))
            missing = [i for i in range(spec.last_layer + 1) if i not in call.done]
            if missing:
                call.fail(missing_joint_attention(missing[0]))
            return out

        return record_model_call(transformer_options or {}, x, make_call, run)
    return wrapper


def attach(model, spec: CaptureSpec):
    """Add the CogVideoX capture to a ModelPatcher clone, replacing an earlier one of ours."""
    model.remove_wrappers_with_key(DIFFUSION_MODEL, KEY)
    model.add_wrapper_with_key(DIFFUSION_MODEL, KEY, diffusion_model_wrapper(spec))
