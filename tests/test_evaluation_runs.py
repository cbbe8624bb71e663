"""The evaluation command's runs across processes: one worker and two Ray actors give
the same rows and summary, and a run killed after some shards, run again, skips the
finished shards and ends with the summary of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evaluation.__main__ import main as evaluate
from harness import host

pytestmark = pytest.mark.server
REPO = Path(__file__).resolve().parents[1]
COMMAND = ["--dataset", "demo-shape", "--demo", "--limit", "12", "--shard-size", "4", "--noise-samples", "1",
           "--no-progress"]


def rows_and_summary(out: Path) -> tuple:
    """The rows and the summary without their timings (which differ between runs)."""
    rows = [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for path in sorted((out / "rows").glob("*.jsonl")) for line in path.read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    summary.pop("seconds_per_image")
    return rows, summary


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_worker")
    assert evaluate([*COMMAND, "--out", str(out)]) == 0
    return rows_and_summary(out)


def test_two_ray_workers_give_what_one_worker_gives(tmp_path, one_worker):
    pytest.importorskip("ray", reason="Ray is not installed (make test's set-up installs it)")
    assert evaluate([*COMMAND, "--workers", "2", "--out", str(tmp_path)]) == 0
    rows, summary = rows_and_summary(tmp_path)
    assert len(rows) > 12 and summary == one_worker[1] and rows == one_worker[0]


def test_a_killed_run_resumes_without_redoing_finished_shards(tmp_path, one_worker):
    command = [sys.executable, "-m", "evaluation", *COMMAND, "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "COMFYUI_PATH": str(host.find_comfyui())}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = tmp_path / "rows" / "shard-0000000.jsonl"
    deadline = time.monotonic() + 300
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = sorted(path.name for path in (tmp_path / "rows").glob("*.jsonl"))
    assert first.exists() and len(done) < 3, (done, process.stderr.read().decode()[-2000:])
    written = {name: (tmp_path / "rows" / name).stat().st_mtime_ns for name in done}

    assert evaluate([*COMMAND, "--out", str(tmp_path)]) == 0
    assert {name: (tmp_path / "rows" / name).stat().st_mtime_ns for name in done} == written     # not redone
    assert rows_and_summary(tmp_path) == one_worker


def test_another_run_into_the_same_folder_is_refused(tmp_path, capsys):
    assert evaluate([*COMMAND, "--out", str(tmp_path)]) == 0
    assert evaluate([*COMMAND, "--noise-level", "0.3", "--out", str(tmp_path)]) == 2
    assert "holds a run with other settings (different protocol); give another --out" in capsys.readouterr().err


def test_model_files_through_comfyuis_loaders(tmp_path):
    """--unet, --clip and --vae: a tiny Flux 1 for CLIP-L text, a CLIP-L and a one-file taef1,
    loaded by ComfyUI's own loaders in the worker (random weights: the rows, not the numbers)."""
    import comfy.utils

    from concept_attention.demo.model import stock_loader_builds
    from harness import tiny_models

    unet = tiny_models.build_flux1_for_clip_l(tmp_path / "tiny_flux.safetensors")
    if not stock_loader_builds(comfy.utils.load_torch_file(str(unet)), tiny_models.FLUX1_CLIP_L_CONFIG):
        pytest.skip("this ComfyUI's UNETLoader builds Flux only at full size (24 heads), not the tiny test model")
    clip = tiny_models.build_clip_l(tmp_path / "clip_l.safetensors")
    vae = tiny_models.build_taesd_file(tmp_path / "taef1.safetensors")
    out = tmp_path / "run"
    assert evaluate(["--dataset", "demo-shape", "--limit", "2", "--noise-samples", "1", "--unet", str(unet), "--clip",
                     str(clip), "--clip-type", "stable_diffusion", "--vae", str(vae), "--out", str(out),
                     "--no-progress"]) == 0
    rows, summary = rows_and_summary(out)
    assert summary["read"] == 2 and summary["failed_shards"] == {}
    assert {row["variant"] for row in rows} == {"concept_attention", "cross_attention"}


def test_a_ray_worker_that_dies_is_replaced_and_its_shard_redone(tmp_path, one_worker):
    """A worker process killed mid-run (a crashed or pre-empted GPU): its shard is retried on
    a fresh actor and the run ends with every image, as one worker gives them."""
    pytest.importorskip("ray", reason="Ray is not installed (make test's set-up installs it)")
    import threading

    import psutil

    result = {}
    run = threading.Thread(target=lambda: result.setdefault(
        "code", evaluate([*COMMAND, "--workers", "2", "--out", str(tmp_path)])))
    run.start()
    deadline = time.monotonic() + 300
    while not list((tmp_path / "rows").glob("*.jsonl")) and run.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [p for p in psutil.process_iter(["cmdline"]) if "ray::ShardWorker" in " ".join(p.info["cmdline"] or [])]
    assert workers, "no Ray worker process found"
    workers[0].kill()
    run.join(timeout=600)
    assert result.get("code") == 0 and rows_and_summary(tmp_path) == one_worker
