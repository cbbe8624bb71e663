"""The capture core shared by all model families.

A capture is attached to a *clone* of a ModelPatcher under one key (KEY):
- an OUTER_SAMPLE wrapper gives every sampling run a fresh Recorder (in a copy of
  the guider's model_options, restored in `finally`), and hands the finished
  capture to the CONCEPT_ATTN object only when the run succeeds;
- a per-call wrapper (call_wrapper) puts the family's ModelCall (the concept stream
  of that call) into transformer_options, and the blocks let it step beside them:
  through ConceptBlockPatch entries in patches_replace, or, for a family without block
  patch points, through forward pre-hooks that live for that call only; without a
  Recorder both do nothing.
Nothing is patched outside the clone, so the caller's model never changes.

A failure of the capture never breaks sampling: our code runs guarded (ModelCall.guarded,
ConceptBlockPatch), the model's own blocks run as they would without us, and the
first error is kept in the CONCEPT_ATTN (`error`), which the map nodes report.
Errors of the model itself, and interrupts, pass through untouched.
"""
import contextlib
import inspect
import logging
from dataclasses import dataclass

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import torch
from comfy_api.torch_helpers.torch_compile import TORCH_COMPILE_KWARGS

from ..analysis import maths
from ..analysis.data import KEEP_ALL, KEEP_SUMS, ConceptAttention, ConceptSet
from .call import LatentLayout, ModelCall, missing_joint_attention
from .family import DIFFUSION_MODEL, Family

KEY = "concept_attention"
# transformer_options key of the ModelCall of a recorded model call.
CALL_KEY = "concept_attention_call"
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
    family_methods: tuple = maths.METHODS     # the maps the family can give (Family.methods)

    @property
    def last_layer(self) -> int:
        return max(self.layers)

    @property
    def methods(self) -> tuple:
        """The maths.METHODS this capture records: a cross-attention family's one method, else
        ConceptAttention's and, when asked for, the baseline."""
        if maths.CONCEPT_ATTENTION not in self.family_methods:
            return self.family_methods
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
        self.run_sigmas = tuple(sample_sigmas.detach().float().cpu().tolist())
        self.schedule = self.run_sigmas[:-1]
        self.steps, self.sigmas = [], []
        self.raw = []            # KEEP_ALL: per evaluation [M, L, B, C, P] on the CPU
        self.step_sums = []      # KEEP_SUMS: per evaluation [M, B, C, P]
        self.layer_sums = None   # KEEP_SUMS: [M, L, B, C, P]
        self.layout = None
        self.layers = None       # the chosen layers whose blocks ran
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

    def add(self, scores: dict, layers: list, layout: LatentLayout, step: int, sigma: float, chunks: int):
        """Record one model call's scores ({method: per scored layer [R, C, P]}, as
        ModelCall.scores) of `layers`, the chosen layers whose blocks ran: a model may
        skip blocks (Chroma's skip_mmdit), so the capture keeps those that ran, the
        same in every call. Several conditional chunks in one call (combined
        conditioning) are averaged."""
        if not layers:
            raise RuntimeError(f"none of the chosen layers {list(self.spec.layers)} ran: the model skipped their blocks; "
                               "choose other layers")
        if self.layers is not None and layers != self.layers:
            raise RuntimeError(f"the model ran the chosen layers {self.layers} in one call and {layers} in another; "
                               "the maps need the same layers in every step")
        self.layers = layers
        self.layout = self.layout or layout
        stacked = torch.stack([torch.stack(scores[m]) for m in self.spec.methods])          # [M, L, R, C, P]
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
        layout = self.layout
        out.grid, out.image_size = layout.grid, layout.image_size
        out.video_frames, out.frames_per_latent, out.latents_per_token = (layout.video_frames, layout.frames_per_latent,
                                                                          layout.latents_per_token)
        out.steps, out.sigmas, out.layers = tuple(self.steps), tuple(self.sigmas), tuple(self.layers)
        out.schedule = self.run_sigmas
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


def call_wrapper(family: Family):
    """The family's per-call wrapper (family.call_wrapper). It binds the wrapped
    function's arguments by name, so that parameters ComfyUI adds upstream pass
    through. When the call is the conditional pass to record, its blocks get the
    family's ModelCall and its scores are recorded; otherwise the call just runs."""
    def wrapper(executor, *args, **kwargs):
        signature = inspect.signature(executor.original)
        bound = signature.bind(*args, **kwargs)
        # transformer_options is a parameter of the forward, or (ComfyUI 0.3.75's NextDiT) one of its **kwargs.
        holder = bound.arguments
        if "transformer_options" not in signature.parameters:
            holder = next((bound.arguments.setdefault(name, {}) for name, parameter in signature.parameters.items()
                           if parameter.kind is inspect.Parameter.VAR_KEYWORD), bound.arguments)
        options = holder.get("transformer_options") or {}
        x = next(iter(bound.arguments.values()))       # the model input comes first in every model's forward

        def run(transformer_options):
            holder["transformer_options"] = transformer_options
            return executor(*bound.args, **bound.kwargs)

        recorder = options.get(KEY)
        claim = recorder.claim(options, x) if recorder is not None else None
        if claim is None:
            return run(options)
        rows, chunks, step, sigma = claim
        diffusion_model = executor.class_obj if family.call_wrapper == DIFFUSION_MODEL else executor.class_obj.diffusion_model
        try:
            call = family.call_type(family, diffusion_model, recorder.spec, rows, x, bound.arguments)
        except comfy.model_management.InterruptProcessingException:
            raise
        except Exception as error:
            recorder.fail(error)
            return run(options)
        options = {**options, CALL_KEY: call}
        if family.block_patches:
            out = run(_with_block_patches(options, call.spec))
        else:
            with _block_hooks(call):
                out = run(with_attention_tap(options, call.on_attention))
            missing = [i for i in range(call.spec.last_layer + 1) if i not in call.done]
            if missing:
                call.fail(missing_joint_attention(missing[0]))
        call.guarded(recorder.add, call.scores, call.scored, call.layout, step, sigma, chunks)
        if call.failure is not None:
            recorder.fail(call.failure)
        return out
    return wrapper


@contextlib.contextmanager
def _block_hooks(call: ModelCall):
    """For a family without block patch points: forward pre-hooks on the blocks up to the
    last chosen one, for this call only, that prepare each block's concepts from the
    block's arguments by name. The call-wide attention tap completes each block."""
    handles = []
    try:
        for index, block in enumerate(call.family.blocks(call.dm)[:call.spec.last_layer + 1]):
            signature = inspect.signature(block.forward)

            def before(module, args, kwargs, index=index, signature=signature):
                arguments = signature.bind(*args, **kwargs).arguments
                call.guarded(call.prepare, index, module, arguments)
            handles.append(block.register_forward_pre_hook(before, with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _with_block_patches(transformer_options: dict, spec: CaptureSpec) -> dict:
    """transformer_options whose blocks up to the last chosen one all carry our
    ConceptBlockPatch: a patch another extension set after ours (replacing it) is
    wrapped for this call, so that both run."""
    replace = transformer_options.get("patches_replace", {})
    blocks = replace.get("dit", {})
    keys = [("double_block", i) for i in range(spec.last_layer + 1)]
    foreign = [k for k in keys if not isinstance(blocks.get(k), ConceptBlockPatch)]
    if not foreign:
        return transformer_options
    wrapped = {**blocks, **{k: ConceptBlockPatch(k[1], blocks.get(k)) for k in foreign}}
    return {**transformer_options, "patches_replace": {**replace, "dit": wrapped}}


class ConceptBlockPatch:
    """patches_replace["dit"][("double_block", i)]: runs the real block (or the patch
    that was there before, so other extensions keep working) and, while a ModelCall
    needs this block, taps its joint attention so that the concepts step through it."""

    def __init__(self, index: int, inner=None):
        self.index = index
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
        call.advancing = self.index
        try:
            call.prepare(self.index, call.family.blocks(call.dm)[self.index], args)
            block["running"] = True          # an error from here on is the model's, not ours
            tapped = with_attention_tap(args["transformer_options"], call.on_attention)
            block["out"] = self._run_block({**args, "transformer_options": tapped}, extra)
            block["running"] = False
            if call.failure is not None:     # our step failed inside the block
                raise call.failure
            if self.index not in call.done:
                raise missing_joint_attention(self.index)
            return block["out"]
        except comfy.model_management.InterruptProcessingException:
            raise
        except Exception as error:
            if block["running"]:
                raise
            call.fail(error)
            return block["out"] if block["out"] is not None else self._run_block(args, extra)
        finally:
            call.pending = None
            call.advancing = None


def patch_blocks(model, spec: CaptureSpec):
    """A ConceptBlockPatch on every block up to the last chosen one (the stream has
    to pass through the earlier blocks), wrapping any patch already there."""
    existing = model.model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
    for i in range(spec.last_layer + 1):
        model.set_model_patch_replace(ConceptBlockPatch(i, existing.get(("double_block", i))), "dit", "double_block", i)


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


def predict_noise_wrapper(executor, x, timestep, model_options=None, seed=None):
    model_options = {} if model_options is None else model_options     # the wrapped function's default
    recorder = model_options.get("transformer_options", {}).get(KEY)
    if recorder is not None:
        recorder.begin_prediction()
    return executor(x, timestep, model_options, seed)


def attach(model, family: Family, spec: CaptureSpec) -> tuple:
    """A clone of `model` that captures ConceptAttention while any sampler runs
    it, and the CONCEPT_ATTN object that each run fills. An earlier capture of ours on
    the model is replaced; other extensions' patches on the same blocks are wrapped."""
    result = new_capture(spec)
    patched = model.clone()
    for wrapper_type, wrapper in ((OUTER_SAMPLE, outer_sample_wrapper(spec, result)),
                                  (PREDICT_NOISE, predict_noise_wrapper), (family.call_wrapper, call_wrapper(family))):
        patched.remove_wrappers_with_key(wrapper_type, KEY)
        patched.add_wrapper_with_key(wrapper_type, KEY, wrapper)
    if family.block_patches:
        patch_blocks(patched, spec)
    return patched, result
