"""The segmentation evaluation (`python -m evaluation`): its metrics against values worked
out by hand, its dataset readers on small datasets the tests write in the real formats
(from demo scenes with exact masks), the command end to end on the demo model, and the
malformed inputs a researcher meets."""
import json

import numpy as np
import pytest

from evaluation import metrics
from evaluation.__main__ import main as evaluate
from evaluation.datasets import DatasetError, ImageNetSegmentation, PascalVOC, read_class_names
from harness import segmentation_files

VOID = metrics.VOID


def label(rows) -> np.ndarray:
    return np.array(rows, dtype=np.uint8)


@pytest.mark.unit
def test_binary_counts_with_void_pixels():
    truth = label([[1, 1, 0, 0], [1, VOID, VOID, 0]])
    mask = np.array([[1, 0, 0, 1], [1, 1, 0, 0]], dtype=bool)
    soft = np.array([[0.9, 0.4, 0.1, 0.6], [0.8, 0.7, 0.2, 0.3]])
    counts = metrics.binary_counts(mask, soft, truth)
    # 8 pixels labelled, the void ones never correct (even where the mask says background): right at
    # (0,0), (0,2), (1,0), (1,3)
    assert counts["correct"] == 4 and counts["labelled"] == 8
    # foreground: predicted {(0,0), (0,3), (1,0)} (void left out), true {(0,0), (0,1), (1,0)}
    assert (counts["foreground_intersection"], counts["foreground_union"]) == (2, 4)
    # background: predicted {(0,1), (0,2), (1,3)}, true {(0,2), (0,3), (1,3)}
    assert (counts["background_intersection"], counts["background_union"]) == (2, 4)
    # AP over 14 scores (1 - map, map) of the 7 valid pixels against one-hot targets, by hand
    from sklearn.metrics import average_precision_score
    valid = truth != VOID
    scores = np.concatenate([1 - soft[valid], soft[valid]])
    targets = np.concatenate([truth[valid] != 1, truth[valid] == 1])
    assert counts["ap"] == pytest.approx(average_precision_score(targets, scores))


@pytest.mark.unit
def test_an_all_background_image_and_ties():
    truth = label([[0, 0], [0, 0]])
    counts = metrics.binary_counts(np.zeros((2, 2), bool), np.full((2, 2), 0.5), truth)
    assert counts["correct"] == 4 and counts["foreground_union"] == 0 and counts["background_intersection"] == 4
    # every score tied: the background half's 4 positives among 8 tied scores give AP 0.5
    assert counts["ap"] == pytest.approx(0.5)


@pytest.mark.unit
def test_dataset_numbers_sum_counts_and_report_the_references_miou():
    rows = [{"correct": 3, "labelled": 4, "foreground_intersection": 1, "foreground_union": 2,
             "background_intersection": 2, "background_union": 3, "ap": 0.5},
            {"correct": 1, "labelled": 4, "foreground_intersection": 0, "foreground_union": 3,
             "background_intersection": 1, "background_union": 4, "ap": 1.0}]
    summary = metrics.binary_summary(rows)
    assert summary["accuracy"] == pytest.approx(4 / 8)
    assert summary["foreground_iou"] == pytest.approx(1 / 5) and summary["background_iou"] == pytest.approx(3 / 7)
    assert summary["miou"] == pytest.approx((1 / 5 + 3 / 7) / 2)
    assert summary["miou_as_reference"] == pytest.approx(0.5 / 1.5) and summary["map"] == pytest.approx(0.75)


@pytest.mark.unit
def test_multiclass_counts_leave_out_absent_classes_and_count_void_in_the_union():
    truth = label([[0, 0, 3], [3, VOID, VOID]])
    predicted = np.array([[0, 3, 3], [3, 3, 0]])
    counts = metrics.multiclass_counts(predicted, truth, classes=4)
    assert counts["correct"] == 3 and counts["labelled"] == 4
    assert counts["intersection"] == [1, 0, 0, 2] and counts["union"] == [3, 0, 0, 4]   # void predicted 3: in 3's union
    summary = metrics.multiclass_summary([counts])
    assert summary["miou"] == pytest.approx((1 / 3 + 2 / 4) / 2) and set(summary["class_iou"]) == {0, 3}


@pytest.fixture(scope="module")
def demo_samples():
    return segmentation_files.demo_samples(6)


@pytest.mark.model
def test_readers_give_back_what_was_written(tmp_path, demo_samples):
    samples, names = demo_samples
    mat = segmentation_files.write_imagenet_segmentation(tmp_path / "gtsegs_ijcv.mat", samples, names)
    imagenet = ImageNetSegmentation(mat, read_class_names(tmp_path / "class_names.json"))
    voc = PascalVOC(segmentation_files.write_voc(tmp_path / "VOCdevkit", samples))
    assert len(imagenet) == len(voc) == 6
    for i, sample in enumerate(samples):
        read = imagenet.sample(i)
        assert read.id == sample.id and np.array_equal(read.image, sample.image)
        assert np.array_equal(read.label, (sample.label == sample.classes[0]).astype(np.uint8))
        assert imagenet.class_name(i) == names[sample.classes[0]]
        from_voc = voc.sample(i)
        assert np.array_equal(from_voc.label, sample.label) and from_voc.classes == sample.classes
        assert np.abs(from_voc.image.astype(int) - sample.image).mean() < 2           # a JPEG (quality 100)


@pytest.mark.model
@pytest.mark.parametrize("dataset", ["imagenet-seg", "voc"])
def test_the_command_on_the_demo_model_end_to_end(tmp_path, demo_samples, dataset, capsys):
    samples, names = demo_samples
    if dataset == "imagenet-seg":
        data = segmentation_files.write_imagenet_segmentation(tmp_path / "gtsegs_ijcv.mat", samples, names)
        class_names = tmp_path / "class_names.json"
    else:
        data = segmentation_files.write_voc(tmp_path / "VOCdevkit", samples)
        class_names = tmp_path / "voc_names.json"
        class_names.write_text(json.dumps({str(i): w for i, w in names.items() if i}))
    out = tmp_path / "run"
    code = evaluate(["--dataset", dataset, "--data", str(data), "--class-names", str(class_names), "--demo",
                     "--image-size", "128", "--label-size", "128", "--noise-samples", "1", "--shard-size", "4",
                     "--out", str(out), "--no-progress", "--save-maps"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = [json.loads(line) for path in sorted((out / "rows").glob("*.jsonl")) for line in path.read_text().splitlines()]
    multi = [s.id for s in samples if len(s.classes) > 1]
    if dataset == "voc":      # the single-class subset: images with several classes are reported, not read
        assert sorted(summary["skipped"]) == sorted(str(i) for i, s in enumerate(samples) if s.id in multi)
        assert all("classes (the single-class subset keeps one)" in why for why in summary["skipped"].values())
    else:
        assert summary["skipped"] == {}
    assert summary["images"] == 6 and set(summary["tables"]["binary"]) == {"concept_attention", "cross_attention"}
    scored = [row for row in rows if "skipped" not in row]
    assert {row["class"] for row in scored} <= set(names.values())
    for variant in summary["tables"]["binary"].values():
        assert 0 < variant["accuracy"] <= 1 and 0 < variant["map"] <= 1
    # The maps kept beside the rows: each image's maps at the demo model's 8x8 patch grid, its concepts in order.
    maps = {key: value for path in sorted((out / "maps").glob("*.npz")) for key, value in np.load(path).items()}
    assert set(maps) == {f"{row['index']}/{row['variant']}" for row in scored}
    first = scored[0]
    assert maps[f"{first['index']}/{first['variant']}"].shape == (len(first["concepts"]), 8, 8)
    printed = capsys.readouterr().out
    assert "| concept_attention |" in printed and "mIoU as the reference computes it" in printed


@pytest.mark.model
def test_malformed_inputs_are_named(tmp_path, demo_samples, capsys):
    samples, names = demo_samples
    mat = segmentation_files.write_imagenet_segmentation(tmp_path / "no_gt.mat", samples, names, drop=("gt",))
    with pytest.raises(DatasetError, match=r"no_gt.mat: has no /value/gt; gtsegs_ijcv.mat holds"):
        ImageNetSegmentation(mat, {})
    truncated = tmp_path / "truncated.mat"
    truncated.write_bytes(segmentation_files.write_imagenet_segmentation(tmp_path / "whole.mat", samples, names)
                          .read_bytes()[:3000])
    with pytest.raises(DatasetError, match=r"truncated.mat: not an HDF5 \(MATLAB v7.3\) file, or truncated"):
        ImageNetSegmentation(truncated, {})
    no_split = segmentation_files.write_voc(tmp_path / "no_split", samples, with_split=False)
    with pytest.raises(DatasetError, match=r"val.txt: no such file; give the VOCdevkit folder"):
        PascalVOC(no_split)
    # The command: an image without a label, and a class name Concept Encode refuses, are reported skips.
    unlabelled = segmentation_files.write_voc(tmp_path / "unlabelled", samples[:2], unlabelled=(samples[0].id,))
    odd_names = tmp_path / "odd.json"
    odd_names.write_text(json.dumps({str(i): ("x" * 300 if i == samples[1].classes[0] else w)
                                     for i, w in names.items() if i}))
    out = tmp_path / "skips"
    assert evaluate(["--dataset", "voc-multi", "--data", str(unlabelled), "--class-names", str(odd_names), "--demo",
                     "--image-size", "128", "--out", str(out), "--no-progress"]) == 0
    skipped = json.loads((out / "summary.json").read_text())["skipped"]
    assert f"{samples[0].id}.png: no such file (the label of {samples[0].id}" in skipped["0"]
    assert "Concept Encode › concepts:" in skipped["1"]
    # Files that are not there: exit 2 with the file named, no stack trace.
    assert evaluate(["--dataset", "imagenet-seg", "--data", str(tmp_path / "missing.mat"), "--class-names",
                     str(tmp_path / "class_names.json"), "--demo", "--out", str(tmp_path / "x")]) == 2
    assert "missing.mat: no such file" in capsys.readouterr().err
    assert evaluate(["--dataset", "imagenet-seg", "--data", str(mat), "--task", "multiclass", "--demo", "--out",
                     str(tmp_path / "y")]) == 2
    assert "--task binary only" in capsys.readouterr().err


@pytest.mark.model
def test_a_failing_shard_is_retried_then_reported(tmp_path, monkeypatch, capsys):
    """An error that is not a dataset's (a worker's crash, out of memory): the shard is
    retried; one that keeps failing is named in the summary, its images missing, exit 1."""
    from evaluation import protocol

    read, calls = protocol.read, []

    def flaky(models, dataset, index, chosen):
        calls.append(index)
        if index == 2 and calls.count(2) == 1 or index == 5:
            raise RuntimeError(f"planted failure at image {index}")
        return read(models, dataset, index, chosen)

    monkeypatch.setattr(protocol, "read", flaky)
    command = ["--dataset", "demo-shape", "--demo", "--limit", "8", "--shard-size", "4", "--noise-samples", "1",
               "--no-progress", "--retries", "1", "--out", str(tmp_path)]
    assert evaluate(command) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failed_shards"] == {"4-7": "RuntimeError: planted failure at image 5"}
    assert summary["images"] == 4 and calls.count(2) == 2 and calls.count(5) == 2      # retried once each
    assert "- images 4-7: RuntimeError: planted failure at image 5" in (tmp_path / "summary.md").read_text()
    assert "shard 4-7 failed (attempt 2 of 2)" in capsys.readouterr().err


@pytest.mark.model
def test_runs_of_two_settings_compare_in_one_table(tmp_path, capsys):
    from evaluation.compare import main as compare

    for name, layers in (("all-layers", "all"), ("block-3", "3")):
        assert evaluate(["--dataset", "demo-colour", "--demo", "--limit", "3", "--noise-samples", "1", "--layers",
                         layers, "--methods", "concept_attention", "--out", str(tmp_path / name),
                         "--no-progress"]) == 0
    capsys.readouterr()
    assert compare([str(tmp_path / "all-layers"), str(tmp_path / "block-3")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("| run | model | dataset | layers | method | images | pixel accuracy | mIoU |")
    assert [row.split(" | ")[:5] for row in rows[2:]] == [["| all-layers", "demo model", "demo-colour", "all",
                                                           "concept_attention"],
                                                          ["| block-3", "demo model", "demo-colour", "3",
                                                           "concept_attention"]]
    with pytest.raises(SystemExit, match="is not a finished evaluation run"):
        compare([str(tmp_path)])
