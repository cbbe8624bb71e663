"""The paper's segmentation tables with this extension's capture: ImageNet-Segmentation,
PASCAL VOC 2012 (single- and multi-class) or the demo model's scenes, on any supported
model, both methods, in shards on one process or on Ray actors, resumable.

    python -m evaluation --dataset imagenet-seg --data gtsegs_ijcv.mat --class-names imagenet_class_map.json \\
        --unet flux1-schnell.safetensors --clip clip_l.safetensors --clip t5xxl_fp16.safetensors --clip-type flux \\
        --vae ae.safetensors --out runs/schnell-imagenet [--workers 8 --gpus-per-worker 1] [--address ray://...]
    python -m evaluation --dataset demo-shape --demo --limit 40 --out runs/demo

Every protocol choice is a flag whose default is the paper's value for the dataset
(docs/evaluation.md). Exit status: 0, or 1 when a shard failed after its retries (the
summary says which images are missing), 2 for bad input.
"""
import argparse
import sys
from dataclasses import replace

from harness import host

from .datasets import DATASETS, DatasetError
from .models import ModelError, check_files
from .protocol import PROTOCOLS, Protocol, Variant
from .runner import Job, RunError, markdown, run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.split("\n\n")[0])
    data = p.add_argument_group("dataset")
    data.add_argument("--dataset", choices=DATASETS, required=True)
    data.add_argument("--data", help="gtsegs_ijcv.mat, or the VOCdevkit folder (not for the demo scenes)")
    data.add_argument("--class-names", help="JSON of class id -> word (ImageNet-Segmentation: WordNet ids; VOC: "
                                            "label indices, default the 20 VOC classes)")
    data.add_argument("--limit", type=int, help="read only the first N images")
    models = p.add_argument_group("model (ComfyUI's loaders)")
    models.add_argument("--demo", action="store_true", help="the bundled demo model")
    models.add_argument("--checkpoint", help="one checkpoint holding model, text encoder and VAE")
    models.add_argument("--unet", help="a diffusion model file (as UNETLoader)")
    models.add_argument("--clip", action="append", default=[], help="a text encoder file (repeat for two)")
    models.add_argument("--clip-type", help="ComfyUI's CLIP type for the text encoders: flux, sd3, wan, ...")
    models.add_argument("--vae", help="a VAE file")
    models.add_argument("--weight-dtype", choices=("default", "fp8_e4m3fn", "fp8_e5m2"), default="default")
    protocol = p.add_argument_group("protocol (defaults: the paper's, per dataset)")
    protocol.add_argument("--task", choices=("binary", "multiclass"))
    protocol.add_argument("--background-concepts", help="comma-separated concepts read beside the classes")
    protocol.add_argument("--image-size", type=int, help="the model reads the image at this square size")
    protocol.add_argument("--label-size", type=int, help="score at this square size (0: the map's grid)")
    protocol.add_argument("--noise-level", type=float)
    protocol.add_argument("--noise-samples", type=int)
    protocol.add_argument("--layers", help='the layers to capture: "default", "all", "14-17", ...')
    protocol.add_argument("--blur", type=float, help="Gaussian sigma at the map's grid before the mask (0: none)")
    protocol.add_argument("--mask", choices=("mean", "argmax"), help="binary mask: above its mean, or the argmax")
    protocol.add_argument("--methods", default="concept_attention,cross_attention")
    protocol.add_argument("--no-softmax", action="store_true", help="maps without the softmax over concepts")
    protocol.add_argument("--seed", type=int)
    running = p.add_argument_group("running")
    running.add_argument("--out", required=True, help="output folder; rerunning into it skips finished shards")
    running.add_argument("--workers", type=int, default=1, help="Ray actors (1: this process, no Ray)")
    running.add_argument("--address", help="a Ray cluster to join (default: a local one when --workers > 1)")
    running.add_argument("--gpus-per-worker", type=float, help="default: 1 where CUDA is available, else 0")
    running.add_argument("--threads", type=int, default=1,
                         help="torch threads per worker (results are identical across runs with the same value)")
    running.add_argument("--shard-size", type=int, default=16)
    running.add_argument("--retries", type=int, default=2)
    running.add_argument("--save-maps", action="store_true",
                         help="also keep each image's maps at the model's grid (maps/shard-NNNNNNN.npz)")
    running.add_argument("--no-progress", action="store_true")
    return p


def protocol_of(opts) -> Protocol:
    chosen = PROTOCOLS[opts.dataset]
    given = {"task": opts.task, "image_size": opts.image_size, "noise_level": opts.noise_level,
             "noise_samples": opts.noise_samples, "layers": opts.layers, "blur": opts.blur, "mask": opts.mask,
             "seed": opts.seed}
    if opts.label_size is not None:
        given["label_size"] = opts.label_size or None
    if opts.background_concepts is not None:
        given["background_concepts"] = tuple(w.strip() for w in opts.background_concepts.split(",") if w.strip())
    variants = tuple(Variant(method.strip(), softmax=not opts.no_softmax) for method in opts.methods.split(","))
    return replace(chosen, variants=variants, **{k: v for k, v in given.items() if v is not None})


def main(argv=None) -> int:
    opts = parser().parse_args(argv)
    import torch

    gpus = opts.gpus_per_worker if opts.gpus_per_worker is not None else float(torch.cuda.is_available())
    host.prepare(cpu=gpus == 0)      # before ComfyUI's model management is imported, which reads it once

    if opts.data is None and not opts.dataset.startswith("demo-"):
        print(f"evaluation: --dataset {opts.dataset} needs --data", file=sys.stderr)
        return 2
    if opts.dataset == "imagenet-seg" and opts.task not in (None, "binary"):
        print("evaluation: ImageNet-Segmentation labels one class per image (foreground and background): --task "
              "binary only", file=sys.stderr)
        return 2
    dataset = {"name": opts.dataset, "path": opts.data, "class_names": opts.class_names}
    models = {"demo": opts.demo, "checkpoint": opts.checkpoint, "unet": opts.unet, "clip": tuple(opts.clip),
              "clip_type": opts.clip_type, "vae": opts.vae, "weight_dtype": opts.weight_dtype}
    try:
        from .datasets import open_dataset
        check_files(**models)
        count = len(open_dataset(**dataset))
        job = Job(dataset, models, protocol_of(opts), min(count, opts.limit or count), opts.shard_size, opts.threads,
                  cpu=gpus == 0, save_maps=opts.save_maps)
        summary = run(job, opts.out, opts.workers, opts.address, gpus, opts.retries, not opts.no_progress)
    except (DatasetError, ModelError, RunError) as e:
        print(f"evaluation: {e}", file=sys.stderr)
        return 2
    print(markdown(summary))
    return 1 if summary["failed_shards"] else 0


if __name__ == "__main__":
    sys.exit(main())
