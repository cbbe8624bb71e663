"""Device-to-host transfers per model call, with and without the capture.

Every Tensor method that makes the host wait for the device (`.item()`, `.cpu()`,
`.tolist()`, `.numpy()`, `bool()`, `int()`, `float()`, `.nonzero()`) is counted
during a sampling run, here in the benchmark only, for KSampler and for the
ConceptAttention Sampler on the same model. The difference per model call is what
the capture adds; a count that does not grow with the number of blocks means no
transfer inside the block loop. Small models of each family (ComfyUI's classes,
random weights), since the count does not depend on the width.

    ~/comfy/venv/bin/python -m benchmarks.host_syncs [--steps 4] [--cfg 4]
"""
import argparse
import collections

from benchmarks import block_overhead
from harness import host

SYNCING = ("item", "cpu", "tolist", "numpy", "__bool__", "__int__", "__float__", "nonzero")


class SyncCounter:
    """Counts calls of the syncing Tensor methods while active, by name."""

    def __init__(self):
        import torch
        self.torch, self.counts, self.saved = torch, collections.Counter(), {}

    def __enter__(self):
        for name in SYNCING:
            original = getattr(self.torch.Tensor, name)
            self.saved[name] = original

            def counted(tensor, *args, _name=name, _original=original, **kwargs):
                self.counts[_name] += 1
                return _original(tensor, *args, **kwargs)
            setattr(self.torch.Tensor, name, counted)
        return self

    def __exit__(self, *exc):
        for name, original in self.saved.items():
            setattr(self.torch.Tensor, name, original)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="4,8", help="two step counts: what grows between them is per call")
    parser.add_argument("--cfg", type=float, default=4.0)
    parser.add_argument("--families",
                        default="flux1,sd35_large,flux2,qwen_image,chroma,z_image,cogvideox_5b,hunyuan_video,wan_14b")
    opts = parser.parse_args()
    host.prepare()

    import nodes as comfy_nodes
    import torch

    from concept_attention import hooks
    from concept_attention.analysis.data import ConceptSet
    from concept_attention.nodes.sampler import ConceptAttentionSampler

    few, many = (int(n) for n in opts.steps.split(","))
    print(f"ComfyUI {host.comfyui_version(host.find_comfyui())}, {few} and {many} euler steps, cfg {opts.cfg:g}, "
          f"batch 1, 5 concepts, every block captured; small models (ComfyUI's classes, width as "
          f"block_overhead.py --scale 0.05)\n")
    print("| family | blocks | extra transfers per model call | extra transfers per run | by method, per call; per run |")
    print("|---|---|---|---|---|")
    table = block_overhead.families(0.05)
    for name in opts.families.split(","):
        unet_config, blocks, latent_shape, tokens, text_width, pooled_width, _ = table[name]
        family = block_overhead.FAMILY_OF.get(name)
        if family in hooks.UNAVAILABLE:
            print(f"| {name} | {hooks.UNAVAILABLE[family]} | | | |")
            continue
        for kept in (2, 4):
            model = block_overhead.build(block_overhead.with_blocks(unet_config, kept), blocks, kept)
            calls = []
            model.set_model_unet_function_wrapper(lambda apply, args: calls.append(1) or apply(args["input"],
                                                  args["timestep"], **args["c"]))
            positive, negative, latent = block_overhead.sampling_inputs(tokens, text_width, pooled_width, latent_shape)
            concepts = ConceptSet(words=("a", "b", "c", "d", "e"), embeddings=torch.randn(5, text_width))

            def added(steps):
                """(model calls, transfers the capture adds by method) of a run of `steps`."""
                with SyncCounter() as plain:
                    comfy_nodes.common_ksampler(model, 0, steps, opts.cfg, "euler", "simple", positive, negative,
                                                latent)
                plain_calls, calls[:] = len(calls), []
                with SyncCounter() as captured:
                    out = ConceptAttentionSampler.execute(model, 0, steps, opts.cfg, "euler", "simple", positive,
                                                          negative, latent, 1.0, concepts, "all", "all")
                capture = out.args[1]
                if capture.error or not capture.steps:
                    raise SystemExit(f"{name}: the capture recorded nothing ({capture.error or 'no step'})")
                assert len(calls) == plain_calls, (len(calls), plain_calls)
                calls[:] = []
                return plain_calls, {k: captured.counts[k] - plain.counts[k] for k in SYNCING}

            (calls_few, few_added), (calls_many, many_added) = added(few), added(many)
            per_call = {k: (many_added[k] - few_added[k]) / (calls_many - calls_few) for k in SYNCING}
            per_run = {k: few_added[k] - per_call[k] * calls_few for k in SYNCING}

            def listed(counts):
                return ", ".join(f"{k} {v:g}" for k, v in counts.items() if v) or "none"

            print(f"| {name} | {kept} | {sum(per_call.values()):g} | {sum(per_run.values()):g} | "
                  f"{listed(per_call)}; {listed(per_run)} |", flush=True)


if __name__ == "__main__":
    main()
