"""One CONCEPT_ATTN from the captures of one generation sampled in two parts: Wan 2.2
14B's high-noise model for the first steps and its low-noise model for the rest, each in
its own KSamplerAdvanced. Each part counts its steps from its own start; joined, they
are numbered as one run of every step, which is what a single capture of the whole
schedule would hold."""
from .data import KEEP_ALL, ConceptAttention

# Two noise levels this close are the same boundary between the parts.
SAME_SIGMA = 1e-5


class JoinError(ValueError):
    """The captures cannot be joined; `which` names the input at fault (None: both)."""

    def __init__(self, which, message: str):
        super().__init__(message)
        self.which = which


def join_parts(first: ConceptAttention, second: ConceptAttention) -> ConceptAttention:
    """The capture of both parts of one sampling run, in the order of their noise levels
    (either may be given first): the later part must start where the earlier one ended."""
    if first is second:
        raise JoinError(None, "both inputs are the same capture. Give each part its own ConceptAttention Apply "
                              "and its own sampler: a capture holds the maps of the last sampler run that filled it")
    for which, capture in (("first", first), ("second", second)):
        if capture.error or not capture.steps:
            raise JoinError(which, f"the {which} capture holds no maps: "
                                   + (capture.error or "its sampler has not run with it"))
    earlier, later = (first, second) if first.schedule[0] >= second.schedule[0] else (second, first)
    _check_same_generation(earlier, later)
    boundary, start = earlier.schedule[-1], later.schedule[0]
    if abs(boundary - start) > SAME_SIGMA * max(1.0, abs(boundary)):
        if start > boundary:
            raise JoinError(None, f"the two captures overlap: one sampled down to noise level {boundary:.4g}, the "
                                  f"other starts above it, at {start:.4g}. Join the two parts of one generation: the "
                                  "second KSamplerAdvanced's start_at_step must be the first's end_at_step")
        raise JoinError(None, f"the two captures are not consecutive: one ends at noise level {boundary:.4g}, the "
                              f"other starts at {start:.4g}, so steps between them are missing. Give both samplers "
                              "the same steps and scheduler, the second starting at the first's end_at_step")
    offset = len(earlier.schedule) - 1
    joined = ConceptAttention.concatenate([earlier, later])
    joined.steps = earlier.steps + tuple(step + offset for step in later.steps)
    joined.schedule = earlier.schedule + later.schedule[1:]
    return joined


def _check_same_generation(earlier: ConceptAttention, later: ConceptAttention):
    if earlier.concepts != later.concepts:
        raise JoinError(None, f"the captures are of different concepts ({', '.join(earlier.concepts)} and "
                              f"{', '.join(later.concepts)}); connect the same Concept Encode to both captures")
    shapes = [(c.grid, c.image_size, c.video_frames, c.batch_size) for c in (earlier, later)]
    if shapes[0] != shapes[1]:
        raise JoinError(None, "the captures are of different latents (sizes, frames or batch differ: "
                              f"{_latent_text(earlier)} and {_latent_text(later)}); join the two parts of one "
                              "generation, the second sampler taking the first one's latent")
    if earlier.family != later.family:
        raise JoinError(None, f"the captures are of different model families ({earlier.family} and {later.family})")
    if (earlier.keep, earlier.methods) != (later.keep, later.methods):
        raise JoinError(None, "the captures kept different things (keep, or the cross-attention baseline, differs); "
                              "set both capture nodes alike")
    if earlier.layers != later.layers:
        need = "" if earlier.keep == KEEP_ALL else " (their maps are summed over the layers)"
        raise JoinError(None, f"the captures read different layers ({_listed(earlier.layers)} and "
                              f"{_listed(later.layers)}){need}; set the same layers on both capture nodes")


def _latent_text(capture: ConceptAttention) -> str:
    frames = f"{capture.video_frames} frames of " if capture.is_video else ""
    return f"{capture.batch_size} x {frames}{capture.image_size[1]}x{capture.image_size[0]} px"


def _listed(layers: tuple) -> str:
    return ", ".join(map(str, layers))
