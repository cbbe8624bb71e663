"""The capture core shared by all model families.

A capture is attached to a *clone* of a ModelPatcher under one key (KEY):
- an OUTER_SAMPLE wrapper gives every sampling run a fresh Recorder (in a copy of
  the guider's model_options, restored in `finally`), and hands the finished
  capture to the CONCEPT_ATTN object only when the run succeeds;
- the family module adds its own per-call wrapper and block patches, which read
  the Recorder from transformer_options and do nothing without one.
Nothing is patched outside the clone, so the caller's model never changes.
"""
from dataclasses import dataclass

import torch

import comfy.model_patcher
import comfy.patcher_extension

from ..data import ConceptAttention, ConceptSet

KEY = "concept_attention"
# transformer_options key of the per-model-call state a family module sets up.
CALL_KEY = "concept_attention_call"
OUTER_SAMPLE = comfy.patcher_extension.WrappersMP.OUTER_SAMPLE
PREDICT_NOISE = comfy.patcher_extension.WrappersMP.PREDICT_NOISE


@dataclass(frozen=True)
class CaptureSpec:
    concepts: ConceptSet
    family: str
    layers: tuple                 # block indices whose scores are kept
    steps: tuple = None           # sampler step indices to capture; None: all
    pixels_per_latent: int = 8    # the VAE's spatial downscale factor

    @property
    def last_layer(self) -> int:
        return max(self.layers)


class Recorder:
    """Collects one sampling run's scores, evaluation by evaluation, on the CPU."""

    def __init__(self, spec: CaptureSpec, sample_sigmas: torch.Tensor):
        self.spec = spec
        self.sample_sigmas = sample_sigmas.detach().float().cpu()
        self.entries = []   # (step, sigma, {method: [L, B, C, P]})
        self.grid = None
        self.image_size = None
        # Only the sampler's own conditional pass of each prediction is recorded, not
        # the extra passes of guidance tricks (skip-layer guidance, PAG) that follow it.
        self.awaiting_pass = False

    def begin_prediction(self):
        self.awaiting_pass = True

    def claim(self, transformer_options: dict, batch: int):
        """(rows, chunks, step, sigma) when this model call is the conditional pass
        to record, else None. rows: indices of the conditional batch rows."""
        if not self.awaiting_pass:
            return None
        rows, chunks = conditional_rows(transformer_options, batch)
        if rows is None:
            return None
        sigma = float(transformer_options["sigmas"].flatten()[0])
        step = self.step_of(sigma)
        if self.spec.steps is not None and step not in self.spec.steps:
            return None
        self.awaiting_pass = False
        return rows, chunks, step, sigma

    def step_of(self, sigma: float) -> int:
        """The sampler step an evaluation at `sigma` belongs to: the last schedule
        entry at or above it. Extra evaluations of multi-stage samplers count
        toward the step of their noise level (Heun's correction at sigma_i+1
        toward step i+1)."""
        schedule = self.sample_sigmas[:-1]
        at_or_above = int((schedule >= sigma * (1 - 1e-5)).sum())
        return min(max(at_or_above - 1, 0), len(schedule) - 1)

    def add(self, step: int, sigma: float, grid: tuple, image_size: tuple, chunks: int, scores: dict):
        """scores: {method: [L, chunks * B, C, P]} on the model's device.
        Several conditional chunks in one call (combined conditioning) are averaged."""
        if self.grid is None:
            self.grid, self.image_size = grid, image_size
        elif grid != self.grid:
            # Area conditioning runs the model on a crop: its patches are not the image's.
            return
        methods = list(scores)
        stacked = torch.stack([scores[m] for m in methods])                  # [M, L, R, C, P]
        stacked = stacked.reshape(*stacked.shape[:2], chunks, -1, *stacked.shape[3:]).mean(dim=2)
        moved = dict(zip(methods, stacked.to("cpu", torch.float32).unbind()))  # one transfer per call
        self.entries.append((step, sigma, moved))

    def finish(self) -> ConceptAttention:
        """What was recorded, as a CONCEPT_ATTN."""
        out = new_capture(self.spec)
        if not self.entries:
            return out
        out.grid, out.image_size = self.grid, self.image_size
        out.steps = tuple(e[0] for e in self.entries)
        out.sigmas = tuple(e[1] for e in self.entries)
        out.scores = {m: torch.stack([e[2][m] for e in self.entries]) for m in self.entries[0][2]}
        out.batch_size = next(iter(out.scores.values())).shape[2]
        return out


def new_capture(spec: CaptureSpec) -> ConceptAttention:
    return ConceptAttention(concepts=spec.concepts.words, family=spec.family, layers=spec.layers)


def conditional_rows(transformer_options: dict, batch: int):
    """Indices of the batch rows from the conditional pass, and how many
    conditional chunks they span; (None, 0) when the call has none.

    ComfyUI batches cond and uncond chunks in any order (cond_or_uncond: 0 = cond,
    1 = uncond), or runs them in separate calls; cfg 1 skips uncond entirely."""
    flags = transformer_options.get("cond_or_uncond") or [0]
    size = batch // len(flags)
    rows = [r for i, flag in enumerate(flags) if flag == 0 for r in range(i * size, (i + 1) * size)]
    if not rows:
        return None, 0
    return torch.tensor(rows), len(rows) // size


def with_attention_tap(transformer_options: dict, on_attention) -> dict:
    """A copy of transformer_options whose attention override runs the real
    attention (through any override already set) and then shows q, k, v and the
    output to on_attention. Only the block given this copy is tapped."""
    previous = transformer_options.get("optimized_attention_override")

    def tap(func, *args, **kwargs):
        out = previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
        on_attention(args[0], args[1], args[2], out)
        return out

    return {**transformer_options, "optimized_attention_override": tap}


def outer_sample_wrapper(spec: CaptureSpec, result: ConceptAttention):
    """OUTER_SAMPLE wrapper: one fresh Recorder per sampling run."""
    def wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        original = guider.model_options
        guider.model_options = comfy.model_patcher.create_model_options_clone(original)
        recorder = Recorder(spec, sigmas)
        guider.model_options["transformer_options"][KEY] = recorder
        try:
            out = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        finally:
            guider.model_options = original
        result.replace_with(recorder.finish())
        return out
    return wrapper


def predict_noise_wrapper(executor, x, timestep, model_options={}, seed=None):
    recorder = model_options.get("transformer_options", {}).get(KEY)
    if recorder is not None:
        recorder.begin_prediction()
    return executor(x, timestep, model_options, seed)


def attach(model, family, spec: CaptureSpec) -> tuple:
    """A clone of `model` that captures ConceptAttention while any sampler runs
    it, and the CONCEPT_ATTN object that each run fills."""
    result = new_capture(spec)
    patched = model.clone()
    patched.remove_wrappers_with_key(OUTER_SAMPLE, KEY)
    patched.add_wrapper_with_key(OUTER_SAMPLE, KEY, outer_sample_wrapper(spec, result))
    patched.remove_wrappers_with_key(PREDICT_NOISE, KEY)
    patched.add_wrapper_with_key(PREDICT_NOISE, KEY, predict_noise_wrapper)
    family.attach(patched, spec)
    return patched, result
