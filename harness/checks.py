"""Checks that several test files share: the maps a capture gives through Concept
Heatmaps, and that a model carries nothing of ours after a run, an error or an
interrupt."""
import comfy.model_management
import pytest
import torch

from concept_attention.analysis.errors import NodeInputError
from concept_attention.nodes.aggregate import HeatmapAggregate


def aggregate(capture, layers="all", timesteps="all", method="auto", normalization="per_concept",
              size="image", **masks):
    """(heatmaps, soft_masks, argmax_masks, threshold_masks, labels, maps): the outputs
    that hold maps (the segmentation picture is tested on its own)."""
    return HeatmapAggregate.execute(capture, layers, timesteps, method, normalization, size, "plasma", **masks).args[:6]


def patch_state(model):
    options = model.model_options
    return (repr(options), repr(model.wrappers), repr(model.callbacks), repr(model.object_patches),
            [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.model.modules()])


def check_no_patch_remains(model, capture, bad_capture, plain):
    """After a capture run, an input error and an interrupt, `model` carries nothing of
    ours and samples as before. capture(), plain(): sampled latents; bad_capture()
    raises a NodeInputError."""
    before = patch_state(model)
    capture()
    assert patch_state(model) == before
    with pytest.raises(NodeInputError):
        bad_capture()
    assert patch_state(model) == before
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            capture()
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert patch_state(model) == before
    assert torch.equal(plain(), capture())


def check_words_own_tokens(clip, concepts, start, trailing, **tokenizer_options):
    """Concept Encode's mean-pooled vectors of `concepts` (a ConceptSet of words) are
    each word's own tokens in its conditioning: the word alone, counted by the clip's own
    Hugging Face tokenizer (with `tokenizer_options`), at `start`, with `trailing`
    template tokens after it."""
    tokenizer = getattr(clip.tokenizer, clip.tokenizer.clip).tokenizer
    for word, vector in zip(concepts.words, concepts.embeddings):
        cond = clip.encode_from_tokens(clip.tokenize(word))
        count = len(tokenizer(word, **tokenizer_options)["input_ids"])
        assert cond.shape[1] == start + count + trailing, (word, cond.shape)
        torch.testing.assert_close(vector, cond[0, start:start + count].float().mean(dim=0))
