"""The pure maths and parsing modules, on synthetic tensors (no ComfyUI needed)."""
import pytest
import torch

from concept_attention.analysis import maths
from concept_attention.analysis.selection import parse_concepts, parse_indices

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_output_space_scores_are_fp32_dot_products(dtype):
    """Every patch's score, also past the pieces in which half-precision image outputs
    are converted (rows not a multiple of the piece, a strided view as the block's)."""
    width = 64
    rows = maths.CPU_PIECE_BYTES // (4 * width)
    concept_out = torch.randn(2, 3, width).to(dtype)
    image_out = torch.randn(2, 2 * rows + 5 + 7, width).to(dtype)[:, 7:]     # after 7 "prompt" tokens
    scores = maths.output_space_scores(concept_out, image_out)
    assert scores.shape == (2, 3, 2 * rows + 5) and scores.dtype == torch.float32
    expected = torch.einsum("rcd,rpd->rcp", concept_out.double(), image_out.double())
    torch.testing.assert_close(scores.double(), expected, atol=1e-4, rtol=1e-5)


def test_cross_attention_scores_average_heads():
    image_q, concept_k = torch.randn(1, 4, 5, 8), torch.randn(1, 4, 3, 8)
    scores = maths.cross_attention_scores(image_q, concept_k)
    expected = sum(image_q[0, h, 2] @ concept_k[0, h, 1] for h in range(4)) / 4
    assert torch.allclose(scores[0, 1, 2], expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_unrotate_pairs_restores_the_vectors_before_rope(dtype):
    """Each feature pair turned by its angle (as a complex product, the way RoPE is
    defined) comes back, in fp32, whatever the dtype it arrives in."""
    vectors = torch.randn(2, 3, 5, 8)                               # [B, H, N, D]
    angles = torch.rand(5, 4) * 6.3                                 # one angle per position and pair
    turned = torch.view_as_complex(vectors.unflatten(-1, (-1, 2)).contiguous()) * torch.polar(torch.ones(()), angles)
    rotated = torch.view_as_real(turned).flatten(-2).to(dtype)
    restored = maths.unrotate_pairs(rotated, angles.cos(), angles.sin())
    assert restored.dtype == torch.float32 and restored.shape == vectors.shape
    tolerance = 1e-6 if dtype == torch.float32 else 0.05
    torch.testing.assert_close(restored, vectors, atol=tolerance, rtol=tolerance)


def test_reduce_is_softmax_per_entry_then_mean():
    scores = torch.randn(3, 2, 1, 4, 6) * 5          # [E, L, B, C, P]
    maps = maths.reduce_scores(scores)
    expected = sum(scores[e, l].softmax(dim=-2) for e in range(3) for l in range(2)) / 6
    assert torch.allclose(maps, expected, atol=1e-6)
    # Mean-then-softmax (the order of some ports) gives different maps on the same data.
    assert not torch.allclose(maps, scores.mean(dim=(0, 1)).softmax(dim=-2), atol=1e-3)
    # The maps of an image sum to one over concepts at every patch.
    assert torch.allclose(maps.sum(dim=1), torch.ones(1, 6))


def test_reduce_without_softmax_is_plain_mean():
    scores = torch.randn(2, 2, 1, 3, 4)
    assert torch.allclose(maths.reduce_scores(scores, softmax=False), scores.mean(dim=(0, 1)))


def test_normalize_per_concept_and_joint():
    maps = torch.tensor([[[[0.0, 1.0]], [[2.0, 4.0]]]])   # [B=1, C=2, 1, 2]
    per = maths.normalize(maps, "per_concept")
    assert torch.equal(per, torch.tensor([[[[0.0, 1.0]], [[0.0, 1.0]]]]))
    joint = maths.normalize(maps, "joint")
    assert torch.allclose(joint, torch.tensor([[[[0.0, 0.25]], [[0.5, 1.0]]]]))
    flat = maths.normalize(torch.ones(1, 1, 2, 2))
    assert torch.equal(flat, torch.zeros(1, 1, 2, 2))   # a constant map is not divided by zero


def test_argmax_masks_partition_the_image():
    maps = torch.rand(2, 4, 7, 5)
    masks = maths.argmax_masks(maps)
    assert torch.equal(masks.sum(dim=1), torch.ones(2, 7, 5))
    assert torch.equal(masks.argmax(dim=1), maps.argmax(dim=1))


def test_resize_keeps_values_and_shape():
    maps = torch.rand(1, 2, 4, 3)
    assert maths.resize(maps, (4, 3)) is maps
    big = maths.resize(maps, (64, 48))
    assert big.shape == (1, 2, 64, 48)
    assert big.min() >= maps.min() - 1e-6 and big.max() <= maps.max() + 1e-6


@pytest.mark.parametrize("name", maths.COLORMAPS)
def test_colormaps_span_their_ends(name):
    rgb = maths.colorize(torch.tensor([0.0, 0.5, 1.0]), name)
    assert rgb.shape == (3, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert not torch.allclose(rgb[0], rgb[2])


def test_plasma_matches_matplotlib_ends():
    rgb = maths.colorize(torch.tensor([0.0, 1.0]), "plasma")
    assert torch.allclose(rgb[0], torch.tensor([13, 8, 135]) / 255, atol=1e-6)
    assert torch.allclose(rgb[1], torch.tensor([240, 249, 33]) / 255, atol=1e-6)


def test_unknown_colormap_is_named():
    with pytest.raises(ValueError, match="unknown colour map 'rainbow'"):
        maths.colorize(torch.zeros(1), "rainbow")


def test_blend():
    image, colour = torch.zeros(1, 3), torch.ones(1, 3)
    assert torch.allclose(maths.blend(image, colour, 0.25), torch.full((1, 3), 0.25))


@pytest.mark.parametrize("text, expected", [
    ("all", (0, 1, 2, 3, 4, 5)),
    ("2-4", (2, 3, 4)),
    ("0, 3,5", (0, 3, 5)),
    ("-2--1", (4, 5)),
    ("-1", (5,)),
    ("1-2,2-3", (1, 2, 3)),
])
def test_parse_indices(text, expected):
    assert parse_indices(text, 6, "layer") == expected


@pytest.mark.parametrize("text, message", [
    ("7", "layer 7 is out of range: valid layers are 0-5"),
    ("3-1", "runs backwards"),
    ("x", "'x' is not a layer index or range"),
    (",", "no layer given"),
])
def test_parse_indices_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_indices(text, 6, "layer")


def test_parse_concepts():
    assert parse_concepts(" dragon, rock\nsky,,\n") == ("dragon", "rock", "sky")
    with pytest.raises(ValueError, match="no concepts given"):
        parse_concepts(" , \n ")
    with pytest.raises(ValueError, match="'Rock' is given twice"):
        parse_concepts("rock, sky, Rock")
