"""The concept stream of one model call, and the concept step every family shares.

A family subclasses ModelCall: its __init__ starts the stream ([R, C, hidden]) from the
call's arguments, and block_concepts() prepares each block's concepts (BlockConcepts).
The core then runs, inside the block's real joint attention (on_attention): the
concepts' attention over [concepts, every token after the prompt], the scores of the
chosen layers, and the stream's way out of the block.
"""
import math
from dataclasses import dataclass

import comfy.model_management
import torch
from comfy.ldm.modules.attention import attention_pytorch

from ..analysis import maths
from .family import BlockConcepts


@dataclass(frozen=True)
class LatentLayout:
    """How a call's image tokens map to pixels (and, for video, to frames)."""
    grid: tuple                 # (frames, height, width) in patches
    image_size: tuple           # (height, width) in pixels
    video_frames: int = 1       # decoded frames (analysis.data.ConceptAttention.token_frame_of)
    frames_per_latent: int = 1
    latents_per_token: int = 1

    @classmethod
    def of(cls, latent: torch.Tensor, patch: int, pixels_per_latent: int, frames_per_latent: int = 1,
           latents_per_token: int = 1) -> "LatentLayout":
        """The layout of a model input [B, C, H, W] or, video, [B, C, T, H, W]; sides that
        are not whole patches are padded by the model, as ComfyUI's patchify does."""
        height, width = latent.shape[-2:]
        frames = latent.shape[2] if latent.ndim == 5 else 1
        grid = (-(-frames // latents_per_token), -(-height // patch), -(-width // patch))
        video_frames = max(1, frames * frames_per_latent - (frames_per_latent - 1))
        return cls(grid, (height * pixels_per_latent, width * pixels_per_latent), video_frames, frames_per_latent,
                   latents_per_token)

    @property
    def patches(self) -> int:
        return math.prod(self.grid)


class ModelCall:
    """The concept stream during one model call. The core keeps it in
    transformer_options (capture.CALL_KEY) for the blocks to find."""

    def __init__(self, family, diffusion_model, spec, rows, x: torch.Tensor, arguments: dict):
        """arguments: the wrapped function's arguments by name; x: its model input."""
        self.family, self.dm, self.spec = family, diffusion_model, spec
        # The conditional batch rows (capture.conditional_rows): a slice selects views, an index tensor copies.
        self.rows = rows if isinstance(rows, slice) else rows.to(x.device)
        self.row_count = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
        self.layout = LatentLayout.of(x, family.patch_size(diffusion_model), spec.pixels_per_latent,
                                      family.frames_per_latent, family.latents_per_token(diffusion_model))
        self.stream = None
        self.scores = {method: [] for method in spec.methods}     # per scored layer [R, C, P]
        self.pending = None                 # BlockConcepts of the block whose joint attention comes next
        self.done = []                      # blocks whose concept step ran
        self.advancing = None               # the block whose ConceptBlockPatch is running
        self.failure = None                 # the first error of our code in this call
        self.unrotate = None                # (cos, sin) of the image tokens' RoPE, for unrotated_image_queries

    @property
    def scored(self) -> list:
        """The chosen layers whose blocks ran, in order: those self.scores hold (a model may skip blocks)."""
        return [index for index in self.done if index in self.spec.layers]

    def block_concepts(self, index: int, block, args: dict) -> BlockConcepts:
        """The concepts of block `index` (the module `block`) before it runs. args: the
        block patch's arguments (block patches), or the block's forward arguments by
        name (block hooks)."""
        raise NotImplementedError

    def embeddings(self, dtype, device) -> torch.Tensor:
        """The concept vectors, one set per conditional row [R, C, D]."""
        vectors = self.spec.concepts.embeddings.to(device=device, dtype=dtype)
        return vectors.unsqueeze(0).expand(self.row_count, -1, -1)

    def unrotated_image_queries(self, queries: torch.Tensor, pe: torch.Tensor, image: slice) -> torch.Tensor:
        """The image queries [R, H, P, D] before a pairwise RoPE (comfy.ldm.flux's EmbedND,
        which Flux, Qwen-Image and Z-Image use), in fp32, from the rotated ones; the
        rotations' cos and sin are kept for the whole call (every block has the same
        positions). pe: [B or 1, 1, N, D/2, 2, 2], each pair's [[cos, -sin], [sin, cos]]."""
        if self.unrotate is None:
            pe = (pe[self.rows] if pe.shape[0] > 1 else pe)[:, :, image].float()
            self.unrotate = pe[..., 0, 0].contiguous(), pe[..., 1, 0].contiguous()
        return maths.unrotate_pairs(queries, *self.unrotate)

    def fail(self, error: BaseException):
        if self.failure is None:
            self.failure = error

    def guarded(self, function, *args):
        """function(*args), unless this call already failed; an error of ours is kept
        (self.failure), never raised into the model. Interrupts pass."""
        if self.failure is not None:
            return None
        try:
            return function(*args)
        except comfy.model_management.InterruptProcessingException:
            raise
        except Exception as error:
            self.fail(error)
            return None

    def prepare(self, index: int, block, args: dict):
        """Ready the concepts of block `index` for its joint attention."""
        self.pending = self.block_concepts(index, block, args)

    def on_attention(self, q_all, k_all, v_all, out):
        """An attention call inside a tapped block: if it is the pending block's joint
        attention (q_all, k_all, v_all, out in the block's layout, the prompt first, after
        RoPE), the concepts attend beside it and the stream moves on."""
        concepts = self.pending
        if concepts is None or q_all.shape[2 if concepts.heads_first else 1] != concepts.joint_len:
            return                          # another attention of the block (SD3.5 medium's attn2)
        self.pending = None
        concept_out = self.attend(concepts, q_all, k_all, v_all, out)
        if concepts.index < self.spec.last_layer:
            self.advance(concepts.leave(concept_out))
        self.done.append(concepts.index)

    def attend(self, concepts: BlockConcepts, q_all, k_all, v_all, out) -> torch.Tensor:
        """The concepts' attention output [R, C, H * D] over [concepts, the tokens after the
        prompt] (the image, and reference latents where there are any; never the prompt),
        and the scores of a chosen layer against the image rows."""
        rows, text = self.rows, concepts.text_len

        def tokens(tensor, part):
            return tensor[rows, :, part] if concepts.heads_first else tensor[rows, part]

        after_text = slice(text, None if concepts.key_count is None else text + concepts.key_count)
        length_dim = 2 if concepts.heads_first else 1
        # The joined keys and values live only for this call, not while the scores are taken.
        concept_out = attention_pytorch(concepts.q, torch.cat((concepts.k, tokens(k_all, after_text)), dim=length_dim),
                                        torch.cat((concepts.v, tokens(v_all, after_text)), dim=length_dim),
                                        concepts.heads, skip_reshape=concepts.heads_first)
        if concepts.index in self.spec.layers:
            start = text if concepts.image_start is None else concepts.image_start
            image = slice(start, start + self.layout.patches)
            self.record(concept_out, out[rows, image], concepts.keys,
                        lambda: concepts.image_queries(tokens(q_all, image)))
        return concept_out

    def advance(self, stream: torch.Tensor):
        """The concept stream after a block; fp16 overflow is clamped, as the image
        stream's would not be, so that a concept's infinities cannot become NaN maps."""
        self.stream = clamp_fp16(stream)

    def record(self, concept_out, image_out, concept_k, image_queries):
        """Scores of one chosen layer for the spec's methods. concept_out [R, C, H*D] and
        image_out [R, P, H*D]: attention outputs before the output projection;
        concept_k [R, H, C, D] and image_queries() -> [R, H, P, D]: before any RoPE.
        The queries are asked for only when the cross-attention baseline is recorded:
        on RoPE models, getting them back is most of a captured block's cost."""
        self.scores[maths.CONCEPT_ATTENTION].append(maths.output_space_scores(concept_out, image_out))
        if self.spec.cross_attention:
            self.scores[maths.CROSS_ATTENTION].append(maths.cross_attention_scores(image_queries(), concept_k))


class CrossAttentionCall(ModelCall):
    """The concepts of a cross-attention model (Wan), whose blocks read fixed text keys
    and never update the text: no concept stream and no concept outputs, so only the
    paper's cross-attention baseline exists. In each chosen block the concepts' keys,
    made by the block's own key projection (concept_keys), meet the image queries of the
    block's text cross-attention, the `text_attention`-th attention call of the block
    (0-based), whose keys are the prompt's `text_len` tokens. The image's tokens start at
    image_start in the queries."""
    text_len: int
    image_start: int = 0

    def concept_keys(self, index: int, block, args: dict) -> torch.Tensor:
        """The concepts' keys in block `index` [R, H, C, D], as the block makes the prompt's."""
        raise NotImplementedError

    def text_attention(self, block) -> int:
        raise NotImplementedError

    def prepare(self, index: int, block, args: dict):
        if index not in self.spec.layers:      # nothing flows between blocks: the others are only passed
            self.pending = None
            self.done.append(index)
            return
        self.pending = PendingCrossAttention(index, self.concept_keys(index, block, args), self.text_attention(block))

    def on_attention(self, q_all, k_all, v_all, out):
        """An attention call inside a chosen block: the text cross-attention's queries
        ([B, N, H * D], no RoPE) against the concepts' keys."""
        pending = self.pending
        if pending is None:
            return
        if pending.calls_before < pending.text_attention:       # self-attention (and I2V's image attention)
            pending.calls_before += 1
            return
        self.pending = None
        if k_all.shape[1] != self.text_len:
            raise RuntimeError(f"block {pending.index}'s text cross-attention took {k_all.shape[1]} keys, not the "
                               f"prompt's {self.text_len}: another patch changes this model's attention")
        keys = pending.keys
        image = q_all[self.rows, self.image_start:self.image_start + self.layout.patches]
        queries = image.unflatten(-1, (keys.shape[1], -1)).transpose(1, 2)
        self.scores[maths.CROSS_ATTENTION].append(maths.cross_attention_scores(queries, keys))
        self.done.append(pending.index)


@dataclass
class PendingCrossAttention:
    index: int
    keys: torch.Tensor          # [R, H, C, D]
    text_attention: int         # which attention call of the block is its text cross-attention
    calls_before: int = 0       # attention calls of the block seen so far


def clamp_fp16(tensor: torch.Tensor) -> torch.Tensor:
    """fp16 overflow to the largest finite values, NaN to 0; other dtypes as they are."""
    if tensor.dtype == torch.float16:
        return torch.nan_to_num(tensor, nan=0.0, posinf=65504, neginf=-65504)
    return tensor


def missing_joint_attention(index: int) -> RuntimeError:
    return RuntimeError(f"ConceptAttention: block {index} ran without the attention the capture reads; another patch "
                        "on this model replaces it, which ConceptAttention cannot follow")
