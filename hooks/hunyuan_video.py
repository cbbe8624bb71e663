"""HunyuanVideo (1.0 text- and image-to-video, SkyReels), HunyuanVideo 1.5 and
HunyuanImage 2.1: ComfyUI's comfy.ldm.hunyuan_video.model.HunyuanVideo, Flux's double
and single blocks after a token refiner.

Each concept goes through the token refiner (txt_in) alone: the refiner conditions every
token on the mean of the tokens it is given, so with the prompt the concepts would carry
the prompt's mean (and its padding's), and alone each carries its own vector, as a
one-word prompt would. HunyuanVideo 1.5 then adds the text's type embedding. The
concepts then run through Flux's text-stream weights of every double block up to the
last chosen one (hooks/flux.py) with the prompt's own text modulation: the block's vec,
which holds the timestep, the guidance, MeanFlow's second timestep (1.5) and, in 1.0,
the prompt's pooled CLIP-L vector. The paper zeroes Flux's pooled vector for its
concepts; here the concepts are modulated as the prompt tokens beside them are, since the
pooled vector is part of HunyuanVideo 1.0's conditioning, not a Flux-style add-on, and
1.5 has none. Text ids are zero: the concepts' rotation is the identity. Reference
latents (image-to-video) come before the video's own tokens in the image stream; the
concepts attend to both, and the maps are of the video's tokens.
"""
import inspect

import comfy.ldm.flux.layers
import comfy.ldm.hunyuan_video.model
import comfy.text_encoders.hunyuan_image
import torch

from . import flux
from .family import Family, FamilyUnavailable
from .text import TextEncoding

if "flipped_img_txt" in inspect.signature(comfy.ldm.flux.layers.DoubleStreamBlock).parameters:
    raise FamilyUnavailable("this ComfyUI's HunyuanVideo puts the video before the prompt in its joint attention "
                            "(an older layout, before ComfyUI 0.33), which the capture does not follow; update "
                            "ComfyUI to 0.33 or newer")

# Of the 20 double blocks of HunyuanVideo 1.0 (54 of 1.5), the paper's share of Flux's
# (its last four of 19): the last fifth.
LAST_SHARE = 4 / 19


def default_layers(count: int) -> tuple:
    last = max(1, round(count * LAST_SHARE))
    return tuple(range(count - last, count))


def text_encoding(clip):
    """HunyuanVideo 1.5's and HunyuanImage 2.1's Qwen 2.5-VL 7B: the hidden states of the chat
    template's user turn (ComfyUI crops the system prefix, as for Qwen-Image, whose class
    this encoder extends); the word's own tokens sit at its start. 1.0's LLaVA-Llama-3 is
    not known here (its tokenizer does not ship with ComfyUI, so it could not be checked)."""
    if not isinstance(clip.cond_stage_model, comfy.text_encoders.hunyuan_image.HunyuanImageTEModel):
        return None
    return TextEncoding(family=FAMILY.name, stream="qwen25_7b",
                        description="HunyuanVideo 1.5 / HunyuanImage 2.1 text encoder (Qwen 2.5-VL 7B): the word's "
                                    "own tokens")


class HunyuanVideoCall(flux.FluxCall):
    def concept_stream(self, arguments: dict, x: torch.Tensor) -> torch.Tensor:
        embeddings = self.embeddings(arguments["context"].dtype, x.device)       # [R, C, D]
        rows, count = embeddings.shape[:2]
        timesteps = arguments["timestep"][self.rows].repeat_interleave(count)
        stream = self.dm.txt_in(embeddings.reshape(rows * count, 1, -1), timesteps, None).reshape(rows, count, -1)
        if getattr(self.dm, "cond_type_embedding", None) is not None:           # 1.5: type 0, the text
            stream = stream + self.dm.cond_type_embedding.weight[0].to(stream)
        return stream

    def text_modulation(self, block, args: dict) -> tuple:
        vec = args["vec"]
        if vec.ndim == 3:       # image-to-video's guiding frame: [B, 2, hidden], the text takes the second
            vec = vec[:, 1]
        return block.txt_mod(vec[self.rows])

    def text_index(self, text_len: int) -> int:
        return 0

    def reference_tokens(self, args: dict) -> int:
        return args["img"].shape[1] - self.layout.patches


FAMILY = Family(
    name="HunyuanVideo",
    matches=lambda dm: isinstance(dm, comfy.ldm.hunyuan_video.model.HunyuanVideo),
    call_type=HunyuanVideoCall,
    blocks=lambda dm: dm.double_blocks,
    default_layers=default_layers,
    default_layers_text="the last fifth of the double blocks (1.0: 16-19 of 20)",
    context_width=lambda dm: dm.txt_in.input_embedder.in_features,
    text_encoding=text_encoding,
    text_encoder="Qwen 2.5-VL (1.5, HunyuanImage 2.1; 1.0's LLaVA-Llama-3 not yet)",
    patch_size=lambda dm: dm.patch_size[-1],
    # 1.0's VAE: 8 pixels per latent pixel; 1.5's 16, HunyuanImage 2.1's 32 (their latent formats say so on 0.33)
    latent_downscale=lambda dm: 8,
    frames_per_latent=4,
    latents_per_token=lambda dm: dm.patch_size[0] if len(dm.patch_size) == 3 else 1,
)
