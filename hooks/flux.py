"""Flux 1 (dev, schnell and fine-tunes): ComfyUI's comfy.ldm.flux.model.Flux; and the
concept stream that Flux 2 (hooks/flux2.py, the same class) shares.

Concepts run through the text-stream weights of every double block up to the last
chosen one (txt_mod, txt_norm1, txt_attn.qkv and its QK-norm, RoPE, txt_attn.proj,
txt_norm2, txt_mlp); they skip the single blocks, as the paper's code does.
"""
import comfy.ldm.flux.math
import comfy.ldm.flux.model
import comfy.text_encoders.flux
import torch
from comfy.ldm.flux.layers import ModulationOut, apply_mod, timestep_embedding

from .call import ModelCall
from .family import BlockConcepts, Family
from .text import TextEncoding

# Paper default: double blocks 15-18 of Flux's 19 (0-based).
PAPER_LAYERS = (15, 16, 17, 18)


def default_layers(count: int) -> tuple:
    if count > max(PAPER_LAYERS):
        return PAPER_LAYERS
    return tuple(range(max(count - 4, 0), count))


def text_encoding(clip):
    """Flux 1's conditioning is the T5-XXL tokens of its CLIP-L + T5 pair (CLIP-L
    gives only the pooled vector); None for another text encoder."""
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.flux.FluxClipModel):
        return None
    return TextEncoding(family=FAMILY.name, stream="t5xxl",
                        description="Flux 1 text encoder (CLIP-L + T5-XXL): the T5-XXL tokens")


class FluxCall(ModelCall):
    """The concept stream of one Flux model call (Flux 1 and 2). Subclasses say where
    the concepts' modulation comes from and at which text position they sit."""

    def __init__(self, family, dm, spec, rows, x, arguments):
        super().__init__(family, dm, spec, rows, x, arguments)
        self.stream = self.concept_stream(arguments, x)                      # [R, C, hidden]
        self.rotation = None

    def concept_stream(self, arguments: dict, x: torch.Tensor) -> torch.Tensor:
        """The concepts' text stream before the first double block [R, C, hidden]."""
        embeddings = self.embeddings(arguments["context"].dtype, x.device)
        txt_norm = getattr(self.dm, "txt_norm", None)      # ComfyUI 0.3.75 has no txt_norm
        if txt_norm is not None:
            embeddings = txt_norm(embeddings)
        return self.dm.txt_in(embeddings)

    def reference_tokens(self, args: dict) -> int:
        """Tokens of the block's image stream before the image itself (reference latents
        put first); Flux puts its references after the image."""
        return 0

    def text_modulation(self, block, args: dict) -> tuple:
        """(mod1, mod2) of the block's text stream for the concept rows."""
        raise NotImplementedError

    def text_index(self, text_len: int) -> int:
        """The prompt position (of text_len) whose RoPE rotation every concept takes."""
        raise NotImplementedError

    def concept_rotation(self, pe: torch.Tensor, text_len: int) -> torch.Tensor:
        """RoPE of the concepts: that of one prompt position, for all of them, so that
        their maps do not depend on the order of the list; kept for the whole call.
        pe: the block's rotations of [prompt, image] tokens [B or 1, 1, N, D/2, 2, 2]."""
        if self.rotation is None:
            pe = pe[self.rows] if pe.shape[0] > 1 else pe
            self.rotation = pe[:, :, [self.text_index(text_len)] * self.stream.shape[1]]
        return self.rotation

    def block_concepts(self, index, block, args):
        heads = block.num_heads
        mod1, mod2 = self.text_modulation(block, args)
        qkv = block.txt_attn.qkv(apply_mod(block.txt_norm1(self.stream), 1 + mod1.scale, mod1.shift))
        q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k = block.txt_attn.norm(q, k, v)                                     # [R, H, C, D]
        text_len = args["txt"].shape[1]
        q_rot, k_rot = comfy.ldm.flux.math.apply_rope(q, k, self.concept_rotation(args["pe"], text_len))
        image_start = text_len + self.reference_tokens(args)
        image = slice(image_start, image_start + self.layout.patches)

        def leave(concept_out):
            stream = self.stream + apply_mod(block.txt_attn.proj(concept_out), mod1.gate)
            return stream + apply_mod(block.txt_mlp(apply_mod(block.txt_norm2(stream), 1 + mod2.scale, mod2.shift)),
                                      mod2.gate)

        return BlockConcepts(index, q_rot, k_rot, v, heads, heads_first=True, keys=k, text_len=text_len,
                             joint_len=text_len + args["img"].shape[1],
                             image_queries=lambda queries: self.unrotated_image_queries(queries, args["pe"], image),
                             leave=leave, image_start=image_start)


class SharedModulationCall(FluxCall):
    """A Flux-class model that computes the modulation outside its double blocks and
    hands each one vec = ((img_mod1, img_mod2), (txt_mod1, txt_mod2)) (Flux 2, Chroma):
    the concepts take the text stream's."""

    def text_modulation(self, block, args: dict) -> tuple:
        rows = self.rows
        return tuple(ModulationOut(mod.shift[rows], mod.scale[rows], mod.gate[rows]) for mod in args["vec"][1])


class Flux1Call(FluxCall):
    """Flux 1: the concepts' own modulation vector, and zero text positions."""

    def __init__(self, family, dm, spec, rows, x, arguments):
        super().__init__(family, dm, spec, rows, x, arguments)
        # As the paper's code: the prompt's modulation with the pooled text vector zeroed.
        timestep, guidance = arguments["timestep"], arguments.get("guidance")
        vec = dm.time_in(timestep_embedding(timestep[self.rows], 256).to(x.dtype))
        if dm.params.guidance_embed and guidance is not None:
            vec = vec + dm.guidance_in(timestep_embedding(guidance[self.rows], 256).to(x.dtype))
        if dm.vector_in is not None:
            vec = vec + dm.vector_in(torch.zeros(self.row_count, dm.params.vec_in_dim, device=x.device, dtype=x.dtype))
        self.vec = vec                                                          # [R, hidden]

    def text_modulation(self, block, args: dict) -> tuple:
        return block.txt_mod(self.vec)

    def text_index(self, text_len: int) -> int:
        return 0   # Flux 1's text ids are all zero: the identity rotation, as the paper's code


FAMILY = Family(
    name="Flux 1",
    matches=lambda dm: isinstance(dm, comfy.ldm.flux.model.Flux) and not dm.params.global_modulation,
    call_type=Flux1Call,
    blocks=lambda dm: dm.double_blocks,
    default_layers=default_layers,
    default_layers_text="double blocks 15-18 (the last four of a smaller model)",
    context_width=lambda dm: dm.txt_in.in_features,
    text_encoding=text_encoding,
    text_encoder="the CLIP-L + T5 pair",
)
