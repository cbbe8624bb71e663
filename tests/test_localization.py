"""The localization benchmark (benchmarks/localization.py, on the segmentation evaluation's
runner): a fast subset on the demo model whose floors fail if localization breaks. The
metrics themselves are tested in tests/test_evaluation.py."""
import pytest

from benchmarks import localization

CONCEPT_ATTENTION, RANDOM = "ConceptAttention (output space, softmax)", "Random maps"
# Measured on these 20 scenes at the nodes' defaults (the demo model's default layers,
# t = 0.5; the paper's dataset-summed metrics): binary mIoU colour 0.657, shape 0.361,
# background 0.363; colour multi-class accuracy 0.508, mIoU 0.330; random maps 0.283, 0.280,
# 0.327, 0.261, 0.054. Floors a few points below.
FLOORS = {"colour": 0.60, "shape": 0.33, "background": 0.33, "multi_acc": 0.45, "multi_miou": 0.28}


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    variants = localization.method_variants(localization.demo_layers()[0])
    out = tmp_path_factory.mktemp("localization")
    return {task: localization.measure(task, 0.5, variants, 20, None, out) for task in localization.TASKS}


def measured(tables, name) -> dict:
    return {"colour": tables["colour"]["binary"][name]["miou"], "shape": tables["shape"]["binary"][name]["miou"],
            "background": tables["background"]["binary"][name]["miou"],
            "multi_acc": tables["colour"]["multiclass"][name]["accuracy"],
            "multi_miou": tables["colour"]["multiclass"][name]["miou"]}


@pytest.mark.model
def test_concept_attention_localizes_on_held_out_scenes(tables):
    ours, random = measured(tables, CONCEPT_ATTENTION), measured(tables, RANDOM)
    low = {name: round(value, 3) for name, value in ours.items() if value < FLOORS[name]}
    assert not low, f"below the floors {FLOORS}: {low}"
    assert ours["colour"] > random["colour"] + 0.3 and ours["shape"] > random["shape"] + 0.05
    assert ours["background"] > random["background"] + 0.02 and ours["multi_acc"] > random["multi_acc"] + 0.2


@pytest.mark.model
def test_every_method_row_is_measured_on_every_task(tables):
    names = [variant.name for variant in localization.method_variants(localization.demo_layers()[0])]
    for task, kinds in tables.items():
        for kind, table in kinds.items():
            assert list(table) == names, (task, kind)
            assert all(0 <= s["accuracy"] <= 1 for s in table.values())
