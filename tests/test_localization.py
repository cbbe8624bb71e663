"""The localization benchmark: its metrics on synthetic maps, and a fast subset on
the demo model whose floor fails if localization breaks."""
import pytest
import torch

from benchmarks import localization


@pytest.mark.unit
def test_binary_metrics_of_a_perfect_and_an_inverted_map():
    target = torch.zeros(1, 4, 4, dtype=torch.bool)
    target[0, :2] = True
    perfect = localization.binary_metrics(target.float(), target)
    assert torch.allclose(perfect, torch.ones(1, 3))
    accuracy, miou, average_precision = localization.binary_metrics((~target).float(), target)[0]
    assert accuracy == 0 and miou == 0
    # the 8 object pixels rank 9th to 16th
    assert average_precision.item() == pytest.approx(sum(k / (8 + k) for k in range(1, 9)) / 8)


@pytest.mark.unit
def test_average_precision_ranks_pixels():
    target = torch.tensor([[[True, False, True, False]]])
    soft = torch.tensor([[[0.9, 0.8, 0.7, 0.1]]])
    # ranks: hit (1/1), miss, hit (2/3), miss -> AP = (1 + 2/3) / 2
    assert localization.binary_metrics(soft, target)[0, 2].item() == pytest.approx((1 + 2 / 3) / 2)


@pytest.mark.unit
def test_multiclass_metrics():
    target = torch.tensor([[[0, 0, 1, 1]]])
    predicted = torch.tensor([[[0, 1, 1, 1]]])
    accuracy, miou = localization.multiclass_metrics(predicted, target)[0]
    assert accuracy.item() == pytest.approx(0.75)
    assert miou.item() == pytest.approx((1 / 2 + 2 / 3) / 2)


@pytest.fixture(scope="module")
def bench():
    return localization.Benchmark(scene_count=20)


# Measured on these 20 scenes at the nodes' defaults (the demo model's default layers, its
# last two double blocks; benchmarks/localization.py --scenes 20): binary mIoU colour 0.604,
# shape 0.357, background 0.380; colour multi-class accuracy 0.297, mIoU 0.366; random maps
# 0.288, 0.274, 0.310, 0.104, 0.075. Floors a few points below.
FLOORS = {"colour": 0.56, "shape": 0.32, "background": 0.34, "multi_acc": 0.26, "multi_miou": 0.32}


@pytest.mark.model
def test_concept_attention_localizes_on_held_out_scenes(bench):
    colour = bench.score("colour", bench.maps("colour", 0.5))
    shape = bench.score("shape", bench.maps("shape", 0.5))
    random_colour = bench.score("colour", bench.maps("colour", 0.5, random=True))
    random_shape = bench.score("shape", bench.maps("shape", 0.5, random=True))
    measured = {"colour": colour["object"][1], "shape": shape["object"][1], "background": colour["background"][1],
                "multi_acc": colour["multi_acc"], "multi_miou": colour["multi_miou"]}
    low = {name: round(value, 3) for name, value in measured.items() if value < FLOORS[name]}
    assert not low, f"below the floors {FLOORS}: {low}"
    assert measured["colour"] > random_colour["object"][1] + 0.15
    assert measured["shape"] > random_shape["object"][1] + 0.03
    assert measured["background"] > random_colour["background"][1] + 0.04
    assert measured["multi_acc"] > random_colour["multi_acc"] + 0.15
