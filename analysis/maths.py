"""Pure tensor maths of ConceptAttention: scores, the softmax over concepts,
reductions, normalisation, resizing, masks and colour maps.

Nothing here imports ComfyUI, so every function is unit-testable alone.
Shapes: R = batch rows, H = heads, C = concepts, P = image patches (tokens),
D = feature width, E = captured evaluations (steps), L = layers.
"""
import torch
import torch.nn.functional as F

CONCEPT_ATTENTION, CROSS_ATTENTION = "concept_attention", "cross_attention"
METHODS = (CONCEPT_ATTENTION, CROSS_ATTENTION)
AUTO = "auto"     # the map nodes' default: ConceptAttention's maps, or a cross-attention model's only ones


# On a CPU, the fp32 copy of a half-precision operand is made in pieces of about this
# size, which stay in cache between the conversion and the product.
CPU_PIECE_BYTES = 1 << 19


def output_space_scores(concept_out: torch.Tensor, image_out: torch.Tensor) -> torch.Tensor:
    """Dot products of attention outputs taken before the output projection.

    concept_out: [R, C, D], image_out: [R, P, D] (heads concatenated) -> [R, C, P], fp32.
    """
    concept = concept_out.float()
    if image_out.dtype == torch.float32 or image_out.device.type != "cpu":
        return torch.matmul(concept, image_out.float().transpose(-1, -2))
    # A whole fp32 copy of image_out goes to memory and back, which on a CPU costs
    # several times the product itself (Flux 1 at 1024²: 15 ms against 2 in pieces).
    out = torch.empty(*concept.shape[:-1], image_out.shape[-2], device=concept.device)
    rows = max(1, CPU_PIECE_BYTES // (4 * image_out.shape[-1]))
    for start in range(0, image_out.shape[-2], rows):
        piece = image_out[..., start:start + rows, :].float()
        torch.matmul(concept, piece.transpose(-1, -2), out=out[..., start:start + rows])
    return out


def cross_attention_scores(image_q: torch.Tensor, concept_k: torch.Tensor) -> torch.Tensor:
    """The paper's cross-attention baseline: image queries . concept keys, unscaled,
    before RoPE, averaged over heads.

    image_q: [R, H, P, D], concept_k: [R, H, C, D] -> [R, C, P], fp32.
    """
    # One batched matmul per head on the queries as laid out (no permuted copy), then the head mean.
    return torch.matmul(concept_k.float(), image_q.float().transpose(-1, -2)).mean(dim=1)


def unrotate_pairs(rotated: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Vectors before a rotary position embedding, in fp32: RoPE turned each feature pair
    (2i, 2i+1) of `rotated` [..., N, D] by an angle, given as its cos and sin [..., N, D/2]
    (broadcast over the leading axes); the opposite turn restores them. Written into one
    buffer: a plain expression would allocate several temporaries of this size.
    """
    first, second = rotated[..., 0::2], rotated[..., 1::2]
    out = torch.empty(rotated.shape, dtype=torch.float32, device=rotated.device)
    torch.mul(cos, first, out=out[..., 0::2]).addcmul_(sin, second)
    torch.mul(cos, second, out=out[..., 1::2]).addcmul_(sin, first, value=-1)
    return out


def concept_softmax(scores: torch.Tensor) -> torch.Tensor:
    """The paper's per-(evaluation, layer) maps: softmax over the concept axis (-2)
    of raw scores [..., C, P], in fp32."""
    return scores.float().softmax(dim=-2)


def reduce_scores(scores: torch.Tensor, softmax: bool = True) -> torch.Tensor:
    """Maps from raw scores, as the paper: softmax over concepts for every
    (evaluation, layer), then the mean over evaluations and layers.

    scores: [E, L, B, C, P] -> [B, C, P].
    """
    if softmax:
        scores = concept_softmax(scores)
    return scores.float().mean(dim=(0, 1))


def normalize(maps: torch.Tensor, mode: str = "per_concept", eps: float = 1e-12) -> torch.Tensor:
    """Min-max to [0, 1]. maps: [B, C, ...].

    per_concept: each (image, concept) map on its own scale;
    joint: one scale shared by all concepts of an image, so their strengths compare.
    """
    if mode not in ("per_concept", "joint"):
        raise ValueError(f"unknown normalisation {mode!r}")
    start = 2 if mode == "per_concept" else 1
    flat = maps.flatten(start)
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    return ((flat - lo) / (hi - lo).clamp_min(eps)).reshape(maps.shape)


def resize(maps: torch.Tensor, size: tuple) -> torch.Tensor:
    """Bilinear resize of [..., h, w] maps (images [B, C, h, w], video [B, C, F, h, w])
    to size (H, W)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    flat = maps.float().reshape(-1, 1, *maps.shape[-2:])
    return F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False).reshape(*maps.shape[:-2], *size)


def token_frames(video_frames: int, frames_per_latent: int, latents_per_token: int, token_count: int) -> torch.Tensor:
    """The token frame of each decoded video frame: a causal video VAE decodes latent
    frame 0 to frame 0 alone and every later latent frame to `frames_per_latent`
    frames (frame f comes from latent ceil(f / frames_per_latent)); a token frame
    covers `latents_per_token` latent frames. [video_frames] long indices."""
    frames = torch.arange(video_frames)
    latent = (frames + frames_per_latent - 1) // frames_per_latent
    return (latent // latents_per_token).clamp(max=token_count - 1)


def argmax_masks(maps: torch.Tensor) -> torch.Tensor:
    """One mutually exclusive {0, 1} mask per concept: each pixel (of each frame) goes
    to the concept with the highest map value. maps: [B, C, ...] -> [B, C, ...]."""
    winner = maps.argmax(dim=1)
    return F.one_hot(winner, maps.shape[1]).movedim(-1, 1).to(maps.dtype)


def fit(size: tuple, side: int) -> tuple:
    """(h, w) of an image of `size` (H, W) scaled to fit in side x side, aspect kept."""
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def as_items(maps: torch.Tensor) -> torch.Tensor:
    """Images [B, C, h, w] unchanged; video [B, C, F, h, w] as one item per (video,
    token frame), video-major: [B * F, C, h, w]."""
    return maps.movedim(2, 1).flatten(0, 1) if maps.ndim == 5 else maps


def regions(maps: torch.Tensor, image_size: tuple) -> dict:
    """Where each concept wins the argmax, measured on the token grid, each patch
    counting as its share of the image. maps: [N, C, h, w]; image_size: (H, W) pixels.

    area_share [N, C]: fraction of patches the concept wins;
    centroid [N, C, 2]: (x, y) in image pixels, the mean of its patches' centres;
    box [N, C, 4]: (left, top, right, bottom) in image pixels, its patches' outer edges.
    A concept that wins no patch has NaN centroid and box.
    """
    count, concepts, height, width = maps.shape
    won = argmax_masks(maps).bool()                                   # [N, C, h, w]
    area = won.flatten(2).float().mean(dim=-1)
    scale_y, scale_x = image_size[0] / height, image_size[1] / width
    rows = torch.arange(height, dtype=torch.float32).view(height, 1).expand(height, width)
    columns = torch.arange(width, dtype=torch.float32).view(1, width).expand(height, width)
    patches = won.flatten(2).sum(dim=-1).float()
    centroid = torch.stack([((columns + 0.5) * won).flatten(2).sum(-1) * scale_x,
                            ((rows + 0.5) * won).flatten(2).sum(-1) * scale_y], dim=-1) / patches[..., None]
    inf = torch.tensor(float("inf"))
    left = torch.where(won, columns, inf).flatten(2).amin(-1) * scale_x
    top = torch.where(won, rows, inf).flatten(2).amin(-1) * scale_y
    right = (torch.where(won, columns, -inf).flatten(2).amax(-1) + 1) * scale_x
    bottom = (torch.where(won, rows, -inf).flatten(2).amax(-1) + 1) * scale_y
    box = torch.stack([left, top, right, bottom], dim=-1)
    empty = patches == 0
    centroid[empty] = float("nan")
    box[empty] = float("nan")
    return {"area_share": area, "centroid": centroid, "box": box}


def soft_overlap(maps: torch.Tensor) -> torch.Tensor:
    """How much two concepts' maps cover the same place, 0..1 (1: the same map up to
    scale): sum(min) / sum(max) of the per-concept normalised maps (weighted Jaccard).
    maps: [N, C, h, w] -> [N, C, C]."""
    shapes = normalize(maps, "per_concept").flatten(2)                # [N, C, P]
    low = torch.minimum(shapes[:, :, None], shapes[:, None]).sum(-1)
    high = torch.maximum(shapes[:, :, None], shapes[:, None]).sum(-1)
    return low / high.clamp_min(1e-12)


def blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of [..., H, W] maps with standard deviation `sigma` pixels
    (separable, edges reflected, each frame on its own); sigma <= 0 returns the maps unchanged."""
    if sigma <= 0:
        return maps
    radius = max(1, min(int(3 * sigma + 0.5), min(maps.shape[-2:]) - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    flat = maps.float().reshape(-1, 1, *maps.shape[-2:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(maps.shape)


def threshold_masks(maps: torch.Tensor, value=None) -> torch.Tensor:
    """{0, 1} masks: map > value, or map > its own mean when value is None
    (the paper's binary segmentation). maps: [B, C, H, W]."""
    cut = maps.mean(dim=(-2, -1), keepdim=True) if value is None else value
    return (maps > cut).to(maps.dtype)


def grow(masks: torch.Tensor, pixels: int) -> torch.Tensor:
    """Dilate {0, 1} masks [..., H, W] by `pixels` (a square neighbourhood, each frame
    on its own); negative values erode. 0 returns the masks unchanged."""
    if pixels == 0:
        return masks
    size = 2 * abs(pixels) + 1
    flat = masks.reshape(-1, 1, *masks.shape[-2:])
    if pixels > 0:
        flat = F.max_pool2d(flat, size, stride=1, padding=abs(pixels))
    else:
        flat = -F.max_pool2d(-flat, size, stride=1, padding=abs(pixels))
    return flat.reshape(masks.shape)


# Colour maps as evenly spaced anchor colours (matplotlib's, sampled at 9 points),
# linearly interpolated: close to the originals and free of any plotting dependency.
_COLORMAPS = {
    "plasma": ["0d0887", "4c02a1", "7e03a8", "a92395", "cc4778", "e56b5d", "f89540", "fdc527", "f0f921"],
    "viridis": ["440154", "472d7b", "3b528b", "2c728e", "21918c", "28ae80", "5ec962", "addc30", "fde725"],
    "inferno": ["000004", "1f0c48", "550f6d", "88226a", "ba3655", "e35933", "f98e09", "fac228", "fcffa4"],
    "magma": ["000004", "1c1044", "4f127b", "812581", "b5367a", "e55064", "fb8761", "fec287", "fcfdbf"],
    "turbo": ["30123b", "466be3", "28bceb", "32f298", "a4fc3c", "eecf3a", "fb7e21", "d02f05", "7a0403"],
    "gray": ["000000", "ffffff"],
}
COLORMAPS = tuple(_COLORMAPS)


def _anchors(name: str) -> torch.Tensor:
    if name not in _COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    return torch.tensor([[int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)] for h in _COLORMAPS[name]])


def colorize(values: torch.Tensor, name: str = "plasma") -> torch.Tensor:
    """Values in [0, 1], any shape [...] -> RGB [..., 3] in [0, 1]."""
    anchors = _anchors(name).to(values.device)
    pos = values.float().clamp(0, 1) * (len(anchors) - 1)
    lo = pos.floor().long().clamp(max=len(anchors) - 2)
    frac = (pos - lo).unsqueeze(-1)
    return anchors[lo] * (1 - frac) + anchors[lo + 1] * frac


def blend(image: torch.Tensor, colour: torch.Tensor, opacity: float) -> torch.Tensor:
    """Alpha-blend a colour layer over an image; both [..., 3] in [0, 1]."""
    return image * (1 - opacity) + colour * opacity
