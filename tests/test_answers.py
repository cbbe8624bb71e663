"""Concept Report, Gate, Evolution and Compare on planted CONCEPT_ATTN objects (tests/
synthetic.py: the extension's own Recorder fed known maps), against values worked
out by hand, and their grids read back pixel by pixel."""
import json

import pytest
import torch

from concept_attention.analysis import maths
from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.errors import NodeInputError
from concept_attention.analysis.render import BACKGROUND, EMPTY_CELL, GRID_GAP, PALETTE, concept_colours
from concept_attention.nodes.compare import ConceptCompare
from concept_attention.nodes.evolution import ConceptEvolution
from concept_attention.nodes.gate import ConceptGate
from concept_attention.nodes.report import ConceptReport
from harness.synthetic import planted

pytestmark = pytest.mark.unit

# A 4 x 8 token grid for a 64 x 128 px image: 16 px patches. "sky" wins the top-left
# 2 x 2 patches (0.9 against 0.1), "rock" everywhere else (0.8 against sky's 0.2).
H, W = 4, 8
SKY_PATCHES = (slice(0, 2), slice(0, 2))


def two_concepts():
    sky = torch.full((H, W), 0.2)
    sky[SKY_PATCHES] = 0.9
    return torch.stack([sky, 1 - sky])[None]               # [1, 2, h, w]: sky, rock


def report_of(capture, **options):
    table, text, area, peak, chart = ConceptReport.execute(capture, **options).args
    return table, json.loads(text), area, peak, chart


def entries(report, item=0):
    return {entry["concept"]: entry for entry in report["items"][item]["concepts"]}


def test_report_measures_a_planted_map():
    capture = planted(lambda s, l: two_concepts(), ("sky", "rock"), image_size=(64, 128))
    table, report, area, peak, chart = report_of(capture, concept="sky")
    sky, rock = entries(report).values()
    assert sky["area_share"] == 4 / 32 and rock["area_share"] == 28 / 32
    # Joint normalisation: the image's maps span 0.1..0.9, so sky is 1 where it wins and
    # (0.2 - 0.1) / 0.8 elsewhere; rock 0 where sky wins and (0.8 - 0.1) / 0.8 elsewhere.
    assert sky["peak"] == 1.0 and sky["mean"] == pytest.approx((4 * 1 + 28 * 0.125) / 32, abs=1e-4)
    assert rock["peak"] == 0.875 and rock["mean"] == pytest.approx(28 * 0.875 / 32, abs=1e-4)
    # Sky: patch centres at 8 and 24 px on both axes; its box is the 2 x 2 patches' edges.
    assert sky["centroid"] == [16.0, 16.0] and sky["box"] == [0.0, 0.0, 32.0, 32.0]
    # Rock: all 32 patch centres but sky's four; it reaches every edge.
    x = (4 * sum(16 * c + 8 for c in range(8)) - 2 * (8 + 24)) / 28
    y = (8 * sum(16 * r + 8 for r in range(4)) - 2 * (8 + 24)) / 28
    assert rock["centroid"] == pytest.approx([x, y], abs=1e-4) and rock["box"] == [0.0, 0.0, 128.0, 64.0]
    assert (rock["rank"], sky["rank"]) == (1, 2)
    assert area == 0.125 and peak == 1.0
    assert report["image_size"] == [64, 128] and report["layers"] == [0] and report["steps"] == [0]
    assert table.splitlines()[4].split() == ["1", "rock", "87.5%", "0.88", "0.77", "71,34", "0,0,128,64"]
    assert table.splitlines()[5].split() == ["2", "sky", "12.5%", "1.00", "0.23", "16,16", "0,0,32,32"]
    assert chart.shape[0] == 1 and chart.shape[-1] == 3
    assert table.splitlines()[2] == "image 1"                 # counted as a person counts; the JSON keeps 0


def test_chart_bars_wear_the_colour_their_word_names():
    """"red" is a red bar and "blue" a blue one; a word that names no colour never takes
    a colour another concept names."""
    assert concept_colours(["blue", "red", "grass", "sky"]) == [PALETTE["blue"], PALETTE["red"], PALETTE["orange"],
                                                                PALETTE["teal"]]
    assert concept_colours(["red car", "Yellow", "star"]) == [PALETTE["red"], PALETTE["yellow"], PALETTE["blue"]]
    capture = planted(lambda s, l: two_concepts(), ("sky", "red"))
    chart = report_of(capture)[4][0]
    bar_colours = {tuple(pixel) for pixel in (chart * 255).round().to(torch.uint8).reshape(-1, 3).tolist()}
    assert PALETTE["red"] in bar_colours and PALETTE["blue"] in bar_colours     # red: its word; sky: the first free


def test_report_json_keys_are_the_documented_ones():
    capture = planted(lambda s, l: two_concepts(), ("sky", "rock"))
    report = report_of(capture)[1]
    assert set(report) == {"version", "family", "method", "method_note", "layers", "steps", "image_size", "thresholds",
                           "items"}
    assert report["family"] == "Flux 1" and report["method_note"] == ""
    assert report["version"] == 1 and set(report["thresholds"]) == {"min_area_share", "min_peak", "merge_overlap"}
    assert set(report["items"][0]) == {"image", "frame", "frames", "concepts"}
    assert set(report["items"][0]["concepts"][0]) == {"concept", "rank", "area_share", "peak", "mean", "centroid",
                                                      "box", "ignored", "merged_with"}


def test_ignored_flips_at_its_thresholds():
    capture = planted(lambda s, l: two_concepts(), ("sky", "rock"))
    flags = lambda **t: {w: e["ignored"] for w, e in entries(report_of(capture, **t)[1]).items()}
    assert flags(min_area_share=0.125) == {"sky": False, "rock": False}
    assert flags(min_area_share=0.126) == {"sky": True, "rock": False}
    assert flags(min_area_share=0.0, min_peak=0.875) == {"sky": False, "rock": False}
    assert flags(min_area_share=0.0, min_peak=0.876) == {"sky": False, "rock": True}


def test_merged_flips_at_its_threshold():
    # "cloud" covers sky's four patches and one more: their per-concept shapes overlap 4 / 5.
    def maps(step, layer):
        sky = torch.full((H, W), 0.1)
        cloud = torch.full((H, W), 0.1)
        sky[SKY_PATCHES] = cloud[SKY_PATCHES] = 0.45
        cloud[3, 7] = 0.45
        return torch.stack([sky, cloud, 1 - sky - cloud])[None]
    capture = planted(maps, ("sky", "cloud", "rock"))
    merged = lambda overlap: {w: e["merged_with"] for w, e in entries(report_of(capture, merge_overlap=overlap)[1]).items()}
    assert merged(0.8) == {"sky": ["cloud"], "cloud": ["sky"], "rock": []}
    assert merged(0.81) == {"sky": [], "cloud": [], "rock": []}
    table = report_of(capture, merge_overlap=0.8)[0]
    assert "merged with cloud" in table and "merged with sky" in table


def test_gate_flips_at_its_threshold_and_can_stop_the_run():
    capture = planted(lambda s, l: two_concepts(), ("sky", "rock"))
    assert ConceptGate.execute(capture, "sky", "area_share", 0.125).args == (True, 0.125)
    assert ConceptGate.execute(capture, "Sky", "area_share", 0.126).args == (False, 0.125)
    assert ConceptGate.execute(capture, "rock", "peak", 0.9).args == (False, 0.875)
    with pytest.raises(NodeInputError, match=r"Concept Gate › stop_when: stopped the run as asked: 'sky' is present "
                                             r"\(area_share 0.125 reaches the threshold 0.100\)"):
        ConceptGate.execute(capture, "sky", "area_share", 0.1, "present")
    with pytest.raises(NodeInputError, match=r"'sky' is absent \(area_share 0.125 is under the threshold 0.200\)"):
        ConceptGate.execute(capture, "sky", "area_share", 0.2, "absent")
    assert ConceptGate.execute(capture, "sky", "area_share", 0.2, "present").args == (False, 0.125)


@pytest.mark.parametrize("node, concept, message", [
    (ConceptGate, "dragon", r"Concept Gate › concept: 'dragon' is not a captured concept; write one of: sky, rock"),
    (ConceptGate, " ", r"Concept Gate › concept: write the concept to measure, one of: sky, rock"),
    (ConceptReport, "dragon", r"Concept Report › concept: 'dragon' is not a captured concept; write one of: sky, rock"),
])
def test_a_concept_that_was_not_captured_is_named(node, concept, message):
    capture = planted(lambda s, l: two_concepts(), ("sky", "rock"))
    with pytest.raises(NodeInputError, match=message):
        node.execute(capture, concept=concept)


def test_a_batch_reports_each_image_and_its_highest_value():
    def maps(step, layer):
        second = torch.stack([torch.full((H, W), 0.3), torch.full((H, W), 0.7)])
        second[0, 0, :4] = 0.6                                       # sky wins 4 of 32 patches in image 1 too
        second[1, 0, :4] = 0.4
        swapped = second.clone()
        swapped[0, :2, :] = 0.95                                     # image 2: sky wins 16 of 32
        swapped[1, :2, :] = 0.05
        return torch.stack([two_concepts()[0], swapped])
    capture = planted(maps, ("sky", "rock"))
    _, report, area, _, chart = report_of(capture, concept="sky")
    assert [item["image"] for item in report["items"]] == [0, 1] and chart.shape[0] == 2
    assert [entries(report, i)["sky"]["area_share"] for i in (0, 1)] == [0.125, 0.5]
    assert area == 0.5


def test_video_reports_each_token_frame_with_its_decoded_frames():
    # 3 token frames of a 9-frame video (frame 0 alone, then 4 frames per latent frame); sky moves right.
    def maps(step, layer):
        sky = torch.full((3, H, W), 0.2)
        for f in range(3):
            sky[f, :, 2 * f:2 * f + 2] = 0.9
        return torch.stack([sky, 1 - sky])[None]
    capture = planted(maps, ("sky", "rock"), video_frames=9, frames_per_latent=4, image_size=(64, 128))
    report = report_of(capture)[1]
    assert [(i["frame"], i["frames"]) for i in report["items"]] == [(0, [0, 0]), (1, [1, 4]), (2, [5, 8])]
    assert "image 1, token frame 2 (frames 2-5)" in report_of(capture)[0].splitlines()
    assert [entries(report, i)["sky"]["centroid"] for i in range(3)] == [[16.0, 32.0], [48.0, 32.0], [80.0, 32.0]]
    grids = ConceptEvolution.execute(capture, cell_size=32).args[0]
    assert grids.shape[0] == 3


# Grids: cells are right- and bottom-aligned, GAP apart, so their places follow from the size.

GAP = GRID_GAP


def _origin(grid, rows, columns, size):
    height, width = grid.shape[:2]
    return height - rows * (size[0] + GAP), width - columns * (size[1] + GAP)


def cell(grid, row, column, rows, columns, size):
    """The pixels of cell (row, column) of a grid image [H, W, 3] with cells of size (h, w)."""
    top, left = _origin(grid, rows, columns, size)
    y, x = top + row * (size[0] + GAP), left + column * (size[1] + GAP)
    return grid[y:y + size[0], x:x + size[1]]


def header(grid, column, rows, columns, size):
    """The label above a column."""
    top, left = _origin(grid, rows, columns, size)
    x = left + column * (size[1] + GAP)
    return grid[:top, x:x + size[1]]


def row_labels(grid, rows, columns, size):
    top, left = _origin(grid, rows, columns, size)
    return grid[top:, :left]


def is_text(region):
    """Some pixels of a label: far brighter than the background."""
    return bool((region.amax(dim=-1) > 0.6).any())


def plasma(value):
    return maths.colorize(torch.tensor(float(value)), "plasma")


def test_evolution_grids_have_a_column_per_step_and_per_layer():
    # A 2 x 8 token grid. At step s, sky wins token column s in layer 0 and column 4 + s in layer 1.
    def maps(step, layer):
        sky = torch.full((2, 8), 0.1)
        sky[:, step if layer == 0 else 4 + step] = 0.9
        return torch.stack([sky, 1 - sky])[None]
    capture = planted(maps, ("sky", "rock"), layers=(0, 1), steps=3, keep=KEEP_ALL, image_size=(32, 128))
    by_step, by_layer = ConceptEvolution.execute(capture, cell_size=64).args
    size = (16, 64)                                                     # a 4:1 image's cells at 64 px
    assert by_step.shape[0] == by_layer.shape[0] == 1
    assert by_step.shape[2] - by_layer.shape[2] == size[1] + GAP       # 3 steps, 2 layers

    def bright_columns(grid, column, columns, count):
        tile = cell(grid[0], 0, column, 2, columns, size)                # the sky row
        return set(tile.mean(dim=(0, 2)).reshape(8, 8).mean(dim=1).topk(count).indices.tolist())

    # by_step: each step over both layers; by_layer: each layer over the three steps.
    assert [bright_columns(by_step, s, 3, 2) for s in range(3)] == [{0, 4}, {1, 5}, {2, 6}]
    assert [bright_columns(by_layer, l, 2, 3) for l in range(2)] == [{0, 1, 2}, {4, 5, 6}]
    assert all(is_text(header(by_step[0], s, 2, 3, size)) for s in range(3))
    assert header(by_step[0], 0, 2, 3, size).shape[0] > header(by_layer[0], 0, 2, 2, size).shape[0]  # step, sigma
    assert not torch.equal(header(by_step[0], 0, 2, 3, size), header(by_step[0], 1, 2, 3, size))
    assert is_text(row_labels(by_step[0], 2, 3, size))


def test_evolution_shows_the_image_and_keeps_long_runs_readable():
    capture = planted(lambda s, l: two_concepts(), ("sky", "rock"), steps=20, image_size=(64, 128))
    image = torch.zeros(1, 64, 128, 3)
    image[..., 0] = 1.0                                                  # a red picture
    by_step, by_layer = ConceptEvolution.execute(capture, cell_size=64, images=image).args
    size = (32, 64)
    # by_layer (one layer): the picture in the first column's top cell, the cell below left as background
    assert torch.allclose(cell(by_layer[0], 0, 0, 2, 2, size)[16, 32], torch.tensor([1.0, 0, 0]))
    assert torch.allclose(cell(by_layer[0], 1, 0, 2, 2, size)[16, 32], torch.tensor(BACKGROUND) / 255)
    assert is_text(header(by_layer[0], 0, 2, 2, size))
    # 20 steps and the picture: 21 columns in bands of 8, so the grid is no wider than 8 columns
    plain = ConceptEvolution.execute(capture, cell_size=64).args[0]
    assert by_step.shape[2] <= plain.shape[2] and by_step.shape[2] < 9 * (size[1] + GAP) + 80
    assert by_step.shape[1] > 2.5 * (2 * (size[0] + GAP))               # three bands, one under another
    with pytest.raises(NodeInputError, match=r"Concept Evolution › images: 3 images for maps of 1 images"):
        ConceptEvolution.execute(capture, images=torch.zeros(3, 64, 128, 3))


def test_evolution_needs_the_raw_scores_for_a_subset():
    capture = planted(lambda s, l: two_concepts(), ("sky", "rock"), layers=(0, 1), steps=2)
    with pytest.raises(NodeInputError, match=r"Concept Evolution › layers: this capture kept per_step_and_per_layer: "
                                             r".*capture with keep = every_step_and_layer to choose layers"):
        ConceptEvolution.execute(capture, layers="1")
    with pytest.raises(NodeInputError, match=r"Concept Evolution › layers: layer 5 is out of range: valid layers are 0-1"):
        ConceptEvolution.execute(capture, layers="5")
    assert ConceptEvolution.execute(planted(lambda s, l: two_concepts(), ("sky", "rock"), layers=(0, 1), steps=2,
                                            keep=KEEP_ALL), layers="1").args[1].shape[0] == 1


def test_compare_matches_words_and_shares_one_scale():
    first = planted(lambda s, l: two_concepts(), ("sky", "rock"), image_size=(64, 128))     # 0.1..0.9

    def second_maps(step, layer):
        # "Rock" (another spelling) and "tree", no sky: rock 0.45 on the left half, 0.3 on the right.
        rock = torch.full((H, W), 0.45)
        rock[:, 4:] = 0.3
        return torch.stack([rock, 1 - rock])[None]
    second = planted(second_maps, ("Rock", "tree"), image_size=(64, 128))
    grid, table, text = ConceptCompare.execute(first, second, "one", "two", cell_size=64).args
    data = json.loads(text)
    assert data["runs"] == ["one", "two"] and data["concepts"] == ["sky", "rock", "tree"]
    assert data["items"][0]["area_share"] == {"sky": [0.125, None], "rock": [0.875, 0.0], "tree": [None, 1.0]}
    assert table.splitlines()[1].split() == ["concept", "one", "two"]
    assert table.splitlines()[2].split() == ["sky", "12.5%", "-"]
    size = (64, 64)
    # Rows sky, rock, tree; columns one, two. The missing cells are the empty grey.
    for row, column in ((0, 1), (2, 0)):
        empty = cell(grid[0], row, column, 3, 2, size)
        assert torch.allclose(empty[2, 2], torch.tensor(EMPTY_CELL) / 255, atol=1 / 255), (row, column)
    # A 2:1 image's tile is 32 px tall, centred: row 32 is inside it, x = 4 on the left half.
    # Shared: one scale over both runs, 0.1..0.9; per run: run two's own, 0.3..0.7.
    assert torch.allclose(cell(grid[0], 1, 1, 3, 2, size)[32, 4], plasma((0.45 - 0.1) / 0.8), atol=2 / 255)
    per_run = ConceptCompare.execute(first, second, "one", "two", normalization="per_run", cell_size=64).args[0]
    assert torch.allclose(cell(per_run[0], 1, 1, 3, 2, size)[32, 4], plasma((0.45 - 0.3) / 0.4), atol=2 / 255)
    assert is_text(header(grid[0], 0, 3, 2, size)) and is_text(header(grid[0], 1, 3, 2, size))
    assert not torch.equal(header(grid[0], 0, 3, 2, size), header(grid[0], 1, 3, 2, size))
    assert is_text(row_labels(grid[0], 3, 2, size))
    assert torch.allclose(grid[0][0, 0], torch.tensor(BACKGROUND) / 255)


def test_compare_shows_each_runs_image_above_its_column():
    first = planted(lambda s, l: two_concepts(), ("sky", "rock"), image_size=(64, 128))
    second = planted(lambda s, l: two_concepts(), ("sky", "rock"), image_size=(64, 128))
    red, green = torch.zeros(1, 64, 128, 3), torch.zeros(1, 64, 128, 3)
    red[..., 0], green[..., 1] = 1.0, 1.0
    grid = ConceptCompare.execute(first, second, cell_size=64, image_1=red, image_2=green).args[0]
    size = (64, 64)
    assert torch.allclose(cell(grid[0], 0, 0, 3, 2, size)[32, 32], torch.tensor([1.0, 0, 0]))
    assert torch.allclose(cell(grid[0], 0, 1, 3, 2, size)[32, 32], torch.tensor([0, 1.0, 0]))
    only_second = ConceptCompare.execute(first, second, cell_size=64, image_2=green).args[0]
    assert torch.allclose(cell(only_second[0], 0, 0, 3, 2, size)[32, 32], torch.tensor(BACKGROUND) / 255)
    assert ConceptCompare.execute(first, second, cell_size=64).args[0].shape[1] < grid.shape[1]


def test_compare_refuses_runs_that_do_not_line_up():
    one = planted(lambda s, l: two_concepts(), ("sky", "rock"))
    two = planted(lambda s, l: two_concepts().expand(2, -1, -1, -1), ("sky", "rock"))
    with pytest.raises(NodeInputError, match=r"Concept Compare › run_2: 2 images, but run_1 has 1; compare runs with "
                                             r"the same batch size"):
        ConceptCompare.execute(one, two)
    video = planted(lambda s, l: two_concepts()[:, :, None].expand(-1, -1, 2, -1, -1), ("sky", "rock"), video_frames=5,
                    frames_per_latent=4)
    with pytest.raises(NodeInputError, match=r"Concept Compare › run_2: video maps, but run_1 holds image maps"):
        ConceptCompare.execute(one, video)


def test_non_finite_scores_give_a_clear_message_not_nan_images():
    from concept_attention.nodes.viewer import ConceptAttentionViewer
    from harness.checks import aggregate

    def maps(step, layer):
        values = two_concepts().clone()
        if step == 1:
            values[0, 0, 0, 0] = float("nan")
        return values
    capture = planted(maps, ("sky", "rock"), steps=3)
    assert capture.nonfinite_steps == (1,)
    message = r"› concept_attn: the scores of step 1 hold NaN or infinite values .* choose timesteps without them"
    for run_node in (lambda: aggregate(capture), lambda: ConceptReport.execute(capture),
                     lambda: ConceptEvolution.execute(capture),
                     lambda: ConceptAttentionViewer.execute(capture, torch.zeros(1, 64, 128, 3))):
        with pytest.raises(NodeInputError, match=message):
            run_node()
    soft = aggregate(capture, timesteps="0,2")[1]                    # the other steps still give maps
    assert torch.isfinite(soft).all()
