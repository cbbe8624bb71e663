"""Properties of the pure maths that hold for any shape and value (hypothesis draws
the cases): softmax over concepts sums to one, argmax masks partition, the token-grid
reshapes hold for any grid, upsampling keeps where the maximum is, normalisations
stay in [0, 1], and the report's shares and regions agree with the masks."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from concept_attention.analysis import maths
from concept_attention.analysis.selection import parse_indices

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=60, deadline=None)
sizes = st.integers(min_value=1, max_value=6)
seeds = st.integers(min_value=0, max_value=2**31 - 1)
scales = st.floats(min_value=1e-3, max_value=1e3)


def scores(seed, *shape, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


@SETTINGS
@given(seed=seeds, evaluations=sizes, layers=sizes, batch=sizes, concepts=sizes, patches=sizes, scale=scales)
def test_softmax_over_concepts_sums_to_one(seed, evaluations, layers, batch, concepts, patches, scale):
    raw = scores(seed, evaluations, layers, batch, concepts, patches, scale=scale)
    maps = maths.reduce_scores(raw)                                          # [B, C, P]
    assert maps.shape == (batch, concepts, patches)
    assert torch.allclose(maps.sum(dim=1), torch.ones(batch, patches), atol=1e-5)
    assert (maps >= 0).all() and (maps <= 1).all()


@SETTINGS
@given(seed=seeds, batch=sizes, concepts=sizes, frames=st.integers(1, 3), height=sizes, width=sizes)
def test_argmax_masks_partition_every_pixel(seed, batch, concepts, frames, height, width):
    maps = scores(seed, batch, concepts, frames, height, width)
    masks = maths.argmax_masks(maps)
    assert torch.equal(masks.sum(dim=1), torch.ones(batch, frames, height, width))
    assert torch.equal(masks.argmax(dim=1), maps.argmax(dim=1))


@SETTINGS
@given(seed=seeds, batch=sizes, concepts=sizes, frames=st.integers(1, 4), height=sizes, width=sizes)
def test_the_grid_reshapes_hold_for_any_grid(seed, batch, concepts, frames, height, width):
    # Patches are flattened frame-major, then row-major, as the models order their tokens.
    flat = scores(seed, batch, concepts, frames * height * width)
    grid = flat.reshape(batch, concepts, frames, height, width)
    f, y, x = frames - 1, height - 1, width - 1
    assert torch.equal(grid[:, :, f, y, x], flat[:, :, (f * height + y) * width + x])
    items = maths.as_items(grid)                                             # one item per (video, frame)
    assert items.shape == (batch * frames, concepts, height, width)
    assert torch.equal(items[(batch - 1) * frames + f], grid[batch - 1, :, f])
    if frames == 1:
        assert torch.equal(maths.as_items(grid[:, :, 0]), grid[:, :, 0])


@SETTINGS
@given(height=sizes, width=sizes, row=st.integers(0, 5), column=st.integers(0, 5), factor=st.integers(1, 8))
def test_upsampling_keeps_the_location_of_the_maximum(height, width, row, column, factor):
    row, column = row % height, column % width
    maps = torch.zeros(1, 1, height, width)
    maps[0, 0, row, column] = 1.0
    big = maths.resize(maps, (height * factor, width * factor))
    peak = int(big[0, 0].flatten().argmax())
    big_row, big_column = divmod(peak, width * factor)
    assert big_row // factor == row and big_column // factor == column


@SETTINGS
@given(seed=seeds, batch=sizes, concepts=sizes, height=sizes, width=sizes, scale=scales,
       mode=st.sampled_from(["per_concept", "joint"]), constant=st.booleans())
def test_normalisations_stay_in_zero_one(seed, batch, concepts, height, width, scale, mode, constant):
    maps = torch.full((batch, concepts, height, width), 0.3) if constant else \
        scores(seed, batch, concepts, height, width, scale=scale)
    normalised = maths.normalize(maps, mode)
    assert torch.isfinite(normalised).all()
    assert (normalised >= 0).all() and (normalised <= 1).all()


@SETTINGS
@given(seed=seeds, batch=sizes, concepts=sizes, height=sizes, width=sizes, pixels=st.integers(1, 32))
def test_report_regions_agree_with_the_masks(seed, batch, concepts, height, width, pixels):
    maps = scores(seed, batch, concepts, height, width)
    where = maths.regions(maps, (height * pixels, width * pixels))
    assert torch.allclose(where["area_share"].sum(dim=1), torch.ones(batch))
    assert torch.allclose(where["area_share"], maths.argmax_masks(maps).flatten(2).mean(dim=-1))
    won = where["area_share"] > 0
    box, centroid = where["box"], where["centroid"]
    assert torch.isnan(box[~won]).all() and not torch.isnan(box[won]).any()
    inside = (box[won][:, 0] <= centroid[won][:, 0]) & (centroid[won][:, 0] <= box[won][:, 2]) & \
        (box[won][:, 1] <= centroid[won][:, 1]) & (centroid[won][:, 1] <= box[won][:, 3])
    assert inside.all()
    overlap = maths.soft_overlap(maps)
    assert (overlap >= 0).all() and (overlap <= 1 + 1e-6).all()
    assert torch.allclose(overlap, overlap.transpose(1, 2))


@SETTINGS
@given(count=st.integers(1, 40), first=st.integers(-40, 39), last=st.integers(-40, 39))
def test_index_ranges_give_sorted_indices_in_range_or_a_clear_error(count, first, last):
    try:
        chosen = parse_indices(f"{first}-{last}", count, "layer")
    except ValueError as e:
        assert "layer" in str(e)
        return
    assert list(chosen) == sorted(set(chosen)) and all(0 <= i < count for i in chosen)
