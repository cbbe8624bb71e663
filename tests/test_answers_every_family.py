"""Concept Report, Gate, Evolution and Compare on a real capture of every family (one
tiny model of each, harness/families.py): the same answers as on planted maps."""
import json

import pytest
import torch

from concept_attention.analysis import maths
from concept_attention.analysis.render import GRID_GAP
from concept_attention.nodes.compare import ConceptCompare
from concept_attention.nodes.evolution import ConceptEvolution
from concept_attention.nodes.gate import ConceptGate
from concept_attention.nodes.report import ConceptReport
from harness.families import once_per_model, one_model_each

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def family_captures(request):
    return once_per_model(request, lambda harness, model: harness.run_capture(model, harness.concepts(), batch=2)[1])


@pytest.mark.parametrize("tested, which", one_model_each())
def test_answers_for_every_family(family_captures, tested, which):
    capture = family_captures(which)
    items = 2 * (capture.grid[0] if capture.is_video else 1)          # two images, or per token frame of two videos
    _, text, area, _, chart = ConceptReport.execute(capture, concept="rock").args
    report = json.loads(text)
    assert len(report["items"]) == chart.shape[0] == items
    rock_shares = []
    for item in report["items"]:
        # The argmax splits every image (frame) between the concepts.
        assert sum(e["area_share"] for e in item["concepts"]) == pytest.approx(1, abs=1e-3)
        assert sorted(e["rank"] for e in item["concepts"]) == [1, 2, 3]
        rock_shares += [e["area_share"] for e in item["concepts"] if e["concept"] == "rock"]
    assert area == max(rock_shares)
    assert ConceptGate.execute(capture, "rock", "area_share", area).args == (True, area)
    by_step, by_layer = ConceptEvolution.execute(capture, cell_size=32).args
    assert by_step.shape[0] == by_layer.shape[0] == items
    width = maths.fit(capture.image_size, 32)[1]                       # cells keep the image's aspect
    extra_columns = len(capture.captured_steps) - len(capture.layers)
    assert by_step.shape[2] - by_layer.shape[2] == extra_columns * (width + GRID_GAP)
    # A run compared with itself: its two columns alike, every share twice.
    grid, _, text = ConceptCompare.execute(capture, capture, "a", "b", cell_size=32).args
    # Cells are right- and bottom-aligned, GRID_GAP apart: 3 concept rows, 2 run columns under their names.
    top, left = grid.shape[1] - 3 * (32 + GRID_GAP), grid.shape[2] - 2 * (32 + GRID_GAP)
    columns = [grid[0, top:, left + k * (32 + GRID_GAP):left + k * (32 + GRID_GAP) + 32] for k in (0, 1)]
    assert grid.shape[0] == items and torch.equal(columns[0], columns[1])
    assert all(a == b for a, b in json.loads(text)["items"][0]["area_share"].values())


def test_compare_across_families_with_different_grids(family_captures):
    flux, sd3 = family_captures("flux_dev"), family_captures("sd3")
    grid, table, _ = ConceptCompare.execute(flux, sd3, "Flux 1", "SD3", cell_size=32).args
    assert grid.shape[0] == 2 and table.splitlines()[1].split() == ["concept", "Flux", "1", "SD3"]
