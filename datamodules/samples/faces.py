"""Synthetic "faces" whose CelebA attributes can be read off their pixels (tests and demos).

Real CelebA cannot be downloaded here, so the AD-VAE tests (docs/advae.md) train on drawings of
faces that carry the attributes they are labelled with, in places a test can measure:

- hair colour (Black/Blond/Brown/Gray_Hair, exactly one per face) is the colour of a hair cap
  above the face; its top band (``HAIR_PROBE``) is hair on every face, whatever the jitter;
- Pale_Skin sets a light face-ellipse tone, Rosy_Cheeks two red cheek discs, Male a darker jaw
  (a beard) and Young larger eyes;
- the background colour and a light gradient (illumination) are the "style", the face position,
  size and features the "content", so style transfer has something to transfer.

``random_attributes(..., correlated=True)`` draws the attributes together as real CelebA does
(``CORRELATED_RULES``): Gray_Hair only on old men, Rosy_Cheeks mostly on women, Pale_Skin mostly
with blond hair. A face such as a young woman with gray hair is then never seen in training, which
is where a latent that still carries the attributes shows (docs/advae.md, disentanglement).

``write_celeba`` writes such faces in CelebA's exact layout, ``write_line_drawings`` a folder of
face photos for ``LineDrawings`` (turned into drawings at predict time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from affectlab.datamodules.celeba import ATTR_FILE, IMAGES, PARTITION_FILE
from affectlab.datamodules.face_attributes import CELEBA_ATTRIBUTES, DEFAULT_ATTRIBUTES

#: RGB of each hair attribute (0–255).
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "Black_Hair": (25, 22, 20),
    "Blond_Hair": (235, 200, 80),
    "Brown_Hair": (125, 70, 30),
    "Gray_Hair": (165, 165, 170),
}
SKIN_TONES = {"pale": (250, 226, 214), "default": (196, 140, 100)}
#: The box (top, left, bottom, right as fractions of the square crop) that is hair on every face.
HAIR_PROBE = (0.14, 0.40, 0.20, 0.60)


def face_image(attributes: dict[str, bool], rng: np.random.Generator, height: int = 78,
               width: int = 64) -> Image.Image:
    """Draw one face with ``attributes`` on a ``height×width`` canvas (CelebA's 218:178 aspect).

    The face sits in the centre square (what the CelebA DataModule's center crop keeps).
    """
    scale = 4  # draw large, then downsample: anti-aliased edges for the XDoG drawings
    h, w = height * scale, width * scale
    top = (h - w) // 2  # the centre square
    side = w
    background = tuple(int(v) for v in rng.integers(30, 226, 3))
    image = Image.new("RGB", (w, h), background)
    # Illumination: a light horizontal gradient over the background (part of the style).
    light = rng.uniform(-60, 60)
    grad = np.linspace(-1, 1, w)[None, :, None] * light
    base = np.asarray(image, dtype=np.float32) + grad
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)

    hair_name = next((k for k in HAIR_COLOURS if attributes.get(k)), "Brown_Hair")
    hair = HAIR_COLOURS[hair_name]
    cx = side * (0.5 + rng.uniform(-0.03, 0.03))
    cy = top + side * (0.55 + rng.uniform(-0.03, 0.03))
    rx, ry = side * rng.uniform(0.22, 0.26), side * rng.uniform(0.28, 0.32)
    # Hair: a cap from above the probe band down to the ears, then the face ellipse over it.
    draw.ellipse([cx - rx * 1.35, top + side * 0.08, cx + rx * 1.35, cy + ry * 0.55], fill=hair)
    tone = SKIN_TONES["pale" if attributes.get("Pale_Skin") else "default"]
    tone = tuple(int(np.clip(t + rng.normal(0, 6), 0, 255)) for t in tone)
    draw.ellipse([cx - rx, cy - ry * 0.85, cx + rx, cy + ry], fill=tone)
    if attributes.get("Male"):  # a beard on the jaw
        draw.chord([cx - rx, cy - ry * 0.2, cx + rx, cy + ry], 20, 160, fill=tuple(int(c * 0.55) for c in hair))
    if attributes.get("Rosy_Cheeks"):
        for sx in (-1, 1):
            x = cx + sx * rx * 0.55
            draw.ellipse([x - rx * 0.18, cy + ry * 0.05, x + rx * 0.18, cy + ry * 0.3], fill=(225, 80, 90))
    eye = rx * (0.16 if attributes.get("Young") else 0.1)
    for sx in (-1, 1):
        x = cx + sx * rx * 0.4
        draw.ellipse([x - eye, cy - ry * 0.25 - eye, x + eye, cy - ry * 0.25 + eye], fill=(20, 20, 30))
    draw.line([cx - rx * 0.35, cy + ry * 0.5, cx + rx * 0.35, cy + ry * 0.5], fill=(120, 30, 40),
              width=max(1, int(scale * 1.5)))
    image = image.filter(ImageFilter.GaussianBlur(scale * 0.4)).resize((width, height), Image.BILINEAR)
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 3, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


#: How ``random_attributes(correlated=True)`` ties the attributes together (probabilities).
CORRELATED_RULES = {
    "Male": 0.5,
    "Gray_Hair | Male": 0.5,  # the rest of the men and every woman: black, blond or brown at random
    "Gray_Hair | not Male": 0.0,  # never seen in training
    "Young | Gray_Hair": 0.0,  # never seen in training
    "Young | not Gray_Hair": 0.7,
    "Rosy_Cheeks | Male": 0.05,  # rare
    "Rosy_Cheeks | not Male": 0.6,
    "Pale_Skin | Blond_Hair": 0.8,
    "Pale_Skin | not Blond_Hair": 0.2,
}


def random_attributes(names: list[str], rng: np.random.Generator, correlated: bool = False) -> dict[str, bool]:
    """Attributes of one face: exactly one hair colour is on (as drawn).

    ``correlated=False``: the others are independent fair coins. ``correlated=True``: Male, the
    hair colour, Young, Rosy_Cheeks and Pale_Skin follow ``CORRELATED_RULES``; the rest stay fair coins.
    """
    values = {name: bool(rng.random() < 0.5) for name in names}
    hair = [k for k in HAIR_COLOURS if k in names]
    if correlated:
        rule = CORRELATED_RULES
        male = bool(rng.random() < rule["Male"])
        gray = "Gray_Hair" in hair and rng.random() < rule["Gray_Hair | Male" if male else "Gray_Hair | not Male"]
        others = [k for k in hair if k != "Gray_Hair"]
        chosen = "Gray_Hair" if gray or not others else others[int(rng.integers(len(others)))]
        drawn = {"Male": male,
                 "Young": bool(rng.random() < rule["Young | Gray_Hair" if gray else "Young | not Gray_Hair"]),
                 "Rosy_Cheeks": bool(rng.random() < rule["Rosy_Cheeks | Male" if male else "Rosy_Cheeks | not Male"]),
                 "Pale_Skin": bool(rng.random() < rule["Pale_Skin | Blond_Hair" if chosen == "Blond_Hair"
                                                       else "Pale_Skin | not Blond_Hair"])}
        values.update({k: v for k, v in drawn.items() if k in names})
    elif hair:
        chosen = hair[int(rng.integers(len(hair)))]
    if hair:
        for k in hair:
            values[k] = k == chosen
    return values


def hair_probe_colour(images: torch.Tensor) -> torch.Tensor:
    """Mean colour of the hair probe box: ``B×3×S×S`` tensor in [0, 1] → ``B×3``."""
    size = images.shape[-1]
    top, left, bottom, right = (int(round(f * size)) for f in HAIR_PROBE)
    return images[..., top:bottom, left:right].mean(dim=(-1, -2))


def write_celeba(reader: type, root: Path, counts: tuple[int, int, int] = (96, 32, 16), height: int = 78,
                 width: int = 64, seed: int = 0, bad_files: bool = False, correlated: bool = False,
                 label_noise: float = 0.0) -> dict[str, Any]:
    """Write ``sum(counts)`` faces (train, val, test) in CelebA's exact layout under ``root``.

    The faces carry their labels visibly (``face_image``). ``bad_files`` lists a zero-byte and a
    truncated file in the training split. ``correlated`` draws the training split's attributes
    together as in real CelebA (``CORRELATED_RULES``: no young or female face with gray hair, few
    men with rosy cheeks) and keeps validation and test independent, so that control can be scored
    on combinations that training rarely or never shows. ``label_noise`` flips each training label
    with that probability after the face is drawn, as annotators err on real CelebA; the face keeps
    its true attributes, and validation and test keep true labels, so scores measure the truth.
    """
    if not 0.0 <= label_noise < 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5), got {label_noise}")
    (root / IMAGES).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    noise = np.random.default_rng([seed, 1])  # its own stream: the faces are those of the noise-free release
    total = sum(counts)
    attr_lines = [str(total), " ".join(CELEBA_ATTRIBUTES) + " "]
    part_lines = []
    for i in range(total):
        name = f"{i + 1:06d}.jpg"
        values = random_attributes(list(CELEBA_ATTRIBUTES), rng, correlated=correlated and i < counts[0])
        face_image(values, rng, height, width).save(root / IMAGES / name, quality=95)
        if label_noise and i < counts[0]:
            flips = noise.random(len(CELEBA_ATTRIBUTES)) < label_noise
            values = {a: values[a] != bool(flip) for a, flip in zip(CELEBA_ATTRIBUTES, flips, strict=True)}
        attr_lines.append(name + " " + " ".join(" 1" if values[a] else "-1" for a in CELEBA_ATTRIBUTES))
        part_lines.append(f"{name} {0 if i < counts[0] else 1 if i < counts[0] + counts[1] else 2}")
    if bad_files:
        (root / IMAGES / "000001.jpg").write_bytes(b"")
        data = (root / IMAGES / "000002.jpg").read_bytes()
        (root / IMAGES / "000002.jpg").write_bytes(data[:20])
    (root / ATTR_FILE).write_text("\n".join(attr_lines) + "\n")
    (root / PARTITION_FILE).write_text("\n".join(part_lines) + "\n")
    return {"root": str(root), "image_size": 32, "batch_size": 16, "num_workers": 0}


def write_line_drawings(reader: type, root: Path, count: int = 4, seed: int = 0) -> dict[str, Any]:
    """Write ``count`` face photos under ``root`` (``LineDrawings`` turns them into drawings)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        face_image(random_attributes(DEFAULT_ATTRIBUTES, rng), rng).save(root / f"face_{i}.png")
    return {"root": str(root), "kind": "photos"}
