"""Procedural scenes for the demo model: coloured shapes on sky, grass or a wooden floor.

Every scene is a pure function of its seed (numpy's PCG64), so nothing large is
committed: `make_scene(seed)` gives a 128x128 RGB image (float32, 0..1), a caption
and exact masks for every object and for the background.

Vocabulary (every word is a single T5 token, so a concept encoded alone maps to
one token): 7 colours, 6 shapes, 3 backgrounds.

Caption grammar (objects in random order, colours and shapes distinct in a scene):
    "a red circle on grass"
    "a red circle and a blue square in the sky"
    "a red circle, a blue square and an orange star on a wooden floor"

Colour clashes: no green object on grass and no blue object in the sky (the
object would barely separate from the background). Every other pair is allowed.

Held-out split: training draws seeds from TRAIN_SEEDS, evaluation from EVAL_SEEDS.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

SIZE = 128

COLOURS = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.80, 0.20),
    "blue": (0.15, 0.25, 0.95),
    "yellow": (0.98, 0.90, 0.10),
    "purple": (0.60, 0.20, 0.80),
    "orange": (1.00, 0.55, 0.05),
    "white": (0.97, 0.97, 0.97),
}
SHAPES = ("circle", "square", "triangle", "cross", "star", "heart")
BACKGROUNDS = ("sky", "grass", "floor")
# How each background is named in a caption; the concept word is the key.
BACKGROUND_PHRASES = {"sky": "in the sky", "grass": "on grass", "floor": "on a wooden floor"}
# Colours never drawn on a background (they would not stand out from it).
CLASHES = {"grass": ("green",), "sky": ("blue",), "floor": ()}
CONCEPT_WORDS = tuple(COLOURS) + SHAPES + BACKGROUNDS

# Probability of 1, 2 and 3 objects, and the area of each object as a fraction
# of the image (uniform in the range) for that count.
OBJECT_COUNT_PROBS = (0.4, 0.35, 0.25)
AREA_RANGES = {1: (0.22, 0.30), 2: (0.10, 0.16), 3: (0.07, 0.11)}

# Seed ranges: training never sees an evaluation scene.
TRAIN_SEEDS = range(0, 1_000_000)
EVAL_SEEDS = range(1_000_000, 1_100_000)


@dataclasses.dataclass
class SceneObject:
    colour: str
    shape: str
    mask: np.ndarray          # [H, W] bool


@dataclasses.dataclass
class Background:
    name: str                 # "sky", "grass" or "floor"
    mask: np.ndarray          # [H, W] bool: every pixel no object covers


@dataclasses.dataclass
class Scene:
    seed: int
    image: np.ndarray         # [H, W, 3] float32 in 0..1
    caption: str
    objects: list             # [SceneObject], in caption order
    background: Background
    label_map: np.ndarray     # [H, W] int64: 0 background, i objects[i - 1]
    labels: list              # label_map value -> words, e.g. ["grass", "red circle"]

    def concept_masks(self, words=None) -> dict:
        """Ground-truth mask [H, W] bool per concept word present in the scene
        (a colour or shape word: its object; a background word: the background)."""
        out = {}
        for word in (CONCEPT_WORDS if words is None else words):
            if word == self.background.name:
                out[word] = self.background.mask
            else:
                masks = [o.mask for o in self.objects if word in (o.colour, o.shape)]
                if masks:
                    out[word] = np.logical_or.reduce(masks)
        return out


@dataclasses.dataclass
class Batch:
    images: np.ndarray        # [B, H, W, 3] float32
    captions: list
    label_maps: np.ndarray    # [B, H, W] int64
    scenes: list


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption_for(objects, background: str) -> str:
    parts = [f"{article(c)} {c} {s}" for c, s in objects]
    if len(parts) == 1:
        things = parts[0]
    else:
        things = ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{things} {BACKGROUND_PHRASES[background]}"


def short_captions(objects, background: str) -> list:
    """The shorter captions that also describe a scene: each object's colour word,
    shape word and phrase ("a red circle"), that phrase with the background, and the
    background word alone. ConceptEncode reads each concept word alone; training on
    these puts a word's encoding on its own in the model's distribution."""
    out = [background]
    for c, s in objects:
        phrase = f"{article(c)} {c} {s}"
        out += [c, s, phrase, f"{phrase} {BACKGROUND_PHRASES[background]}"]
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------
# Shapes: a mask from pixel offsets (u, v) in units of the object's scale, v up.

def _polygon(u, v, xs, ys):
    """Even-odd point-in-polygon test, vectorised over pixels."""
    inside = np.zeros(u.shape, dtype=bool)
    n = len(xs)
    for i in range(n):
        x0, y0, x1, y1 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        crosses = (y0 > v) != (y1 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (u < x_at)
    return inside


def _regular(k, radius, start=math.pi / 2, inner=None):
    angles, radii = [], []
    for i in range(k):
        angles.append(start + 2 * math.pi * i / k)
        radii.append(radius)
        if inner is not None:
            angles.append(start + 2 * math.pi * (i + 0.5) / k)
            radii.append(inner)
    return [r * math.cos(a) for a, r in zip(angles, radii)], [r * math.sin(a) for a, r in zip(angles, radii)]


_TRIANGLE = _regular(3, 1.0, start=math.pi / 2)
_STAR = _regular(5, 1.0, start=math.pi / 2, inner=0.45)


def _shape_mask(shape, u, v):
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == "triangle":
        return _polygon(u, v, *_TRIANGLE)
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.34) & (av <= 1.0)) | ((av <= 0.34) & (au <= 1.0))
    if shape == "star":
        return _polygon(u, v, *_STAR)
    if shape == "heart":
        x, y = u * 1.15, v * 1.15 - 0.15
        return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0
    raise ValueError(shape)


def _unit_stats():
    """Area and bounding radius of each shape at scale 1, measured on a fine grid."""
    g = np.linspace(-1.6, 1.6, 801)
    u, v = np.meshgrid(g, g)
    cell = (g[1] - g[0]) ** 2
    stats = {}
    for shape in SHAPES:
        m = _shape_mask(shape, u, v)
        stats[shape] = (m.sum() * cell, float(np.sqrt(u[m] ** 2 + v[m] ** 2).max()))
    return stats


_UNIT = _unit_stats()


# ---------------------------------------------------------------------------
# Backgrounds.

def _smooth_noise(rng, shape, cells):
    """Bilinear upsampling of a coarse random grid: soft low-frequency noise."""
    h, w = shape
    coarse = rng.normal(size=(cells + 1, cells + 1))
    ys = np.linspace(0, cells, h)
    xs = np.linspace(0, cells, w)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy = (ys - y0)[:, None]
    fx = (xs - x0)[None, :]
    c = coarse
    top = c[y0][:, x0] * (1 - fx) + c[y0][:, x0 + 1] * fx
    bottom = c[y0 + 1][:, x0] * (1 - fx) + c[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _sky(rng, h, w):
    top = np.array([0.18, 0.42, 0.88]) + rng.uniform(-0.05, 0.05, 3)
    bottom = np.array([0.62, 0.80, 0.98]) + rng.uniform(-0.05, 0.02, 3)
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    img = top * (1 - t) + bottom * t + np.zeros((1, w, 1))
    img += 0.03 * _smooth_noise(rng, (h, w), 3)[..., None]
    return img


def _grass(rng, h, w):
    base = np.array([0.24, 0.50, 0.14]) * rng.uniform(0.9, 1.1)
    # Vertical blades: noise stretched along y, shifted per column.
    blades = rng.normal(size=(h // 6 + 2, w))
    rows = (np.arange(h)[:, None] + rng.integers(0, 6, size=(1, w))) // 6
    streak = blades[rows, np.arange(w)[None, :]]
    fine = rng.normal(size=(h, w))
    light = 1.0 + 0.18 * streak + 0.08 * fine + 0.12 * _smooth_noise(rng, (h, w), 4)
    return base * light[..., None]


def _floor(rng, h, w):
    img = np.zeros((h, w, 3))
    y = 0
    offset = rng.uniform(0, 1)
    while y < h:
        height = int(rng.integers(20, 29))
        y1 = min(h, y + height)
        base = np.array([0.58, 0.36, 0.19]) * rng.uniform(0.8, 1.1)
        xs = np.arange(w)[None, :]
        ys = np.arange(y, y1)[:, None]
        grain = np.sin(2 * math.pi * (ys / rng.uniform(5, 9) + 0.15 * np.sin(xs / rng.uniform(12, 30) + offset)))
        plank = base * (1.0 + 0.08 * grain + 0.04 * rng.normal(size=(y1 - y, w)))[..., None]
        joint = int(rng.integers(0, w))
        plank[:, max(0, joint - 1):joint + 1] = base * 0.45
        img[y:y1] = plank
        img[y:min(h, y + 2)] = base * 0.4      # gap between planks
        y = y1
    return img


_BACKGROUND_FNS = {"sky": _sky, "grass": _grass, "floor": _floor}


# ---------------------------------------------------------------------------

def make_scene(seed: int, size: int = SIZE) -> Scene:
    """The scene of `seed`: image, caption and exact masks (deterministic)."""
    rng = np.random.default_rng(seed)
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    count = int(rng.choice(3, p=OBJECT_COUNT_PROBS)) + 1
    allowed = [c for c in COLOURS if c not in CLASHES[background]]
    colours = [allowed[i] for i in rng.choice(len(allowed), count, replace=False)]
    shapes = [SHAPES[i] for i in rng.choice(len(SHAPES), count, replace=False)]

    lo, hi = AREA_RANGES[count]
    scales = [math.sqrt(rng.uniform(lo, hi) * size * size / _UNIT[s][0]) for s in shapes]
    centres = None
    for _ in range(50):
        centres = _place(rng, shapes, scales, size)
        if centres is not None:
            break
        scales = [s * 0.95 for s in scales]
    assert centres is not None, seed

    img = _BACKGROUND_FNS[background](rng, size, size)
    label_map = np.zeros((size, size), dtype=np.int64)
    grid = np.arange(size) + 0.5
    objects = []
    for index, (colour, shape, scale, (cx, cy)) in enumerate(zip(colours, shapes, scales, centres), start=1):
        u = (grid[None, :] - cx) / scale
        v = (cy - grid[:, None]) / scale
        u, v = np.broadcast_arrays(u, v)
        mask = _shape_mask(shape, u, v)
        rgb = np.clip(np.array(COLOURS[colour]) + rng.uniform(-0.04, 0.04, 3), 0.0, 1.0)
        img[mask] = rgb
        label_map[mask] = index
        objects.append(SceneObject(colour, shape, mask))

    image = np.clip(img, 0.0, 1.0).astype(np.float32)
    caption = caption_for([(o.colour, o.shape) for o in objects], background)
    labels = [background] + [f"{o.colour} {o.shape}" for o in objects]
    return Scene(seed, image, caption, objects, Background(background, label_map == 0), label_map, labels)


def _place(rng, shapes, scales, size, margin=2.0, gap=4.0, tries=200):
    """Centres for non-overlapping objects inside the image, or None."""
    radii = [scale * _UNIT[s][1] for s, scale in zip(shapes, scales)]
    centres = []
    for r in radii:
        lo, hi = r + margin, size - r - margin
        if lo > hi:
            return None
        for _ in range(tries):
            c = rng.uniform(lo, hi, 2)
            if all(math.dist(c, c2) >= r + r2 + gap for c2, r2 in zip(centres, radii)):
                centres.append(c)
                break
        else:
            return None
    return centres


def make_batch(seeds, size: int = SIZE) -> Batch:
    scenes = [make_scene(int(s), size) for s in seeds]
    return Batch(
        images=np.stack([s.image for s in scenes]),
        captions=[s.caption for s in scenes],
        label_maps=np.stack([s.label_map for s in scenes]),
        scenes=scenes,
    )


def contact_sheet(seeds, columns=8, size: int = SIZE) -> np.ndarray:
    """Scenes side by side, [rows*H, columns*W, 3] uint8 (for looking at the data)."""
    images = make_batch(seeds, size).images
    rows = math.ceil(len(images) / columns)
    sheet = np.ones((rows * size, columns * size, 3), dtype=np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = im
    return (sheet * 255).round().astype(np.uint8)
