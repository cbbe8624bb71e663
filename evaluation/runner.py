"""Runs a protocol over a dataset in shards, on one process or a pool of Ray actors, and
writes each shard's rows as it finishes, so that the same command run again skips the
shards already done (a crash, a pre-emption). The summary is computed from the rows in
image order, so it is the same, number for number, whatever the number of workers.

Output folder:
  run.json            the settings (a rerun with other settings into the folder is refused)
  rows/shard-NNNNN.jsonl   one line per (image, class, variant), or a skipped image
  maps/shard-NNNNN.npz     with --save-maps: each image's maps at the model's grid ("<index>/<method>": [concepts, h, w])
  summary.json, summary.md
"""
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import metrics


@dataclass(frozen=True)
class Job:
    """Everything a worker needs, in plain values (it crosses to Ray actors)."""
    dataset: dict            # datasets.open_dataset's arguments
    models: dict             # models.load's arguments
    protocol: object         # protocol.Protocol
    count: int               # images to read (the dataset's first `count`)
    shard_size: int
    threads: int             # torch threads per worker: results are bit-identical for the same value
    cpu: bool = True         # ComfyUI's CPU mode (no GPU per worker)
    save_maps: bool = False  # also write each image's maps (maps/shard-NNNNNNN.npz)

    def shards(self) -> list:
        return [(start, min(start + self.shard_size, self.count)) for start in range(0, self.count, self.shard_size)]

    def settings(self) -> dict:
        return {"dataset": self.dataset, "models": self.models, "protocol": self.protocol.settings(),
                "count": self.count, "shard_size": self.shard_size}


class ShardWorker:
    """Loads the models once, then reads shards. On a Ray actor or in the driver's process."""

    def __init__(self, job: Job):
        import torch

        from harness import host
        host.prepare(cpu=job.cpu)
        from . import datasets, models
        torch.set_num_threads(job.threads)
        self.job = job
        self.dataset = datasets.open_dataset(**job.dataset)
        self.models = models.load(**job.models)

    def run(self, shard: tuple) -> tuple:
        """(the shard's rows, {"<image index>/<variant>": its maps at the grid, fp16} when
        the job saves maps, else None)."""
        from .protocol import read

        rows, maps = [], {} if self.job.save_maps else None
        for index in range(*shard):
            reading = read(self.models, self.dataset, index, self.job.protocol)
            rows += reading.rows or [{"index": index, "skipped": reading.skipped}]
            if maps is not None:
                maps.update({f"{index}/{variant}": grid.half().numpy() for variant, grid in reading.maps.items()})
        return rows, maps


class RunError(RuntimeError):
    pass


def shard_path(out: Path, shard: tuple) -> Path:
    return out / "rows" / f"shard-{shard[0]:07d}.jsonl"


def prepare_folder(out: Path, job: Job):
    """The output folder for `job`: new, or one of an earlier run of the same settings."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows").mkdir(exist_ok=True)
    recorded = out / "run.json"
    settings = json.loads(json.dumps(job.settings()))
    if recorded.exists():
        earlier = json.loads(recorded.read_text())
        if earlier != settings:
            changed = sorted(k for k in settings if settings[k] != earlier.get(k))
            raise RunError(f"{out} holds a run with other settings (different {', '.join(changed)}); give another "
                           "--out folder, or delete this one to start again")
    else:
        recorded.write_text(json.dumps(settings, indent=2))


def write_shard(out: Path, shard: tuple, result: tuple):
    """Written whole or not at all: a shard's rows file exists only once its shard is done
    (and its maps, when kept, are written before it)."""
    rows, maps = result
    path = shard_path(out, shard)
    if maps is not None:
        import numpy as np
        (out / "maps").mkdir(exist_ok=True)
        maps_path = out / "maps" / f"{path.stem}.npz"
        with open(maps_path.with_suffix(".partial"), "wb") as f:
            np.savez_compressed(f, **maps)
        os.replace(maps_path.with_suffix(".partial"), maps_path)
    partial = path.with_suffix(".partial")
    partial.write_text("".join(json.dumps(row) + "\n" for row in rows))
    os.replace(partial, path)


def run(job: Job, out, workers: int = 1, address: str = None, gpus_per_worker: float = 0, retries: int = 2,
        progress: bool = True) -> dict:
    """Evaluate every shard not yet written in `out`, then summarise all of them."""
    out = Path(out)
    prepare_folder(out, job)
    pending = [shard for shard in job.shards() if not shard_path(out, shard).exists()]
    done = len(job.shards()) - len(pending)
    bar = _progress(job.count, sum(b - a for a, b in job.shards()) - sum(b - a for a, b in pending), progress)
    if done:
        bar.write(f"{done} of {len(job.shards())} shards already done in {out}: skipping them", file=sys.stderr)
    failed = {}
    if pending:
        if workers <= 1 and address is None:
            failed = _run_here(job, out, pending, retries, bar)
        else:
            failed = _run_on_ray(job, out, pending, workers, address, gpus_per_worker, retries, bar)
    bar.close()
    summary = summarise(out, job)
    summary["failed_shards"] = {f"{a}-{b - 1}": why for (a, b), why in failed.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(markdown(summary))
    return summary


def _progress(total: int, initial: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="img", disable=not enabled, smoothing=0.1)


def _run_here(job, out, pending, retries, bar) -> dict:
    worker, failed = None, {}
    for shard in pending:
        for attempt in range(retries + 1):
            try:
                worker = worker or ShardWorker(job)
                write_shard(out, shard, worker.run(shard))
                bar.update(shard[1] - shard[0])
                failed.pop(shard, None)
                break
            except Exception as e:        # noqa: BLE001 (a shard's failure is retried, then reported)
                failed[shard] = f"{type(e).__name__}: {e}"
                bar.write(f"shard {shard[0]}-{shard[1] - 1} failed (attempt {attempt + 1} of {retries + 1}): "
                          f"{failed[shard]}", file=sys.stderr)
    return failed


def _run_on_ray(job, out, pending, workers, address, gpus_per_worker, retries, bar) -> dict:
    import ray

    from harness import host

    repo = str(Path(__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "COMFYUI_PATH": str(host.find_comfyui())}
    ray.init(address=address, runtime_env={"env_vars": env}, ignore_reinit_error=True, log_to_driver=False,
             include_dashboard=False)
    actor_class = ray.remote(num_gpus=gpus_per_worker, num_cpus=0 if gpus_per_worker else job.threads)(ShardWorker)
    idle = [actor_class.remote(job) for _ in range(workers)]
    queue = [(shard, 0) for shard in pending]
    running, failed = {}, {}          # task -> (actor, shard, attempt)
    try:
        while queue or running:
            while queue and idle:
                shard, attempt = queue.pop(0)
                actor = idle.pop()
                running[actor.run.remote(shard)] = (actor, shard, attempt)
            (task,), _ = ray.wait(list(running), num_returns=1)
            actor, shard, attempt = running.pop(task)
            try:
                write_shard(out, shard, ray.get(task))
                bar.update(shard[1] - shard[0])
                failed.pop(shard, None)
                idle.append(actor)
            except Exception as e:        # noqa: BLE001 (retried, on a fresh actor if this one died, then reported)
                failed[shard] = f"{type(e).__name__}: {e}"
                bar.write(f"shard {shard[0]}-{shard[1] - 1} failed (attempt {attempt + 1} of {retries + 1}): "
                          f"{failed[shard]}", file=sys.stderr)
                idle.append(actor_class.remote(job) if isinstance(e, ray.exceptions.RayActorError) else actor)
                if attempt < retries:
                    queue.append((shard, attempt + 1))
    finally:
        ray.shutdown()
    return failed


def read_rows(out: Path, job: Job) -> list:
    """Every written row, in image order."""
    rows = []
    for shard in job.shards():
        path = shard_path(out, shard)
        if path.exists():
            rows += [json.loads(line) for line in path.read_text().splitlines() if line]
    return rows


def summarise(out: Path, job: Job) -> dict:
    """Dataset numbers per task (binary, multiclass) and variant, from the rows."""
    rows = read_rows(out, job)
    scored = [row for row in rows if "skipped" not in row]
    summary = {"images": len({row["index"] for row in rows}), "read": len({row["index"] for row in scored}),
               "skipped": {str(row["index"]): row["skipped"] for row in rows if "skipped" in row},
               "seconds_per_image": _seconds_per_image(scored), "tables": {}}
    for task, summarise_task in (("binary", metrics.binary_summary), ("multiclass", metrics.multiclass_summary)):
        chosen = [row for row in scored if row["task"] == task]
        if chosen:
            summary["tables"][task] = {variant: summarise_task([row for row in chosen if row["variant"] == variant])
                                       for variant in dict.fromkeys(row["variant"] for row in chosen)}
    return summary


def _seconds_per_image(rows: list) -> float:
    seconds = {row["index"]: row["seconds"] for row in rows}
    return sum(seconds.values()) / len(seconds) if seconds else 0.0


def markdown(summary: dict) -> str:
    lines = [f"{summary['read']} of {summary['images']} images read ({len(summary['skipped'])} skipped), "
             f"{summary['seconds_per_image']:.2f} s per image; percentages"]
    for task, table in summary["tables"].items():
        if task == "binary":
            lines += ["", "| method | pixel accuracy | mIoU | mIoU as the reference computes it | mAP |",
                      "|---|---|---|---|---|"]
            lines += [f"| {name} | {100 * s['accuracy']:.2f} | {100 * s['miou']:.2f} | "
                      f"{100 * s['miou_as_reference']:.2f} | {100 * s['map']:.2f} |" for name, s in table.items()]
        else:
            lines += ["", "| method (multi-class) | pixel accuracy | mIoU |", "|---|---|---|"]
            lines += [f"| {name} | {100 * s['accuracy']:.2f} | {100 * s['miou']:.2f} |" for name, s in table.items()]
    if summary.get("failed_shards"):
        lines += ["", "Failed shards (their images are missing from the table):"]
        lines += [f"- images {shard}: {why}" for shard, why in summary["failed_shards"].items()]
    return "\n".join(lines) + "\n"
