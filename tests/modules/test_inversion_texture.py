"""The texture measures of modules/inversion/texture.py and the original's sort-and-shift code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectlab.modules.inversion import codes, texture
from affectlab.modules.inversion.module import FeatureMapInversion

PHOTOS = ("astronaut", "coffee", "chelsea")


def stripes(angle: float, size: int = 32, period: float = 4.0, colour=(1.0, 1.0, 1.0)) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    wave = 0.5 + 0.5 * torch.sin(2 * torch.pi * (x * np.cos(angle) + y * np.sin(angle)) / period)
    return torch.stack([wave * c for c in colour])


def test_sort_and_shift_gives_the_style_energies_and_keeps_the_content_patterns():
    g = torch.Generator().manual_seed(0)
    content, style = torch.rand(6, 5, 7, generator=g), torch.rand(6, 9, 4, generator=g) * 3
    content[2] = 0.0                                                      # a dead channel
    target = codes.sort_and_shift(content, style)
    assert target.shape == content.shape
    assert torch.allclose(target.mean((1, 2)), style.mean((1, 2)), atol=1e-6)      # each channel: the style's energy
    assert torch.allclose(target.sum(), style.mean((1, 2)).sum() * 35, rtol=1e-5)    # so the total: the style's, per position
    centred = content - content.mean((1, 2), keepdim=True)
    moved = target - target.mean((1, 2), keepdim=True)
    by_energy = content.mean((1, 2)).argsort()
    by_style = style.mean((1, 2)).argsort()
    for rank in range(6):                                                 # rank r of the content → rank r of the style
        assert torch.allclose(moved[by_style[rank]], centred[by_energy[rank]], atol=1e-5)
    assert torch.allclose(codes.sort_and_shift(content + 1.0, content + 1.0), content + 1.0, atol=1e-6)   # its own style: unchanged
    with pytest.raises(ValueError, match="same C"):
        codes.sort_and_shift(content, style[:4])


def test_descriptor_blocks_see_orientation_colour_and_frequency():
    images = torch.stack([stripes(0.0), stripes(np.pi / 2), stripes(0.0, colour=(1.0, 0.2, 0.2)),
                          stripes(0.0, period=16.0)])
    orientation = texture.orientation_histogram(images)
    assert orientation[0].argmax() != orientation[1].argmax()
    assert np.allclose(orientation[0], orientation[2], atol=0.05)         # colour does not change orientation
    assert texture.hue_entropy(images[:1])[0] == 0.0 and texture.saturation(images[2:3])[0] > 0.5
    assert texture.high_frequency_share(images[:1])[0] < 0.5 < 1.0       # period 4: a quarter cycle per pixel
    assert texture.high_frequency_share(images[3:4])[0] < texture.high_frequency_share(images[:1])[0]
    thirds = torch.zeros(1, 3, 30, 30)                                    # red, green and blue thirds
    for c in range(3):
        thirds[0, c, :, 10 * c:10 * (c + 1)] = 1.0
    assert texture.hue_entropy(thirds)[0] == pytest.approx(np.log2(3))
    assert texture.descriptor(images).shape == (4, 20)


def test_specificity_scores_a_filter_decided_set_high_and_a_photo_decided_set_low():
    filters, photos = [k for k in range(4) for _ in range(3)], [p for _ in range(4) for p in range(3)]
    by_filter = np.array([[k, 0.0] for k in filters]) + np.random.default_rng(0).normal(0, 0.01, (12, 2))
    by_photo = np.array([[0.0, p] for p in photos]) + np.random.default_rng(1).normal(0, 0.01, (12, 2))
    high, low = texture.specificity(by_filter, filters, photos), texture.specificity(by_photo, filters, photos)
    assert high["chance"] == pytest.approx(2 / 11)
    assert high["agreement"] == 1.0 and high["ratio"] < 0.1
    assert low["agreement"] == 0.0 and low["ratio"] > 10
    with pytest.raises(ValueError, match="once"):
        texture.specificity(by_filter, [0] * 12, photos)


def _oriented_kernels(copies: bool) -> torch.Tensor:
    """conv1_1 weights of tiny_vgg (8×3×3×3): edge detectors at 0°, 45°, 90°, 135° (twice), or 8 copies of one."""
    edge = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    diagonal = torch.tensor([[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]])
    kernels = [edge, diagonal, edge.T, diagonal.flip(1)] * 2
    if copies:
        kernels = [edge] * 8
    return torch.stack([k.expand(3, 3, 3) / 3 for k in kernels])


@pytest.mark.parametrize("copies", [False, True])
def test_specificity_of_inversions_is_high_for_oriented_filters_and_not_above_chance_for_copies(copies, tmp_path):
    """The metric on real inversions: a trunk of oriented filters has filter-specific textures, identical copies none."""
    filters = [0, 1, 2, 3]

    def make():
        module = FeatureMapInversion(network="tiny_vgg", pretrained=False, layers=["relu1_1"], filters=filters,
                                     include_original=False, image_size=32, denoise_weight=0.0, stop_eps=0.0)
        conv = module.trunk.sequential.conv1_1
        conv.weight.copy_(_oriented_kernels(copies))
        conv.bias.zero_()
        return module

    images = texture.invert_on_photos(make, PHOTOS, image_size=32, iterations=60, default_root_dir=str(tmp_path))
    stack = torch.cat([images[p] for p in PHOTOS])
    rows_filter = [k for _ in PHOTOS for k in filters]
    rows_photo = [p for p in PHOTOS for _ in filters]
    score = texture.specificity(texture.descriptor(stack), rows_filter, rows_photo)
    orientation = texture.specificity(texture.descriptor_blocks(stack)["orientation"], rows_filter, rows_photo)
    if copies:          # every filter is the same function: the photo alone decides the image
        assert score["agreement"] <= score["chance"] and score["ratio"] > 1.0, score
        assert orientation["agreement"] <= orientation["chance"], orientation
    else:               # measured: orientation agreement 0.67 (ratio 0.68), all blocks 0.33 (ratio 0.81), chance 0.18
        assert orientation["agreement"] >= 0.5 and orientation["ratio"] < 0.8, orientation
        assert score["agreement"] > score["chance"] and score["ratio"] < 1.0, score
