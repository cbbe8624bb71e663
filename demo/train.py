"""Train the demo model on procedural scenes (demo/scenes.py), on the CPU.

    ~/comfy/venv/bin/python -m demo.train --dit-minutes 35   # the shipped model's recipe, writes demo/weights/
    ~/comfy/venv/bin/python -m demo.train --smoke         # a few steps of everything, to out/demo_smoke/
    # the two attempts at a better model that docs/demo-model.md reports (neither shipped):
    ~/comfy/venv/bin/python -m demo.train --architecture patch1 --short-captions 0.3 --compile \
        --dit-minutes 80 --work out/demo2/work --out out/demo2/model
    ~/comfy/venv/bin/python -m demo.train --init-from demo/weights/flux_demo.safetensors --short-captions 0.3 \
        --lr 3e-4 --warmup 50 --compile --dit-minutes 17 --work out/demo3/work --out out/demo3/model

An interrupted run started again with the same arguments resumes: the DiT saves a
checkpoint every --save-minutes.

Stages (each saves under --work, and a stage whose output exists is skipped):
 1. text encoder: ComfyUI's Flux CLIP-L + T5 classes at a tiny size, frozen at a
    deterministic init (see init_text_encoder), saved once;
 2. autoencoder: comfy.taesd.taesd.TAESD(latent_channels=16), trained as "taef1";
 3. latents: training scenes encoded once (the DiT's inputs, exactly what ComfyUI
    feeds it: VAE.encode then process_latent_in gives the raw encoder output);
 4. DiT: comfy.ldm.flux.model.Flux (schnell-like, no guidance embedding), rectified
    flow in ComfyUI's CONST/ModelSamplingFlux convention, trained through
    `flux_forward` (a functional forward: ComfyUI's blocks add in place, which
    autograd cannot differentiate), with EMA weights;
 5. export: fp16 safetensors, config.json and losses into --out.

Seeded and reproducible for a given set of arguments (same steps, same batch).
"""
import argparse
import json
import math
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import scenes

REPO = Path(__file__).resolve().parent.parent

TEXT_DIM = 64
TEXT_CONFIG = {
    # Merged by ComfyUI into its stock CLIP-L / T5-XXL json configs (vocab, activations,
    # special tokens stay real); the tokenizers are the ones that ship with ComfyUI.
    "clip_l_model_config": dict(hidden_size=TEXT_DIM, intermediate_size=128, num_attention_heads=2,
                                num_hidden_layers=1, projection_dim=TEXT_DIM),
    "t5xxl_model_config": dict(d_model=TEXT_DIM, d_ff=128, d_kv=32, num_heads=2, num_layers=2),
    # T5 prompts are padded to 32 tokens (stock Flux pads to 256); every caption fits.
    "tokenizer_data": {"t5xxl_min_length": 32},
}
ARCHITECTURES = {
    # The shipped model: patch 2 on the 16x16 latent, 8x8 image tokens.
    "patch2": dict(
        in_channels=16, out_channels=16, vec_in_dim=TEXT_DIM, context_in_dim=TEXT_DIM,
        hidden_size=256, mlp_ratio=4.0, num_heads=2, depth=4, depth_single_blocks=2,
        axes_dim=[16, 56, 56], theta=10000, patch_size=2, qkv_bias=True, guidance_embed=False,
        txt_ids_dims=[],
    ),
    # Tried for finer maps: patch 1 (16x16 image tokens, 8 pixels each) and 6 double blocks.
    "patch1": dict(
        in_channels=16, out_channels=16, vec_in_dim=TEXT_DIM, context_in_dim=TEXT_DIM,
        hidden_size=192, mlp_ratio=4.0, num_heads=2, depth=6, depth_single_blocks=1,
        axes_dim=[16, 40, 40], theta=10000, patch_size=1, qkv_bias=True, guidance_embed=False,
        txt_ids_dims=[],
    ),
}
DIT_CONFIG = dict(ARCHITECTURES["patch2"])
# What nodes.VAELoader.load_taesd sets for "taef1" (= latent_formats.Flux scale/shift).
VAE_CONFIG = {"name": "taef1", "latent_channels": 16, "vae_scale": 0.3611, "vae_shift": 0.1159}

TORCH_OPS = types.SimpleNamespace(
    Linear=torch.nn.Linear, LayerNorm=torch.nn.LayerNorm, RMSNorm=torch.nn.RMSNorm,
    Conv2d=torch.nn.Conv2d, Conv3d=torch.nn.Conv3d, GroupNorm=torch.nn.GroupNorm,
    Embedding=torch.nn.Embedding,
)




class Log:
    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


def save_fp16(state_dict, path):
    import safetensors.torch
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in state_dict.items()}
    bad = [k for k, v in sd.items() if not torch.isfinite(v).all()]
    assert not bad, f"non-finite weights: {bad}"
    safetensors.torch.save_file(sd, str(path))


# ---------------------------------------------------------------------------
# 1. Text encoder.

def init_text_encoder(clip, seed=0):
    """Deterministic, frozen init of the tiny Flux CLIP (weights never trained).

    T5 (the prompt tokens the DiT reads): token embeddings N(0, 1); attention with
    small random q/k (content attention nearly uniform) and a relative-position bias
    that sends head 0 to the next token and head 1 to the previous one (+5 logits),
    v/o scaled so a token's output is its own embedding plus about half of its
    neighbours' (word order reaches the DiT: "red" before "circle"); small random
    feed-forward; layer norms 1. A word encoded alone keeps most of its in-caption
    vector (its own embedding dominates), which ConceptAttention relies on.
    CLIP-L: random, but its final layer norm has scale 0 and bias 0, so its pooled
    vector (Flux's `y`) is always zero: all prompt information goes through T5
    tokens and attention, and the prompt's modulation equals the one ConceptAttention
    gives concept tokens (vector_in of zeros).
    """
    gen = torch.Generator().manual_seed(seed)
    heads = TEXT_CONFIG["t5xxl_model_config"]["num_heads"]
    vo_std = 0.7 / math.sqrt(TEXT_DIM)
    with torch.no_grad():
        for name, p in sorted(clip.cond_stage_model.named_parameters()):
            leaf = name.rsplit(".", 1)[-1]
            if name.endswith("logit_scale"):
                continue
            if name.startswith("t5xxl."):
                if name.endswith("shared.weight"):
                    p.copy_(torch.randn(p.shape, generator=gen))
                elif name.endswith("relative_attention_bias.weight"):
                    bias = torch.zeros(p.shape)
                    bias[17, 0] = 5.0           # bucket 17: relative position +1 (next token)
                    bias[1, 1 % heads] = 5.0    # bucket 1: relative position -1 (previous token)
                    p.copy_(bias)
                elif p.ndim == 1:
                    p.fill_(1.0)
                elif name.endswith(("SelfAttention.v.weight", "SelfAttention.o.weight")):
                    p.copy_(torch.randn(p.shape, generator=gen) * vo_std)
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            else:
                if "final_layer_norm" in name:
                    p.zero_()
                elif leaf == "bias":
                    p.zero_()
                elif p.ndim == 1:
                    p.fill_(1.0)
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    return clip


def build_text_encoder(work, log):
    from . import model as demo_model
    path = Path(work) / "text_encoder.safetensors"
    if path.exists():
        return demo_model.build_clip(TEXT_CONFIG, path)
    clip = init_text_encoder(demo_model.build_clip(TEXT_CONFIG))
    save_fp16(clip.get_sd(), path)
    log(f"text encoder initialised -> {path}")
    # Reload so training uses exactly the fp16-rounded weights that ship.
    return demo_model.build_clip(TEXT_CONFIG, path)


TEXT_PARTS = {
    # What --train-text trains of the T5 (CLIP-L's pooled output is 0 by construction: nothing to learn there).
    "embeddings": lambda t5: {"shared.weight": t5.shared.weight},
    "all": lambda t5: dict(t5.named_parameters()),
}


def t5_of(clip):
    return clip.cond_stage_model.t5xxl.transformer


def caption_token_ids(clip, captions) -> torch.Tensor:
    """The T5 token ids [N, L] that clip.tokenize gives each caption (all padded to one length)."""
    ids = [[token for token, _ in clip.tokenize(text)["t5xxl"][0]] for text in captions]
    assert len({len(row) for row in ids}) == 1, "captions tokenized to different lengths"
    return torch.tensor(ids)


def t5_forward(clip, ids):
    """The T5 conditioning [B, L, 64] of token ids [B, L], equal to what
    clip.encode_from_tokens gives, written with the residual sums out of place:
    ComfyUI's T5 layers add in place, which autograd cannot train through. T5's
    attention has no 1/sqrt(d) scaling and a learned relative-position bias from its
    first layer."""
    t5 = t5_of(clip)
    x = t5.shared.weight[ids].float()
    bias = None
    for block in t5.encoder.block:
        attention, feed_forward = block.layer[0], block.layer[-1]
        heads = attention.SelfAttention
        h = attention.layer_norm(x)
        q, k, v = (proj(h).unflatten(-1, (heads.num_heads, -1)).transpose(1, 2) for proj in (heads.q, heads.k, heads.v))
        if heads.relative_attention_bias is not None:
            bias = heads.compute_bias(x.shape[1], x.shape[1], x.device, x.dtype)
        weights = (q @ k.transpose(-1, -2) + bias).softmax(dim=-1)
        x = x + heads.o((weights @ v).transpose(1, 2).flatten(2))
        x = x + feed_forward.DenseReluDense(feed_forward.layer_norm(x))
    return t5.encoder.final_layer_norm(x)


def encode_captions(clip, captions):
    """T5 tokens [B, L, 64] and pooled [B, 64] exactly as CLIPTextEncode gives them."""
    conds, pooled = [], []
    for text in captions:
        c, p = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
        conds.append(c.float().cpu())
        pooled.append(p.float().cpu())
    return torch.cat(conds), torch.cat(pooled)


# ---------------------------------------------------------------------------
# 2. Autoencoder (TAESD architecture, "taef1").

def new_taesd(seed):
    import comfy.taesd.taesd
    torch.manual_seed(seed)
    taesd = comfy.taesd.taesd.TAESD(latent_channels=VAE_CONFIG["latent_channels"])
    # comfy's layers skip init. He init for the ReLU convs, and the last conv of every
    # residual Block at zero, so that each Block starts as the identity and the 40-conv
    # deep network trains quickly.
    with torch.no_grad():
        for m in taesd.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    m.bias.zero_()
        for m in taesd.modules():
            if isinstance(m, comfy.taesd.taesd.Block):
                m.conv[-1].weight.zero_()
                m.conv[-1].bias.zero_()
        last = taesd.taesd_decoder[-1]
        last.weight.mul_(0.1)
        last.bias.fill_(0.5)
    return taesd


def train_autoencoder(work, log, steps, batch=16, crop=64, full_res_frac=0.1, pool_size=3000, seed=0, lr=2e-3,
                      latent_noise=0.1, reg_weight=0.05, log_every=50):
    """Encoder maps a 0..1 image to raw latents (what the DiT sees), decoder maps them back.

    Loss: L1 + MSE on pixels; the latents are kept near zero mean and unit variance per
    channel (so rectified-flow noise has the right scale) and the decoder sees them with
    a little noise (it must tolerate imperfect generated latents).
    """
    work = Path(work)
    enc_path, dec_path = work / "taef1_encoder.safetensors", work / "taef1_decoder.safetensors"
    if enc_path.exists() and dec_path.exists():
        log("autoencoder: found, skipped")
        return
    t0 = time.time()
    pool = torch.from_numpy(scenes.make_batch(range(scenes.TRAIN_SEEDS.start, scenes.TRAIN_SEEDS.start + pool_size)).images)
    pool = pool.permute(0, 3, 1, 2).contiguous()                 # [N, 3, H, W]
    log(f"autoencoder: {pool_size} scenes in {time.time() - t0:.0f}s; {steps} steps, batch {batch}")
    taesd = new_taesd(seed).to(memory_format=torch.channels_last)
    params = list(taesd.taesd_encoder.parameters()) + list(taesd.taesd_decoder.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(seed + 1)
    warm = max(1, steps // 20)
    t0 = time.time()
    hist = []
    for step in range(steps):
        lr_now = lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr_now
        idx = torch.randint(len(pool), (batch,), generator=gen)
        x = pool[idx]
        if step < steps * (1 - full_res_frac):
            # Random crops on the 8-pixel latent grid, random flips: cheap and translation-safe.
            oy, ox = (torch.randint(0, (x.shape[-1] - crop) // 8 + 1, (2,), generator=gen) * 8).tolist()
            x = x[:, :, oy:oy + crop, ox:ox + crop]
        if torch.rand((), generator=gen) < 0.5:
            x = x.flip(-1)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = taesd.taesd_encoder(x).float()
            noise = torch.randn(z.shape, generator=gen) * latent_noise
            y = taesd.taesd_decoder(z + noise).float()
        rec = (y - x).abs().mean() + 2 * ((y - x) ** 2).mean()
        mean = z.mean(dim=(0, 2, 3))
        var = z.var(dim=(0, 2, 3))
        reg = (mean ** 2).mean() + ((var - 1) ** 2).mean()
        loss = rec + reg_weight * reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        hist.append((rec.item(), reg.item()))
        if (step + 1) % log_every == 0 or step == steps - 1:
            r = np.mean(hist[-log_every:], axis=0)
            el = time.time() - t0
            log(f"ae step {step + 1}/{steps} rec {r[0]:.4f} reg {r[1]:.4f} lr {lr_now:.2e} "
                f"{el:.0f}s eta {el / (step + 1) * (steps - step - 1):.0f}s")
    taesd = taesd.to(memory_format=torch.contiguous_format)
    save_fp16(taesd.taesd_encoder.state_dict(), enc_path)
    save_fp16(taesd.taesd_decoder.state_dict(), dec_path)
    log(f"autoencoder: done in {time.time() - t0:.0f}s")


def load_taesd(work):
    from . import model as demo_model
    return demo_model.build_vae(work, {"vae": VAE_CONFIG})


# ---------------------------------------------------------------------------
# 3. Latents.

def load_encoder(work):
    """The trained encoder as a module (fp32 weights, as shipped: fp16-rounded)."""
    import comfy.utils
    taesd = new_taesd(0)
    taesd.taesd_encoder.load_state_dict(
        {k: v.float() for k, v in comfy.utils.load_torch_file(str(Path(work) / "taef1_encoder.safetensors")).items()})
    return taesd.taesd_encoder.eval()


def encode_images(encoder, images):
    """[B, H, W, 3] 0..1 -> raw latents [B, 16, H/8, W/8] (= process_latent_in(VAE.encode)),
    in bf16 on the CPU's matrix units; check_latent_path measures the difference."""
    x = images.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return encoder(x).float()


def check_latent_path(work, log, n=4):
    """ComfyUI's path (comfy.sd.VAE as VAELoader builds taef1, then the Flux latent
    format's process_in) against the raw encoder output the DiT is trained on."""
    import comfy.latent_formats
    vae = load_taesd(work)
    encoder = load_encoder(work)
    images = torch.from_numpy(scenes.make_batch(range(n)).images)
    with torch.no_grad():
        comfy_z = comfy.latent_formats.Flux().process_in(vae.encode(images).float())
        raw32 = encoder(images.permute(0, 3, 1, 2))
    raw16 = encode_images(encoder, images)
    d32 = (comfy_z - raw32).abs().max().item()
    d16 = (comfy_z - raw16).abs().max().item()
    log(f"latent path: |comfy - encoder fp32| max {d32:.2e}, |comfy - encoder bf16| max {d16:.2e} "
        f"(latent std {comfy_z.std():.3f})")
    assert d32 < 1e-3, d32
    return d32, d16


def cache_latents(work, clip, log, count, chunk=32):
    """Encode `count` training scenes (seeds from TRAIN_SEEDS.start + 100000; the
    autoencoder's pool lies below), every distinct caption, and per scene the indices
    of its short captions (scenes.short_captions; -1 pads)."""
    path = Path(work) / f"latents_{count}.pt"
    if path.exists():
        return torch.load(path)
    check_latent_path(work, log)
    encoder = load_encoder(work).to(memory_format=torch.channels_last)
    t0 = time.time()
    lat, caps, shorts = [], [], []
    start = scenes.TRAIN_SEEDS.start + 100_000
    for i in range(0, count, chunk):
        b = scenes.make_batch(range(start + i, start + min(count, i + chunk)))
        lat.append(encode_images(encoder, torch.from_numpy(b.images)).to(torch.float16))
        caps += b.captions
        shorts += [scenes.short_captions([(o.colour, o.shape) for o in sc.objects], sc.background.name)
                   for sc in b.scenes]
        done = i + len(b.captions)
        if (i // chunk) % 150 == 0 or done == count:
            el = time.time() - t0
            log(f"latents {done}/{count} {el:.0f}s eta {el / done * (count - done):.0f}s")
    lat = torch.cat(lat)
    unique = sorted(set(caps) | {c for row in shorts for c in row}) + [""]
    index = {c: j for j, c in enumerate(unique)}
    cond, pooled = encode_captions(clip, unique)
    width = max(len(row) for row in shorts)
    short_index = torch.full((count, width), -1)
    for j, row in enumerate(shorts):
        short_index[j, :len(row)] = torch.tensor([index[c] for c in row])
    data = {"latents": lat, "caption_index": torch.tensor([index[c] for c in caps]),
            "short_index": short_index, "captions": unique, "cond": cond, "pooled": pooled,
            "empty_index": index[""]}
    log(f"latents: {count} scenes, {len(unique)} captions, mean {lat.float().mean():.3f} std {lat.float().std():.3f}, "
        f"pooled max |.| {pooled.abs().max():.1e}, {time.time() - t0:.0f}s")
    torch.save(data, path)
    return data


# ---------------------------------------------------------------------------
# 4. DiT.

def new_flux(seed):
    """Flux with plain torch layers (real init) and adaLN-zero (modulations and the
    output layer start at zero, so every block starts as the identity)."""
    import comfy.ldm.flux.model

    from . import model as demo_model
    torch.manual_seed(seed)
    dm = comfy.ldm.flux.model.Flux(operations=TORCH_OPS, dtype=torch.float32, device="cpu",
                                   **demo_model.flux_arguments(DIT_CONFIG))
    with torch.no_grad():
        for name, p in dm.named_parameters():
            if (".img_mod." in name or ".txt_mod." in name or ".modulation." in name
                    or name.startswith("final_layer.")):
                p.zero_()
            elif name.endswith("_norm.scale"):   # ComfyUI 0.3.75's own QK-norm RMSNorm starts uninitialised
                p.fill_(1.0)
    return dm


def _mod(block_mod, vec):
    out = block_mod.lin(F.silu(vec))[:, None, :]
    return out.chunk(block_mod.multiplier, dim=-1)      # shift, scale, gate (x1 or x2)


def _rope(x, pe):
    pairs = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    return (pe[..., 0] * pairs[..., 0] + pe[..., 1] * pairs[..., 1]).reshape(x.shape).type_as(x)


def _attention(q, k, v, pe):
    q, k = _rope(q, pe), _rope(k, pe)
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)


def _split_heads(qkv, heads):
    return qkv.view(qkv.shape[0], qkv.shape[1], 3, heads, -1).permute(2, 0, 3, 1, 4)


def _double_block(blk, img, txt, vec, pe):
    i_sh1, i_sc1, i_g1, i_sh2, i_sc2, i_g2 = _mod(blk.img_mod, vec)
    t_sh1, t_sc1, t_g1, t_sh2, t_sc2, t_g2 = _mod(blk.txt_mod, vec)
    iq, ik, iv = _split_heads(blk.img_attn.qkv((1 + i_sc1) * blk.img_norm1(img) + i_sh1), blk.num_heads)
    iq, ik = blk.img_attn.norm(iq, ik, iv)
    tq, tk, tv = _split_heads(blk.txt_attn.qkv((1 + t_sc1) * blk.txt_norm1(txt) + t_sh1), blk.num_heads)
    tq, tk = blk.txt_attn.norm(tq, tk, tv)
    attn = _attention(torch.cat((tq, iq), 2), torch.cat((tk, ik), 2), torch.cat((tv, iv), 2), pe)
    t_attn, i_attn = attn[:, :txt.shape[1]], attn[:, txt.shape[1]:]
    img = img + i_g1 * blk.img_attn.proj(i_attn)
    img = img + i_g2 * blk.img_mlp((1 + i_sc2) * blk.img_norm2(img) + i_sh2)
    txt = txt + t_g1 * blk.txt_attn.proj(t_attn)
    txt = txt + t_g2 * blk.txt_mlp((1 + t_sc2) * blk.txt_norm2(txt) + t_sh2)
    return img, txt


def _single_block(blk, x, vec, pe):
    sh, sc, g = _mod(blk.modulation, vec)
    qkv, mlp = torch.split(blk.linear1((1 + sc) * blk.pre_norm(x) + sh), [3 * blk.hidden_size, blk.mlp_hidden_dim_first], dim=-1)
    q, k, v = _split_heads(qkv, blk.num_heads)
    q, k = blk.norm(q, k, v)
    attn = _attention(q, k, v, pe)
    return x + g * blk.linear2(torch.cat((attn, blk.mlp_act(mlp)), 2))


_PE_CACHE = {}


def _positions(dm, txt_len, h_tokens, w_tokens):
    """RoPE table of Flux._forward for a txt_len prompt and an h x w token grid."""
    key = (tuple(dm.params.axes_dim), dm.params.theta, txt_len, h_tokens, w_tokens)
    if key not in _PE_CACHE:
        rows = torch.arange(h_tokens, dtype=torch.float32)[:, None].expand(-1, w_tokens)
        cols = torch.arange(w_tokens, dtype=torch.float32)[None, :].expand(h_tokens, -1)
        img_ids = torch.stack([torch.zeros_like(rows), rows, cols], -1).reshape(1, -1, 3)
        ids = torch.cat([torch.zeros(1, txt_len, 3), img_ids], 1)
        with torch.no_grad():
            _PE_CACHE[key] = dm.pe_embedder(ids)
    return _PE_CACHE[key]


def flux_forward(dm, x, timestep, context, y):
    """Flux.forward(x, timestep, context, y) for a Flux 1 without guidance embedding,
    written without in-place updates so that autograd can train it."""
    from comfy.ldm.flux.layers import timestep_embedding
    p = dm.patch_size
    b, c, h, w = x.shape
    hp, wp = h // p, w // p
    img = x.reshape(b, c, hp, p, wp, p).permute(0, 2, 4, 1, 3, 5).reshape(b, hp * wp, c * p * p)
    img = dm.img_in(img)
    vec = dm.time_in(timestep_embedding(timestep, 256).to(img.dtype))
    vec = vec + dm.vector_in(y[:, :dm.params.vec_in_dim])
    txt = dm.txt_in(context)
    pe = _positions(dm, txt.shape[1], hp, wp)
    for blk in dm.double_blocks:
        img, txt = _double_block(blk, img, txt, vec, pe)
    x_all = torch.cat((txt, img), 1)
    for blk in dm.single_blocks:
        x_all = _single_block(blk, x_all, vec, pe)
    img = x_all[:, txt.shape[1]:]
    fl = dm.final_layer
    shift, scale = fl.adaLN_modulation(vec)[:, None, :].chunk(2, dim=-1)
    out = fl.linear((1 + scale) * fl.norm_final(img) + shift)
    return out.reshape(b, hp, wp, -1, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, -1, h, w)


def pick_captions(data, idx, gen, drop, short):
    """Caption index per sample: empty with probability `drop` (for CFG), one of the
    scene's short captions with probability `short`, else the full caption."""
    ci = data["caption_index"][idx].clone()
    u = torch.rand(len(idx), generator=gen)
    if short:
        options = data["short_index"][idx]                           # [B, K], -1 pads
        choice = (torch.rand(len(idx), generator=gen) * (options >= 0).sum(dim=1)).long()
        use_short = (u >= drop) & (u < drop + short)
        ci[use_short] = options[use_short, choice[use_short]]
    ci[u < drop] = data["empty_index"]
    return ci


def train_dit(work, data, log, steps, batch=32, lr=6e-4, warmup=300, ema_decay=0.999,
              drop=0.1, short=0.0, seed=0, log_every=50, save_minutes=5.0, minutes=None, t_shift=3.0,
              compile=False, init_from=None, clip=None, train_text=None, text_lr_scale=10.0):
    """Rectified flow as ComfyUI samples it (CONST + ModelSamplingFlux): the model gets
    timestep = sigma in [0, 1], x_t = (1 - sigma) x0 + sigma noise, and must output
    noise - x0 (denoised = x_t - sigma * output). sigma = shift(u), u ~ logit-normal(0, 1),
    shift(u) = t_shift * u / (1 + (t_shift - 1) * u) (SD3's timestep shift; 1 = none; the
    shipped model uses 3). In these latents objects stay visible through noise up to
    sigma ~0.85, so shapes are decided at sigma 0.85..1, which the unshifted
    logit-normal samples 4% of the time (t_shift 3: 26%).

    Captions: 10% empty (CFG), a fraction `short` one of the scene's short captions (a
    word alone, "a red circle"...; the shipped model: none), else the full caption.

    Learning rate: linear warm-up, then cosine decay to 5% over the run's progress,
    progress = step / steps, or with `minutes` the larger of that and the fraction of
    the time budget spent (the run then stops early on a busy machine; the step count
    it reached is logged, and `--dit-steps N` without a budget repeats the schedule's
    shape exactly on an idle one).

    Text (train_text, a key of TEXT_PARTS): the T5's token embeddings or all of it
    train with the DiT, at `text_lr_scale` times its learning rate and without weight
    decay; each batch's captions are encoded by t5_forward, so a word's vector learns
    what it draws. Their EMA is exported as the text encoder.

    Resumable: every `save_minutes` the model, optimiser, EMA, random generator, step,
    losses and time spent go to dit_checkpoint.pt, and a restart continues from there."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    final = work / "dit_ema.pt"
    if final.exists():
        log("dit: found, skipped")
        return torch.load(final)
    dm = new_flux(seed)
    if init_from:   # through the extension's loader, which names the weights as this host's modules do
        from . import model as demo_model
        loaded = demo_model.load_flux(init_from, DIT_CONFIG, model_options={"dtype": torch.float32})
        dm.load_state_dict(loaded.model.diffusion_model.state_dict())
        log(f"dit: initialised from {init_from}")
    params = [p for p in dm.parameters() if p.requires_grad]
    decay, no_decay = [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    text = {}
    if train_text:
        for p in clip.cond_stage_model.parameters():
            p.requires_grad_(False)
        text = TEXT_PARTS[train_text](t5_of(clip))
        for p in text.values():
            p.requires_grad_(True)
        groups.append({"params": list(text.values()), "weight_decay": 0.0, "lr_scale": text_lr_scale})
        params = params + list(text.values())
        token_ids = caption_token_ids(clip, data["captions"])
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(seed + 2)
    checkpoint_path = work / "dit_checkpoint.pt"
    if checkpoint_path.exists():
        ckpt = torch.load(checkpoint_path)
        dm.load_state_dict(ckpt["model"])
        with torch.no_grad():
            for name, p in text.items():
                p.copy_(ckpt["text"][name])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        ema, step, losses, spent = ckpt["ema"], ckpt["step"], ckpt["losses"], ckpt["seconds"]
        ema_text = ckpt.get("ema_text", {})
        log(f"dit: resumed at step {step} ({spent / 60:.1f} min spent)")
    else:
        ema = {k: v.detach().clone() for k, v in dm.state_dict().items()}
        ema_text = {k: v.detach().clone() for k, v in text.items()}
        step, losses, spent = 0, [], 0.0
    lat = data["latents"]
    cond, pooled = data["cond"].float(), data["pooled"].float()
    forward = torch.compile(flux_forward) if compile else flux_forward
    n_params = sum(p.numel() for p in params)
    log(f"dit: {n_params / 1e6:.2f} M parameters, {len(lat)} latents, {steps} steps, batch {batch}")
    t0 = time.time() - spent
    last_save = time.time()

    def save():
        torch.save({"model": dm.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                    "ema": ema, "step": step, "losses": losses, "seconds": time.time() - t0,
                    "text": {k: v.detach() for k, v in text.items()}, "ema_text": ema_text}, checkpoint_path)

    while True:
        progress = step / steps
        if minutes:
            progress = max(progress, (time.time() - t0) / (60 * minutes))
        if progress >= 1.0:
            break
        lr_now = lr * min(1.0, (step + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr_now * g.get("lr_scale", 1.0)
        idx = torch.randint(len(lat), (batch,), generator=gen)
        x0 = lat[idx].float()
        ci = pick_captions(data, idx, gen, drop, short)
        context, y = (t5_forward(clip, token_ids[ci]) if text else cond[ci]), pooled[ci]
        u = torch.sigmoid(torch.randn(batch, generator=gen))
        sigma = t_shift * u / (1 + (t_shift - 1) * u)
        noise = torch.randn(x0.shape, generator=gen)
        s = sigma[:, None, None, None]
        xt = (1 - s) * x0 + s * noise
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(dm, xt, sigma, context, y)
        loss = F.mse_loss(out.float(), noise - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in dm.state_dict().items():
                ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
            for k, v in text.items():
                ema_text[k].mul_(d).add_(v.detach(), alpha=1 - d)
        losses.append(loss.item())
        step += 1
        if step % log_every == 0:
            el = time.time() - t0
            log(f"dit step {step}/{steps} loss {np.mean(losses[-log_every:]):.4f} lr {lr_now:.2e} "
                f"{el / step:.2f}s/step {el / 60:.1f}min progress {progress:.3f} "
                f"eta {el / max(progress, 1e-6) * (1 - progress) / 60:.1f}min")
        if time.time() - last_save > 60 * save_minutes:
            save()
            last_save = time.time()
    log(f"dit: {step} steps in {(time.time() - t0) / 60:.1f} min, last loss {np.mean(losses[-100:]):.4f}")
    result = {"ema": ema, "losses": losses, "seconds": time.time() - t0, "steps": step, "batch": batch,
              "ema_text": ema_text}
    torch.save(result, final)
    return result


# ---------------------------------------------------------------------------
# 5. Export.

def export(work, out, dit, clip, log, args, timings):
    import shutil

    from . import model as demo_model
    work, out = Path(work), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_fp16(demo_model.reference_layout(dit["ema"]), out / "flux_demo.safetensors")
    for name in ("taef1_encoder.safetensors", "taef1_decoder.safetensors"):
        shutil.copyfile(work / name, out / name)
    if dit.get("ema_text"):     # the trained T5 (its EMA) in the layout CLIP.get_sd() gives
        t5 = t5_of(clip)
        with torch.no_grad():
            for name, value in dit["ema_text"].items():
                t5.get_parameter(name).copy_(value)
        save_fp16(clip.get_sd(), out / "text_encoder.safetensors")
    else:
        shutil.copyfile(work / "text_encoder.safetensors", out / "text_encoder.safetensors")
    losses = dit["losses"]
    curve = [float(np.mean(losses[i:i + 100])) for i in range(0, len(losses), 100)]
    config = {
        "image_size": scenes.SIZE,
        "latent_size": scenes.SIZE // 8,
        "tokens": (scenes.SIZE // 8 // DIT_CONFIG["patch_size"]) ** 2,
        "dit": DIT_CONFIG,
        "detected_as": "FluxSchnell",
        "vae": VAE_CONFIG,
        "text_encoder": TEXT_CONFIG,
        "vocabulary": {"colours": list(scenes.COLOURS), "shapes": list(scenes.SHAPES),
                       "backgrounds": list(scenes.BACKGROUNDS),
                       "background_phrases": scenes.BACKGROUND_PHRASES,
                       "clashes": {k: list(v) for k, v in scenes.CLASHES.items()}},
        "seeds": {"train": [scenes.TRAIN_SEEDS.start, scenes.TRAIN_SEEDS.stop],
                  "eval": [scenes.EVAL_SEEDS.start, scenes.EVAL_SEEDS.stop]},
        "sampling": {"sampler": "euler", "scheduler": "simple", "steps": 20, "cfg": 4.0},
        "training": {"args": vars(args), "timings_s": timings, "dit_steps": dit["steps"], "dit_batch": dit["batch"],
                     "dit_loss_per_100_steps": [round(v, 4) for v in curve]},
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log(f"exported to {out}")


# ---------------------------------------------------------------------------
# 6. Evaluation: the shipped files through ComfyUI's own loaders and sampler.

def colour_masks(image, background=None, threshold=0.25):
    """Per object colour, the pixels [H, W] bool whose nearest palette colour it is
    (within `threshold` in RGB); colours that clash with `background` are left out."""
    names = [c for c in scenes.COLOURS if background is None or c not in scenes.CLASHES[background]]
    palette = np.array([scenes.COLOURS[c] for c in names])
    d = np.linalg.norm(image[:, :, None, :] - palette[None, None], axis=-1)      # [H, W, C]
    nearest = d.argmin(-1)
    close = d.min(-1) < threshold
    return {c: close & (nearest == i) for i, c in enumerate(names)}


def largest_component(mask):
    import scipy.ndimage
    labels, n = scipy.ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + sizes.argmax())


def _template_centroids():
    g = np.linspace(-1.6, 1.6, 321)
    u, v = np.meshgrid(g, g)
    out = {}
    for shape in scenes.SHAPES:
        m = scenes._shape_mask(shape, u, v)
        out[shape] = (u[m].mean(), v[m].mean())
    return out


_CENTROIDS = _template_centroids()


def classify_shape(mask):
    """(shape, IoU) of the template that best fits `mask`: each shape drawn with the
    mask's area and centroid (searched +-3 px), scored by IoU."""
    area = mask.sum()
    if area < 20:
        return None, 0.0
    ys, xs = np.nonzero(mask)
    pad = int(0.3 * max(ys.max() - ys.min(), xs.max() - xs.min())) + 4
    y0, x0 = max(0, ys.min() - pad), max(0, xs.min() - pad)
    crop = mask[y0:ys.max() + pad + 1, x0:xs.max() + pad + 1]
    cy, cx = ys.mean() + 0.5 - y0, xs.mean() + 0.5 - x0
    grid_y = np.arange(crop.shape[0])[:, None] + 0.5
    grid_x = np.arange(crop.shape[1])[None, :] + 0.5
    best = (None, 0.0)
    for shape in scenes.SHAPES:
        scale = math.sqrt(area / scenes._UNIT[shape][0])
        cu, cv = _CENTROIDS[shape]
        for dy in (-2, 0, 2):
            for dx in (-2, 0, 2):
                u, v = np.broadcast_arrays((grid_x - cx - dx) / scale + cu, (cy + dy - grid_y) / scale + cv)
                t = scenes._shape_mask(shape, u, v)
                iou = (t & crop).sum() / (t | crop).sum()
                if iou > best[1]:
                    best = (shape, float(iou))
    return best


def judge(image, objects, background):
    """Did an image follow its prompt? objects: [(colour, shape)].
    colour_ok: every named colour covers >= 2% of the image, and for one object it is
    the dominant object colour; shape_ok: the largest blob of each named colour is
    classified as the named shape."""
    masks = colour_masks(image, background)
    counts = {c: m.mean() for c, m in masks.items()}
    colour_ok = all(counts.get(c, 0) >= 0.02 for c, _ in objects)
    if len(objects) == 1:
        colour_ok = colour_ok and max(counts, key=counts.get) == objects[0][0]
    shapes = [classify_shape(largest_component(masks[c]))[0] if c in masks else None for c, _ in objects]
    shape_ok = all(got == want for got, (_, want) in zip(shapes, objects))
    return {"colour_ok": bool(colour_ok), "shape_ok": bool(shape_ok), "shapes": shapes,
            "coverage": {c: round(float(counts.get(c, 0)), 3) for c, _ in objects}}


def eval_prompts(n_single=42, n_double=12, seed=0):
    """Single-object prompts: every colour x shape once (backgrounds cycled, clashes
    skipped); two-object prompts drawn at random."""
    rng = np.random.default_rng(seed)
    prompts = []
    i = 0
    for colour in scenes.COLOURS:
        for shape in scenes.SHAPES:
            bgs = [b for b in scenes.BACKGROUNDS if colour not in scenes.CLASHES[b]]
            prompts.append(([(colour, shape)], bgs[i % len(bgs)]))
            i += 1
    prompts = prompts[:n_single]
    for _ in range(n_double):
        bg = scenes.BACKGROUNDS[rng.integers(3)]
        allowed = [c for c in scenes.COLOURS if c not in scenes.CLASHES[bg]]
        cs = rng.choice(allowed, 2, replace=False)
        ss = rng.choice(scenes.SHAPES, 2, replace=False)
        prompts.append(([(str(cs[0]), str(ss[0])), (str(cs[1]), str(ss[1]))], bg))
    return prompts


def conditioning(clip, text):
    """What CLIPTextEncode returns for `text`."""
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))


def generate(model, clip, vae, text, seed, batch=4, steps=20, cfg=4.0, sampler="euler", scheduler="simple"):
    """Images [B, H, W, 3] from ComfyUI's own KSampler path (nodes.common_ksampler)."""
    import nodes
    latent = {"samples": torch.zeros(batch, 16, scenes.SIZE // 8, scenes.SIZE // 8)}
    out = nodes.common_ksampler(model, seed, steps, cfg, sampler, scheduler,
                                conditioning(clip, text), conditioning(clip, ""), latent, denoise=1.0)[0]
    with torch.no_grad():
        return vae.decode(out["samples"]).float().cpu().numpy()


def evaluate(out_dir, work, log, per_prompt=4, cfgs=(1.0, 4.0)):
    from . import model as demo_model
    out_dir = Path(out_dir)
    results = {}
    model, clip, vae = demo_model.load_demo(out_dir)
    results["detected_as"] = type(model.model.model_config).__name__
    dm = model.model.diffusion_model
    results["dit_dtype"] = str(next(dm.parameters()).dtype)

    # The loaded model against the trained EMA weights, through flux_forward.
    trained = new_flux(0)
    ema_path = Path(work) / "dit_ema.pt"
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(4, 16, 16, 16, generator=gen)
    sigma = torch.tensor([0.2, 0.4, 0.6, 0.9])
    cond, pooled = encode_captions(clip, ["a red circle on grass", "a blue star on a wooden floor",
                                          "a white heart and a purple cross in the sky", ""])
    with torch.no_grad():
        loaded = dm.float()(x, sigma, cond, y=pooled)
        # The shipped fp16 weights, as the loader put them into ComfyUI's module.
        trained.load_state_dict({k: v.float() for k, v in dm.state_dict().items()})
        results["max_diff_loaded_vs_flux_forward_fp16_weights"] = (loaded - flux_forward(trained, x, sigma, cond, pooled)).abs().max().item()
        if ema_path.exists():
            trained.load_state_dict(torch.load(ema_path)["ema"])
            results["max_diff_loaded_vs_trained_ema_fp32"] = (loaded - flux_forward(trained, x, sigma, cond, pooled)).abs().max().item()
        results["output_scale"] = loaded.abs().mean().item()
        # And through ComfyUI's model wrapper: denoised = x - sigma * output.
        den = model.model.apply_model(x, sigma, c_crossattn=cond, y=pooled)
        results["max_diff_apply_model_denoised"] = (den - (x - sigma[:, None, None, None] * loaded)).abs().max().item()
    log(f"eval: {results}")

    # VAE round trip on held-out scenes.
    b = scenes.make_batch(range(scenes.EVAL_SEEDS.start, scenes.EVAL_SEEDS.start + 32))
    with torch.no_grad():
        rec = vae.decode(vae.encode(torch.from_numpy(b.images))).float().cpu().numpy()
    mse = ((rec - b.images) ** 2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(1.0 / mse)
    results["vae_psnr_eval"] = {"mean": float(psnr.mean()), "min": float(psnr.min())}
    # The judge on real held-out scenes (its own accuracy).
    real = [judge(s.image, [(o.colour, o.shape) for o in s.objects], s.background.name) for s in b.scenes]
    real_rec = [judge(r, [(o.colour, o.shape) for o in s.objects], s.background.name) for r, s in zip(rec, b.scenes)]
    results["judge_on_real"] = {"colour": float(np.mean([r["colour_ok"] for r in real])),
                                "shape": float(np.mean([r["shape_ok"] for r in real])),
                                "colour_after_vae": float(np.mean([r["colour_ok"] for r in real_rec])),
                                "shape_after_vae": float(np.mean([r["shape_ok"] for r in real_rec]))}
    log(f"eval: vae {results['vae_psnr_eval']} judge {results['judge_on_real']}")

    prompts = eval_prompts()
    sheets = {}
    for cfg in cfgs:
        rows = []
        t0 = time.time()
        for k, (objects, bg) in enumerate(prompts):
            text = scenes.caption_for(objects, bg)
            images = generate(model, clip, vae, text, seed=1000 + k, batch=per_prompt, cfg=cfg)
            for im in images:
                r = judge(im, objects, bg)
                r.update(prompt=text, n=len(objects))
                rows.append(r)
            if cfg == cfgs[-1] and k % 3 == 0:
                sheets.setdefault(cfg, []).append(images[0])
        summary = {}
        for n in (1, 2):
            sel = [r for r in rows if r["n"] == n]
            summary[f"{n}_object"] = {"images": len(sel),
                                     "colour_follow": round(float(np.mean([r["colour_ok"] for r in sel])), 3),
                                     "shape_follow": round(float(np.mean([r["shape_ok"] for r in sel])), 3)}
        per_shape = {}
        for shape in scenes.SHAPES:
            sel = [r for r in rows if r["n"] == 1 and r["prompt"].split(" ")[2] == shape]
            per_shape[shape] = round(float(np.mean([r["shape_ok"] for r in sel])), 2)
        summary["single_object_shape_follow_per_shape"] = per_shape
        summary["seconds"] = round(time.time() - t0, 1)
        results[f"cfg_{cfg:g}"] = summary
        log(f"eval cfg {cfg}: {summary}")
    if sheets:
        from PIL import Image
        ims = sheets[cfgs[-1]]
        sheet = np.concatenate([np.concatenate(ims[i:i + 6], 1) for i in range(0, len(ims) - len(ims) % 6, 6)], 0)
        Image.fromarray((np.clip(sheet, 0, 1) * 255).astype(np.uint8)).save(Path(work) / "samples.png")
    (Path(work) / "eval.json").write_text(json.dumps(results, indent=2))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "demo" / "weights"))
    ap.add_argument("--work", default=str(REPO / "out" / "demo_train"))
    ap.add_argument("--ae-steps", type=int, default=1500)
    ap.add_argument("--latents", type=int, default=24000)
    ap.add_argument("--dit-steps", type=int, default=6600)
    ap.add_argument("--dit-minutes", type=float, default=None, help="time budget for the DiT (stops early)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--t-shift", type=float, default=3.0, help="timestep shift of the logit-normal sigma (1: none)")
    ap.add_argument("--short-captions", type=float, default=0.0,
                    help="fraction of training captions replaced by a short one (a word alone, 'a red circle'...)")
    ap.add_argument("--architecture", choices=sorted(ARCHITECTURES), default="patch2", help="the DiT's size")
    ap.add_argument("--init-from", help="start the DiT from these weights (a flux_demo.safetensors): fine-tuning")
    ap.add_argument("--warmup", type=int, default=300, help="learning-rate warm-up steps")
    ap.add_argument("--train-text", choices=sorted(TEXT_PARTS), help="train the T5's token embeddings, or all of it, "
                                                                     "with the DiT (default: the text encoder stays frozen)")
    ap.add_argument("--text-lr-scale", type=float, default=10.0, help="the text's learning rate over the DiT's")
    ap.add_argument("--save-minutes", type=float, default=5.0, help="minutes between resumable DiT checkpoints")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training forward (faster after ~4 min)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="a few steps of every stage into out/demo_smoke")
    ap.add_argument("--evaluate", action="store_true", help="only evaluate the model in --out (writes --work/eval.json)")
    ap.add_argument("--cfgs", default="1,4", help="CFG scales --evaluate samples at, comma-separated")
    args = ap.parse_args(argv)
    if args.smoke:
        args.work = str(REPO / "out" / "demo_smoke" / "work")
        args.out = str(REPO / "out" / "demo_smoke" / "model")
        args.ae_steps, args.latents, args.dit_steps = 20, 512, 20
    torch.set_num_threads(args.threads)
    DIT_CONFIG.clear()
    DIT_CONFIG.update(ARCHITECTURES[args.architecture])
    from harness import host
    host.prepare()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = Log(work / "train.log")
    log(f"args {vars(args)}")
    if args.evaluate:
        evaluate(args.out, work, log, cfgs=tuple(float(c) for c in args.cfgs.split(",")))
        return
    # Stage durations survive a restart (a stage whose output exists is skipped).
    timings_path = work / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}

    def timed(name, fn, *a, **kw):
        t = time.time()
        result = fn(*a, **kw)
        if time.time() - t > 5 or name not in timings:
            timings[name] = round(time.time() - t, 1)
            timings_path.write_text(json.dumps(timings))
        return result

    clip = timed("text_encoder", build_text_encoder, work, log)
    timed("autoencoder", train_autoencoder, work, log, args.ae_steps)
    data = timed("latents", cache_latents, work, clip, log, args.latents)
    dit = timed("dit", train_dit, work, data, log, args.dit_steps, batch=args.batch, lr=args.lr,
                warmup=min(args.warmup, max(1, args.dit_steps // 10)), log_every=10 if args.smoke else 50,
                minutes=args.dit_minutes, t_shift=args.t_shift, short=args.short_captions, compile=args.compile,
                save_minutes=args.save_minutes, init_from=args.init_from, clip=clip, train_text=args.train_text,
                text_lr_scale=args.text_lr_scale)
    export(work, args.out, dit, clip, log, args, timings)
    log(f"timings {timings}")


if __name__ == "__main__":
    main()
