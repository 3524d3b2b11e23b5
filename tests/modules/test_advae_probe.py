"""The disentanglement probe and the chance floor of attribute control (docs/advae.md)."""

from __future__ import annotations

import pytest
import torch

from affectlab.modules.advae.media import control_floor_hits, control_hits, corrected_control, settings
from affectlab.modules.advae.probe import fit_probe


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread_module):
    """Tiny networks: one intra-op thread is several times faster than two busy ones."""


NAMES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Pale_Skin", "Rosy_Cheeks", "Male", "Young"]


def attributes(n: int, generator: torch.Generator) -> torch.Tensor:
    hair = torch.nn.functional.one_hot(torch.randint(0, 4, (n,), generator=generator), 4).float()
    return torch.cat([hair, (torch.rand(n, 4, generator=generator) < 0.5).float()], 1)


def test_the_probe_reads_attributes_a_latent_carries_and_not_those_it_lacks():
    g = torch.Generator().manual_seed(0)
    a_train, a_val = attributes(600, g), attributes(300, g)
    noise = lambda n: torch.randn(n, 12, generator=g)  # noqa: E731
    # Carrying: the attributes mixed into z by a random rotation, plus noise.
    mix = torch.randn(8, 12, generator=g)
    carried = fit_probe(a_train @ mix + 0.3 * noise(600), a_train, a_val @ mix + 0.3 * noise(300), a_val, NAMES)
    blind = fit_probe(noise(600), a_train, noise(300), a_val, NAMES)
    assert carried.gap.mean() > 0.25 and (carried.gap > 0.1).all()
    assert abs(blind.gap.mean()) < 0.05
    summary = carried.summary()
    assert {"probe_acc", "probe_majority", "probe_gap", "probe_gap/Male"} <= set(summary)
    assert summary["probe_majority"] == pytest.approx(blind.majority.mean().item())
    assert [row["attribute"] for row in carried.rows()] == NAMES


def test_the_probe_does_not_depend_on_the_callers_random_state_and_rejects_bad_input():
    g = torch.Generator().manual_seed(1)
    a, z = attributes(64, g), torch.randn(64, 4, generator=g)
    torch.manual_seed(5)
    first = fit_probe(z, a, z, a, NAMES, steps=20).accuracy
    torch.manual_seed(6)
    assert torch.equal(first, fit_probe(z, a, z, a, NAMES, steps=20).accuracy)
    with pytest.raises(ValueError, match="attribute columns"):
        fit_probe(z, a[:, :3], z, a, NAMES)
    with pytest.raises(ValueError, match="at least 2 training"):
        fit_probe(z[:1], a[:1], z, a, NAMES)


def test_control_is_corrected_for_the_floor_of_a_generator_that_ignores_the_request():
    g = torch.Generator().manual_seed(2)
    a = attributes(400, g)

    def classifier(images):  # reads the attributes written into the first pixels
        return images[:, 0, 0, :8] * 2 - 1

    def draw(vectors):
        images = torch.zeros(len(vectors), 3, 8, 8)
        images[:, 0, 0, :8] = vectors
        return images

    obeys = control_hits(classifier, draw, a, NAMES).float().mean()
    ignores = control_hits(classifier, lambda requested: draw(a), a, NAMES).float().mean()
    floor = control_floor_hits(classifier, draw(a), a, NAMES).float().mean()
    # Hair colours are asked "on" only: ignoring the request scores 1/4 there and 1/2 elsewhere.
    assert len(settings(NAMES)) == 12
    assert floor == pytest.approx((4 * 0.25 + 8 * 0.5) / 12, abs=0.03)
    assert ignores == pytest.approx(floor.item())
    assert obeys == 1.0 and corrected_control(obeys, floor) == pytest.approx(1.0)
    assert corrected_control(ignores, floor) == pytest.approx(0.0, abs=1e-6)
