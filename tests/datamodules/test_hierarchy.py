"""The emotion taxonomies of docs/datasets.md as data: structure, parent matrices, label lookups."""

import pytest
import torch

from affectlab.datamodules.hierarchy import TAXONOMIES, Taxonomy, flat, get_taxonomy


def test_webemo_is_2_7_25_with_official_leaf_order():
    webemo = get_taxonomy("webemo")
    assert webemo.num_classes == (2, 7, 25)
    assert webemo.leaves[0] == "affection" and webemo.leaves[24] == "zest"
    assert "cheerfullness" in webemo.leaves and "irritabilty" in webemo.leaves  # official spellings
    assert webemo.levels[1][webemo.parents[1][webemo.index("lust")]] == "love"
    assert webemo.levels[1][webemo.parents[1][webemo.index("horror")]] == "fear"
    assert webemo.levels[0][webemo.parents[0][webemo.index("surprise", 1)]] == "positive"
    assert webemo.levels[0][webemo.parents[0][webemo.index("confusion", 1)]] == "negative"


@pytest.mark.parametrize("name,positives", [
    ("mikels", {"amusement", "awe", "contentment", "excitement"}),
    ("ekman", {"joy", "surprise"}),
])
def test_two_level_sentiment_parents(name, positives):
    taxonomy = get_taxonomy(name)
    for k, leaf in enumerate(taxonomy.leaves):
        assert taxonomy.levels[0][taxonomy.parents[0][k]] == ("positive" if leaf in positives else "negative")


@pytest.mark.parametrize("name", sorted(TAXONOMIES))
def test_parent_matrices_sum_children_into_parents(name):
    taxonomy = get_taxonomy(name)
    probs = torch.softmax(torch.randn(5, taxonomy.num_classes[-1]), 1)
    for level in range(taxonomy.num_levels - 1, 0, -1):
        matrix = taxonomy.parent_matrix(level)
        assert matrix.shape == (taxonomy.num_classes[level], taxonomy.num_classes[level - 1])
        assert torch.equal(matrix.sum(1), torch.ones(taxonomy.num_classes[level]))  # one parent each
        coarse = probs @ matrix
        torch.testing.assert_close(coarse.sum(1), torch.ones(5))
        probs = coarse


def test_labels_at_levels_follow_ancestors():
    webemo = get_taxonomy("webemo")
    leaves = torch.tensor([webemo.index("rage"), webemo.index("zest")])
    sentiment, secondary, tertiary = webemo.labels_at_levels(leaves)
    assert [webemo.levels[1][i] for i in secondary] == ["anger", "joy"]
    assert [webemo.levels[0][i] for i in sentiment] == ["negative", "positive"]
    assert torch.equal(tertiary, leaves)


def test_violations_flag_inconsistent_predictions():
    mikels = get_taxonomy("mikels")
    awe = mikels.index("awe")
    fine = torch.tensor([awe, awe])
    coarse = torch.tensor([1, 0])  # positive is right for awe, negative is a violation
    assert mikels.violations([coarse, fine]).tolist() == [False, True]


def test_round_trip_through_dict_and_clear_errors():
    webemo = get_taxonomy("webemo")
    assert Taxonomy.from_spec(webemo.to_dict()) == webemo
    assert Taxonomy.from_spec("ekman") == get_taxonomy("ekman")
    assert flat("x", ["a", "b"]).num_levels == 1
    with pytest.raises(KeyError, match="known"):
        get_taxonomy("plutchik")
    with pytest.raises(KeyError, match="expected one of"):
        webemo.index("happiness")
    with pytest.raises(ValueError, match="parent"):
        Taxonomy("bad", (("a",), ("b", "c")), ((0,),))
