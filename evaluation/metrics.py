"""The segmentation metrics of the paper's tables, as counts per image that add up over
a dataset, so that a summary is the same whatever the sharding.

Binary (ImageNet-Segmentation, VOC single-class): a predicted mask and a soft map
against a {0, 1} label whose VOID pixels (255) are kept out as the reference does:
pixel accuracy counts a void pixel as labelled but never correct; IoU and AP leave it out.
Dataset numbers: accuracy = sum correct / sum labelled; each class's IoU = sum
intersection / sum union (foreground and background), mIoU their mean; mAP the mean of
the per-image APs. The reference's own "mIoU" (its IoU stacks the mask against the label
without the argmax, so both classes' IoU equal C / (2N - C)) is a / (2 - a): reported
beside the textbook one, to compare with the paper's numbers.

Multi-class (VOC): a predicted label map against the label over the 21 classes; a void
pixel predicted as class c counts in c's union, as the reference's; accuracy over the
non-void pixels; mIoU the mean over the classes with a non-empty union.
"""
import numpy as np

VOID = 255
BINARY_COUNTS = ("correct", "labelled", "foreground_intersection", "foreground_union", "background_intersection",
                 "background_union")


def binary_counts(mask: np.ndarray, soft: np.ndarray, label: np.ndarray) -> dict:
    """One image's counts. mask: bool [H, W] predicted foreground; soft: float [H, W]
    (higher: more foreground); label: uint8 [H, W], 0 background, 1 foreground, VOID."""
    valid = label != VOID
    foreground = label == 1
    correct = int(((mask == foreground) & valid).sum())
    counts = {"correct": correct, "labelled": int(label.size)}
    for name, predicted, truth in (("foreground", mask, foreground), ("background", ~mask, valid & ~foreground)):
        counts[f"{name}_intersection"] = int((predicted & truth & valid).sum())
        counts[f"{name}_union"] = int(((predicted | truth) & valid).sum())
    counts["ap"] = average_precision(soft[valid], foreground[valid])
    return counts


def average_precision(soft: np.ndarray, foreground: np.ndarray) -> float:
    """The reference's AP of one image: scikit-learn's average_precision_score over the
    2N scores (1 - map for the background, the map for the foreground) against one-hot
    targets; 0 where it is undefined (NaN)."""
    from sklearn.metrics import average_precision_score

    soft, foreground = soft.astype(np.float64).ravel(), foreground.ravel()
    scores = np.concatenate([1 - soft, soft])
    targets = np.concatenate([~foreground, foreground]).astype(np.int64)
    if targets.size == 0:
        return 0.0
    return float(np.nan_to_num(average_precision_score(targets, scores)))


def multiclass_counts(predicted: np.ndarray, label: np.ndarray, classes: int = 21) -> dict:
    """One image's counts over `classes` label indices. predicted, label: [H, W] class indices."""
    valid = label != VOID
    intersection = [int(((predicted == c) & (label == c)).sum()) for c in range(classes)]
    # A void pixel predicted as c is in c's union (the reference's count).
    union = [int(((predicted == c) | (label == c)).sum()) for c in range(classes)]
    return {"correct": int(((predicted == label) & valid).sum()), "labelled": int(valid.sum()),
            "intersection": intersection, "union": union}


def binary_summary(rows: list) -> dict:
    """Dataset numbers from binary_counts rows (in any order: sums)."""
    if not rows:
        return {}
    total = {key: sum(row[key] for row in rows) for key in BINARY_COUNTS}
    accuracy = total["correct"] / max(total["labelled"], 1)
    ious = [total[f"{name}_intersection"] / max(total[f"{name}_union"], 1) for name in ("foreground", "background")]
    return {"images": len(rows), "accuracy": accuracy, "miou": sum(ious) / 2, "foreground_iou": ious[0],
            "background_iou": ious[1], "miou_as_reference": accuracy / (2 - accuracy),
            "map": sum(row["ap"] for row in rows) / len(rows)}


def multiclass_summary(rows: list) -> dict:
    if not rows:
        return {}
    classes = len(rows[0]["intersection"])
    intersection = [sum(row["intersection"][c] for row in rows) for c in range(classes)]
    union = [sum(row["union"][c] for row in rows) for c in range(classes)]
    present = [c for c in range(classes) if union[c]]
    per_class = {c: intersection[c] / union[c] for c in present}
    return {"images": len(rows), "accuracy": sum(row["correct"] for row in rows) / max(sum(row["labelled"] for row in rows), 1),
            "miou": sum(per_class.values()) / max(len(per_class), 1), "class_iou": per_class}
