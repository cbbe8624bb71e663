"""The capture core shared by all model families.

A capture is attached to a *clone* of a ModelPatcher under one key (KEY):
- an OUTER_SAMPLE wrapper gives every sampling run a fresh Recorder (in a copy of
  the guider's model_options, restored in `finally`), and hands the finished
  capture to the CONCEPT_ATTN object only when the run succeeds;
- the family module adds a per-call wrapper that, through record_model_call, puts a
  ModelCall (the concept stream of that call) into transformer_options, and
  ConceptBlockPatch entries in patches_replace that advance the stream beside each
  real block; without a Recorder both do nothing.
Nothing is patched outside the clone, so the caller's model never changes.

A failure of the capture never breaks sampling: our code runs guarded (ModelCall.guarded,
ConceptBlockPatch), the model's own blocks run as they would without us, and the
first error is kept in the CONCEPT_ATTN (`error`), which the map nodes report.
Errors of the model itself, and interrupts, pass through untouched.
"""
import logging
import math
from dataclasses import dataclass

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
from comfy_api.torch_helpers.torch_compile import TORCH_COMPILE_KWARGS

from .. import maths
from ..data import KEEP_ALL, KEEP_SUMS, ConceptAttention, ConceptSet

KEY = "concept_attention"
# transformer_options key of the per-model-call state a family module sets up.
CALL_KEY = "concept_attention_call"
# transformer_options key of the family's block step (ConceptBlockPatch.advance), so that
# each call can re-wrap block patches that another extension set after ours.
ADVANCE_KEY = "concept_attention_advance"
OUTER_SAMPLE = comfy.patcher_extension.WrappersMP.OUTER_SAMPLE
COMPILED = ("the model is compiled (TorchCompileModel): a compiled model runs its blocks as one traced graph, "
            "which the capture cannot follow")
PREDICT_NOISE = comfy.patcher_extension.WrappersMP.PREDICT_NOISE


@dataclass(frozen=True)
class CaptureSpec:
    concepts: ConceptSet
    family: str
    layers: tuple                 # block indices whose scores are kept
    steps: tuple = None           # sampler step indices to capture; None: all
    pixels_per_latent: int = 8    # the VAE's spatial downscale factor
    keep: str = KEEP_SUMS         # what the CONCEPT_ATTN keeps (data.KEEPS)
    cross_attention: bool = False  # also record the paper's cross-attention baseline

    @property
    def last_layer(self) -> int:
        return max(self.layers)

    @property
    def methods(self) -> tuple:
        """The maths.METHODS this capture records."""
        return maths.METHODS if self.cross_attention else (maths.CONCEPT_ATTENTION,)


class Recorder:
    """Collects one sampling run's maps, evaluation by evaluation. Running sums stay
    on the model's device until the run ends; raw scores (KEEP_ALL) move to the
    CPU once per model call."""

    def __init__(self, spec: CaptureSpec, sample_sigmas: torch.Tensor, image_size: tuple = None):
        self.spec = spec
        # (height, width) of the sampled latent: calls on a crop of it (area conditioning) are not recorded.
        self.image_size_latent = tuple(image_size) if image_size is not None else None
        # The schedule as Python floats (one transfer per run): steps are found per call without tensor ops.
        self.schedule = sample_sigmas.detach().float().cpu().tolist()[:-1]
        self.steps, self.sigmas = [], []
        self.raw = []            # KEEP_ALL: per evaluation [M, L, B, C, P] on the CPU
        self.step_sums = []      # KEEP_SUMS: per evaluation [M, B, C, P]
        self.layer_sums = None   # KEEP_SUMS: [M, L, B, C, P]
        self.grid = None
        self.image_size = None
        self.video = (1, 1, 1)
        # Only the sampler's own conditional pass of each prediction is recorded, not
        # the extra passes of guidance tricks (skip-layer guidance, PAG) that follow it.
        self.awaiting_pass = False
        self.error = None

    def begin_prediction(self):
        self.awaiting_pass = True

    def fail(self, error: BaseException):
        """Stop capturing for the rest of the run and keep the first error."""
        if self.error is None:
            self.error = f"{type(error).__name__}: {error}"
            logging.warning("ConceptAttention: the capture stopped (%s); sampling goes on as without it", self.error)

    def claim(self, transformer_options: dict, x: torch.Tensor):
        """(rows, chunks, step, sigma) when this model call, on model input x, is the
        conditional pass to record, else None. rows: indices of the conditional batch rows."""
        if not self.awaiting_pass or self.error is not None:
            return None
        if self.image_size_latent is not None and tuple(x.shape[-2:]) != self.image_size_latent:
            return None
        batch = x.shape[0]
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
        at_or_above = sum(entry >= sigma * (1 - 1e-5) for entry in self.schedule)
        return min(max(at_or_above - 1, 0), len(self.schedule) - 1)

    def add(self, call: "ModelCall", step: int, sigma: float, chunks: int):
        """Record one model call's scores (call.scores). Several conditional chunks in
        one call (combined conditioning) are averaged."""
        if self.grid is None:
            self.grid, self.image_size, self.video = call.grid, call.image_size, call.video
        stacked = torch.stack([torch.stack(call.scores[m]) for m in self.spec.methods])    # [M, L, R, C, P]
        stacked = stacked.reshape(*stacked.shape[:2], chunks, -1, *stacked.shape[3:]).mean(dim=2)
        if self.spec.keep == KEEP_ALL:
            self.raw.append(stacked.to("cpu", torch.float32))
        else:
            maps = maths.concept_softmax(stacked)
            self.step_sums.append(maps.sum(dim=1))
            self.layer_sums = maps if self.layer_sums is None else self.layer_sums + maps
        self.steps.append(step)
        self.sigmas.append(sigma)

    def finish(self) -> ConceptAttention:
        """What was recorded, as a CONCEPT_ATTN."""
        out = new_capture(self.spec)
        out.error = self.error or ""
        if not self.steps or self.error is not None:
            return out
        out.grid, out.image_size = self.grid, self.image_size
        out.video_frames, out.frames_per_latent, out.latents_per_token = self.video
        out.steps, out.sigmas = tuple(self.steps), tuple(self.sigmas)
        if self.spec.keep == KEEP_ALL:
            out.scores = dict(zip(self.spec.methods, torch.stack(self.raw, dim=1).unbind()))
        else:
            out.step_sums = dict(zip(self.spec.methods, torch.stack(self.step_sums, dim=1).cpu().unbind()))
            out.layer_sums = dict(zip(self.spec.methods, self.layer_sums.cpu().unbind()))
        out.batch_size = next(iter({**out.scores, **out.layer_sums}.values())).shape[-3]
        # Once per run, on the CPU copies: no check (and no device sync) per model call.
        per_evaluation = out.scores if self.spec.keep == KEEP_ALL else out.step_sums      # [E, ...] per method
        bad = {out.steps[e] for kept in per_evaluation.values()
               for e in (~torch.isfinite(kept.flatten(1))).any(dim=1).nonzero().flatten().tolist()}
        out.nonfinite_steps = tuple(sorted(bad))
        if bad:
            logging.warning("ConceptAttention: the scores of steps %s hold NaN or infinite values; maps that "
                            "include them cannot be made", out.nonfinite_steps)
        return out


class ModelCall:
    """The concept stream during one model call, which the block patches find in
    transformer_options[CALL_KEY]. A family module sets `stream` ([R, C, hidden])
    and keeps what else its blocks need on its own subclass."""

    def __init__(self, spec: CaptureSpec, rows, device: torch.device, grid: tuple, image_size: tuple,
                 video_frames: int = 1, frames_per_latent: int = 1, latents_per_token: int = 1):
        self.spec = spec
        # The conditional batch rows (conditional_rows): a slice selects views, an index tensor copies.
        self.rows = rows if isinstance(rows, slice) else rows.to(device)
        self.row_count = rows.stop - rows.start if isinstance(rows, slice) else len(rows)
        self.grid = grid                    # (frames, height, width) in patches
        self.image_size = image_size        # (height, width) in pixels
        # Video: decoded frames, and how they map to token frames (data.ConceptAttention.token_frame_of).
        self.video = (video_frames, frames_per_latent, latents_per_token)
        self.patches = math.prod(grid)
        self.stream = None
        self.scores = {method: [] for method in spec.methods}     # per chosen layer [R, C, P]
        self.advancing = None               # the block whose concept step is running
        self.failure = None                 # the first error of our code in this call

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

    def advance(self, stream: torch.Tensor):
        """The concept stream after a block; fp16 overflow is clamped, as the image
        stream's would not be, so that a concept's infinities cannot become NaN maps."""
        if stream.dtype == torch.float16:
            stream = torch.nan_to_num(stream, nan=0.0, posinf=65504, neginf=-65504)
        self.stream = stream

    def record(self, concept_out, image_out, concept_k, image_queries):
        """Scores of one chosen layer for the spec's methods. concept_out [R, C, H*D] and
        image_out [R, P, H*D]: attention outputs before the output projection;
        concept_k [R, H, C, D] and image_queries() -> [R, H, P, D]: before any RoPE.
        The queries are asked for only when the cross-attention baseline is recorded:
        on RoPE models, getting them back is most of a captured block's cost."""
        self.scores[maths.CONCEPT_ATTENTION].append(maths.output_space_scores(concept_out, image_out))
        if self.spec.cross_attention:
            self.scores[maths.CROSS_ATTENTION].append(maths.cross_attention_scores(image_queries(), concept_k))


def image_grid(latent: torch.Tensor, patch: int) -> tuple:
    """(frames, height, width) in patches of an image latent [B, C, H, W]."""
    return 1, (latent.shape[-2] + patch // 2) // patch, (latent.shape[-1] + patch // 2) // patch


def image_pixels(latent: torch.Tensor, spec: CaptureSpec) -> tuple:
    """(height, width) in pixels of the image an image latent [B, C, H, W] decodes to."""
    return latent.shape[-2] * spec.pixels_per_latent, latent.shape[-1] * spec.pixels_per_latent


def record_model_call(transformer_options: dict, x: torch.Tensor, make_call, run):
    """The body of a family's per-call wrapper, x being the model's input. When this
    call is the conditional pass to record, its blocks get the ModelCall
    make_call(rows) and its scores are recorded; otherwise the call just runs.
    run(transformer_options) runs the model."""
    recorder = transformer_options.get(KEY)
    claim = recorder.claim(transformer_options, x) if recorder is not None else None
    if claim is None:
        return run(transformer_options)
    rows, chunks, step, sigma = claim
    try:
        call = make_call(rows)
    except comfy.model_management.InterruptProcessingException:
        raise
    except Exception as error:
        recorder.fail(error)
        return run(transformer_options)
    out = run(_with_block_patches({**transformer_options, CALL_KEY: call}, call.spec))
    call.guarded(recorder.add, call, step, sigma, chunks)
    if call.failure is not None:
        recorder.fail(call.failure)
    return out


def _with_block_patches(transformer_options: dict, spec: CaptureSpec) -> dict:
    """transformer_options whose blocks up to the last chosen one all carry our
    ConceptBlockPatch: a patch another extension set after ours (replacing it) is
    wrapped for this call, so that both run."""
    advance = transformer_options.get(ADVANCE_KEY)
    if advance is None:                     # a family without block patches (CogVideoX)
        return transformer_options
    replace = transformer_options.get("patches_replace", {})
    blocks = replace.get("dit", {})
    keys = [("double_block", i) for i in range(spec.last_layer + 1)]
    foreign = [k for k in keys if not isinstance(blocks.get(k), ConceptBlockPatch)]
    if not foreign:
        return transformer_options
    wrapped = {**blocks, **{k: ConceptBlockPatch(k[1], advance, blocks.get(k)) for k in foreign}}
    return {**transformer_options, "patches_replace": {**replace, "dit": wrapped}}


class ConceptBlockPatch:
    """patches_replace["dit"][("double_block", i)]: runs the real block (or the patch
    that was there before, so other extensions keep working) and, while a ModelCall
    needs this block, lets the family advance the concept stream beside it:
    advance(index, call, args, run) returns the block's output, where run(options)
    runs the block with those transformer_options."""

    def __init__(self, index: int, advance, inner=None):
        self.index, self.advance = index, advance
        self.inner = inner.inner if isinstance(inner, ConceptBlockPatch) else inner

    def _run_block(self, args, extra):
        if self.inner is not None:
            return self.inner(args, extra)
        return extra["original_block"](args)

    def __call__(self, args, extra):
        call = args["transformer_options"].get(CALL_KEY)
        # Inside our own step for this block (a patch set after ours that calls the one it
        # replaced calls us again): just run the block.
        if call is None or self.index > call.spec.last_layer or call.advancing == self.index or call.failure:
            return self._run_block(args, extra)
        block = {"running": False, "out": None}

        def run(transformer_options):
            block["running"] = True          # an error from here on is the model's, not ours
            block["out"] = self._run_block({**args, "transformer_options": transformer_options}, extra)
            block["running"] = False
            if call.failure is not None:     # our attention tap failed inside the block
                raise call.failure
            return block["out"]

        call.advancing = self.index
        try:
            return self.advance(self.index, call, args, run)
        except comfy.model_management.InterruptProcessingException:
            raise
        except Exception as error:
            if block["running"]:
                raise
            call.fail(error)
            return block["out"] if block["out"] is not None else self._run_block(args, extra)
        finally:
            call.advancing = None


def patch_blocks(model, spec: CaptureSpec, advance):
    """A ConceptBlockPatch on every block up to the last chosen one (the stream has
    to pass through the earlier blocks), wrapping any patch already there."""
    existing = model.model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
    model.model_options["transformer_options"][ADVANCE_KEY] = advance
    for i in range(spec.last_layer + 1):
        model.set_model_patch_replace(ConceptBlockPatch(i, advance, existing.get(("double_block", i))),
                                      "dit", "double_block", i)


def missing_joint_attention(index: int) -> RuntimeError:
    return RuntimeError(f"ConceptAttention: block {index} ran without its joint attention; another patch on this "
                        "model replaces it, which ConceptAttention cannot follow")


def new_capture(spec: CaptureSpec) -> ConceptAttention:
    return ConceptAttention(concepts=spec.concepts.words, family=spec.family, layers=spec.layers, keep=spec.keep)


def conditional_rows(transformer_options: dict, batch: int):
    """The batch rows from the conditional pass, and how many conditional chunks
    they span; (None, 0) when the call has none. The rows are a slice when they are
    one run (as they nearly always are), so that selecting them makes no copy of the
    block's tensors; otherwise an index tensor.

    ComfyUI batches cond and uncond chunks in any order (cond_or_uncond: 0 = cond,
    1 = uncond), or runs them in separate calls; cfg 1 skips uncond entirely."""
    flags = transformer_options.get("cond_or_uncond") or [0]
    size = batch // len(flags)
    rows = [r for i, flag in enumerate(flags) if flag == 0 for r in range(i * size, (i + 1) * size)]
    if not rows:
        return None, 0
    chunks = len(rows) // size
    if rows == list(range(rows[0], rows[-1] + 1)):
        return slice(rows[0], rows[-1] + 1), chunks
    return torch.tensor(rows), chunks


def with_attention_tap(transformer_options: dict, on_attention) -> dict:
    """A copy of transformer_options whose attention override runs the real
    attention (through any override already set) and then shows q, k, v and the
    output to on_attention. Only the block given this copy is tapped."""
    previous = transformer_options.get("optimized_attention_override")
    call = transformer_options[CALL_KEY]

    def tap(func, *args, **kwargs):
        out = previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
        call.guarded(on_attention, args[0], args[1], args[2], out)
        return out

    return {**transformer_options, "optimized_attention_override": tap}


def is_compiled(model_options: dict) -> bool:
    return TORCH_COMPILE_KWARGS in model_options


def outer_sample_wrapper(spec: CaptureSpec, result: ConceptAttention):
    """OUTER_SAMPLE wrapper: one fresh Recorder per sampling run."""
    def wrapper(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        if is_compiled(guider.model_options):        # compiled after ours: sample without the capture
            logging.warning("ConceptAttention: %s; sampling without it", COMPILED)
            out = executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
            result.replace_with(new_capture(spec))
            result.error = COMPILED + "; read the maps with the model from before TorchCompileModel"
            return out
        original = guider.model_options
        guider.model_options = comfy.model_patcher.create_model_options_clone(original)
        recorder = Recorder(spec, sigmas, latent_image.shape[-2:])
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
