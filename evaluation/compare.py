"""One model-comparison table from several evaluation runs (their --out folders): a row
per run and method, with the run's model and dataset.

    python -m evaluation.compare runs/schnell-imagenet runs/sd35-imagenet runs/klein-imagenet
"""
import argparse
import json
import sys
from pathlib import Path


def model_name(models: dict) -> str:
    if models.get("demo"):
        return "demo model"
    return Path(models.get("checkpoint") or models.get("unet") or "?").stem


def table(folders) -> str:
    """The Markdown table of the runs in `folders`, binary then multi-class rows."""
    lines = {"binary": ["| run | model | dataset | layers | method | images | pixel accuracy | mIoU | "
                        "mIoU as the reference computes it | mAP |", "|---|---|---|---|---|---|---|---|---|---|"],
             "multiclass": ["| run | model | dataset | layers | method | images | pixel accuracy | mIoU |",
                            "|---|---|---|---|---|---|---|---|"]}
    for folder in map(Path, folders):
        try:
            settings = json.loads((folder / "run.json").read_text())
            summary = json.loads((folder / "summary.json").read_text())
        except FileNotFoundError as e:
            raise SystemExit(f"evaluation.compare: {folder} is not a finished evaluation run ({e.filename} "
                             "missing)") from None
        first = (f"| {folder.name} | {model_name(settings['models'])} | {settings['dataset']['name']} | "
                 f"{settings['protocol']['layers']} |")
        for task, rows in summary["tables"].items():
            for method, s in rows.items():
                numbers = [s["accuracy"], s["miou"], *([s["miou_as_reference"], s["map"]] if task == "binary" else [])]
                lines[task].append(f"{first} {method} | {s['images']} | "
                                   + " | ".join(f"{100 * value:.2f}" for value in numbers) + " |")
    return "\n\n".join("\n".join(rows) for rows in lines.values() if len(rows) > 2) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="evaluation output folders")
    print(table(parser.parse_args(argv).runs), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
