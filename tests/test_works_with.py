"""The capture together with what else changes a model in ComfyUI: a LoRA (ComfyUI's
own LoRA loader), fp8-stored weights, custom operations that store weights their own
way (as GGUF loaders do), ComfyUI's low-VRAM partial loading, TorchCompileModel, and
area conditioning. The image stays KSampler's; the maps follow the model that made it,
or there is a clear message."""
import comfy.model_management
import comfy.ops
import comfy.sd
import comfy.utils
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.errors import NodeInputError
from concept_attention.nodes.apply import ConceptAttentionApply
from harness import sampling, tiny_models
from harness.checks import aggregate

pytestmark = pytest.mark.model

FLUX = sampling.FLUX1
BLOCK = "diffusion_model.double_blocks.1.txt_attn.qkv"      # the text-stream weights the concepts use


@pytest.fixture(scope="module")
def checkpoint(model_dir):
    return tiny_models.build_flux(model_dir / "works_with_flux.safetensors", guidance=True, seed=3)


def load(path, **model_options):
    """Through ComfyUI's loader as UNETLoader (fp32 unless told), or the extension's on hosts that cannot size it."""
    from concept_attention.demo.model import load_flux

    return load_flux(path, tiny_models.flux_config(guidance=True), model_options={"dtype": torch.float32,
                                                                                   **model_options})


def lora(seed=0, rank=4):
    gen = torch.Generator().manual_seed(seed)
    out_features, in_features = 3 * 256, 256
    return {f"{BLOCK}.lora_up.weight": torch.randn(out_features, rank, generator=gen) * 0.2,
            f"{BLOCK}.lora_down.weight": torch.randn(rank, in_features, generator=gen) * 0.2}


def scores(model, **options):
    return FLUX.run_capture(model, FLUX.concepts(), layers="all", keep=KEEP_ALL, **options)


def test_a_lora_changes_the_maps_as_the_merged_weights_do(checkpoint, tmp_path):
    model = load(checkpoint)
    with_lora, _ = comfy.sd.load_lora_for_models(model, None, lora(), 1.0, 0)
    latent, capture = scores(with_lora)
    assert torch.equal(latent, FLUX.run_ksampler(with_lora))
    assert not torch.allclose(capture.scores["concept_attention"], scores(model)[1].scores["concept_attention"])
    # The same LoRA merged into the checkpoint's weights: the same maps.
    state = comfy.utils.load_torch_file(str(checkpoint))
    weights = lora()
    key = BLOCK.removeprefix("diffusion_model.") + ".weight"
    state[key] = state[key] + weights[f"{BLOCK}.lora_up.weight"] @ weights[f"{BLOCK}.lora_down.weight"]
    merged_path = tmp_path / "merged.safetensors"
    comfy.utils.save_torch_file(state, str(merged_path))
    merged = scores(load(merged_path))[1]
    assert torch.allclose(capture.scores["concept_attention"], merged.scores["concept_attention"], rtol=1e-4, atol=1e-4)


def test_fp8_stored_weights(checkpoint):
    if not hasattr(torch, "float8_e4m3fn"):
        pytest.skip("this torch has no float8_e4m3fn")
    model = load(checkpoint, dtype=torch.float8_e4m3fn)             # UNETLoader's weight_dtype fp8_e4m3fn
    dm = model.model.diffusion_model
    assert dm.double_blocks[0].txt_attn.qkv.weight.dtype == torch.float8_e4m3fn
    latent, capture = scores(model)
    assert torch.equal(latent, FLUX.run_ksampler(model))
    full = scores(load(checkpoint))[1]
    maps, reference = capture.maps(), full.maps()
    assert torch.isfinite(maps).all()
    # fp8 weights round the model's numbers: the maps agree with the fp32 model's in where each concept wins.
    assert (maps.argmax(dim=1) == reference.argmax(dim=1)).float().mean() > 0.7


class ApartOps(comfy.ops.manual_cast):
    """Operations whose Linear layers keep no `.weight`: weight and bias live in one
    packed tensor, as quantised formats keep them their own way."""

    class Linear(torch.nn.Module):
        def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
            super().__init__()
            self.in_features, self.out_features = in_features, out_features
            self.packed = torch.nn.Parameter(torch.empty(out_features, in_features + 1, device=device), requires_grad=False)

        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            weight = state_dict.pop(prefix + "weight")
            bias = state_dict.pop(prefix + "bias", None)
            bias = torch.zeros(weight.shape[0]) if bias is None else bias
            self.packed = torch.nn.Parameter(torch.cat([weight, bias[:, None]], dim=1).float(), requires_grad=False)

        def forward(self, x):
            return torch.nn.functional.linear(x, self.packed[:, :-1].to(x.dtype), self.packed[:, -1].to(x.dtype))


def test_custom_operations_that_keep_no_weight_attribute(checkpoint):
    model = load(checkpoint, custom_operations=ApartOps)
    if not isinstance(model.model.diffusion_model.double_blocks[0].txt_attn.qkv, ApartOps.Linear):
        pytest.skip("this ComfyUI's loader cannot build the tiny Flux with custom operations")
    assert not hasattr(model.model.diffusion_model.double_blocks[0].txt_attn.qkv, "weight")
    latent, capture = scores(model)
    assert torch.equal(latent, FLUX.run_ksampler(model))
    assert torch.allclose(capture.scores["concept_attention"], scores(load(checkpoint))[1].scores["concept_attention"],
                          rtol=1e-4, atol=1e-4)


def test_low_vram_partial_loading(checkpoint, monkeypatch):
    """ComfyUI's low-VRAM mode: weights left on the offload device are cast at each use,
    and a LoRA on them is applied at each use (LowVramPatch). The concepts call the same
    modules, so the maps equal those of the model loaded whole."""
    model, _ = comfy.sd.load_lora_for_models(load(checkpoint), None, lora(), 1.0, 0)
    expected_latent, expected = scores(model)
    comfy.model_management.unload_all_models()
    # A device with room for almost nothing: every cast-able module is loaded partially. On a CPU
    # ComfyUI would load the rest before sampling; as on a small GPU, it may not here.
    model.patch_model(lowvram_model_memory=1, load_weights=True)
    partially_load = comfy.model_patcher.ModelPatcher.partially_load
    monkeypatch.setattr(comfy.model_patcher.ModelPatcher, "partially_load",
                        lambda self, *args, **kwargs: 0 if self.model.model_lowvram else partially_load(self, *args,
                                                                                                        **kwargs))
    qkv = model.model.get_submodule(BLOCK)
    seen = []
    hook = qkv.register_forward_pre_hook(lambda module, args: seen.append(
        (model.model.model_lowvram, module.comfy_cast_weights, tuple(type(f).__name__ for f in module.weight_function))))
    try:
        latent, capture = scores(model)
    finally:
        hook.remove()
        monkeypatch.undo()
        comfy.model_management.unload_all_models()
        model.unpatch_model()
    # The block's text-stream qkv ran for the prompt and for the concepts at every step, cast and LoRA'd per use.
    assert len(seen) == 2 * 4 and set(seen) == {(True, True, ("LowVramPatch",))}
    assert torch.equal(latent, expected_latent)
    torch.testing.assert_close(capture.scores["concept_attention"], expected.scores["concept_attention"],
                               atol=1e-5, rtol=1e-5)


def test_a_compiled_model_is_refused_or_sampled_without_the_capture(checkpoint):
    import comfy.patcher_extension
    from comfy_api.torch_helpers import set_torch_compile_wrapper
    from comfy_api.torch_helpers.torch_compile import COMPILE_KEY

    model = load(checkpoint)
    compiled = model.clone()
    set_torch_compile_wrapper(compiled, backend="eager")
    with pytest.raises(NodeInputError, match=r"ConceptAttention Sampler › model: the model is compiled "
                                             r"\(TorchCompileModel\).*Connect the model from before TorchCompileModel"):
        scores(compiled)
    # Compiled after ours: the image is sampled as without the capture, and the maps say why there are none.
    # (The capture reads the mark set_torch_compile_wrapper leaves; its compiling wrapper is taken off
    # again only because compiling costs some 40 s on this CPU.)
    patched, capture = ConceptAttentionApply.execute(model, FLUX.concepts(), "all", "all").args
    set_torch_compile_wrapper(patched, backend="eager")
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, COMPILE_KEY)
    steps = 1
    latent = FLUX.run_ksampler(patched, steps=steps)
    assert torch.equal(latent, FLUX.run_ksampler(model, steps=steps))
    with pytest.raises(NodeInputError, match=r"Concept Heatmaps › concept_attn: the capture failed during sampling, "
                                             r"so there are no maps \(the model is compiled"):
        aggregate(capture)


def test_area_conditioning_maps_come_from_the_full_image(checkpoint):
    model = load(checkpoint)
    # The prompt on the left half only: ComfyUI runs the model on a crop for it.
    positive = FLUX.conditioning(1, area=(16, 8, 0, 0), strength=1.0, set_area_to_bounds=False)
    full = FLUX.conditioning(3)
    both = positive + full
    latent, capture = FLUX.run_capture(model, FLUX.concepts(), positive=both)
    assert torch.equal(latent, FLUX.run_ksampler(model, positive=both))
    assert capture.grid == (1, 8, 8) and capture.maps().shape == (1, 3, 8, 8)
    assert capture.captured_steps == (0, 1, 2, 3)
