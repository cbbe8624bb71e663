"""ConceptAttention for one forward pass of Flux 1 or 2, SD3, Qwen-Image, CogVideoX or
HunyuanVideo, and the cross-attention baseline of Wan, written from the paper's equations
with plain torch (scaled_dot_product_attention, explicit RoPE and modulation) and the model's own modules for the learned layers. Independent of the
extension's capture code: tests compare its maps with what the extension records.
"""
import torch
import torch.nn.functional as F


def _heads(qkv, heads):
    q, k, v = qkv.view(qkv.shape[0], qkv.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4)
    return q, k, v                                                   # [B, H, N, D]


def _rotate(x, pe):
    # pe [.., N, D/2, 2, 2] holds one 2x2 rotation per feature pair.
    pairs = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    return (pe[..., 0] * pairs[..., 0] + pe[..., 1] * pairs[..., 1]).reshape(x.shape).to(x.dtype)


def _modulate(x, mod):
    return (1 + mod.scale) * x + mod.shift


def _joint_attention(q, k, v):
    out = F.scaled_dot_product_attention(q, k, v)                    # [B, H, N, D]
    return out.transpose(1, 2).flatten(2)                            # [B, N, H * D]


def _attend(text, image, concepts, image_q, concept_k):
    """One block's joint attention over [text, image], the concepts' attention over
    [concepts, image] (never the prompt), and the paper's two scores [B, C, P].
    text, image, concepts: (q, k, v) [B, H, N, D] as the block attends with them;
    image_q, concept_k: before any RoPE, for the cross-attention baseline.
    Returns text_out, image_out, concept_out [B, N, H * D] and (output space, cross)."""
    joint = _joint_attention(*(torch.cat((t, i), 2) for t, i in zip(text, image)))
    text_len = text[0].shape[2]
    text_out, image_out = joint[:, :text_len], joint[:, text_len:]
    concept_out = _joint_attention(concepts[0], torch.cat((concepts[1], image[1]), 2), torch.cat((concepts[2], image[2]), 2))
    output_space = torch.einsum("bcd,bpd->bcp", concept_out, image_out)
    cross = torch.einsum("bhpd,bhcd->bcp", image_q, concept_k) / image_q.shape[1]
    return text_out, image_out, concept_out, (output_space, cross)


@torch.no_grad()
def concept_attention_maps(dm, x, timestep, context, y, guidance, concept_embeddings, layers, concept_position=0):
    """Per-layer (output-space, cross-attention) raw scores [L, B, C, P] of one Flux call.

    Flux 1: zero text ids; the concepts' modulation vector has the pooled text zeroed.
    Flux 2 (global modulation): text ids run 0..T-1 on the last of 4 axes, the
    concepts sit at text position `concept_position` and share the text modulation.
    Chroma: zero text ids; the approximator's modulation of each block's text stream,
    shared by the concepts; the blocks in skip_mmdit do not run (and give no scores).
    Chroma Radiance: the image's pixels in p x p patches through a convolution of stride
    p; text ids 0..T-1 on the first axis (use_sequential_txt_ids), the concepts at 0.
    """
    chroma = hasattr(dm, "distilled_guidance_layer")
    radiance = hasattr(dm, "img_in_patch")
    skipped = set(getattr(dm, "skip_mmdit", ()))
    flux2 = not chroma and dm.params.global_modulation
    axes = len(dm.params.axes_dim)
    p = dm.patch_size
    batch, _, height, width = x.shape
    if radiance:
        img = dm.img_in_patch(x).flatten(2).transpose(1, 2)                    # [B, patches, hidden], row-major
    else:
        img = x.reshape(batch, -1, height // p, p, width // p, p).permute(0, 2, 4, 1, 3, 5).flatten(3).flatten(1, 2)
        img = dm.img_in(img)
    rows = torch.arange(height // p, dtype=torch.float32)[:, None].expand(-1, width // p)
    cols = torch.arange(width // p, dtype=torch.float32)[None, :].expand(height // p, -1)
    img_ids = torch.zeros(height // p, width // p, axes)
    img_ids[..., 1], img_ids[..., 2] = rows, cols
    img_ids = img_ids.reshape(1, -1, axes).expand(batch, -1, -1)
    text_input = dm.txt_norm if getattr(dm, "txt_norm", None) is not None else torch.nn.Identity()
    txt = dm.txt_in(text_input(context))
    txt_ids = torch.zeros(batch, txt.shape[1], axes)
    concepts = dm.txt_in(text_input(concept_embeddings.unsqueeze(0).expand(batch, -1, -1)))
    concept_ids = torch.zeros(batch, concepts.shape[1], axes)
    if flux2:
        txt_ids[..., -1] = torch.arange(txt.shape[1], dtype=torch.float32)
        concept_ids[..., -1] = concept_position
    if radiance and getattr(dm.params, "use_sequential_txt_ids", False):
        txt_ids[..., 0] = torch.arange(txt.shape[1], dtype=torch.float32)
    pe = dm.pe_embedder(torch.cat((txt_ids, img_ids), dim=1))
    pe_txt, pe_img = pe[:, :, :txt.shape[1]], pe[:, :, txt.shape[1]:]
    pe_concepts = dm.pe_embedder(concept_ids)

    if chroma:
        chroma_mods = _chroma_modulations(dm, timestep, guidance)
    else:
        vec = dm.time_in(_timestep_embedding(timestep))
        if dm.params.guidance_embed:
            vec = vec + dm.guidance_in(_timestep_embedding(guidance))
        vec_concepts = vec
        if dm.vector_in is not None:
            vec_concepts = vec + dm.vector_in(torch.zeros_like(y))
            vec = vec + dm.vector_in(y)

    def modulations(index, block):
        """(img_mod1, img_mod2), (txt_mod1, txt_mod2), (concept_mod1, concept_mod2)"""
        if chroma:
            image, text = chroma_mods(index)
            return image, text, text
        if flux2:
            text = dm.double_stream_modulation_txt(vec)
            return dm.double_stream_modulation_img(vec), text, text
        return block.img_mod(vec), block.txt_mod(vec), block.txt_mod(vec_concepts)

    output_space, cross = [], []
    for index in range(max(layers) + 1):
        block = dm.double_blocks[index]
        if index in skipped:
            continue
        img, txt, concepts, scores = _double_block(block, modulations(index, block), img, txt, concepts,
                                                   (pe_img, pe_txt, pe_concepts))
        if index in layers:
            output_space.append(scores[0])
            cross.append(scores[1])
    return torch.stack(output_space), torch.stack(cross)


def _double_block(block, modulations, img, txt, concepts, rotations):
    """One Flux double block (comfy.ldm.flux.layers.DoubleStreamBlock's modules) on the
    image, the prompt and the concepts through the prompt's weights: the streams after it
    and the paper's scores. modulations: (img, txt, concept) (mod1, mod2) pairs;
    rotations: the RoPE of (img, txt, concepts)."""
    heads = block.num_heads
    (img_mod1, img_mod2), (txt_mod1, txt_mod2), (con_mod1, con_mod2) = modulations
    pe_img, pe_txt, pe_concepts = rotations
    iq, ik, iv = _heads(block.img_attn.qkv(_modulate(block.img_norm1(img), img_mod1)), heads)
    iq, ik = block.img_attn.norm(iq, ik, iv)
    tq, tk, tv = _heads(block.txt_attn.qkv(_modulate(block.txt_norm1(txt), txt_mod1)), heads)
    tq, tk = block.txt_attn.norm(tq, tk, tv)
    cq, ck, cv = _heads(block.txt_attn.qkv(_modulate(block.txt_norm1(concepts), con_mod1)), heads)
    cq, ck = block.txt_attn.norm(cq, ck, cv)
    txt_out, img_out, con_out, scores = _attend((_rotate(tq, pe_txt), _rotate(tk, pe_txt), tv),
                                                (_rotate(iq, pe_img), _rotate(ik, pe_img), iv),
                                                (_rotate(cq, pe_concepts), _rotate(ck, pe_concepts), cv), iq, ck)
    img = img + img_mod1.gate * block.img_attn.proj(img_out)
    img = img + img_mod2.gate * block.img_mlp(_modulate(block.img_norm2(img), img_mod2))
    txt = txt + txt_mod1.gate * block.txt_attn.proj(txt_out)
    txt = txt + txt_mod2.gate * block.txt_mlp(_modulate(block.txt_norm2(txt), txt_mod2))
    concepts = concepts + con_mod1.gate * block.txt_attn.proj(con_out)
    concepts = concepts + con_mod2.gate * block.txt_mlp(_modulate(block.txt_norm2(concepts), con_mod2))
    return img, txt, concepts, scores


class _Modulation:
    def __init__(self, shift, scale, gate):
        self.shift, self.scale, self.gate = shift, scale, gate


def _chroma_modulations(dm, timestep, guidance, table_length=344):
    """index -> ((img_mod1, img_mod2), (txt_mod1, txt_mod2)) of Chroma's double block
    `index`: one approximator output row per modulation, for the input [embedding(t) (16),
    embedding(guidance) (16), embedding(row index) (32)]; rows: the single blocks' 3
    each, then 6 per double block for the image stream, then 6 per double block for text."""
    batch = timestep.shape[0]
    t_and_g = torch.cat((_timestep_embedding(timestep, 16), _timestep_embedding(guidance, 16)), dim=1)
    index = _timestep_embedding(torch.arange(table_length, dtype=torch.float32), 32)
    table = dm.distilled_guidance_layer(torch.cat((t_and_g[:, None].expand(-1, table_length, -1),
                                                   index[None].expand(batch, -1, -1)), dim=-1))   # [B, 344, hidden]
    singles, doubles = 3 * dm.params.depth_single_blocks, dm.params.depth

    def rows(start):
        return _Modulation(*(table[:, start + i:start + i + 1] for i in range(3)))

    def of(block):
        image, text = singles + 6 * block, singles + 6 * doubles + 6 * block
        return (rows(image), rows(image + 3)), (rows(text), rows(text + 3))
    return of


def _timestep_embedding(t, dim=256, max_period=10000, time_factor=1000.0):
    half = dim // 2
    freqs = torch.exp(-torch.log(torch.tensor(float(max_period))) * torch.arange(half, dtype=torch.float32) / half)
    args = (t * time_factor)[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


# ---------------------------------------------------------------------------
# SD3 / SD3.5 (ComfyUI's MMDiT): the prompt first, absolute positions, no RoPE.

def _sd3_modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def _sd3_qkv(attn, x, heads):
    q, k, v = attn.qkv(x).unflatten(-1, (3, heads, -1)).unbind(dim=2)       # [B, N, H, D]
    return attn.ln_q(q).transpose(1, 2), attn.ln_k(k).transpose(1, 2), v.transpose(1, 2)


class _Stream:
    """One token stream through a DismantledBlock, from the adaLN chunks of c."""

    def __init__(self, block, c):
        count = 2 if block.pre_only else (9 if block.x_block_self_attn else 6)
        self.block, self.mods = block, block.adaLN_modulation(c).chunk(count, dim=1)

    def qkv(self, x, heads):
        shift, scale = self.mods[0], self.mods[1]
        return _sd3_qkv(self.block.attn, _sd3_modulate(self.block.norm1(x), shift, scale), heads)

    def second_qkv(self, x, heads):            # SD3.5 medium's attn2: chunks 6-8
        return _sd3_qkv(self.block.attn2, _sd3_modulate(self.block.norm1(x), self.mods[6], self.mods[7]), heads)

    def update(self, x, attention_out, second_out=None):
        _, _, gate, shift_mlp, scale_mlp, gate_mlp = self.mods[:6]
        x = x + gate.unsqueeze(1) * self.block.attn.proj(attention_out)
        if second_out is not None:
            x = x + self.mods[8].unsqueeze(1) * self.block.attn2.proj(second_out)
        return x + gate_mlp.unsqueeze(1) * self.block.mlp(_sd3_modulate(self.block.norm2(x), shift_mlp, scale_mlp))


@torch.no_grad()
def sd3_concept_attention_maps(dm, x, timesteps, context, y, concept_embeddings, layers):
    """Per-layer (output-space, cross-attention) raw scores [L, B, C, P] of one MMDiT call.
    Concepts use each block's context (text) weights, modulated by the block's c."""
    batch = x.shape[0]
    img = dm.x_embedder(x) + dm.cropped_pos_embed(x.shape[-2:])
    c = dm.t_embedder(timesteps, dtype=x.dtype) + dm.y_embedder(y)
    txt = dm.context_embedder(context)
    concepts = dm.context_embedder(concept_embeddings.unsqueeze(0).expand(batch, -1, -1))
    output_space, cross = [], []
    for index in range(max(layers) + 1):
        block = dm.joint_blocks[index]
        heads = block.x_block.attn.num_heads
        text_stream, image_stream = _Stream(block.context_block, c), _Stream(block.x_block, c)
        tq, tk, tv = text_stream.qkv(txt, heads)
        iq, ik, iv = image_stream.qkv(img, heads)
        cq, ck, cv = text_stream.qkv(concepts, heads)
        txt_out, img_out, con_out, scores = _attend((tq, tk, tv), (iq, ik, iv), (cq, ck, cv), iq, ck)
        if index in layers:
            output_space.append(scores[0])
            cross.append(scores[1])
        second = _joint_attention(*image_stream.second_qkv(img, heads)) if block.x_block.x_block_self_attn else None
        img = image_stream.update(img, img_out, second)
        if not block.context_block.pre_only:
            txt = text_stream.update(txt, txt_out)
            concepts = text_stream.update(concepts, con_out)
    return torch.stack(output_space), torch.stack(cross)


# ---------------------------------------------------------------------------
# CogVideoX: one stream with shared weights, text first; RoPE (or a positional
# table, in the patch embedding) on the video tokens only.

def _cogvideo_rotate(x, cos, sin):
    """x [B, H, N, D] with interleaved (real, imag) feature pairs, rotated by the angles of cos/sin [N, D]."""
    real, imag = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
    return x * cos + torch.stack((-imag, real), dim=-1).flatten(3) * sin


@torch.no_grad()
def cogvideox_concept_attention_maps(dm, x, timestep, context, concept_embeddings, layers):
    """Per-layer (output-space, cross-attention) raw scores [L, B, C, P] of one CogVideoX
    call; x [B, C, T, H, W] as the model receives it. The concepts take each block's
    text ("enc") modulation and the shared projections, and no positions."""
    import comfy.ldm.cogvideo.model as cogvideo
    import comfy.ldm.common_dit

    p, p_t = dm.patch_size, dm.patch_size_t or 1
    x = comfy.ldm.common_dit.pad_to_patch_size(x, (p_t, p, p)).permute(0, 2, 1, 3, 4)    # [B, T, C, H, W]
    batch, frames, _, height, width = x.shape
    t_emb = cogvideo.get_timestep_embedding(timestep, dm.time_proj_dim, dm.time_proj_flip, dm.time_proj_shift)
    temb = dm.time_embedding_linear_2(F.silu(dm.time_embedding_linear_1(t_emb)))
    joint = dm.patch_embed(context, x)                     # text projection, video patches, positional table
    text, video = joint[:, :context.shape[1]], joint[:, context.shape[1]:]
    concepts = dm.patch_embed.text_proj(concept_embeddings.unsqueeze(0).expand(batch, -1, -1))
    rotary = dm._get_rotary_emb(height // p, width // p, frames // p_t, x.device) if dm.use_rotary_positional_embeddings else None

    def qkv(block, tokens, shift, scale):
        normed = block.norm1.norm(tokens) * (1 + scale[:, None]) + shift[:, None]
        count, heads, width_ = tokens.shape[1], block.num_heads, block.head_dim
        q = block.norm_q(block.q(normed).view(batch, count, heads, width_)).transpose(1, 2)
        k = block.norm_k(block.k(normed).view(batch, count, heads, width_)).transpose(1, 2)
        return q, k, block.v(normed).view(batch, count, heads, width_).transpose(1, 2)

    def feed_forward(block, tokens, shift, scale):
        normed = block.norm2.norm(tokens) * (1 + scale[:, None]) + shift[:, None]
        return block.ff_out(F.gelu(block.ff_proj(normed), approximate="tanh"))

    output_space, cross = [], []
    for index in range(max(layers) + 1):
        block = dm.blocks[index]
        shift, scale, gate, enc_shift, enc_scale, enc_gate = block.norm1.linear(F.silu(temb)).chunk(6, dim=1)
        vq, vk, vv = qkv(block, video, shift, scale)
        tq, tk, tv = qkv(block, text, enc_shift, enc_scale)
        cq, ck, cv = qkv(block, concepts, enc_shift, enc_scale)
        vq_r, vk_r = (vq, vk) if rotary is None else (_cogvideo_rotate(vq, *rotary), _cogvideo_rotate(vk, *rotary))
        text_out, video_out, concept_out, scores = _attend((tq, tk, tv), (vq_r, vk_r, vv), (cq, ck, cv), vq, ck)
        if index in layers:
            output_space.append(scores[0])
            cross.append(scores[1])
        video = video + gate[:, None] * block.attn_out(video_out)
        text = text + enc_gate[:, None] * block.attn_out(text_out)
        concepts = concepts + enc_gate[:, None] * block.attn_out(concept_out)
        shift, scale, gate, enc_shift, enc_scale, enc_gate = block.norm2.linear(F.silu(temb)).chunk(6, dim=1)
        video = video + gate[:, None] * feed_forward(block, video, shift, scale)
        text = text + enc_gate[:, None] * feed_forward(block, text, enc_shift, enc_scale)
        concepts = concepts + enc_gate[:, None] * feed_forward(block, concepts, enc_shift, enc_scale)
    return torch.stack(output_space), torch.stack(cross)


# ---------------------------------------------------------------------------
# Qwen-Image and Qwen-Image-Edit: dual-stream blocks, 3-axis RoPE with the text after
# the image, per-token modulation of the reference tokens at t = 0 (index_timestep_zero).

def _qwen_patches(x, p):
    """[B, C, 1, H, W] -> tokens [B, (H/p)(W/p), C p p] and the grid (rows, cols)."""
    batch, channels, _, height, width = x.shape
    rows, cols = height // p, width // p
    tokens = x[:, :, 0].reshape(batch, channels, rows, p, cols, p).permute(0, 2, 4, 1, 3, 5)
    return tokens.reshape(batch, rows * cols, channels * p * p), (rows, cols)


def _qwen_ids(grid, frame_index):
    """Positions of one latent's tokens: (frame index, row, column), rows and columns centred."""
    rows, cols = grid
    ids = torch.zeros(rows, cols, 3)
    ids[..., 0] = frame_index
    ids[..., 1] = torch.arange(rows, dtype=torch.float32)[:, None] - rows // 2
    ids[..., 2] = torch.arange(cols, dtype=torch.float32)[None, :] - cols // 2
    return ids.reshape(-1, 3)


def _qwen_modulate(x, shift, scale):
    return x * (1 + scale) + shift


@torch.no_grad()
def qwen_image_concept_attention_maps(dm, x, timestep, context, concept_embeddings, layers, ref_latents=(),
                                      ref_method="index"):
    """Per-layer (output-space, cross-attention) raw scores [L, B, C, P] of one
    Qwen-Image call; x [B, C, 1, H, W] with even H and W, no text mask. Text positions
    run from txt_start = max(rows, cols) // 2 on all three axes; every concept sits at
    txt_start. Reference latents (editing) follow the image as keys, at frame index
    1, 2, ... (-1, -2, ... under negative_index); under index_timestep_zero their
    modulation is that of t = 0."""
    p = dm.patch_size
    batch = x.shape[0]
    image, grid = _qwen_patches(x, p)
    patches = image.shape[1]
    ids = [_qwen_ids(grid, 0)]
    for number, ref in enumerate(ref_latents, start=1):
        tokens, ref_grid = _qwen_patches(ref, p)
        image = torch.cat((image, tokens), dim=1)
        ids.append(_qwen_ids(ref_grid, -number if ref_method == "negative_index" else number))
    image = dm.img_in(image)
    txt_start = max(grid) // 2
    text = dm.txt_in(dm.txt_norm(context))
    concepts = dm.txt_in(dm.txt_norm(concept_embeddings.unsqueeze(0).expand(batch, -1, -1)))
    text_ids = (txt_start + torch.arange(text.shape[1], dtype=torch.float32))[:, None].expand(-1, 3)
    pe = dm.pe_embedder(torch.cat((text_ids, *ids))[None])                    # [1, 1, N, D/2, 2, 2]
    pe_text, pe_image = pe[:, :, :text.shape[1]], pe[:, :, text.shape[1]:]
    pe_concepts = dm.pe_embedder(torch.full((1, concepts.shape[1], 3), float(txt_start)))

    temb = dm.time_text_embed(timestep, image)                                 # [B, dim]
    zero = ref_method == "index_timestep_zero" and len(ref_latents) > 0
    temb_ref = dm.time_text_embed(timestep * 0, image) if zero else temb
    is_ref = (torch.arange(image.shape[1]) >= patches)[None, :, None]

    def image_modulation(block, part):
        """shift, scale, gate per image token [B, N, dim] (chunk `part` of img_mod)."""
        own = block.img_mod(temb).chunk(6, dim=-1)[3 * part:3 * part + 3]
        ref = block.img_mod(temb_ref).chunk(6, dim=-1)[3 * part:3 * part + 3]
        return [torch.where(is_ref, r[:, None], o[:, None]) for o, r in zip(own, ref)]

    def heads(tensor, count):
        return tensor.unflatten(-1, (count, -1)).transpose(1, 2)               # [B, H, N, D]

    output_space, cross = [], []
    for index in range(max(layers) + 1):
        block = dm.transformer_blocks[index]
        attn, count = block.attn, block.attn.heads
        shift1, scale1, gate1, shift2, scale2, gate2 = (t[:, None] for t in block.txt_mod(temb).chunk(6, dim=-1))
        img_shift1, img_scale1, img_gate1 = image_modulation(block, 0)
        img_in = _qwen_modulate(block.img_norm1(image), img_shift1, img_scale1)
        txt_in = _qwen_modulate(block.txt_norm1(text), shift1, scale1)
        con_in = _qwen_modulate(block.txt_norm1(concepts), shift1, scale1)
        iq = attn.norm_q(heads(attn.to_q(img_in), count))
        ik = attn.norm_k(heads(attn.to_k(img_in), count))
        iv = heads(attn.to_v(img_in), count)
        tq, tk, tv = (attn.norm_added_q(heads(attn.add_q_proj(txt_in), count)),
                      attn.norm_added_k(heads(attn.add_k_proj(txt_in), count)), heads(attn.add_v_proj(txt_in), count))
        cq, ck, cv = (attn.norm_added_q(heads(attn.add_q_proj(con_in), count)),
                      attn.norm_added_k(heads(attn.add_k_proj(con_in), count)), heads(attn.add_v_proj(con_in), count))
        rotated = [_rotate(t, pe) for t, pe in ((iq, pe_image), (ik, pe_image), (tq, pe_text), (tk, pe_text),
                                                (cq, pe_concepts), (ck, pe_concepts))]
        txt_out, img_out, con_out, scores = _attend((rotated[2], rotated[3], tv), (rotated[0], rotated[1], iv),
                                                    (rotated[4], rotated[5], cv), iq[:, :, :patches], ck)
        if index in layers:
            output_space.append(scores[0][:, :, :patches])
            cross.append(scores[1])

        image = image + img_gate1 * attn.to_out[0](img_out)
        img_shift2, img_scale2, img_gate2 = image_modulation(block, 1)
        image = image + img_gate2 * block.img_mlp(_qwen_modulate(block.img_norm2(image), img_shift2, img_scale2))
        text = text + gate1 * attn.to_add_out(txt_out)
        text = text + gate2 * block.txt_mlp(_qwen_modulate(block.txt_norm2(text), shift2, scale2))
        concepts = concepts + gate1 * attn.to_add_out(con_out)
        concepts = concepts + gate2 * block.txt_mlp(_qwen_modulate(block.txt_norm2(concepts), shift2, scale2))
    return torch.stack(output_space), torch.stack(cross)


# ---------------------------------------------------------------------------
# Z-Image and Lumina 2 (NextDiT): one stream of shared weights over [caption, image],
# each padded to a multiple of pad_tokens_multiple with learned tokens (Z-Image).

def _pad_to(tokens, pad_token, multiple):
    if multiple is None:
        return tokens, 0
    extra = (-tokens.shape[1]) % multiple
    return torch.cat((tokens, pad_token.to(tokens.dtype)[None].expand(tokens.shape[0], extra, -1)), dim=1), extra


@torch.no_grad()
def z_image_concept_attention_maps(dm, x, timesteps, context, concept_embeddings, layers):
    """Per-layer (output-space, cross-attention) raw scores [L, B, C, P] of one NextDiT
    call, x [B, C, H, W] with even sides. Caption token i at RoPE position (i + 1, 0, 0),
    image patches at (caption length + 1, row, column), pad tokens at 0; every concept at
    (1, 0, 0), through the context refiner alone. Concepts attend to [concepts, image
    patches]; the refiners are run as the model's own layers."""
    p, multiple = dm.patch_size, dm.pad_tokens_multiple
    batch, channels, height, width = x.shape
    rows, cols = height // p, width // p
    image = dm.x_embedder(x.view(batch, channels, rows, p, cols, p).permute(0, 2, 4, 3, 5, 1).flatten(3).flatten(1, 2))
    patches = image.shape[1]
    caption, _ = _pad_to(dm.cap_embedder(context), getattr(dm, "cap_pad_token", None), multiple)
    image, image_pads = _pad_to(image, getattr(dm, "x_pad_token", None), multiple)
    text_len = caption.shape[1]

    caption_ids = torch.zeros(text_len, 3)
    caption_ids[:, 0] = torch.arange(text_len, dtype=torch.float32) + 1
    image_ids = torch.zeros(rows, cols, 3)
    image_ids[..., 0] = text_len + 1
    image_ids[..., 1] = torch.arange(rows, dtype=torch.float32)[:, None]
    image_ids[..., 2] = torch.arange(cols, dtype=torch.float32)[None, :]
    image_ids = torch.cat((image_ids.reshape(-1, 3), torch.zeros(image_pads, 3)))

    def rope(ids):
        return dm.rope_embedder(ids[None])                                   # [1, 1, N, D/2, 2, 2]

    def layer_rope(ids):                                                     # as the model hands it to a layer
        return rope(ids).movedim(1, 2)

    t = dm.t_embedder((1.0 - timesteps) * dm.time_scale, dtype=x.dtype)
    for layer in dm.context_refiner:
        caption = layer(caption, None, layer_rope(caption_ids))
    for layer in dm.noise_refiner:
        image = layer(image, None, layer_rope(image_ids), t)
    concept_ids = torch.tensor([[1.0, 0.0, 0.0]])
    concepts = dm.cap_embedder(concept_embeddings)[:, None]                  # [C, 1, dim]: one-token captions
    for layer in dm.context_refiner:
        concepts = layer(concepts, None, layer_rope(concept_ids))
    concepts = concepts[:, 0][None].expand(batch, -1, -1)

    sequence = torch.cat((caption, image), dim=1)
    pe_sequence, pe_concepts = rope(torch.cat((caption_ids, image_ids))), rope(concept_ids)

    def project(attention, tokens, pe):
        """q, k (before and after RoPE), v [B, H, N, D], the key/value heads repeated."""
        heads, kv_heads, width_ = attention.n_local_heads, attention.n_local_kv_heads, attention.head_dim
        q, k, v = torch.split(attention.qkv(tokens), [heads * width_, kv_heads * width_, kv_heads * width_], dim=-1)
        q = attention.q_norm(q.unflatten(-1, (heads, -1))).transpose(1, 2)
        k = attention.k_norm(k.unflatten(-1, (kv_heads, -1))).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
        v = v.unflatten(-1, (kv_heads, -1)).transpose(1, 2).repeat_interleave(heads // kv_heads, 1)
        return q, k, _rotate(q, pe), _rotate(k, pe), v

    def block_update(block, tokens, attention_out, scale_mlp, gate_msa, gate_mlp):
        tokens = tokens + gate_msa[:, None].tanh() * block.attention_norm2(block.attention.out(attention_out))
        mlp = block.feed_forward(block.ffn_norm1(tokens) * (1 + scale_mlp[:, None]))
        return tokens + gate_mlp[:, None].tanh() * block.ffn_norm2(mlp)

    output_space, cross = [], []
    for index in range(max(layers) + 1):
        block = dm.layers[index]
        scale_msa, gate_msa, scale_mlp, gate_mlp = block.adaLN_modulation(t).chunk(4, dim=1)
        q, _, q_r, k_r, v = project(block.attention, block.attention_norm1(sequence) * (1 + scale_msa[:, None]),
                                    pe_sequence)
        _, ck, cq_r, ck_r, cv = project(block.attention, block.attention_norm1(concepts) * (1 + scale_msa[:, None]),
                                        pe_concepts)
        joint = _joint_attention(q_r, k_r, v)
        image_keys = slice(text_len, text_len + patches)
        concept_out = _joint_attention(cq_r, torch.cat((ck_r, k_r[:, :, image_keys]), 2),
                                       torch.cat((cv, v[:, :, image_keys]), 2))
        if index in layers:
            output_space.append(torch.einsum("bcd,bpd->bcp", concept_out, joint[:, image_keys]))
            cross.append(torch.einsum("bhpd,bhcd->bcp", q[:, :, image_keys], ck) / q.shape[1])
        sequence = block_update(block, sequence, joint, scale_mlp, gate_msa, gate_mlp)
        concepts = block_update(block, concepts, concept_out, scale_mlp, gate_msa, gate_mlp)
    return torch.stack(output_space), torch.stack(cross)


# ---------------------------------------------------------------------------
# HunyuanVideo (ComfyUI's HunyuanVideo): a token refiner before Flux's double blocks.

@torch.no_grad()
def hunyuan_video_concept_attention_maps(dm, x, timestep, context, y, guidance, concept_embeddings, layers,
                                         ref_latent=None):
    """Per-layer raw scores [L, B, C, P] of one HunyuanVideo call: the prompt and each
    concept alone through the token refiner; the timestep embedded at time factor 1;
    zero text ids on (t, h, w) axes; 1.5's text type embedding on the prompt and the
    concepts; the concepts share the prompt's text modulation.
    A reference latent's tokens come first in the image stream, at frame -1 and shifted
    right by the video's width; everyone attends to them; the scores are the video's."""
    batch = x.shape[0]
    pt, ph, pw = dm.patch_size
    columns = x.shape[4] // pw
    img = dm.img_in(x)                                                          # [B, P, hidden], (t, h, w) order

    def ids(latent):
        sides = (latent.shape[2] // pt, latent.shape[3] // ph, latent.shape[4] // pw)
        grid = torch.stack(torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in sides), indexing="ij"), -1)
        return grid.reshape(1, -1, 3).expand(batch, -1, -1).clone()

    img_ids = ids(x)
    patches = img.shape[1]
    if ref_latent is not None:
        ref_ids = ids(ref_latent)
        ref_ids[..., 0] = -1
        ref_ids[..., 2] += columns
        img, img_ids = torch.cat((dm.img_in(ref_latent), img), 1), torch.cat((ref_ids, img_ids), 1)
    txt = dm.txt_in(context, timestep, None)
    concepts = torch.cat([dm.txt_in(concept_embeddings[c][None, None].expand(batch, -1, -1), timestep, None)
                          for c in range(concept_embeddings.shape[0])], dim=1)
    if dm.cond_type_embedding is not None:                      # 1.5: the text's type, 0, for both
        text_type = dm.cond_type_embedding.weight[0]
        txt, concepts = txt + text_type, concepts + text_type
    pe = dm.pe_embedder(torch.cat((torch.zeros(batch, txt.shape[1], 3), img_ids), dim=1))
    pe_txt, pe_img = pe[:, :, :txt.shape[1]], pe[:, :, txt.shape[1]:]
    pe_concepts = dm.pe_embedder(torch.zeros(batch, concepts.shape[1], 3))
    vec = dm.time_in(_timestep_embedding(timestep, time_factor=1.0))
    if dm.vector_in is not None:
        vec = vec + dm.vector_in(y[:, :dm.params.vec_in_dim])
    if dm.params.guidance_embed:
        vec = vec + dm.guidance_in(_timestep_embedding(guidance))

    output_space, cross = [], []
    for index in range(max(layers) + 1):
        block = dm.double_blocks[index]
        text = block.txt_mod(vec)
        img, txt, concepts, scores = _double_block(block, (block.img_mod(vec), text, text), img, txt, concepts,
                                                   (pe_img, pe_txt, pe_concepts))
        if index in layers:
            output_space.append(scores[0][..., -patches:])
            cross.append(scores[1][..., -patches:])
    return torch.stack(output_space), torch.stack(cross)


# ---------------------------------------------------------------------------
# Wan: no joint attention; the cross-attention baseline only. Each block's self-attention
# residual, then its text cross-attention's queries (norm3, q, norm_q) against the
# concepts' keys (text_embedding, then the block's k and norm_k).

def wan_cross_attention_maps(dm, x, timestep, context, clip_fea, concept_embeddings, layers, reference_latent=None):
    """(None, per-layer cross-attention raw scores [L, B, C, P]) of one Wan call: image
    queries . concept keys, unscaled, averaged over heads. x [B, C, T, H, W] as the model
    receives it; a Fun model's reference latent [B, C, H, W] comes before the video's tokens."""
    import comfy.ldm.common_dit
    import comfy.ldm.wan.model as wan

    x = comfy.ldm.common_dit.pad_to_patch_size(x, dm.patch_size)
    batch, _, frames, height, width = x.shape
    video = dm.patch_embedding(x.float()).flatten(2).transpose(1, 2)                   # [B, P, dim]
    patches, tokens = video.shape[1], video
    if reference_latent is not None and dm.ref_conv is not None:
        tokens = torch.cat((dm.ref_conv(reference_latent).flatten(2).transpose(1, 2), video), dim=1)
        frames += 1
    freqs = dm.rope_encode(frames, height, width, device=x.device, dtype=x.dtype)
    e = dm.time_embedding(wan.sinusoidal_embedding_1d(dm.freq_dim, timestep.flatten()))
    e0 = dm.time_projection(e.reshape(batch, -1, e.shape[-1])).unflatten(2, (6, dm.dim))   # [B, 1 or T, 6, dim]
    text = dm.text_embedding(context)
    image_tokens = None
    if clip_fea is not None and dm.img_emb is not None:
        text = torch.cat((dm.img_emb(clip_fea), text), dim=1)
        image_tokens = clip_fea.shape[-2]
    concepts = dm.text_embedding(concept_embeddings.to(context).unsqueeze(0).expand(batch, -1, -1))
    start = tokens.shape[1] - patches
    cross = []
    for index in range(max(layers) + 1):
        block = dm.blocks[index]
        if index in layers:
            # [B, 1, dim], or per frame [B, T, dim] (the 5B model's per-frame timesteps): per token
            shift, scale, gate = (m.repeat_interleave(tokens.shape[1] // m.shape[1], dim=1) if m.shape[1] > 1 else m
                                  for m in (block.modulation.unsqueeze(0) + e0).unbind(2)[:3])
            attended = block.self_attn(block.norm1(tokens) * (1 + scale) + shift, freqs)
            after_self = tokens + attended * gate
            attention = block.cross_attn
            heads = attention.num_heads
            q = attention.norm_q(attention.q(block.norm3(after_self)))[:, start:]
            k = attention.norm_k(attention.k(concepts))
            q, k = q.unflatten(-1, (heads, -1)), k.unflatten(-1, (heads, -1))              # [B, N, H, D]
            cross.append(torch.einsum("bphd,bchd->bcp", q.float(), k.float()) / heads)
        tokens = block(tokens, e=e0, freqs=freqs, context=text, context_img_len=image_tokens)
    return None, torch.stack(cross)
