"""The ConceptReport: per image (per token frame for video) and per concept, where the
concept wins, how strongly, and whether it looks ignored or merged with another;
as a dict with stable keys (the JSON output), a text table, and one value for a
graph to branch on. No ComfyUI import.

Keys (REPORT_VERSION 1):
  version, family, method, method_note (why a capture has only cross-attention
  maps, else ""), layers, steps, image_size [H, W], thresholds {min_area_share,
  min_peak, merge_overlap}, items: one per image (video: per token frame) with
  image (index in the batch), frame (token frame, null for an image), frames
  ([first, last] decoded frames, null for an image) and concepts: one per concept in
  capture order with concept, rank, area_share, peak, mean, centroid [x, y],
  box [left, top, right, bottom] (image pixels; null when it wins no patch),
  ignored (bool), merged_with (words).
"""
import json
import math
from dataclasses import asdict, dataclass

import torch

from . import maths

REPORT_VERSION = 1
MEASURES = ("area_share", "peak")


@dataclass(frozen=True)
class Thresholds:
    min_area_share: float = 0.02   # wins under 2% of the image: ignored
    min_peak: float = 0.25         # never above a quarter of the image's strongest map: ignored
    merge_overlap: float = 0.8     # two maps this alike (weighted Jaccard): merged


def build(maps: torch.Tensor, words: tuple, image_size: tuple, thresholds: Thresholds = Thresholds(),
          frame_ranges=None, **meta) -> dict:
    """maps: [B, C, h, w], or [B, C, F, h, w] for video with frame_ranges[f] =
    (first, last) decoded frames of token frame f; meta: family, method, method_note, layers, steps."""
    video = maps.ndim == 5
    items = maths.as_items(maps)                                          # [N, C, h, w]
    joint = maths.normalize(items, "joint")
    peak, mean = joint.flatten(2).amax(-1), joint.flatten(2).mean(-1)
    where = maths.regions(items, image_size)
    overlap = maths.soft_overlap(items)
    frames = maps.shape[2] if video else 1
    rows = []
    for n in range(items.shape[0]):
        order = sorted(range(len(words)), key=lambda c: (-float(where["area_share"][n, c]), -float(peak[n, c])))
        rank = {c: i + 1 for i, c in enumerate(order)}
        concepts = []
        for c, word in enumerate(words):
            area, strongest = float(where["area_share"][n, c]), float(peak[n, c])
            concepts.append({
                "concept": word, "rank": rank[c], "area_share": _round(area), "peak": _round(strongest),
                "mean": _round(float(mean[n, c])), "centroid": _point(where["centroid"][n, c]),
                "box": _point(where["box"][n, c]),
                "ignored": area < thresholds.min_area_share or strongest < thresholds.min_peak,
                "merged_with": [other for o, other in enumerate(words)
                                if o != c and float(overlap[n, c, o]) >= thresholds.merge_overlap],
            })
        frame = n % frames if video else None
        rows.append({"image": n // frames, "frame": frame,
                     "frames": _listed(frame_ranges[frame]) if video else None, "concepts": concepts})
    return {"version": REPORT_VERSION, **{k: _listed(v) for k, v in meta.items()},
            "image_size": list(image_size), "thresholds": asdict(thresholds), "items": rows}


def value(report: dict, concept: str, measure: str) -> float:
    """The highest `measure` of `concept` over every image and frame of the report."""
    return max(entry[measure] for item in report["items"] for entry in item["concepts"]
               if entry["concept"] == concept)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2)


def item_title(item: dict) -> str:
    """"image 2, token frame 1": counted from 1, as a person counts (the JSON keeps 0-based indices)."""
    return f"image {item['image'] + 1}" + ("" if item["frame"] is None else f", token frame {item['frame'] + 1}")


def to_table(report: dict) -> str:
    """The report as aligned text, one block per image (or token frame)."""
    meta = ", ".join(f"{key} {_span(report[key])}" for key in ("layers", "steps") if key in report)
    height, width = report["image_size"]
    note = f" ({report['method_note']})" if report.get("method_note") else ""
    lines = [f"ConceptAttention report: {report.get('method', '')}{note}, {meta}, {width}x{height} px; area = share of the "
             f"image each concept wins, peak/mean on one scale per image"]
    header = f"{'rank':>4}  {'concept':<14}{'area':>7}{'peak':>6}{'mean':>6}  {'centroid x,y':<13}{'box l,t,r,b':<20}flags"
    for item in report["items"]:
        title = item_title(item)
        if item["frame"] is not None:
            shown = "in no decoded frame" if item["frames"] is None else "frames {}-{}".format(*(f + 1 for f in item["frames"]))
            title += f" ({shown})"
        lines += ["", title, header]
        for entry in sorted(item["concepts"], key=lambda e: e["rank"]):
            flags = (["ignored"] if entry["ignored"] else []) + \
                    [f"merged with {w}" for w in entry["merged_with"]]
            centroid = "-" if entry["centroid"] is None else ",".join(f"{v:.0f}" for v in entry["centroid"])
            box = "-" if entry["box"] is None else ",".join(f"{v:.0f}" for v in entry["box"])
            lines.append(f"{entry['rank']:>4}  {entry['concept']:<14}{entry['area_share']:>7.1%}{entry['peak']:>6.2f}"
                         f"{entry['mean']:>6.2f}  {centroid:<13}{box:<20}{'; '.join(flags)}")
    return "\n".join(lines)


def _round(number: float) -> float:
    return round(number, 4)


def _point(values: torch.Tensor):
    if any(math.isnan(float(v)) for v in values):
        return None
    return [_round(float(v)) for v in values]


def _listed(v):
    return list(v) if isinstance(v, tuple) else v


def _span(indices) -> str:
    indices = list(indices)
    if indices and indices == list(range(indices[0], indices[-1] + 1)) and len(indices) > 2:
        return f"{indices[0]}-{indices[-1]}"
    return ",".join(map(str, indices))
