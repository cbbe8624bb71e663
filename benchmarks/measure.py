"""Timing and peak memory for the benchmarks: interleaved runs with medians, and the
peak memory of a block of code above what was in use when it began."""
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def synchronize():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleaved(runs: dict, repeats: int) -> dict:
    """{name: median seconds} of each run in `runs` ({name: function}), called in
    rounds (a, b, c, a, b, c, ...) so that drift in the machine's speed hits all alike."""
    seconds = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            synchronize()
            start = time.perf_counter()
            run()
            synchronize()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in seconds.items()}


def extra(seconds: float, base: float) -> str:
    return f"{100 * (seconds / base - 1):+.1f}%"


class PeakMemory:
    """Peak memory of torch's tensors while the `with` block runs, above what was in use
    when it began, in bytes (`.bytes`). On a GPU: the CUDA allocator's peak. On the CPU:
    the running total of tensor allocations that torch's profiler records (the process's
    resident set would also count what the C allocator keeps or reuses, and does not
    show a run's own peak)."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.bytes = None

    def __enter__(self):
        if self.cuda:
            synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True)
            self.profiler.__enter__()
        return self

    def __exit__(self, *exc):
        if self.cuda:
            synchronize()
            self.bytes = torch.cuda.max_memory_allocated() - self.start
            return
        self.profiler.__exit__(*exc)
        with tempfile.TemporaryDirectory() as scratch:
            trace = Path(scratch) / "trace.json"
            self.profiler.export_chrome_trace(str(trace))
            events = json.loads(trace.read_text())["traceEvents"]
        # "[memory]" events carry the running total of bytes allocated since the profile began.
        self.bytes = max([0] + [event["args"]["Total Allocated"] for event in events if event.get("name") == "[memory]"])


def mib(value) -> str:
    return f"{value / 2**20:.1f}"


def ksampler_against_capture(model, steps, cfg, positive, negative, latent, concepts, layers, repeats, device) -> dict:
    """KSampler and the ConceptAttention Sampler with the same inputs, after a warm-up:
    {"seconds": medians of `repeats` interleaved runs, "peak": peak memory in bytes
    (PeakMemory), each {"plain": ..., "captured": ...};
    "capture": a CONCEPT_ATTN of the capture}."""
    import nodes as comfy_nodes

    from concept_attention.nodes.sampler import ConceptAttentionSampler

    def plain():
        comfy_nodes.common_ksampler(model, 0, steps, cfg, "euler", "simple", positive, negative, latent)

    def captured():
        return ConceptAttentionSampler.execute(model, 0, steps, cfg, "euler", "simple", positive, negative, latent,
                                               1.0, concepts, layers, "all")

    comfy_nodes.common_ksampler(model, 0, 1, cfg, "euler", "simple", positive, negative, latent)   # loads the model
    capture = captured().args[1]
    if capture.error or not capture.steps:
        raise SystemExit(f"the capture recorded nothing ({capture.error or 'no step'})")
    seconds = interleaved({"plain": plain, "captured": captured}, repeats)
    peak = {}
    for key, run in (("plain", plain), ("captured", captured)):
        with PeakMemory(device) as memory:
            run()
        peak[key] = memory.bytes
    return {"seconds": seconds, "peak": peak, "capture": capture}


def comparison_cells(result: dict) -> str:
    """Table cells: KSampler s | capture s | extra time | peak MiB both | extra MiB."""
    seconds, peak = result["seconds"], result["peak"]
    extra_peak = peak["captured"] - peak["plain"]
    return (f"{seconds['plain']:.2f} | {seconds['captured']:.2f} | {extra(seconds['captured'], seconds['plain'])} | "
            f"{mib(peak['plain'])} | {mib(peak['captured'])} | {mib(extra_peak)}")
