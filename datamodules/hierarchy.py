"""Emotion taxonomies as data (docs/datasets.md, "Emotion taxonomies").

A taxonomy is a list of affective levels ordered coarse → fine (level 0 is the coarsest) and,
for every level below the first, the index of each class's parent one level up. Everything a
model needs — parent matrices, labels at every level from a leaf label, hierarchy violations —
is derived from those two lists, so a new benchmark only adds data here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

SENTIMENT = ("negative", "positive")


@dataclass(frozen=True)
class Taxonomy:
    """An emotion hierarchy, coarse → fine.

    Attributes:
        name: short identifier (``"webemo"``, ``"mikels"``, ...).
        levels: class names per level, coarse → fine.
        parents: for level ``l >= 1``, ``parents[l - 1][k]`` is the index at level ``l - 1`` of the
            parent of class ``k`` at level ``l``.
        level_names: a readable name per level (``"sentiment"``, ``"emotion"``, ...).
    """

    name: str
    levels: tuple[tuple[str, ...], ...]
    parents: tuple[tuple[int, ...], ...] = ()
    level_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError(f"taxonomy {self.name!r} has no levels")
        if len(self.parents) != len(self.levels) - 1:
            raise ValueError(
                f"taxonomy {self.name!r}: {len(self.levels)} levels need {len(self.levels) - 1} parent lists, "
                f"got {len(self.parents)}"
            )
        for l, parent in enumerate(self.parents, start=1):
            if len(parent) != len(self.levels[l]):
                raise ValueError(f"taxonomy {self.name!r}: level {l} has {len(self.levels[l])} classes "
                                 f"but {len(parent)} parents")
            bad = [p for p in parent if not 0 <= p < len(self.levels[l - 1])]
            if bad:
                raise ValueError(f"taxonomy {self.name!r}: parent indices {bad} out of range at level {l}")
        if not self.level_names:
            object.__setattr__(self, "level_names", tuple(f"level{l + 1}" for l in range(len(self.levels))))

    # -- sizes and names ----------------------------------------------------------------------------
    @property
    def num_levels(self) -> int:
        return len(self.levels)

    @property
    def num_classes(self) -> tuple[int, ...]:
        return tuple(len(level) for level in self.levels)

    @property
    def leaves(self) -> tuple[str, ...]:
        return self.levels[-1]

    def index(self, class_name: str, level: int = -1) -> int:
        """Index of ``class_name`` at ``level``; the error lists the valid names."""
        names = self.levels[level]
        try:
            return names.index(class_name)
        except ValueError:
            raise KeyError(f"{class_name!r} is not a class of {self.name!r} at level {level}; "
                           f"expected one of {list(names)}") from None

    # -- structure ----------------------------------------------------------------------------------
    def parent_matrix(self, level: int) -> torch.Tensor:
        """0/1 matrix ``n_level × n_{level-1}`` with a one where the column is the row's parent.

        ``p_coarse = p_fine @ parent_matrix(fine)`` sums child probabilities into their parent.
        """
        level = level % self.num_levels
        if level == 0:
            raise ValueError("the coarsest level has no parent")
        parent = torch.tensor(self.parents[level - 1])
        matrix = torch.zeros(len(self.levels[level]), len(self.levels[level - 1]))
        matrix[torch.arange(len(parent)), parent] = 1.0
        return matrix

    def leaf_to_level(self, level: int) -> torch.Tensor:
        """Index map ``n_leaves`` → class at ``level`` (ancestor of each leaf)."""
        level = level % self.num_levels
        index = torch.arange(len(self.leaves))
        for l in range(self.num_levels - 1, level, -1):
            index = torch.tensor(self.parents[l - 1])[index]
        return index

    def labels_at_levels(self, leaf_labels: torch.Tensor) -> list[torch.Tensor]:
        """Labels at every level, coarse → fine, from leaf labels (shape ``B``)."""
        return [self.leaf_to_level(l).to(leaf_labels.device)[leaf_labels] for l in range(self.num_levels)]

    def violations(self, predictions: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per sample, whether any level's prediction is not the parent of the next finer one.

        Args:
            predictions: predicted indices per level, coarse → fine, each of shape ``B``.
        Returns:
            Bool tensor ``B``.
        """
        violated = torch.zeros_like(predictions[0], dtype=torch.bool)
        for l in range(1, self.num_levels):
            parent = torch.tensor(self.parents[l - 1], device=predictions[l].device)[predictions[l]]
            violated |= parent != predictions[l - 1]
        return violated

    # -- serialisation (checkpoints, links between data and model) ----------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "levels": [list(level) for level in self.levels],
            "parents": [list(p) for p in self.parents],
            "level_names": list(self.level_names),
        }

    @classmethod
    def from_spec(cls, spec: Taxonomy | Mapping[str, Any] | str) -> Taxonomy:
        """A taxonomy from itself, its dict form, or the name of a built-in one."""
        if isinstance(spec, Taxonomy):
            return spec
        if isinstance(spec, str):
            return get_taxonomy(spec)
        return cls(
            name=spec["name"],
            levels=tuple(tuple(level) for level in spec["levels"]),
            parents=tuple(tuple(int(i) for i in p) for p in spec.get("parents", ())),
            level_names=tuple(spec.get("level_names", ())),
        )

    @classmethod
    def from_children(cls, name: str, groups: Sequence[Mapping[str, Sequence[str]]],
                      level_names: Sequence[str] = ()) -> Taxonomy:
        """Build from ``{parent: [children]}`` per level below the first.

        ``groups[0]`` maps level-0 names to level-1 names, and so on. Level 0 keeps the order of
        ``groups[0]``'s keys; each finer level is listed in the order given by ``leaf_order`` of its
        own mapping keys where present, else in sorted order.
        """
        levels = [tuple(groups[0].keys())]
        parents = []
        for mapping in groups:
            children = sorted(c for kids in mapping.values() for c in kids)
            parent_of = {c: levels[-1].index(p) for p, kids in mapping.items() for c in kids}
            levels.append(tuple(children))
            parents.append(tuple(parent_of[c] for c in children))
        return cls(name, tuple(levels), tuple(parents), tuple(level_names))


def flat(name: str, classes: Sequence[str]) -> Taxonomy:
    """A one-level taxonomy (binary sentiment, Fashion-MNIST, ...)."""
    return Taxonomy(name, (tuple(classes),), (), ("class",))


# -- the built-in taxonomies (docs/datasets.md) ------------------------------------------------------------

WEBEMO_LEAVES = (
    "affection", "cheerfullness", "confusion", "contentment", "disappointment", "disgust", "enthrallment",
    "envy", "exasperation", "gratitude", "horror", "irritabilty", "lust", "neglect", "nervousness",
    "optimism", "pride", "rage", "relief", "sadness", "shame", "suffering", "surprise", "sympathy", "zest",
)  # official order and spellings: label i of train25.txt is WEBEMO_LEAVES[i]
WEBEMO_PARENTS = {
    "love": ("affection", "gratitude", "lust"),
    "joy": ("cheerfullness", "contentment", "enthrallment", "optimism", "pride", "relief", "zest"),
    "surprise": ("surprise",),
    "confusion": ("confusion",),
    "sadness": ("disappointment", "neglect", "sadness", "shame", "suffering", "sympathy"),
    "anger": ("disgust", "envy", "exasperation", "irritabilty", "rage"),
    "fear": ("horror", "nervousness"),
}
WEBEMO_POSITIVE = ("love", "joy", "surprise")

MIKELS = ("amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness")
MIKELS_POSITIVE = ("amusement", "awe", "contentment", "excitement")
EKMAN = ("anger", "disgust", "fear", "joy", "sadness", "surprise")
EKMAN_POSITIVE = ("joy", "surprise")


def _two_level(name: str, leaves: Sequence[str], positive: Sequence[str]) -> Taxonomy:
    return Taxonomy(
        name,
        (SENTIMENT, tuple(leaves)),
        (tuple(int(c in positive) for c in leaves),),
        ("sentiment", "emotion"),
    )


def _webemo() -> Taxonomy:
    parents7 = tuple(WEBEMO_PARENTS)
    parent_of_leaf = {leaf: parents7.index(p) for p, kids in WEBEMO_PARENTS.items() for leaf in kids}
    return Taxonomy(
        "webemo",
        (SENTIMENT, parents7, WEBEMO_LEAVES),
        (tuple(int(p in WEBEMO_POSITIVE) for p in parents7), tuple(parent_of_leaf[c] for c in WEBEMO_LEAVES)),
        ("sentiment", "secondary", "tertiary"),
    )


TAXONOMIES = {
    "webemo": _webemo(),
    "mikels": _two_level("mikels", MIKELS, MIKELS_POSITIVE),
    "ekman": _two_level("ekman", EKMAN, EKMAN_POSITIVE),
    "sentiment": Taxonomy("sentiment", (SENTIMENT,), (), ("sentiment",)),
}


def get_taxonomy(name: str) -> Taxonomy:
    """A built-in taxonomy by name; the error lists the known names."""
    try:
        return TAXONOMIES[name]
    except KeyError:
        raise KeyError(f"unknown taxonomy {name!r}; known: {sorted(TAXONOMIES)}") from None
