"""Localization benchmark on the demo model: the paper's Tables 1-3 on our scenes.

Held-out procedural scenes (demo/scenes.py EVAL_SEEDS) are read through
ConceptAttentionEncodeImage (noised to a level, one forward pass with the concepts)
and the maps are scored against the exact masks:
- binary segmentation per object (as ImageNet-Seg): the map of the object's word,
  cut at its mean, against the object's mask: pixel accuracy, mIoU (object and
  rest), mAP (average precision of the soft map); the same for the background word
  against the background;
- multi-class segmentation (as PascalVOC multi-class): argmax over all concept
  words against the scene's label map: pixel accuracy and mIoU.
Each scene is read once with every colour word plus the three background words,
and once with every shape word plus the background words, so distractors are
always present. The main table uses the nodes' defaults (noise 0.5, the family's
default layers); the others vary one of them.

    ~/comfy/venv/bin/python -m benchmarks.localization [--scenes 200] [--noise 0.5] [--model DIR]
"""
import argparse
import time

import torch

from harness import host

NOISE_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)
BATCH = 25


def binary_metrics(soft: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[pixel accuracy, mIoU, mAP] per map: soft [N, H, W], target bool [N, H, W] -> [N, 3].
    The prediction is the map above its own mean (the paper's protocol)."""
    predicted = soft > soft.mean(dim=(1, 2), keepdim=True)
    accuracy = (predicted == target).float().mean(dim=(1, 2))

    def iou(a, b):
        return (a & b).sum(dim=(1, 2)) / (a | b).sum(dim=(1, 2)).clamp_min(1)

    miou = (iou(predicted, target) + iou(~predicted, ~target)) / 2
    order = soft.flatten(1).argsort(dim=1, descending=True)
    hits = target.flatten(1).gather(1, order).float()
    precision = hits.cumsum(dim=1) / torch.arange(1, hits.shape[1] + 1)
    average_precision = (precision * hits).sum(dim=1) / hits.sum(dim=1).clamp_min(1)
    return torch.stack([accuracy, miou, average_precision], dim=1)


def multiclass_metrics(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[pixel accuracy, mIoU over the classes present] per image: label maps [N, H, W] -> [N, 2]."""
    rows = []
    for p, t in zip(predicted, target):
        classes = t.unique()
        ious = [((p == c) & (t == c)).sum() / ((p == c) | (t == c)).sum() for c in classes]
        rows.append(torch.stack([(p == t).float().mean(), torch.stack(ious).float().mean()]))
    return torch.stack(rows)


def load_demo_model(directory=None):
    """(model, clip, vae) of a demo model as its node gives them: layers "default" are
    those its config states."""
    from concept_attention import hooks
    from concept_attention.demo.model import load_config, load_demo

    model, clip, vae = load_demo(directory)
    return hooks.state_default_layers(model, load_config(directory).get("default_layers")), clip, vae


class Benchmark:
    """Reads scenes with the demo model and scores maps; every method and ablation
    comes from the same captures (all layers are captured once per reading)."""

    def __init__(self, scene_count: int, model_directory=None):
        from concept_attention import hooks
        from concept_attention.analysis.data import ConceptSet
        from concept_attention.demo import scenes
        from concept_attention.nodes.encode import ConceptEncode

        self.model, clip, self.vae = load_demo_model(model_directory)
        self.scenes = [scenes.make_scene(seed) for seed in scenes.EVAL_SEEDS[:scene_count]]
        self.tasks = {}
        for task, words in (("colour", tuple(scenes.COLOURS)), ("shape", scenes.SHAPES)):
            words = tuple(words) + scenes.BACKGROUNDS
            encoded = ConceptEncode.execute(clip, ", ".join(words)).args[0]
            self.tasks[task] = ConceptSet(words=words, embeddings=encoded.embeddings, empty_prompt=encoded.empty_prompt)
        self.layer_count = len(self.model.model.diffusion_model.double_blocks)
        self.default_layers = list(hooks.default_layers(self.model))
        self._captures = {}

    def captures(self, task: str, noise: float) -> list:
        """One CONCEPT_ATTN per batch of scenes, with every layer and the raw scores
        (the no-softmax ablation needs them)."""
        from concept_attention.analysis.data import KEEP_ALL
        from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage

        key = (task, noise)
        if key not in self._captures:
            out = []
            for start in range(0, len(self.scenes), BATCH):
                images = torch.stack([torch.from_numpy(s.image) for s in self.scenes[start:start + BATCH]])
                out.append(ConceptAttentionEncodeImage.execute(self.model, self.vae, images, self.tasks[task], noise, 1,
                                                               start, "all", KEEP_ALL,
                                                               cross_attention_baseline=True).args[0])
            self._captures[key] = out
        return self._captures[key]

    def maps(self, task, noise, method="concept_attention", layers=None, softmax=True, random=False) -> torch.Tensor:
        """[scenes, concepts, H, W] maps at image size."""
        from concept_attention.analysis import maths

        out = []
        for capture in self.captures(task, noise):
            maps = capture.maps(method, layers=self.default_layers if layers is None else layers, softmax=softmax)
            if random:
                maps = torch.rand(maps.shape, generator=torch.Generator().manual_seed(len(out)))
            out.append(maths.resize(maps, capture.image_size))
        return torch.cat(out)

    def targets(self, task):
        """(scene index, concept index, mask) per object and per background, and label
        maps in concept indices."""
        words = self.tasks[task].words
        objects, backgrounds, label_maps = [], [], []
        for i, scene in enumerate(self.scenes):
            label = torch.full(scene.label_map.shape, words.index(scene.background.name))
            backgrounds.append((i, words.index(scene.background.name), torch.from_numpy(scene.background.mask)))
            for obj in scene.objects:
                index = words.index(obj.colour if task == "colour" else obj.shape)
                mask = torch.from_numpy(obj.mask)
                objects.append((i, index, mask))
                label[mask] = index
            label_maps.append(label)
        return objects, backgrounds, torch.stack(label_maps)

    def score(self, task, maps) -> dict:
        objects, backgrounds, label_maps = self.targets(task)

        def binary(items):
            soft = torch.stack([maps[i, c] for i, c, _ in items])
            return binary_metrics(soft, torch.stack([m for _, _, m in items])).mean(dim=0).tolist()

        multi = multiclass_metrics(maps.argmax(dim=1), label_maps).mean(dim=0)
        return {"object": binary(objects), "background": binary(backgrounds),
                "multi_acc": multi[0].item(), "multi_miou": multi[1].item()}


def row(name, colour, shape):
    def triple(values):
        return " / ".join(f"{100 * v:.1f}" for v in values)

    return (f"| {name} | {triple(colour['object'])} | {triple(shape['object'])} | {triple(colour['background'])} "
            f"| {100 * colour['multi_acc']:.1f} / {100 * colour['multi_miou']:.1f} "
            f"| {100 * shape['multi_acc']:.1f} / {100 * shape['multi_miou']:.1f} |")


HEADER = ("| {} | colour words: acc / mIoU / mAP | shape words: acc / mIoU / mAP "
          "| background words: acc / mIoU / mAP "
          "| colour multi-class: acc / mIoU | shape multi-class: acc / mIoU |\n|---|---|---|---|---|---|")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200, help="held-out scenes to read")
    parser.add_argument("--noise", type=float, default=0.5, help="noise level of the main table")
    parser.add_argument("--model", help="a demo model's folder (default: the shipped one, demo/weights)")
    opts = parser.parse_args()
    host.prepare()
    started = time.monotonic()
    bench = Benchmark(opts.scenes, opts.model)
    objects = sum(len(s.objects) for s in bench.scenes)
    print(f"{opts.scenes} held-out scenes ({objects} objects), demo model with {bench.layer_count} double blocks, "
          f"default layers {bench.default_layers} averaged unless stated; percentages\n")

    def both(noise=opts.noise, **kwargs):
        return [bench.score(task, bench.maps(task, noise, **kwargs)) for task in ("colour", "shape")]

    print(f"Methods (noise level t = {opts.noise}):\n")
    print(HEADER.format("method"))
    all_layers = list(range(bench.layer_count))
    for name, kwargs in (("ConceptAttention (output space, softmax)", {}),
                         ("ConceptAttention, all layers", {"layers": all_layers}),
                         ("Cross-attention baseline (softmax)", {"method": "cross_attention"}),
                         ("Output space, no softmax", {"softmax": False}),
                         ("Cross-attention, no softmax", {"method": "cross_attention", "softmax": False}),
                         ("Random maps", {"random": True})):
        print(row(name, *both(**kwargs)), flush=True)

    for name, method in (("ConceptAttention", "concept_attention"), ("Cross-attention baseline", "cross_attention")):
        print(f"\n{name} by layer (t = {opts.noise}):\n")
        print(HEADER.format("double blocks"))
        for layers in [[layer] for layer in range(bench.layer_count)] + [all_layers[-2:]]:
            print(row(",".join(map(str, layers)), *both(layers=layers, method=method)), flush=True)

    print("\nConceptAttention by noise level (default layers):\n")
    print(HEADER.format("t"))
    for noise in NOISE_LEVELS:
        print(row(f"{noise:.1f}", *both(noise=noise)), flush=True)
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
